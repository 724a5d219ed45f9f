"""Matplotlib figures of :mod:`lightning_kd.analyze` and :mod:`lightning_kd.demo`.

Private module. Every function takes plain NumPy arrays, draws one figure with the object-oriented API
(:class:`matplotlib.figure.Figure`, rendered by the Agg canvas: no ``pyplot``, no global backend state, no
display needed) and writes it as a PNG. The numbers are computed by the callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "MODEL_COLORS",
    "plot_accuracy",
    "plot_figure3",
    "plot_logit_bars",
    "plot_logit_difference",
    "plot_logit_std",
    "plot_mean_std",
    "plot_temperature_hist",
    "plot_temperature_trajectory",
]

#: Line/bar colours and 2-D histogram colour maps, in the order models are given (teacher first).
MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728", "#8c564b")
_CMAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
_DPI = 110


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def _class_ticks(num_classes: int) -> np.ndarray:
    step = 1 if num_classes <= 20 else 5 if num_classes <= 50 else 10
    return np.arange(0, num_classes, step)


def plot_mean_std(
    stats: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    *,
    title: str = "Per-sample logit mean vs. standard deviation",
    bins: int | None = None,
) -> Path:
    """The bivariate histogram of per-sample logit mean and standard deviation, models overlaid (Fig. 5).

    Each model is a 2-D histogram in its own colour map (empty bins transparent) on shared bins, with the
    marginal histograms of both quantities on the top and right edges.

    Args:
        stats: ``name -> (per-sample means, per-sample standard deviations)``, teacher first.
        path: The PNG to write.
        title: The figure title.
        bins: Bins per axis (default: from the sample count, 10 to 40).

    Returns:
        ``path``.
    """
    means = np.concatenate([m for m, _ in stats.values()])
    stds = np.concatenate([s for _, s in stats.values()])
    n_bins = bins or int(np.clip(1.2 * np.sqrt(len(means) / len(stats)), 10, 40))

    def edges(values: np.ndarray) -> np.ndarray:
        lo, hi = float(values.min()), float(values.max())
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        return np.linspace(lo - pad, hi + pad, n_bins + 1)

    x_edges, y_edges = edges(means), edges(stds)
    fig = Figure(figsize=(7.5, 7.0), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=ax)
    right = fig.add_subplot(grid[1, 1], sharey=ax)
    handles = []
    items = list(stats.items())
    for k in reversed(range(len(items))):  # the first model (the teacher) is drawn last, on top
        m, s = items[k][1]
        counts, _, _ = np.histogram2d(m, s, bins=(x_edges, y_edges))
        # vmin below 0 starts the colour map at a visible tone: a bin with one sample is not white
        ax.pcolormesh(
            x_edges,
            y_edges,
            np.ma.masked_equal(counts.T, 0),
            cmap=_CMAPS[k % len(_CMAPS)],
            vmin=-0.35 * counts.max(),
            vmax=counts.max(),
            alpha=0.7,
        )
    for k, (name, (m, s)) in enumerate(items):
        color = MODEL_COLORS[k % len(MODEL_COLORS)]
        top.hist(m, bins=x_edges.tolist(), histtype="step", color=color, linewidth=1.6)
        right.hist(s, bins=y_edges.tolist(), histtype="step", color=color, linewidth=1.6, orientation="horizontal")
        label = f"{name}  (average mean {m.mean():.2f}, average std {s.mean():.2f})"
        handles.append(Patch(facecolor=color, alpha=0.75, label=label))
    ax.set_xlabel("logit mean of a sample")
    ax.set_ylabel("logit standard deviation of a sample")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), fontsize=9, frameon=False)
    ax.grid(alpha=0.25)
    top.set_ylabel("samples")
    top.tick_params(labelbottom=False)
    right.set_xlabel("samples")
    right.tick_params(labelleft=False)
    fig.suptitle(title)
    return _save(fig, path)


def plot_logit_bars(
    raw: Mapping[str, np.ndarray],
    standardized: Mapping[str, np.ndarray],
    path: Path,
    *,
    target: int,
    title: str,
) -> Path:
    """One sample's logits as grouped bars, raw (left) and Z-score standardized (right) (Fig. 3, 1st row).

    Args:
        raw: ``name -> logits of the sample`` (teacher first), shape (classes,).
        standardized: The same models' standardized logits.
        path: The PNG to write.
        target: The sample's true class, marked on the class axis.
        title: The figure title.

    Returns:
        ``path``.
    """
    num_classes = len(next(iter(raw.values())))
    if num_classes <= 20:  # side by side
        fig = Figure(figsize=(max(10.0, 1.0 * num_classes), 4.4), layout="constrained")
        axes = fig.subplots(1, 2)
    else:  # many classes: one wide panel above the other
        fig = Figure(figsize=(min(6.0 + 0.1 * num_classes, 18.0), 8.5), layout="constrained")
        axes = fig.subplots(2, 1)
    for ax, values, kind in ((axes[0], raw, "raw logits"), (axes[1], standardized, "standardized logits (Z-score)")):
        _bars(ax, values, target)
        ax.set_title(kind)
    fig.suptitle(title)
    return _save(fig, path)


def plot_logit_difference(
    matrices: Sequence[tuple[str, np.ndarray]],
    path: Path,
    *,
    title: str,
) -> Path:
    """Heatmaps of the class-wise average absolute teacher–student logit difference (Fig. 3, 2nd row).

    Args:
        matrices: ``(panel title, matrix)`` pairs; ``matrix[i, j]`` is the mean over samples of true class
            ``i`` of ``|v_j - z_j|`` (NaN for classes without samples). The panel title gets the matrix's
            mean and max appended.
        path: The PNG to write.
        title: The figure title.

    Returns:
        ``path``.
    """
    side = 4.6 if matrices[0][1].shape[0] <= 20 else 6.0
    fig = Figure(figsize=(side * len(matrices) + 0.6, side + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(matrices)))
    for ax, (name, matrix) in zip(axes, matrices, strict=True):
        _heatmap(fig, ax, name, matrix)
    fig.suptitle(title)
    return _save(fig, path)


def _bars(ax: Any, values: Mapping[str, np.ndarray], target: int) -> None:
    """Grouped bars of one sample's logits per model on ``ax``, the true class shaded."""
    num_classes = len(next(iter(values.values())))
    x = np.arange(num_classes)
    bar = 0.8 / len(values)
    for k, (name, v) in enumerate(values.items()):
        offset = (k - (len(values) - 1) / 2) * bar
        label = f"{name} (std {np.std(v, ddof=1):.2f})"
        ax.bar(x + offset, v, width=bar, color=MODEL_COLORS[k % len(MODEL_COLORS)], label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.axvspan(target - 0.5, target + 0.5, color="gold", alpha=0.25, zorder=0, label=f"true class {target}")
    ax.set_xticks(_class_ticks(num_classes))
    ax.set_xlim(-0.6, num_classes - 0.4)
    ax.set_xlabel("class (logit index)")
    ax.set_ylabel("logit value")
    labels_length = sum(len(name) + 12 for name in values) + 14
    columns = len(values) + 1 if labels_length <= 62 else 2  # one row when it fits under the axes
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=columns, frameon=False)
    ax.grid(axis="y", alpha=0.25)


