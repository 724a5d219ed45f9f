"""Tests of ``lightning_kd.analyze``: files written, numbers checked against naive re-computations, the CLI."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from matplotlib.image import imread
from torch import Tensor, nn

from lightning_kd import CurriculumTemperature, DistillationLoss, DistillationModule
from lightning_kd.analyze import (
    FIGURES,
    analyze,
    analyze_logits,
    collect_logits,
    logit_difference,
    main,
    read_temperature_trajectory,
)
from lightning_kd.data import DigitsDataModule
from lightning_kd.models.digits import demo_cnn, demo_mlp
from lightning_kd.temperature import cosine_lambda
from tests.helpers import loader, mlp, random_dataset

SQRT3_FACTOR = (1.0 + math.sqrt(3.0)) / 2.0


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=64, pin_memory=False)
    dm.setup("test")
    return dm


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    """A random teacher and student MLP on 8x8 digits (untrained: the numbers need not be good, only right)."""
    return mlp(seed=0, hidden=32), mlp(seed=1, hidden=8)


def _metrics_csv(path: Path) -> Path:
    """A metrics file laid out as Lightning's CSVLogger writes it (epoch-level values in sparse rows)."""
    rows = [
        {"epoch": "0", "step": "4", "train/temperature_step": "15.6", "train/temperature_epoch": "", "val/acc1": ""},
        {"epoch": "0", "step": "9", "train/temperature_step": "", "train/temperature_epoch": "15.5", "val/acc1": ""},
        {"epoch": "0", "step": "9", "train/temperature_step": "", "train/temperature_epoch": "", "val/acc1": "0.5"},
        {"epoch": "1", "step": "19", "train/temperature_step": "", "train/temperature_epoch": "15.1", "val/acc1": ""},
    ]
    for row, lam in zip(rows, ["", "-0.5", "", "-1.0"], strict=True):
        row["train/lambda_epoch"] = lam
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read_matrix(path: Path) -> np.ndarray:
    with path.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "true_class"
    return np.array([[float(v) for v in row[1:]] for row in rows[1:]])


