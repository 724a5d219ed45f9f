"""The ``lightning-kd analyze`` command line: options, and one analysis per resolved job.

Private module: :func:`main` and :func:`build_parser` are re-exported by :mod:`lightning_kd.analyze`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from lightning_kd.analyze._jobs import DATASETS, Job, resolve_jobs
from lightning_kd.analyze._report import analyze

__all__ = ["build_parser", "main"]

_PROG = "lightning-kd analyze"


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 16}}', got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-kd analyze``.

    Example:
        >>> args = build_parser().parse_args(["--run", "runs/digits/kd_z/resnet20_resnet8", "--image-size", "32"])
        >>> args.run.name, args.image_size, args.batch_size
        ('resnet20_resnet8', 32, None)
    """
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Write the logit diagnostics of 'Logit Standardization in Knowledge Distillation' (CVPR 2024) for a"
            " teacher and a student: logit mean/std histogram (Fig. 5), one sample's logits and the class-wise"
            " logit-difference heatmaps, raw and standardized (Fig. 3), per-sample max-logit temperatures, the"
            " CTKD temperature trajectory (with --metrics), and accuracy/agreement as JSON."
        ),
    )
    models = parser.add_argument_group("models (give --teacher/--student, or --run)")
    models.add_argument("--teacher", type=Path, help="teacher checkpoint (.ckpt, .pth {'model': ...}, state_dict)")
    models.add_argument("--teacher-arch", help="teacher architecture for lightning_kd.models.create_model")
    models.add_argument("--teacher-kwargs", type=_json_object, default=None, help="JSON kwargs for the teacher arch")
    models.add_argument("--student", type=Path, help="student checkpoint (same formats)")
    models.add_argument("--student-arch", help="student architecture for lightning_kd.models.create_model")
    models.add_argument("--student-kwargs", type=_json_object, default=None, help="JSON kwargs for the student arch")
    models.add_argument(
        "--run",
        type=Path,
        help="a `lightning-kd demo` output folder (its run.json), or a `lightning-kd fit` run folder of a"
        " DistillationModule (its config.yaml rebuilds the model and data; student.pt or checkpoints, metrics.csv)",
    )
    models.add_argument(
        "--method", action="append", help="with a demo --run: the student(s) to analyze (repeatable; default: all)"
    )
    data = parser.add_argument_group(
        "data",
        "A `lightning-kd fit` run brings its own data; --data-root, --data-seed, --image-size, --batch-size and"
        " --num-workers override it.",
    )
    data.add_argument("--data", choices=DATASETS, default=None, help="the DataModule (default: digits)")
    data.add_argument("--data-root", type=Path, default=None, help="dataset folder (fashion_mnist, cifar100)")
    data.add_argument("--data-seed", type=int, default=None, help="digits: seed of the train/test split (0)")
    data.add_argument("--num-classes", type=_positive_int, default=None, help="default: the dataset's")
    data.add_argument("--in-chans", type=_positive_int, default=None, help="default: the dataset's")
    data.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="digits: upsample to this size (default: a run's, else what the checkpoints say, else 8)",
    )
    data.add_argument("--batch-size", type=_positive_int, default=None, help="default: 256, or a fit run's")
    data.add_argument("--num-workers", type=_non_negative_int, default=None, help="default: 0, or a fit run's")
    data.add_argument("--limit-batches", type=_positive_int, default=None, help="use only this many test batches")
    parser.add_argument("--metrics", type=Path, default=None, help="CSVLogger metrics.csv with train/temperature")
    parser.add_argument("--sample-index", type=int, default=None, help="test sample of the bar plot")
    parser.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available), 'cpu', 'cuda', ... (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("lightning-kd-analysis"), help="output folder (default: %(default)s)"
    )
    return parser


def _check_usage(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.run is not None:
        if args.teacher or args.student:
            parser.error("give either --run or --teacher/--student, not both")
        return
    missing = [flag for flag, value in (("--teacher", args.teacher), ("--student", args.student)) if value is None]
    if missing:
        parser.error(f"the following arguments are required without --run: {', '.join(missing)}")


def _warn(message: str) -> None:
    """A warning on stderr, every line of it prefixed so that it stands out in a log."""
    lines = message.splitlines()
    print(f"{_PROG}: WARNING: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"{_PROG}: WARNING: {line}", file=sys.stderr)


def _print_summary(summary: Mapping[str, Any], out: Path) -> None:
    teacher, student = summary["teacher"], summary["student"]
    print(
        f"{student['name']} vs {teacher['name']} on {summary['num_samples']} samples:"
        f" teacher acc {100 * teacher['accuracy']:.2f}%, student acc {100 * student['accuracy']:.2f}%,"
        f" top-1 agreement {100 * summary['agreement']:.2f}%;"
        f" logit std teacher {teacher['logit_std']:.2f}, student {student['logit_std']:.2f};"
        f" mean |v - z| raw {summary['logit_difference']['raw']['mean']:.3f},"
        f" standardized {summary['logit_difference']['zscore']['mean']:.3f}"
    )
    if summary.get("teacher_changed"):
        print("  the teacher is not the run's (teacher_changed: true in summary.json): see the warning above")
    print(f"  wrote {len(summary['files'])} files to {out}")


def _run_job(job: Job, args: argparse.Namespace, device: str) -> None:
    for note in job.notes:
        print(f"{_PROG}: {note}")
    for warning in job.warnings:
        _warn(warning)
    summary = analyze(
        job.teacher.to(device),
        job.student.to(device),
        job.datamodule.test_dataloader(),
        job.out,
        limit_batches=args.limit_batches,
        device=device,
        teacher_name=job.teacher_name,
        student_name=job.student_name,
        sample_index=args.sample_index,
        metrics=job.metrics,
        extra={**job.extra, "image_size": getattr(job.datamodule, "image_size", None), "warnings": list(job.warnings)},
        logits_key=job.logits_key,
    )
    _print_summary(summary, job.out)


def main(argv: list[str] | None = None) -> int:
    """Run ``lightning-kd analyze``.

    Args:
        argv: The arguments after ``analyze`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on a missing file or a bad checkpoint/argument value, 2 on a usage
        error (as argparse).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_usage(args, parser)
    except SystemExit as exit_:  # --help, usage errors: return the status instead of exiting the caller
        return exit_.code if isinstance(exit_.code, int) else 1
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    try:
        for job in resolve_jobs(args):
            try:
                _run_job(job, args, device)
            except RuntimeError as error:  # e.g. a model that cannot take these inputs: say so, after the warnings
                size = getattr(job.datamodule, "image_size", None)
                on = f" on {size}-px images" if isinstance(size, int) else ""
                raise ValueError(f"running the models{on} failed: {error}") from error
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 1
    return 0
