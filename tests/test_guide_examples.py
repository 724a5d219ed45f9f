"""The worked examples of the user guide run as written (in a temporary folder)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


def test_paired_ablations_example_runs_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (block,) = _python_blocks(DOCS / "user-guide" / "ablations.md")
    exec(compile(block, "docs/user-guide/ablations.md", "exec"), {"__name__": "__docs__"})
    runs = sorted(p.name for p in (tmp_path / "ablation-runs" / "digits").iterdir())
    assert runs == ["seed_0", "seed_1", "seed_2"]
    report = json.loads((tmp_path / "ablation-report" / "report.json").read_text())
    arms = {a["arm"]: a for a in report["arms"]}
    assert set(arms) == {"baseline", "kd", "kd_z"} and all(a["n"] == 3 for a in arms.values())
    assert set(arms["kd"]["best_diff"]) == {"baseline"}
    assert (tmp_path / "ablation-report" / "report.png").stat().st_size > 0
