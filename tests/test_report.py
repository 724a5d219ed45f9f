"""``lightning-kd report``: the arithmetic on hand-made runs, the files it writes, its errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from lightning_kd.report import main, paired_difference, read_run, summarize

#: Student's t quantile t_{0.975} for 2 and 3 degrees of freedom (from a t table).
T975 = {2: 4.302653, 3: 3.182446}


def _run(folder: Path, epochs: dict[str, list[float]]) -> Path:
    """A metrics.csv as an AblationModule run writes it: one row per validation epoch, values in [0, 1]."""
    folder.mkdir(parents=True)
    columns = ["epoch", "step", *(f"{arm}/val/acc1" for arm in epochs), "kd/train/loss_epoch"]
    with (folder / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        length = max(len(v) for v in epochs.values())
        for e in range(length):
            writer.writerow([e, 10 * e, *(v[e] if e < len(v) else "" for v in epochs.values()), ""])
            writer.writerow([e, 10 * e + 5, *("" for _ in epochs), 0.5])  # a training row without validation
    return folder


@pytest.fixture
def three_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    # best / last per run (in %): kd 75/74, 76/76, 77/75; kd_z 76/76, 76.5/75, 79/78; base 70/70, 71/69, 72/72
    _run(root / "version_0", {"kd": [0.74, 0.75, 0.74], "kd_z": [0.70, 0.76, 0.76], "base": [0.70, 0.69, 0.70]})
    _run(root / "version_1", {"kd": [0.76, 0.76, 0.76], "kd_z": [0.765, 0.75, 0.75], "base": [0.71, 0.70, 0.69]})
    _run(root / "version_2", {"kd": [0.77, 0.76, 0.75], "kd_z": [0.79, 0.78, 0.78], "base": [0.72, 0.72, 0.72]})
    return root


def test_read_run_takes_the_best_and_the_last_epoch(three_runs: Path) -> None:
    run = read_run(three_runs / "version_0")
    assert run.best == pytest.approx({"kd": 75.0, "kd_z": 76.0, "base": 70.0})
    assert run.last == pytest.approx({"kd": 74.0, "kd_z": 76.0, "base": 70.0})


def test_means_stds_and_paired_differences_by_hand(three_runs: Path) -> None:
    runs = [read_run(three_runs / f"version_{i}") for i in range(3)]
    by_arm = {s.arm: s for s in summarize(runs, ["kd", "base"])}
    kd_z = by_arm["kd_z"]
    assert kd_z.n == 3
    assert kd_z.best_mean == pytest.approx((76 + 76.5 + 79) / 3)
    assert kd_z.best_std == pytest.approx(
        math.sqrt(((76 - 77.1667) ** 2 + (76.5 - 77.1667) ** 2 + (79 - 77.1667) ** 2) / 2), rel=1e-4
    )
    # paired best differences kd_z - kd: 1, 0.5, 2 -> mean 7/6, sd sqrt(((1-7/6)^2+(0.5-7/6)^2+(2-7/6)^2)/2)
    diffs = [1.0, 0.5, 2.0]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    d = kd_z.best_diff["kd"]
    assert (d.mean, d.se, d.n) == (pytest.approx(mean), pytest.approx(sd / math.sqrt(3)), 3)
    assert d.low == pytest.approx(mean - T975[2] * sd / math.sqrt(3), rel=1e-5)
    assert d.high == pytest.approx(mean + T975[2] * sd / math.sqrt(3), rel=1e-5)
    assert d.inside_noise  # [-0.73, 3.06]: three seeds cannot tell this gain from noise
    # against the baseline: kd_z - base best = 6, 5.5, 7: clearly outside the noise
    vs_base = kd_z.best_diff["base"]
    assert vs_base.mean == pytest.approx(6.1666667) and not vs_base.inside_noise
    assert "kd" not in by_arm["kd"].best_diff  # no difference of an arm to itself


def test_one_run_gives_no_interval() -> None:
    d = paired_difference([1.0], [0.5])
    assert d.mean == 0.5 and math.isnan(d.se) and d.inside_noise


def test_command_writes_markdown_csv_json_and_plot(
    three_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    assert main([str(three_runs), "--reference", "kd", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.json", "report.md", "report.png"]
    printed = capsys.readouterr().out
    assert "| kd_z | 3 | 77.17 ± 1.61 | 76.33 ± 1.53 | +1.17 ± 0.44 [-0.73, +3.06] (noise) |" in printed
    payload = json.loads((out / "report.json").read_text())
    assert payload["references"] == ["kd"] and len(payload["runs"]) == 3
    arms = {a["arm"]: a for a in payload["arms"]}
    assert (
        arms["base"]["best_diff"]["kd"]["mean"] == pytest.approx(-5.0)
        and not arms["base"]["best_diff"]["kd"]["inside_noise"]
    )
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [r["arm"] for r in rows] == ["kd", "kd_z", "base"]
    assert float(rows[1]["best_diff_vs_kd"]) == pytest.approx(7 / 6)


def test_an_arm_stopped_before_validating_is_left_out_of_that_run(tmp_path: Path) -> None:
    _run(tmp_path / "a", {"kd": [0.5, 0.6], "bad": []})
    _run(tmp_path / "b", {"kd": [0.55, 0.6], "bad": [0.4, 0.45]})
    runs = [read_run(tmp_path / "a"), read_run(tmp_path / "b")]
    bad = {s.arm: s for s in summarize(runs)}["bad"]
    assert bad.n == 1 and bad.best_diff["kd"].n == 1


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "to be a run folder or to hold run folders" in capsys.readouterr().err
    _run(tmp_path / "r", {"kd": [0.5]})
    assert main([str(tmp_path / "r"), "--reference", "dkd", "--out", str(tmp_path / "o")]) == 2
    assert "Expected reference arms among ['kd'], but got ['dkd']" in capsys.readouterr().err
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "metrics.csv").write_text("epoch,step,val/acc1\n0,1,0.5\n")
    with pytest.raises(ValueError, match=r"Expected `<arm>/val/acc1` columns"):
        read_run(plain)
