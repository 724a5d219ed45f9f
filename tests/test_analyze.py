"""Tests of ``lightning_kd.analyze``: files written, numbers checked against naive re-computations, the command
line on checkpoint files, on a real ``lightning-kd fit`` run folder and on a demo folder."""

from __future__ import annotations

import csv
import json
import math
import shutil
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
from lightning_kd.teacher import state_dict_sha256
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
        analyze(*models, loader(random_dataset(n=8)), tmp_path / "bad", sample_index=8)
    assert not (tmp_path / "bad").exists()  # refused before any file is written


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


class _FeaturesFirst(nn.Module):
    """Returns ``(features, logits)``: the logits are not where the default rule looks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flatten(1), self.model(x)


def test_collect_logits_with_a_logits_key() -> None:
    teacher, student = mlp(seed=0), mlp(seed=1)
    data = random_dataset(n=12)
    t, s, _ = collect_logits(_FeaturesFirst(teacher), _FeaturesFirst(student), loader(data), logits_key=1)
    images = data.tensors[0]
    with torch.no_grad():
        torch.testing.assert_close(t, teacher(images))
        torch.testing.assert_close(s, student(images))


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


def test_python_dash_m_lightning_kd_analyze() -> None:
    """The one subprocess test: ``python -m lightning_kd analyze`` reaches this command line."""
    result = subprocess.run(
        [sys.executable, "-m", "lightning_kd", "analyze", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lightning-kd analyze" in result.stdout and "--image-size" in result.stdout


# --------------------------------------------------------------------------------------------------------
# --run on a `lightning-kd fit` run folder: rebuilt through KDLightningCLI from its config.yaml
# --------------------------------------------------------------------------------------------------------
# Relative paths, as in the shipped recipes: the run is started in a folder holding the teacher.
FIT_CONFIG = """
trainer: {max_epochs: 2, default_root_dir: runs/kd, accelerator: cpu, limit_train_batches: 3,
  enable_progress_bar: false, enable_model_summary: false, log_every_n_steps: 1}
model:
  class_path: lightning_kd.DistillationModule
  init_args:
    student: demo_cnn
    student_kwargs: {width: 4}
    teacher: teacher.pth
    teacher_arch: demo_cnn
    teacher_kwargs: {width: 8}
    num_classes: 10
    in_chans: 1
    loss:
      class_path: lightning_kd.DistillationLoss
      init_args:
        preprocess: zscore
        temperature: {class_path: lightning_kd.CurriculumTemperature, init_args: {decay_epochs: 2}}
        ce_weight: 0.1
        kd_weight: 9.0
