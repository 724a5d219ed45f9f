r"""``lightning-kd report``: the arms of ablation runs over seeds, with paired differences and their noise.

Each run (a folder with the ``metrics.csv`` of an :class:`~lightning_kd.AblationModule` fit, e.g. one seed of
an ablation recipe) gives, per arm, the **best** validation top-1 over its epochs and the **last** one. Over the
runs (seeds) the report gives, per arm, the mean and the sample standard deviation of both, and for every arm the
**paired difference** to each reference arm: per run :math:`d_s = a_s - r_s` (the arms of one run saw the same
batches from the same initial weights), then the mean :math:`\bar d`, its standard error
:math:`\mathrm{SE} = s_d / \sqrt{n}` and the 95 % interval :math:`\bar d \pm t_{0.975,\,n-1}\,\mathrm{SE}`
(Student's t). A difference whose interval contains 0 is inside the noise of these seeds.

It prints a Markdown table and writes ``report.md``, ``report.csv``, ``report.json`` and ``report.png`` (the
per-seed accuracies of every arm, one line per seed joining its arms).

Example:
    >>> import math
    >>> d = paired_difference([76.1, 75.3, 76.0], [75.0, 75.1, 75.2])
    >>> round(d.mean, 3), round(d.se, 3), d.n
    (0.7, 0.265, 3)
    >>> d.low < 0 < d.high  # with 3 seeds this gain is inside the noise
    True
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["ArmSummary", "Difference", "RunResult", "main", "paired_difference", "read_run", "summarize"]


@dataclass(frozen=True)
class Difference:
    """A paired difference over runs: mean, standard error, 95 % interval (t-distribution), count."""

    mean: float
    se: float
    low: float
    high: float
    n: int

    @property
    def inside_noise(self) -> bool:
        """Whether the 95 % interval contains 0 (or cannot be formed: fewer than two runs)."""
        return not (self.low > 0 or self.high < 0)


def _t_quantile(dof: int, level: float = 0.975) -> float:
    from scipy.stats import t  # scipy comes with scikit-learn, a dependency

    return float(t.ppf(level, dof))


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> Difference:
    """The paired difference ``values - reference`` over runs (see the module docstring).

    With one run the mean is the difference and the standard error and interval are NaN.
    """
    if len(values) != len(reference) or not values:
        raise ValueError(
            f"Expected paired values of the same non-zero length, but got {len(values)} and {len(reference)}."
        )
    diffs = [a - b for a, b in zip(values, reference, strict=True)]
    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2:
        return Difference(mean, math.nan, math.nan, math.nan, n)
    se = statistics.stdev(diffs) / math.sqrt(n)
    half = _t_quantile(n - 1) * se
    return Difference(mean, se, mean - half, mean + half, n)


@dataclass(frozen=True)
class RunResult:
    """One run's result per arm: ``best`` and ``last`` validation top-1 in %, and the run's folder."""

    path: str
    best: dict[str, float]
    last: dict[str, float]


def _arms_of(columns: Sequence[str]) -> list[str]:
    return [c.removesuffix("/val/acc1") for c in columns if c.endswith("/val/acc1") and c.count("/") == 2]


def read_run(path: str | Path) -> RunResult:
    """Read a run's ``metrics.csv``: per arm the best and the last ``<arm>/val/acc1`` over its epochs (in %).

    Raises:
        FileNotFoundError: If the folder has no ``metrics.csv``.
        ValueError: If it logged no ``<arm>/val/acc1`` (not an ablation run, or no validation epoch).
    """
    folder = Path(path)
    metrics = folder / "metrics.csv"
    if not metrics.is_file():
        raise FileNotFoundError(f"Expected a run folder with a metrics.csv, but {metrics} does not exist.")
    with metrics.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        arms = _arms_of(reader.fieldnames or [])
    if not arms:
        raise ValueError(
            f"Expected `<arm>/val/acc1` columns in {metrics} (a run of an AblationModule with validation), but"
            " found none."
        )
    order = _arm_order(folder)
    arms = sorted(arms, key=lambda a: order.index(a) if a in order else len(order))
    best, last = {}, {}
    for arm in arms:
        values = [100 * float(r[f"{arm}/val/acc1"]) for r in rows if r.get(f"{arm}/val/acc1")]
        if values:  # an arm stopped before its first validation has none
            best[arm], last[arm] = max(values), values[-1]
    return RunResult(str(folder), best, last)


def _arm_order(folder: Path) -> list[str]:
    """The arms in the order the run declared them (``arm_names`` in its ``hparams.yaml``), if recorded."""
    hparams = folder / "hparams.yaml"
    if not hparams.is_file():
        return []
    import yaml

    names = (yaml.safe_load(hparams.read_text(encoding="utf-8")) or {}).get("arm_names")
    return [str(n) for n in names] if isinstance(names, list) else []


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders: each path, or the folders with a metrics.csv below it (e.g. ``version_*``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "metrics.csv").is_file():
            found.append(path)
            continue
        below = sorted(p.parent for p in path.rglob("metrics.csv"))
        if not below:
            raise FileNotFoundError(f"Expected {path} to be a run folder or to hold run folders (metrics.csv).")
        found.extend(below)
    return found


@dataclass
class ArmSummary:
    """One arm over the runs: counts, means and standard deviations, paired differences by reference arm."""

    arm: str
    n: int
    best_mean: float
    best_std: float
    last_mean: float
    last_std: float
    best_diff: dict[str, Difference] = field(default_factory=dict)
    last_diff: dict[str, Difference] = field(default_factory=dict)


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def summarize(runs: Sequence[RunResult], references: Sequence[str] = ()) -> list[ArmSummary]:
    """Per arm: mean and std of best and last top-1, and paired differences to each reference arm (default:
    the first arm), over the runs where both arms have a result.

    Raises:
        ValueError: For no runs, or a reference arm that no run has.
    """
    if not runs:
        raise ValueError("Expected at least one run, but got none.")
    arms: list[str] = []
    for run in runs:
        arms += [a for a in run.best if a not in arms]
    references = list(references) or arms[:1]
    unknown = [r for r in references if r not in arms]
    if unknown:
        raise ValueError(f"Expected reference arms among {arms}, but got {unknown}.")
    summaries = []
    for arm in arms:
        mine = [r for r in runs if arm in r.best]
        best, last = [r.best[arm] for r in mine], [r.last[arm] for r in mine]
        summary = ArmSummary(arm, len(mine), statistics.fmean(best), _std(best), statistics.fmean(last), _std(last))
        for ref in references:
            paired = [r for r in mine if ref in r.best]
            if arm != ref and paired:
                summary.best_diff[ref] = paired_difference([r.best[arm] for r in paired], [r.best[ref] for r in paired])
                summary.last_diff[ref] = paired_difference([r.last[arm] for r in paired], [r.last[ref] for r in paired])
        summaries.append(summary)
    return summaries


def _pm(mean: float, std: float) -> str:
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _diff(d: Difference | None) -> str:
    if d is None:
        return "—"
    if math.isnan(d.se):
        return f"{d.mean:+.2f} (1 run)"
    mark = " (noise)" if d.inside_noise else ""
    return f"{d.mean:+.2f} ± {d.se:.2f} [{d.low:+.2f}, {d.high:+.2f}]{mark}"


def markdown(summaries: Sequence[ArmSummary], references: Sequence[str]) -> str:
    """The report's table: per arm, mean ± std of best and last, and Δ ± SE [95 % interval] per reference."""
    header = ["Arm", "Runs", "Best top-1 (%)", "Last top-1 (%)"]
    for ref in references:
        header += [f"Δ best vs {ref}", f"Δ last vs {ref}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        cells = [s.arm, str(s.n), _pm(s.best_mean, s.best_std), _pm(s.last_mean, s.last_std)]
        for ref in references:
            cells += [_diff(s.best_diff.get(ref)), _diff(s.last_diff.get(ref))]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "\nΔ: paired difference to the reference arm over the runs, ± its standard error, [95 % t-interval];"
        " (noise): the interval contains 0."
    )
    return "\n".join(lines) + "\n" + note + "\n"