def _heatmap(fig: Figure, ax: Any, name: str, matrix: np.ndarray) -> None:
    """A class × class heatmap of mean absolute logit differences on ``ax``, mean and max in the title."""
    ticks = _class_ticks(matrix.shape[0])
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", origin="upper", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.85, label="mean |teacher − student|")
    ax.set_title(f"{name}\nmean {np.nanmean(matrix):.2f}, max {np.nanmax(matrix):.2f}")
    ax.set_xlabel("logit index j")
    ax.set_ylabel("true class i")
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)


def plot_figure3(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], np.ndarray]],
    path: Path,
    *,
    target: int,
    title: str,
) -> Path:
    """The paper's Fig. 3: per column one sample's logits as bars (top) and the class-wise difference heatmap.

    Args:
        panels: ``(column title, name -> the sample's logits, difference matrix)`` per column, e.g. vanilla
            KD raw, KD + Z-score raw, KD + Z-score standardized.
        path: The PNG to write.
        target: The sample's true class.
        title: The figure title.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(5.6 * len(panels), 9.6), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, height_ratios=(1, 1.25))
    for column, (name, bars, matrix) in enumerate(panels):
        _bars(axes[0, column], bars, target)
        axes[0, column].set_title(name)
        _heatmap(fig, axes[1, column], name, matrix)
    fig.suptitle(title)
    return _save(fig, path)


def plot_temperature_hist(
    temperatures: Mapping[str, np.ndarray],
    path: Path,
    *,
    title: str = "Per-sample max-logit temperature",
    reference: Mapping[str, float] | None = None,
) -> Path:
    """Histograms of per-sample temperatures, overlaid (the first filled, the others outlined), means marked.

    Args:
        temperatures: ``label -> per-sample temperatures``.
        path: The PNG to write.
        title: The figure title.
        reference: Fixed temperatures to mark as vertical lines, ``label -> value``.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    values = np.concatenate(list(temperatures.values()))
    lo, hi = float(values.min()), float(values.max())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 41)
    for k, (label, t) in enumerate(temperatures.items()):
        color = MODEL_COLORS[k % len(MODEL_COLORS)]
        style: dict[str, Any] = (
            {"alpha": 0.45} if k == 0 else {"histtype": "step", "linewidth": 2.0}  # the first filled, others outlined
        )
        ax.hist(t, bins=bins.tolist(), color=color, label=f"{label} (mean {t.mean():.2f})", **style)
        ax.axvline(float(t.mean()), color=color, linestyle="--", linewidth=1.5)
    for label, value in (reference or {}).items():
        ax.axvline(value, color="black", linestyle=":", linewidth=1.5, label=label)
    ax.set_xlabel("temperature T")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.grid(alpha=0.25)
    return _save(fig, path)


