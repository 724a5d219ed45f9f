"""The command line ``lightning-kd demo`` (also ``python -m lightning_kd.demo``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from lightning_kd.demo.config import DEFAULT_OUT, METHODS, DemoConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-kd demo``."""
    defaults = DemoConfig()
    labels = ", ".join(f"{key} ({method.label})" for key, method in METHODS.items())
    parser = argparse.ArgumentParser(
        prog="lightning-kd demo",
        description=(
            "On scikit-learn's digits (offline, CPU, under a minute): train a small CNN teacher on the training"
            " images, then a small MLP student on a quarter of them (the transfer set), alone and distilled by"
            f" the presets {labels}; print and save the results table, the figures, the models and the logs."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs of every run")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of every run (same seed, same numbers)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="METHOD",
        default=list(defaults.methods),
        help=(
            f"distillation methods to run, of {', '.join(METHODS)} (older spellings such as kd_zscore are"
            " accepted); the teacher and the baseline always run"
        ),
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the figures (table, models and logs only)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-kd demo``.

    Args:
        argv: The arguments after ``demo`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on a usage error (reported before anything trains).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        try:
            config = DemoConfig(epochs=args.epochs, seed=args.seed, methods=tuple(args.methods))
        except (TypeError, ValueError) as error:
            parser.error(str(error))
    except SystemExit as exit_:  # --help and usage errors: return the status instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else 1
    # Imported here, not above: they load Lightning, scikit-learn and matplotlib, which --help does not need.
    from lightning_kd.demo.reporting import rich_table
    from lightning_kd.demo.training import run_demo

    console = Console()
    start = time.perf_counter()
    results = run_demo(config, args.out, figures=not args.no_figures, console=console)
    console.print(rich_table(results, config))
    elapsed = time.perf_counter() - start
    console.print(f"Done in {elapsed:.0f} s. Results, figures and models in {args.out.resolve()}")
    return 0