def _naive_zscore(row: list[float]) -> list[float]:
    mean = sum(row) / len(row)
    std = math.sqrt(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
    return [(v - mean) / (std + 1e-7) for v in row]


def _naive_difference(teacher: list[list[float]], student: list[list[float]], target: list[int], k: int) -> np.ndarray:
    out = np.full((k, k), np.nan)
    for i in range(k):
        members = [n for n in range(len(target)) if target[n] == i]
        for j in range(k):
            if members:
                out[i, j] = sum(abs(teacher[n][j] - student[n][j]) for n in members) / len(members)
    return out


# --------------------------------------------------------------------------------------------------------
# analyze(): files
# --------------------------------------------------------------------------------------------------------
def test_analyze_writes_every_figure_and_file(tmp_path: Path, digits: DigitsDataModule, models: tuple) -> None:
    teacher, student = models
    metrics = _metrics_csv(tmp_path / "metrics.csv")
    summary = analyze(teacher, student, digits.test_dataloader(), tmp_path / "out", metrics=metrics)
    out = tmp_path / "out"
    expected = {
        *FIGURES,
        "temperature_trajectory.png",
        "temperature_trajectory.csv",
        "per_sample.csv",
        "sample_logits.csv",
        "logit_diff_raw.csv",
        "logit_diff_zscore.csv",
        "summary.json",
    }
    assert set(summary["files"]) == expected
    assert {p.name for p in out.iterdir()} == expected
    for name in expected:
        assert (out / name).stat().st_size > 0, name
    for name in [n for n in expected if n.endswith(".png")]:
        image = imread(out / name)
        assert image.shape[0] >= 300 and image.shape[1] >= 500, (name, image.shape)  # a real, readable figure
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["num_samples"] == len(digits.test_set) == 360
    assert on_disk["agreement"] == summary["agreement"]
    assert on_disk["trajectory"]["points"] == 2


def test_analyze_without_metrics_skips_the_trajectory(tmp_path: Path, models: tuple) -> None:
    summary = analyze(*models, loader(random_dataset(n=20)), tmp_path)
    assert summary["trajectory"] is None
    assert not (tmp_path / "temperature_trajectory.png").exists()
    assert all((tmp_path / name).is_file() for name in FIGURES)


def test_limit_batches_and_sample_index(tmp_path: Path, models: tuple) -> None:
    summary = analyze(*models, loader(random_dataset(n=40), batch_size=8), tmp_path, limit_batches=2, sample_index=5)
    assert summary["num_samples"] == 16
    assert summary["sample"]["index"] == 5
    with pytest.raises(ValueError, match="sample_index"):
        analyze(*models, loader(random_dataset(n=8)), tmp_path, sample_index=8)


# --------------------------------------------------------------------------------------------------------
# analyze(): numbers, against independent computations
# --------------------------------------------------------------------------------------------------------
def test_numbers_match_a_naive_computation(tmp_path: Path, digits: DigitsDataModule, models: tuple) -> None:
    teacher, student = models
    summary = analyze(teacher, student, digits.test_dataloader(), tmp_path)

    # logits by hand, one sample at a time
    images, labels = digits.test_set.tensors
    with torch.no_grad():
        t_rows = [teacher(images[n : n + 1])[0].tolist() for n in range(len(labels))]
        s_rows = [student(images[n : n + 1])[0].tolist() for n in range(len(labels))]
    target = labels.tolist()
    k = 10

    # heatmaps (Fig. 3, 2nd row), raw and standardized
    raw = _read_matrix(tmp_path / "logit_diff_raw.csv")
    np.testing.assert_allclose(raw, _naive_difference(t_rows, s_rows, target, k), rtol=1e-4, atol=1e-5)
    z = _read_matrix(tmp_path / "logit_diff_zscore.csv")
    z_expected = _naive_difference([_naive_zscore(r) for r in t_rows], [_naive_zscore(r) for r in s_rows], target, k)
    np.testing.assert_allclose(z, z_expected, rtol=1e-4, atol=1e-5)
    assert summary["logit_difference"]["raw"]["mean"] == pytest.approx(float(np.mean(raw)), rel=1e-5)
    assert summary["logit_difference"]["raw"]["max"] == pytest.approx(float(np.max(raw)), rel=1e-5)
    assert summary["logit_difference"]["zscore"]["mean"] == pytest.approx(float(np.mean(z_expected)), rel=1e-4)

    # accuracy and agreement
    t_pred = [max(range(k), key=r.__getitem__) for r in t_rows]
    s_pred = [max(range(k), key=r.__getitem__) for r in s_rows]
    n = len(target)
    agreement = sum(a == b for a, b in zip(t_pred, s_pred, strict=True)) / n
    assert summary["agreement"] == pytest.approx(agreement)
    assert summary["teacher"]["accuracy"] == pytest.approx(sum(a == y for a, y in zip(t_pred, target, strict=True)) / n)
    assert summary["student"]["accuracy"] == pytest.approx(sum(a == y for a, y in zip(s_pred, target, strict=True)) / n)
    assert 0.0 < agreement < 1.0  # random models: a non-trivial value, so a wrong formula shows

    # per-sample moments and max-logit temperatures (Fig. 5 and the temperature histogram)
    with (tmp_path / "per_sample.csv").open() as handle:
        per_sample = list(csv.DictReader(handle))
    assert len(per_sample) == n
    for row in per_sample[:50]:
        i = int(row["index"])
        assert int(row["target"]) == target[i]
        assert float(row["teacher_logit_std"]) == pytest.approx(float(np.std(t_rows[i], ddof=1)), rel=1e-4)
        assert float(row["student_logit_mean"]) == pytest.approx(float(np.mean(s_rows[i])), rel=1e-4, abs=1e-6)
        peak_t = max(abs(v) for v in _naive_zscore(t_rows[i]))
        peak_s = max(abs(v) for v in _naive_zscore(s_rows[i]))
        assert float(row["temperature"]) == pytest.approx(SQRT3_FACTOR * max(peak_t, peak_s), rel=1e-4)
        assert float(row["temperature_teacher"]) == pytest.approx(SQRT3_FACTOR * peak_t, rel=1e-4)
    assert summary["student"]["logit_std"] == pytest.approx(
        float(np.mean([np.std(r, ddof=1) for r in s_rows])), rel=1e-4
    )


def test_sample_logits_csv_holds_the_chosen_sample(tmp_path: Path) -> None:
    teacher = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 5.0]])
    student = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    target = torch.tensor([0, 1, 1])
    summary = analyze_logits(teacher, student, target, tmp_path, sample_index=1)
    with (tmp_path / "sample_logits.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["teacher_raw"]) for r in rows] == [0.0, 2.0, 1.0]
    assert [float(r["student_raw"]) for r in rows] == [0.0, 1.0, 3.0]
    assert [round(float(r["student_zscore"]), 4) for r in rows] == [round(v, 4) for v in _naive_zscore([0, 1, 3])]
    assert summary["sample"] == {"index": 1, "target": 1, "teacher_pred": 1, "student_pred": 2}
    # the default sample is the first one the teacher gets right: sample 0 here
    assert analyze_logits(teacher, student, target, tmp_path / "default")["sample"]["index"] == 0
    # class 2 has no sample: its heatmap row is NaN, and the summary's mean ignores it
    raw = _read_matrix(tmp_path / "logit_diff_raw.csv")
    assert np.isnan(raw[2]).all() and not np.isnan(raw[:2]).any()
    assert summary["logit_difference"]["raw"]["mean"] == pytest.approx(float(np.nanmean(raw)))


def test_logit_difference_matches_a_loop() -> None:
    g = torch.Generator().manual_seed(3)
    teacher, student = torch.randn(50, 7, generator=g), torch.randn(50, 7, generator=g) * 3
    target = torch.randint(0, 7, (50,), generator=g)
    expected = _naive_difference(teacher.tolist(), student.tolist(), target.tolist(), 7)
    np.testing.assert_allclose(logit_difference(teacher, student, target).numpy(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        logit_difference(teacher, student[:, :3], target)


def test_collect_logits_restores_training_mode_and_checks_classes() -> None:
    teacher, student = mlp(seed=0), mlp(seed=1)
    teacher.train()
    t, s, y = collect_logits(teacher, student, loader(random_dataset(n=20)))
    assert t.shape == s.shape == (20, 10) and y.shape == (20,)
    assert teacher.training and student.training
    with pytest.raises(ValueError, match="same number of classes"):
        collect_logits(teacher, mlp(seed=1, num_classes=4), loader(random_dataset(n=4)))


# --------------------------------------------------------------------------------------------------------
# the temperature trajectory
# --------------------------------------------------------------------------------------------------------
def test_read_trajectory_from_a_csvlogger_layout(tmp_path: Path) -> None:
    trajectory = read_temperature_trajectory(_metrics_csv(tmp_path / "metrics.csv"))
    assert trajectory["x_label"] == "epoch"
    assert trajectory["x"] == [1.0, 2.0]  # epochs counted from 1, as CTKD's curriculum counts them
    assert trajectory["temperature"] == [15.5, 15.1]
    assert trajectory["lambda"] == [-0.5, -1.0]


def test_read_trajectory_from_step_level_columns(tmp_path: Path) -> None:
    """Diagnostics logged per step only (``on_epoch=False``): epoch values are the means of the logged steps."""
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train/temperature,train/lambda,val/acc1\n"
        "0,0,15.0,-0.5,\n0,1,14.0,-0.5,\n0,1,,,0.3\n1,2,13.0,-1.0,\n1,3,12.0,-1.0,\n"
    )
    by_epoch = read_temperature_trajectory(path)
    assert by_epoch["x"] == [1.0, 2.0] and by_epoch["x_label"] == "epoch"
    assert by_epoch["temperature"] == [14.5, 12.5]
    assert by_epoch["lambda"] == [-0.5, -1.0]
    by_step = read_temperature_trajectory(path, by="step")
    assert by_step["x"] == [0.0, 1.0, 2.0, 3.0] and by_step["x_label"] == "step"
    assert by_step["temperature"] == [15.0, 14.0, 13.0, 12.0]
    with pytest.raises(ValueError, match="by"):
        read_temperature_trajectory(path, by="batch")


def test_read_trajectory_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,step,val/acc1\n0,9,0.5\n")
    with pytest.raises(ValueError, match="train/temperature"):
        read_temperature_trajectory(bad)
    with pytest.raises(FileNotFoundError):
        read_temperature_trajectory(tmp_path / "missing.csv")


def test_trajectory_of_a_real_ctkd_run(tmp_path: Path) -> None:
    """A DistillationModule with CTKD logged through a CSVLogger: λ per epoch follows the cosine curriculum."""
    pl.seed_everything(0, workers=True, verbose=False)
    loss = DistillationLoss("kd", temperature=CurriculumTemperature(decay_epochs=3), ce_weight=0.1, kd_weight=0.9)
    module = DistillationModule(mlp(seed=1), mlp(seed=0), loss)
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=CSVLogger(tmp_path, name="run", version=0),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=loader(random_dataset(n=32), batch_size=8))
    metrics = tmp_path / "run" / "version_0" / "metrics.csv"
    trajectory = read_temperature_trajectory(metrics)
    assert trajectory["x"] == [1.0, 2.0, 3.0]
    assert trajectory["lambda"] == pytest.approx([cosine_lambda(e, decay_epochs=3) for e in (1, 2, 3)])
    assert all(1.0 <= t <= 21.0 for t in trajectory["temperature"])
    summary = analyze(module.teacher, module.student, loader(random_dataset(n=16)), tmp_path / "a", metrics=metrics)
    assert summary["trajectory"]["columns"]["temperature"].startswith("train/temperature")
    assert summary["trajectory"]["columns"]["lambda"].startswith("train/lambda")
    with (tmp_path / "a" / "temperature_trajectory.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3

    # the CLI reads the run's real Lightning checkpoint (tests.helpers.mlp has demo_mlp's layout)
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    torch.save({"model": _state_dict(module.teacher)}, tmp_path / "teacher.pth")
    arch = ["--teacher-arch", "demo_mlp", "--teacher-kwargs", '{"hidden": 32}']
    arch += ["--student-arch", "demo_mlp", "--student-kwargs", '{"hidden": 32}']
    paths = ["--teacher", str(tmp_path / "teacher.pth"), "--student", str(tmp_path / "student.ckpt")]
    code = main([*paths, *arch, "--metrics", str(metrics), "--limit-batches", "1", "--out", str(tmp_path / "cli")])
    assert code == 0
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    digits = DigitsDataModule(batch_size=256)
    digits.setup("test")
    images, labels = next(iter(digits.test_dataloader()))
    with torch.no_grad():
        expected = (module.student.eval()(images).argmax(1) == labels).float().mean()
    assert summary["num_samples"] == 256
    assert summary["student"]["accuracy"] == pytest.approx(float(expected))
    assert summary["trajectory"]["points"] == 3


# --------------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------------
def _state_dict(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_cli_with_checkpoint_files(tmp_path: Path, digits: DigitsDataModule, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    teacher, student = demo_cnn(num_classes=10, width=4).eval(), demo_mlp(num_classes=10, hidden=16).eval()
    teacher_path, student_path = tmp_path / "teacher.pth", tmp_path / "student.ckpt"
    torch.save({"model": _state_dict(teacher), "epoch": 240}, teacher_path)  # the CIFAR teachers' format
    torch.save({"state_dict": {f"model.{k}": v for k, v in _state_dict(student).items()}}, student_path)  # Lightning
    out = tmp_path / "out"
    code = main(
        [
            "--teacher", str(teacher_path), "--teacher-arch", "demo_cnn", "--teacher-kwargs", '{"width": 4}',
            "--student", str(student_path), "--student-arch", "demo_mlp", "--student-kwargs", '{"hidden": 16}',
            "--data", "digits", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "agreement" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    images, labels = digits.test_set.tensors
    with torch.no_grad():
        t_pred, s_pred = teacher(images).argmax(1), student(images).argmax(1)
    assert summary["teacher"]["accuracy"] == pytest.approx(float((t_pred == labels).float().mean()))
    assert summary["student"]["accuracy"] == pytest.approx(float((s_pred == labels).float().mean()))
    assert summary["agreement"] == pytest.approx(float((t_pred == s_pred).float().mean()))
    assert all((out / name).is_file() for name in FIGURES)


def test_cli_with_a_zoo_model_plain_state_dict_and_limit_batches(tmp_path: Path) -> None:
    from lightning_kd.models import create_model

    torch.manual_seed(0)
    teacher = create_model("resnet8", num_classes=10, in_chans=1)
    torch.save(_state_dict(teacher), tmp_path / "teacher.pt")
    torch.save(_state_dict(demo_mlp(num_classes=10)), tmp_path / "student.pt")
    metrics = _metrics_csv(tmp_path / "metrics.csv")
    out = tmp_path / "out"
    code = main(
        [
            "--teacher", str(tmp_path / "teacher.pt"), "--teacher-arch", "resnet8",
            "--student", str(tmp_path / "student.pt"), "--student-arch", "demo_mlp",
            "--limit-batches", "2", "--batch-size", "32", "--metrics", str(metrics), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_samples"] == 64
    assert (out / "temperature_trajectory.png").is_file()


def test_cli_help_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    assert "--teacher-arch" in capsys.readouterr().out
    assert main(["--teacher", "t.pth"]) == 2  # no student
    assert "--student" in capsys.readouterr().err
    code = main(["--teacher", str(tmp_path / "nope.pth"), "--teacher-arch", "demo_cnn", "--student", "x.pth"])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
    torch.save(_state_dict(demo_mlp(num_classes=10, hidden=4)), tmp_path / "s.pt")
    code = main(
        ["--teacher", str(tmp_path / "s.pt"), "--teacher-arch", "demo_mlp", "--student", str(tmp_path / "s.pt")]
    )
    assert code == 1  # the default demo_mlp has 8 hidden units: the shapes don't match, and no --student-arch
    assert "does not match" in capsys.readouterr().err
    assert main(["--run", str(tmp_path)]) == 1
    assert "run.json" in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_kd.analyze", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lightning-kd analyze" in result.stdout


def test_cli_reads_a_lightning_kd_fit_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--run`` on the folder of a ``lightning-kd fit`` run: config.yaml, student.pt and metrics.csv."""
    from lightning_kd.cli import main as cli_main

    monkeypatch.setattr(sys, "argv", ["lightning-kd"])  # LightningCLI warns when pytest's own arguments are there

    torch.manual_seed(0)
    torch.save({"model": _state_dict(demo_cnn(num_classes=10, width=4))}, tmp_path / "teacher.pth")
    config = f"""
trainer: {{max_epochs: 2, default_root_dir: {tmp_path / "run"}, accelerator: cpu, limit_train_batches: 3,
  enable_progress_bar: false, enable_model_summary: false, log_every_n_steps: 1}}
model:
  class_path: lightning_kd.DistillationModule
  init_args:
    student: demo_mlp
    student_kwargs: {{hidden: 16}}
    teacher: {tmp_path / "teacher.pth"}
    teacher_arch: demo_cnn
    teacher_kwargs: {{width: 4}}
    num_classes: 10
    in_chans: 1
    loss:
      class_path: lightning_kd.DistillationLoss
      init_args:
        preprocess: zscore
        temperature: {{class_path: lightning_kd.CurriculumTemperature, init_args: {{decay_epochs: 2}}}}
        ce_weight: 0.1
        kd_weight: 9.0
data: {{class_path: lightning_kd.data.DigitsDataModule, init_args: {{batch_size: 64}}}}
"""
    (tmp_path / "config.yaml").write_text(config)
    assert cli_main(["fit", "--config", str(tmp_path / "config.yaml")]) == 0
    run = tmp_path / "run" / "version_0"
    assert main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0  # finds version_0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    with (run / "metrics.csv").open() as handle:
        last_val = [float(r["val/acc1"]) for r in csv.DictReader(handle) if r.get("val/acc1")][-1]
    assert summary["student"]["accuracy"] == pytest.approx(last_val, abs=1e-6)  # student.pt is the final student
    assert summary["trajectory"]["points"] == 2
    assert summary["trajectory"]["columns"]["lambda"].startswith("train/lambda")
    (run / "config.yaml").write_text("model: {class_path: lightning_kd.ClassifierModule, init_args: {model: x}}\n")
    assert main(["--run", str(run), "--out", str(tmp_path / "out2")]) == 1  # no teacher in that run