def _write(out: Path, runs: Sequence[RunResult], summaries: Sequence[ArmSummary], references: Sequence[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(summaries, references), encoding="utf-8")
    with (out / "report.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["arm", "runs", "best_mean", "best_std", "last_mean", "last_std"]
            + [f"{k}_{m}_vs_{r}" for r in references for k in ("best", "last") for m in ("diff", "se", "low", "high")]
        )
        for s in summaries:
            row: list[object] = [s.arm, s.n, s.best_mean, s.best_std, s.last_mean, s.last_std]
            for ref in references:
                for diffs in (s.best_diff, s.last_diff):
                    d = diffs.get(ref)
                    row += [d.mean, d.se, d.low, d.high] if d is not None else ["", "", "", ""]
            writer.writerow(row)
    payload = {
        "references": list(references),
        "runs": [asdict(r) for r in runs],
        "arms": [
            {
                **{k: v for k, v in asdict(s).items() if not k.endswith("_diff")},
                "best_diff": {r: {**asdict(d), "inside_noise": d.inside_noise} for r, d in s.best_diff.items()},
                "last_diff": {r: {**asdict(d), "inside_noise": d.inside_noise} for r, d in s.last_diff.items()},
            }
            for s in summaries
        ],
    }
    (out / "report.json").write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    _plot(runs, [s.arm for s in summaries], out / "report.png")


def _plot(runs: Sequence[RunResult], arms: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 1.1 * len(arms) + 3), 4), sharey=True)
    for ax, kind in zip(axes, ("best", "last"), strict=True):
        for run in runs:
            values: Mapping[str, float] = getattr(run, kind)
            xs = [i for i, a in enumerate(arms) if a in values]
            ax.plot(xs, [values[arms[i]] for i in xs], marker="o", alpha=0.6, linewidth=1)
        ax.set_xticks(range(len(arms)), arms, rotation=45, ha="right")
        ax.set_title(f"{kind} top-1 per seed (lines join one run's arms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-kd report``."""
    parser = argparse.ArgumentParser(
        prog="lightning-kd report",
        description="Summarise ablation runs over seeds: per arm mean ± std of best and last top-1, and paired"
        " differences to reference arms with standard errors and 95% intervals.",
    )
    parser.add_argument("runs", nargs="+", help="run folders (with metrics.csv), or folders holding them")
    parser.add_argument(
        "--reference",
        action="append",
        default=[],
        help="reference arm for paired differences (repeatable; default: the first arm)",
    )
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default: ./report)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-kd report``; returns the exit status (2 for usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        runs = [read_run(p) for p in _expand(args.runs)]
        summaries = summarize(runs, args.reference)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    references = args.reference or [summaries[0].arm]
    _write(args.out, runs, summaries, references)
    print(markdown(summaries, references))
    print(f"{len(runs)} run{'s' if len(runs) != 1 else ''}; report written to {args.out.resolve()}")
    return 0
