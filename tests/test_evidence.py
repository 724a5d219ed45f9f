"""The evidence script on real Fashion-MNIST at its smallest size: one seed, a few hundred steps, its report."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_evidence_smoke_on_real_fashion_mnist(
    real_fashion_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("benchmarks_evidence", BENCHMARKS / "evidence.py")
    assert spec is not None and spec.loader is not None
    evidence = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = evidence
    spec.loader.exec_module(evidence)
    monkeypatch.chdir(tmp_path)
    result = evidence.main(["--scale", "smoke", "--experiments", "all_methods", "--out", str(tmp_path / "ev")])
    report = json.loads((tmp_path / "ev" / "all_methods" / "report" / "report.json").read_text())
    arms = {a["arm"]: a for a in report["arms"]}
    assert set(arms) == {"baseline", *evidence.METHODS}
    assert report["references"] == ["kd", "baseline"]
    assert all(a["n"] == 1 and 0 <= a["best_mean"] <= 100 for a in arms.values())
    assert set(arms["kd_z"]["best_diff"]) == {"kd", "baseline"}
    saved = json.loads((tmp_path / "ev" / "evidence.json").read_text())
    assert saved["scale"] == "smoke" and saved["environment"]["device"] == result["environment"]["device"]
    assert (tmp_path / "ev" / "all_methods" / "report" / "report.md").read_text().startswith("| Arm | Runs |")
    for arm in ("kd", "kd_z"):  # analyze: the teacher against the first seed's KD and KD+Z students
        summary = json.loads((tmp_path / "ev" / "analysis" / arm / "summary.json").read_text())
        assert summary["num_samples"] > 0 and 0 <= summary["student"]["accuracy"] <= 1
        assert (tmp_path / "ev" / "analysis" / arm / "mean_std_hist.png").stat().st_size > 0
    assert result["analysis"] == {arm: str(tmp_path / "ev" / "analysis" / arm) for arm in ("kd", "kd_z")}