def plot_temperature_trajectory(
    x: np.ndarray,
    temperature: np.ndarray,
    lambda_: np.ndarray | None,
    path: Path,
    *,
    x_label: str,
    title: str = "Temperature and gradient-reversal strength during training",
) -> Path:
    """The training temperature (left axis) and CTKD's λ (right axis) over epochs or steps.

    Args:
        x: Epochs or steps.
        temperature: ``train/temperature`` at each ``x`` (NaN where not logged).
        lambda_: ``train/lambda`` at each ``x``, or None.
        path: The PNG to write.
        x_label: The x-axis label.
        title: The figure title.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    marker = "o" if len(x) <= 60 else None
    lines = ax.plot(x, temperature, color=MODEL_COLORS[0], marker=marker, markersize=3, label="temperature T")
    ax.set_xlabel(x_label)
    ax.set_ylabel("temperature T", color=MODEL_COLORS[0])
    ax.grid(alpha=0.25)
    if lambda_ is not None:
        twin = ax.twinx()
        lines += twin.plot(x, lambda_, color=MODEL_COLORS[1], linestyle="--", label="λ (gradient reversal)")
        twin.set_ylabel("λ", color=MODEL_COLORS[1])
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="best", fontsize=9)
    ax.set_title(title)
    return _save(fig, path)


def plot_accuracy(
    methods: Sequence[str],
    best: Sequence[float],
    last: Sequence[float],
    path: Path,
    *,
    title: str = "Test accuracy per method",
) -> Path:
    """A dot plot of best and last test accuracy (%) per method, one row each, values annotated.

    The accuracy axis is zoomed on the range of the values, so differences stay visible: dots rather than
    bars, which would exaggerate them from a truncated axis.

    Args:
        methods: Row labels, top to bottom.
        best: Best test accuracy of each method, in %.
        last: Last-epoch test accuracy of each method, in %.
        path: The PNG to write.
        title: The figure title.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(8.0, 0.55 * len(methods) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(methods))[::-1]
    ax.hlines(y, np.minimum(best, last), np.maximum(best, last), color="grey", linewidth=1.5)
    ax.plot(best, y, "o", color=MODEL_COLORS[0], markersize=8, label="best epoch")
    ax.plot(last, y, "D", markerfacecolor="white", color=MODEL_COLORS[1], markersize=7, label="last epoch")
    for yi, b in zip(y, best, strict=True):
        ax.annotate(f"{b:.1f}", (b, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    lo, hi = min(min(best), min(last)), max(max(best), max(last))
    span = max(hi - lo, 1.0)
    ax.set_xlim(lo - 0.15 * span, min(hi + 0.15 * span, 100.5))
    ax.set_ylim(-0.7, len(methods) - 0.3)
    ax.set_yticks(y, list(methods))
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=9, frameon=False)
    return _save(fig, path)


def plot_logit_std(
    methods: Sequence[str],
    stds: Sequence[float],
    path: Path,
    *,
    teacher_std: float | None = None,
    title: str = "Logit standard deviation per method (mean over the test set)",
) -> Path:
    """Horizontal bars of each model's mean per-sample logit standard deviation, the teacher's marked.

    Args:
        methods: Row labels, top to bottom.
        stds: The values.
        path: The PNG to write.
        teacher_std: Drawn as a dashed vertical line when given.
        title: The figure title.

    Returns:
        ``path``.
    """
    fig = Figure(figsize=(8.0, 0.55 * len(methods) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(methods))[::-1]
    colors = [MODEL_COLORS[k % len(MODEL_COLORS)] for k in range(len(methods))]
    ax.barh(y, stds, color=colors, alpha=0.85)
    for yi, s in zip(y, stds, strict=True):
        ax.annotate(f"{s:.2f}", (s, yi), textcoords="offset points", xytext=(4, 0), va="center", fontsize=9)
    if teacher_std is not None:
        ax.axvline(teacher_std, color="black", linestyle="--", linewidth=1.2, label=f"teacher ({teacher_std:.2f})")
        ax.legend(loc="lower right", fontsize=9)
    ax.set_yticks(y, list(methods))
    ax.set_xlim(0, max(stds) * 1.15)
    ax.set_xlabel("mean per-sample logit standard deviation")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
