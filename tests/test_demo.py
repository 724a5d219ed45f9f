"""Tests of ``lightning-kd demo``: a reduced end-to-end run, its table, files, methods and determinism."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console
from torch.utils.data import TensorDataset

from lightning_kd import analyze as analyze_cli
from lightning_kd import cli
from lightning_kd.data import DigitsDataModule
from lightning_kd.demo import METHODS, DemoConfig, MethodResult, main, run_demo
from lightning_kd.teacher import load_teacher
from lightning_kd.temperature import CurriculumTemperature, FixedTemperature, MaxLogitTemperature

KEYS = ["teacher", "baseline", "kd", "kd_z", "ctkd_z", "maxlogit_z"]
LABELS = ["Teacher (CNN)", "Student alone", "KD", "KD+Z", "CTKD+Z", "Max-logit+Z"]
COLUMNS = [
    "method",
    "key",
    "best_acc",
    "last_acc",
    "temperature",
    "temperature_kind",
    "logit_std",
    "agreement",
    "seconds",
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``lightning-kd demo --epochs 2`` once for the module: the exit code, what it printed, its folder."""
    out = tmp_path_factory.mktemp("demo") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["--epochs", "2", "--out", str(out)])
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return {"code": code, "printed": printed.getvalue(), "out": out, "rows": rows}


def test_demo_runs_and_prints_the_table(demo_run: dict[str, Any]) -> None:
    assert demo_run["code"] == 0
    printed = demo_run["printed"]
    for label in LABELS:
        assert label in printed
    for header in ("Best", "Last", "Std", "Agree"):
        assert header in printed
    assert str(demo_run["out"].resolve()) in printed.replace("\n", "")  # names its output folder at the end


def test_results_table_rows_and_columns(demo_run: dict[str, Any]) -> None:
    rows = demo_run["rows"]
    assert list(rows[0]) == COLUMNS
    assert [r["key"] for r in rows] == KEYS
    assert [r["method"] for r in rows] == LABELS  # the presets' display names
    by_key = {r["key"]: r for r in rows}
    for row in rows:
        assert 0.0 <= float(row["last_acc"]) <= float(row["best_acc"]) + 1e-9 <= 100.0 + 1e-9
        assert float(row["logit_std"]) > 0.0
        assert 0.0 <= float(row["agreement"]) <= 100.0
    assert float(by_key["teacher"]["agreement"]) == 100.0
    assert by_key["teacher"]["temperature"] == by_key["baseline"]["temperature"] == ""
    assert float(by_key["kd"]["temperature"]) == 4.0 and by_key["kd"]["temperature_kind"] == "fixed"
    assert float(by_key["kd_z"]["temperature"]) == 2.0
    assert 1.0 <= float(by_key["ctkd_z"]["temperature"]) <= 21.0  # CTKD's range: 1 + 20 * sigmoid
    assert float(by_key["ctkd_z"]["temperature"]) != pytest.approx(15.62, abs=1e-3)  # it learned: theta moved
    assert by_key["ctkd_z"]["temperature_kind"] == "learned"
    # max-logit T = (1 + sqrt 3)/2 * max |z|, and |z| <= (K - 1)/sqrt(K) < 3 for 10 classes (sample std)
    assert 0.0 < float(by_key["maxlogit_z"]["temperature"]) <= 1.3661 * 3.0 + 1e-3
    assert by_key["maxlogit_z"]["temperature_kind"] == "per-sample mean"
    assert float(by_key["teacher"]["best_acc"]) > 50.0  # two epochs are enough for the CNN to learn digits
    markdown = (demo_run["out"] / "results.md").read_text().splitlines()
    assert markdown[0].startswith("| Method |") and len(markdown) == 2 + len(KEYS)
    assert "| KD+Z | " in markdown[5] and "| 2 |" in markdown[5]


def test_getting_started_shows_the_demo_table(demo_run: dict[str, Any]) -> None:
    """The documented output has the demo's header and rows (its numbers are a measurement, not checked)."""
    page = Path(__file__).resolve().parents[1] / "docs" / "getting-started.md"
    documented = page.read_text(encoding="utf-8").splitlines()
    written = (demo_run["out"] / "results.md").read_text().splitlines()
    start = documented.index(written[0])
    rows = documented[start + 2 : start + 2 + len(KEYS)]
    assert documented[start + 1] == written[1]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == LABELS