data: {class_path: lightning_kd.data.DigitsDataModule, init_args: {batch_size: 64, image_size: 16}}
"""
TEACHER = {"arch": "demo_cnn", "kwargs": {"width": 8}}
RUN = Path("runs/kd/version_0")


def _teacher(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return demo_cnn(num_classes=10, width=8)


@pytest.fixture(scope="module")
def fit_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a real ``lightning-kd fit`` run was started in: ``teacher.pth`` and ``runs/kd/version_0/``.

    A CTKD student (a 4-wide ``demo_cnn``) distilled from a random 8-wide ``demo_cnn`` for 2 epochs of 3 steps on
    16-px digits. Tests that change files work on a copy.
    """
    from lightning_kd.cli import main as cli_main

    start = tmp_path_factory.mktemp("fit")
    torch.save({"model": _state_dict(_teacher(seed=0))}, start / "teacher.pth")
    (start / "config.yaml").write_text(FIT_CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(start)
        patch.setattr(sys, "argv", ["lightning-kd"])  # LightningCLI warns when pytest's own arguments are there
        assert cli_main(["fit", "--config", "config.yaml"]) == 0
    assert (start / RUN / "student.pt").is_file() and (start / RUN / "checkpoints" / "last.ckpt").is_file()
    return start


def _copy(start: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(start, tmp_path / "start"))


def _last_val_acc1(run: Path) -> float:
    with (run / "metrics.csv").open() as handle:
        return [float(r["val/acc1"]) for r in csv.DictReader(handle) if r.get("val/acc1")][-1]


def _accuracy(model: nn.Module, image_size: int) -> float:
    dm = DigitsDataModule(image_size=image_size)
    dm.setup("test")
    images, labels = dm.test_set.tensors
    with torch.no_grad():
        return float((model.eval()(images).argmax(1) == labels).float().mean())


def test_run_folder_is_rebuilt_as_the_run_built_it(fit_start: Path, tmp_path: Path) -> None:
    """The student is the run's final one, the teacher the configured file, the data the run's 16-px digits.

    analyze runs from another folder than the run was started in: the relative teacher path is found from the
    run's ``default_root_dir``.
    """
    out = tmp_path / "out"
    assert main(["--run", str(fit_start / "runs" / "kd"), "--out", str(out)]) == 0  # finds version_0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"] == str(fit_start / RUN)
    assert summary["student_weights"] == str(fit_start / RUN / "student.pt")
    assert summary["image_size"] == 16 and summary["num_samples"] == 360
    # references computed apart from analyze: the Trainer's last validation, and the teacher file evaluated by hand
    assert summary["student"]["accuracy"] == pytest.approx(_last_val_acc1(fit_start / RUN), abs=1e-6)
    assert summary["teacher"]["accuracy"] == pytest.approx(_accuracy(_teacher(seed=0), image_size=16))
    assert summary["trajectory"]["points"] == 2
    assert summary["trajectory"]["columns"]["lambda"].startswith("train/lambda")


def test_run_with_a_changed_teacher_warns_and_records_it(
    fit_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    start = _copy(fit_start, tmp_path)
    original, other = state_dict_sha256(_teacher(seed=0)), state_dict_sha256(_teacher(seed=1))
    args = ["--run", str(start / RUN), "--limit-batches", "1"]

    assert main([*args, "--out", str(tmp_path / "same")]) == 0
    assert "WARNING" not in capsys.readouterr().err
    same = json.loads((tmp_path / "same" / "summary.json").read_text())
    assert same["teacher_changed"] is False
    assert same["teacher_sha256"]["recorded"] == same["teacher_sha256"]["current"] == original

    torch.save({"model": _state_dict(_teacher(seed=1))}, start / "teacher.pth")  # the teacher file is replaced
    assert main([*args, "--out", str(tmp_path / "changed")]) == 0
    err = capsys.readouterr().err
    assert "THE TEACHER CHANGED" in err
    assert original in err and other in err and str(start / "teacher.pth") in err
    changed = json.loads((tmp_path / "changed" / "summary.json").read_text())
    assert changed["teacher_changed"] is True
    assert changed["teacher_sha256"] == {
        "recorded": original,
        "current": other,
        "file": str(start / "teacher.pth"),
        "recorded_in": str(start / RUN / "hparams.yaml"),
    }
    assert any("THE TEACHER CHANGED" in w for w in changed["warnings"])


def test_run_without_a_recorded_teacher_identity_says_so(
    fit_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A run from before the identity was recorded: no ``teacher_sha256`` in hparams.yaml nor in a checkpoint."""
    start = _copy(fit_start, tmp_path)
    hparams = start / RUN / "hparams.yaml"
    hparams.write_text("".join(line for line in hparams.read_text().splitlines(True) if "teacher_sha256" not in line))
    shutil.rmtree(start / RUN / "checkpoints")
    assert main(["--run", str(start / RUN), "--limit-batches", "1", "--out", str(tmp_path / "out")]) == 0
    assert "teacher identity not recorded" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["teacher_changed"] is None and summary["teacher_sha256"]["recorded"] is None
    assert summary["teacher_sha256"]["current"] == state_dict_sha256(_teacher(seed=0))


def test_run_image_size_contradicted_by_the_command_line_is_warned(
    fit_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["--run", str(fit_start / RUN), "--image-size", "8", "--limit-batches", "1", "--out", str(tmp_path)])
    assert code == 0
    err = capsys.readouterr().err
    assert "--image-size 8 contradicts the run" in err and "trained on 16-px images" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["image_size"] == 8  # what was asked for, said loudly
    assert any("contradicts" in w for w in summary["warnings"])


def test_checkpoint_files_say_their_image_size(fit_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--teacher/--student: the size a run's checkpoint (or the run folder of a student.pt) says it was trained at."""
    teacher = ["--teacher", str(fit_start / "teacher.pth"), "--teacher-arch", "demo_cnn", "--teacher-kwargs"]
    teacher += ['{"width": 8}']
    arch = ["--student-arch", "demo_cnn", "--student-kwargs", '{"width": 4}']
    # a Lightning checkpoint: datamodule_hyper_parameters; no --image-size: its 16 px are used
    last = fit_start / RUN / "checkpoints" / "last.ckpt"
    assert main([*teacher, "--student", str(last), *arch, "--out", str(tmp_path / "ckpt")]) == 0
    captured = capsys.readouterr()
    assert "image size 16 px, read from the datamodule_hyper_parameters of" in captured.out
    assert "WARNING" not in captured.err
    summary = json.loads((tmp_path / "ckpt" / "summary.json").read_text())
    assert summary["image_size"] == 16 and summary["warnings"] == []
    assert summary["student"]["accuracy"] == pytest.approx(_last_val_acc1(fit_start / RUN), abs=1e-6)
    # the run's exported student.pt with an --image-size that contradicts the run folder's hparams.yaml
    student = ["--student", str(fit_start / RUN / "student.pt"), *arch]
    assert main([*teacher, *student, "--image-size", "8", "--limit-batches", "1", "--out", str(tmp_path / "pt")]) == 0
    err = capsys.readouterr().err
    assert f"the student {fit_start / RUN / 'student.pt'} was trained on 16-px images" in err
    assert str(fit_start / RUN / "hparams.yaml") in err and "Pass --image-size 16." in err
    assert json.loads((tmp_path / "pt" / "summary.json").read_text())["image_size"] == 8


def test_run_errors(fit_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    start = _copy(fit_start, tmp_path)
    run, out = start / RUN, ["--out", str(tmp_path / "out")]
    assert main(["--run", str(run), "--data", "digits", *out]) == 1
    assert "Expected no --data with a `lightning-kd fit` run" in capsys.readouterr().err
    assert main(["--run", str(run), "--teacher", "t.pth", *out]) == 2
    assert "not both" in capsys.readouterr().err
    config = run / "config.yaml"
    text = config.read_text()
    # a DataModule without an image size
    fashion = "data:\n  class_path: lightning_kd.data.FashionMNISTDataModule\n  init_args:\n    root: nowhere\n"
    config.write_text(text[: text.index("data:\n")] + fashion)
    assert main(["--run", str(run), "--image-size", "32", *out]) == 1
    assert "Expected --image-size only for a run whose DataModule takes `image_size`" in capsys.readouterr().err
    # a teacher's own training run: no teacher to compare with
    classifier = "model:\n  class_path: lightning_kd.ClassifierModule\n"
    classifier += "  init_args: {model: demo_mlp, num_classes: 10, in_chans: 1}\n"
    config.write_text(classifier + text[text.index("data:\n") :])
    assert main(["--run", str(run), *out]) == 1
    assert "to configure a lightning_kd.DistillationModule" in capsys.readouterr().err
    # the teacher file is gone
    config.write_text(text)
    (start / "teacher.pth").unlink()
    assert main(["--run", str(run), *out]) == 1
    assert "does not exist here" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # every error came before any file was written


# --------------------------------------------------------------------------------------------------------
# --run on a `lightning-kd demo` folder
# --------------------------------------------------------------------------------------------------------
def test_demo_run_image_size_contradicted_by_the_command_line_is_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A demo folder as ``lightning-kd demo`` lays it out (run.json, models/*.pt, logs/<method>/metrics.csv)."""
    demo = tmp_path / "demo"
    (demo / "models").mkdir(parents=True)
    torch.manual_seed(0)
    teacher, student = demo_cnn(num_classes=10, width=4), demo_cnn(num_classes=10, width=2)
    torch.save(_state_dict(teacher), demo / "models" / "teacher.pt")
    torch.save(_state_dict(student), demo / "models" / "kd.pt")
    manifest = {
        "data": {"name": "digits", "seed": 0, "image_size": 8, "batch_size": 64},
        "teacher": {"arch": "demo_cnn", "kwargs": {"width": 4}, "weights": "models/teacher.pt"},
        "students": {
            "kd": {"label": "KD", "arch": "demo_cnn", "kwargs": {"width": 2}, "weights": "models/kd.pt", "metrics": ""}
        },
    }
    (demo / "run.json").write_text(json.dumps(manifest))
    assert main(["--run", str(demo), "--out", str(tmp_path / "same")]) == 0
    assert "WARNING" not in capsys.readouterr().err
    same = json.loads((tmp_path / "same" / "kd" / "summary.json").read_text())
    assert same["image_size"] == 8 and same["student"]["accuracy"] == pytest.approx(_accuracy(student, 8))
    assert main(["--run", str(demo), "--image-size", "16", "--limit-batches", "1", "--out", str(tmp_path / "x")]) == 0
    err = capsys.readouterr().err
    assert "--image-size 16 contradicts the run" in err and str(demo / "run.json") in err
    assert json.loads((tmp_path / "x" / "kd" / "summary.json").read_text())["image_size"] == 16
