"""The benchmarks' CPU presets run and report what they promise (a smoke test; the figures are not asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_throughput_tiny(tmp_path: Path) -> None:
    throughput = _load("throughput")
    args = [
        "--tiny",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--workers",
        "0",
        "--overhead-steps",
        "40",
        "--train-images",
        "64",
    ]
    result = throughput.main([*args, "--overhead-repeats", "1", "--json", str(tmp_path / "t.json")])
    saved = json.loads((tmp_path / "t.json").read_text())
    assert set(saved["rows"]) == {
        "reference (batch 64)",
        "lightning-kd (batch 64)",
        "lightning-kd + cache (batch 64)",
        "student-only (batch 64)",
    }
    assert saved["cache"]["views"] == 64 * 162
    assert all(row["images_per_s"] > 0 and row["peak_memory_mb"] > 0 for row in saved["rows"].values())
    assert set(saved["ratios"]) == {
        "batch 64: lightning-kd / reference",
        "batch 64: lightning-kd / student-only",
        "batch 64: lightning-kd + cache / student-only",
    }
    ops = saved["overhead"]["ops_per_step"]
    assert ops["distillation_module"]["host_reads"] == 0 and ops["minimal_module"]["operations"] > 0
    assert saved["overhead"]["ratio"] > 0 and result["environment"]["device"].startswith("CPU")


@pytest.mark.slow
def test_ablation_tiny(tmp_path: Path) -> None:
    ablation = _load("ablation")
    ablation.main(["--tiny", "--steps", "3", "--warmup", "1", "--repeats", "1", "--json", str(tmp_path / "a.json")])
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["setting"]["arms"] == ["kd", "kd_z", "dkd", "ctkd_z"]
    assert saved["ablation"]["images_per_s"] > 0 and saved["single_runs"]["images_per_s"] > 0
    assert saved["speedup_wall"] > 0