def test_demo_writes_figures_models_and_manifest(demo_run: dict[str, Any]) -> None:
    out = demo_run["out"]
    for name in [
        "accuracy.png",
        "logit_std.png",
        "figure5_mean_std.png",
        "figure3_logits.png",
        "ctkd_temperature.png",
    ]:
        assert (out / name).stat().st_size > 10_000, name
    for student in ("kd", "kd_z"):
        for name in ("mean_std_hist.png", "logit_bars.png", "logit_diff_heatmap.png", "temperature_hist.png"):
            assert (out / "analysis" / student / name).is_file()
    manifest = json.loads((out / "run.json").read_text())
    assert list(manifest["students"]) == KEYS[1:]
    assert [s["label"] for s in manifest["students"].values()] == LABELS[1:]
    assert manifest["config"]["epochs"] == 2 and manifest["config"]["methods"] == KEYS[2:]
    for key in KEYS[1:]:
        assert (out / manifest["students"][key]["metrics"]).is_file()
        assert (out / manifest["students"][key]["weights"]) == out / "models" / f"{key}.pt"
    assert not list(out.glob(".*.tmp"))  # the atomic writes left no temporary file behind


def test_saved_student_reproduces_the_table(demo_run: dict[str, Any]) -> None:
    """The exported weights load by architecture name and give the table's last accuracy."""
    out = demo_run["out"]
    manifest = json.loads((out / "run.json").read_text())
    spec = manifest["students"]["kd"]
    student = load_teacher(
        out / spec["weights"], arch=spec["arch"], num_classes=10, in_chans=1, arch_kwargs=spec["kwargs"]
    )
    dm = DigitsDataModule(seed=manifest["data"]["seed"])
    dm.setup("test")
    assert isinstance(dm.test_set, TensorDataset)
    images, labels = dm.test_set.tensors
    with torch.no_grad():
        accuracy = 100 * float((student(images).argmax(1) == labels).float().mean())
    row = next(r for r in demo_run["rows"] if r["key"] == "kd")
    assert accuracy == pytest.approx(float(row["last_acc"]), abs=0.006)


