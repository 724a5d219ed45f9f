"""Tests of ``lightning-kd demo``: a reduced end-to-end run, its table, files and determinism."""

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

from lightning_kd import analyze as analyze_cli
from lightning_kd.data import DigitsDataModule
from lightning_kd.demo import METHODS, DemoConfig, main, run_demo
from lightning_kd.teacher import load_teacher

KEYS = ["teacher", "baseline", "kd", "kd_zscore", "ctkd_zscore", "max_logit"]
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
    for label in ["Teacher (CNN)", "Student alone", *(m.label for m in METHODS.values())]:
        assert label in printed
    for header in ("Best", "Last", "Std", "Agree"):
        assert header in printed
    assert str(demo_run["out"].resolve()) in printed.replace("\n", "")  # names its output folder at the end


def test_results_table_rows_and_columns(demo_run: dict[str, Any]) -> None:
    rows = demo_run["rows"]
    assert list(rows[0]) == COLUMNS
    assert [r["key"] for r in rows] == KEYS
    by_key = {r["key"]: r for r in rows}
    for row in rows:
        assert 0.0 <= float(row["last_acc"]) <= float(row["best_acc"]) + 1e-9 <= 100.0 + 1e-9
        assert float(row["logit_std"]) > 0.0
        assert 0.0 <= float(row["agreement"]) <= 100.0
    assert float(by_key["teacher"]["agreement"]) == 100.0
    assert by_key["teacher"]["temperature"] == by_key["baseline"]["temperature"] == ""
    assert float(by_key["kd"]["temperature"]) == 4.0 and by_key["kd"]["temperature_kind"] == "fixed"
    assert float(by_key["kd_zscore"]["temperature"]) == 2.0
    assert 1.0 <= float(by_key["ctkd_zscore"]["temperature"]) <= 21.0  # CTKD's range: 1 + 20 * sigmoid
    assert by_key["ctkd_zscore"]["temperature_kind"] == "learned"
    # max-logit T = (1 + sqrt 3)/2 * max |z|, and |z| <= sqrt(K - 1) = 3 for 10 classes
    assert 0.0 < float(by_key["max_logit"]["temperature"]) <= 1.3661 * 3.0 + 1e-3
    assert float(by_key["teacher"]["best_acc"]) > 50.0  # two epochs are enough for the CNN to learn digits
    markdown = (demo_run["out"] / "results.md").read_text().splitlines()
    assert markdown[0].startswith("| Method |") and len(markdown) == 2 + len(KEYS)


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
    for student in ("kd", "kd_zscore"):
        for name in ("mean_std_hist.png", "logit_bars.png", "logit_diff_heatmap.png", "temperature_hist.png"):
            assert (out / "analysis" / student / name).is_file()
    manifest = json.loads((out / "run.json").read_text())
    assert list(manifest["students"]) == KEYS[1:]
    assert manifest["config"]["epochs"] == 2
    for key in KEYS[1:]:
        assert (out / manifest["students"][key]["metrics"]).is_file()


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
    images, labels = dm.test_set.tensors
    with torch.no_grad():
        accuracy = 100 * float((student(images).argmax(1) == labels).float().mean())
    row = next(r for r in demo_run["rows"] if r["key"] == "kd")
    assert accuracy == pytest.approx(float(row["last_acc"]), abs=0.006)


def test_analyze_reads_the_demo_folder(demo_run: dict[str, Any], tmp_path: Path) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = analyze_cli.main(["--run", str(demo_run["out"]), "--method", "ctkd_zscore", "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    row = next(r for r in demo_run["rows"] if r["key"] == "ctkd_zscore")
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


def _quiet_run(config: DemoConfig, out: Path) -> list[tuple[Any, ...]]:
    results = run_demo(config, out, figures=False, console=Console(file=io.StringIO()))
    return [r.numbers() for r in results]


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    config = DemoConfig(epochs=1, methods=("kd", "ctkd_zscore", "max_logit"))
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    first = _quiet_run(config, tmp_path / "a")
    second = _quiet_run(config, tmp_path / "b")
    assert first == second
    assert [n[0] for n in first] == ["teacher", "baseline", "kd", "ctkd_zscore", "max_logit"]
    other = _quiet_run(DemoConfig(epochs=1, seed=1, methods=("kd", "ctkd_zscore", "max_logit")), tmp_path / "c")
    assert other != first  # the seed matters, so the equality above is not vacuous
    # the demo puts the process's torch settings back as they were
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_config_and_cli_validation(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="epochs"):
        DemoConfig(epochs=0)
    with pytest.raises(ValueError, match="student_fraction"):
        DemoConfig(student_fraction=0.0)
    with pytest.raises(ValueError, match="methods"):
        DemoConfig(methods=("dkd",))
    assert main(["--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "--seed" in capsys.readouterr().out


def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_kd.demo", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lightning-kd demo" in result.stdout
