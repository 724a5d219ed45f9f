"""Real-data distillation on Fashion-MNIST: a teacher, a student without a teacher, and distilled students.

Trains the teacher once (ClassifierModule), then the same student architecture without a teacher
(ClassifierModule) and distilled (DistillationModule) by presets of ``lightning_kd.presets`` (``--methods``,
by default ``kd``, ``kd_z``, ``ctkd_z`` and ``maxlogit_z``; CTKD's curriculum is shortened to the first third of
the run), all with the same seed, optimizer and schedule, and prints best/last test accuracy per method. The
data are Debian's ``dataset-fashion-mnist`` files (or ``--root``). Meant for a GPU::

    python benchmarks/fashion_mnist_kd.py --epochs 15 --teacher resnet32x4 --student resnet8

Accuracies are single runs of one seed: differences of a few tenths of a point are within seed noise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_kd import ClassifierModule, DistillationLoss, DistillationModule
from lightning_kd.data import FashionMNISTDataModule
from lightning_kd.presets import get_preset

#: The distilled students by default: presets of lightning_kd.presets.
DEFAULT_METHODS = ("kd", "kd_z", "ctkd_z", "maxlogit_z")


def methods(names: Sequence[str], epochs: int) -> dict[str, DistillationLoss | None]:
    """The student alone, then one loss per preset name (CTKD's curriculum over the first third of the run)."""
    losses: dict[str, DistillationLoss | None] = {"student alone": None}
    for name in names:
        preset = get_preset(name)
        if preset.needs_views:
            raise ValueError(
                f"Expected argument `methods` to name single-view presets, but got {name!r}, which needs a weak and"
                " a strong view of each sample (this benchmark loads one)."
            )
        if preset.temperature == "curriculum":
            stretched = {**preset.temperature_kwargs, "decay_epochs": max(1, epochs // 3)}
            preset = preset.replace(temperature_kwargs=stretched)
        losses[preset.display_name] = preset.loss()
    return losses


def fit(
    module: pl.LightningModule, data: FashionMNISTDataModule, args: argparse.Namespace, epochs: int
) -> dict[str, float]:
    pl.seed_everything(args.seed, workers=True)
    trainer = pl.Trainer(
        max_epochs=epochs,
        precision=args.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["seconds"] = time.perf_counter() - start
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of every student")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="epochs of the teacher (default: --epochs)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--precision", default="bf16-mixed" if torch.cuda.is_available() else "32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--num-workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--methods", nargs="+", default=list(DEFAULT_METHODS), help="presets to distill with (lightning_kd.presets)"
    )
    args = parser.parse_args()
    try:
        losses = methods(args.methods, args.epochs)  # unknown names fail here, before the teacher trains
    except ValueError as error:
        parser.error(str(error))
    data = FashionMNISTDataModule(root=args.root, batch_size=args.batch_size, num_workers=args.num_workers)

    def optimizer(params: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)

    teacher_epochs = args.teacher_epochs or args.epochs

    def scheduler(epochs: int) -> Any:
        return lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

    common: dict[str, Any] = {
        "num_classes": 10,
        "in_chans": 1,
        "optimizer": optimizer,
        "lr_scheduler": scheduler(args.epochs),
        "channels_last": args.channels_last,
    }
    pl.seed_everything(args.seed, workers=True)
    teacher = ClassifierModule(args.teacher, **{**common, "lr_scheduler": scheduler(teacher_epochs)})
    rows = [("teacher " + args.teacher, fit(teacher, data, args, teacher_epochs))]
    for name, loss in losses.items():
        pl.seed_everything(args.seed, workers=True)
        if loss is None:
            module: pl.LightningModule = ClassifierModule(args.student, **common)
        else:
            module = DistillationModule(args.student, teacher.model, loss, **common)
        rows.append((name, fit(module, data, args, args.epochs)))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"Fashion-MNIST, {args.teacher} ({teacher_epochs} epochs) -> {args.student} ({args.epochs} epochs),"
        f" {args.precision}, {device}"
    )
    print(f"| {'method':<22} | {'best top-1':>10} | {'last top-1':>10} | {'seconds':>8} |")
    print(f"|{'-' * 24}|{'-' * 12}|{'-' * 12}|{'-' * 10}|")
    for name, m in rows:
        best, last = 100 * m["val/acc1_best"], 100 * m["val/acc1"]
        print(f"| {name:<22} | {best:>10.2f} | {last:>10.2f} | {m['seconds']:>8.0f} |")


if __name__ == "__main__":
    main()