def test_analyze_reads_the_demo_folder(demo_run: dict[str, Any], tmp_path: Path) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = analyze_cli.main(["--run", str(demo_run["out"]), "--method", "ctkd_z", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    row = next(r for r in demo_run["rows"] if r["key"] == "ctkd_z")
    assert 100 * summary["student"]["accuracy"] == pytest.approx(float(row["last_acc"]), abs=0.006)
    assert 100 * summary["agreement"] == pytest.approx(float(row["agreement"]), abs=0.006)
    assert summary["trajectory"]["points"] == 2  # the run's metrics.csv, found through run.json
    assert (tmp_path / "temperature_trajectory.png").is_file()

    # several students: one sub-folder each; the baseline's metrics have no temperature, so no trajectory
    with contextlib.redirect_stdout(printed):
        code = analyze_cli.main(
            ["--run", str(demo_run["out"]), "--method", "baseline", "--method", "kd", "--out", str(tmp_path / "two")]
        )
    assert code == 0
    baseline = json.loads((tmp_path / "two" / "baseline" / "summary.json").read_text())
    assert baseline["trajectory"] is None
    assert json.loads((tmp_path / "two" / "kd" / "summary.json").read_text())["trajectory"]["points"] == 2


def test_demo_losses_are_the_literature_presets() -> None:
    """Each student's loss has the CIFAR-100 settings of its method; only CTKD's curriculum is shortened."""
    config = DemoConfig(epochs=30)
    losses = {key: method.loss(config) for key, method in METHODS.items()}
    expected = {  # (pre-process, temperature policy, fixed T, CE weight, KD weight), written out by hand
        "kd": ("none", FixedTemperature, 4.0, 0.1, 0.9),
        "kd_z": ("zscore", FixedTemperature, 2.0, 0.1, 9.0),
        "ctkd_z": ("zscore", CurriculumTemperature, None, 0.1, 9.0),
        "maxlogit_z": ("zscore", MaxLogitTemperature, None, 0.1, 9.0),
    }
    assert list(losses) == list(expected)
    for key, (preprocess, policy, value, ce, kd) in expected.items():
        loss = losses[key]
        assert type(loss.divergence).__name__ == "KD"
        assert loss.preprocess_name == preprocess
        assert type(loss.temperature) is policy
        if value is not None:
            assert loss.temperature.value == value  # type: ignore[union-attr]
        assert (loss.weights.ce_weight, loss.weights.kd_weight, loss.weights.kd_warmup_epochs) == (ce, kd, 0)
    ctkd = losses["ctkd_z"].temperature
    assert isinstance(ctkd, CurriculumTemperature)
    assert ctkd.decay_epochs == 8  # a quarter of 30 epochs, rounded; the paper's 10 of 240 would be over at once
    assert (ctkd.t_start, ctkd.t_range, ctkd.lambda_max, ctkd.lambda_min) == (1.0, 20.0, 0.0, -1.0)
    assert ctkd.value.item() == pytest.approx(1 + 20 * torch.sigmoid(torch.tensor(1.0)).item())
    short = METHODS["ctkd_z"].loss(DemoConfig(epochs=2)).temperature
    assert isinstance(short, CurriculumTemperature) and short.decay_epochs == 1
    assert METHODS["ctkd_z"].preset.temperature_kwargs["decay_epochs"] == 10  # the shared preset is not changed


def _quiet_run(config: DemoConfig, out: Path) -> list[MethodResult]:
    return run_demo(config, out, figures=False, console=Console(file=io.StringIO()))


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    config = DemoConfig(epochs=1, methods=("kd", "ctkd_zscore", "max_logit"))  # older spellings of two presets
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    first = [r.numbers() for r in _quiet_run(config, tmp_path / "a")]
    second = [r.numbers() for r in _quiet_run(config, tmp_path / "b")]
    assert first == second
    assert [n[0] for n in first] == ["teacher", "baseline", "kd", "ctkd_z", "maxlogit_z"]
    assert sorted(p.name for p in (tmp_path / "a" / "models").iterdir()) == sorted(f"{n[0]}.pt" for n in first)
    other = _quiet_run(DemoConfig(epochs=1, seed=1, methods=()), tmp_path / "c")
    assert [r.numbers() for r in other] != first[:2]  # the seed matters, so the equality above is not vacuous
    # the demo puts the process's torch settings back as they were
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_config_validation() -> None:
    older = DemoConfig(methods=("kd_zscore", "ctkd_zscore", "max_logit"))
    assert older.methods == ("kd_z", "ctkd_z", "maxlogit_z")  # stored under the presets' names
    with pytest.raises(ValueError, match="Expected argument `epochs` to be a positive integer, but got 0"):
        DemoConfig(epochs=0)
    with pytest.raises(ValueError, match="Expected argument `seed`"):
        DemoConfig(seed=-1)
    with pytest.raises(ValueError, match="Expected argument `lr`"):
        DemoConfig(lr=0.0)
    with pytest.raises(ValueError, match=r"`student_fraction` to be in \(0, 1\], but got 0.0"):
        DemoConfig(student_fraction=0.0)
    with pytest.raises(ValueError, match="`methods` to be one of 'ctkd_z', 'kd', 'kd_z', 'maxlogit_z', but got 'dkd'"):
        DemoConfig(methods=("dkd",))  # a preset, but not one of the demo's
    with pytest.raises(ValueError, match="Did you mean 'kd_z'"):
        DemoConfig(methods=("kdz",))
    with pytest.raises(ValueError, match="each method once"):
        DemoConfig(methods=("kd_z", "kd_zscore"))
    with pytest.raises(TypeError, match="sequence of method names"):
        DemoConfig(methods="kd")  # type: ignore[arg-type]


def test_cli_validation_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--epochs", "0"]) == 2
    assert "Expected argument `epochs` to be a positive integer, but got 0." in capsys.readouterr().err
    assert main(["--methods", "kd", "dkd_z"]) == 2
    assert "but got 'dkd_z'" in capsys.readouterr().err
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert "--seed" in printed and all(key in printed for key in (*METHODS, "kd_zscore"))
    assert cli.main(["demo", "--help"]) == 0  # `lightning-kd demo` hands over to lightning_kd.demo.main
    assert "usage: lightning-kd demo" in capsys.readouterr().out


def test_python_dash_m_entry_point_loads_no_lightning_for_help() -> None:
    """``python -m lightning_kd.demo --help`` works, and imports neither Lightning nor matplotlib to do so."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['lightning_kd.demo', '--help']\n"
        "try:\n"
        "    runpy.run_module('lightning_kd.demo', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit_:\n"
        "    assert exit_.code == 0, exit_.code\n"
        "print('loaded:', sorted(m for m in ('lightning', 'matplotlib', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: lightning-kd demo" in result.stdout
    assert "loaded: []" in result.stdout
