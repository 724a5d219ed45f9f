"""Training throughput of a distillation step: DistillationModule under Lightning vs. a plain PyTorch loop.

Prints a table of images/second for one teacher/student pair at several settings (precision, channels-last,
torch.compile). The data are random CIFAR-sized batches resident on the device, so the numbers measure the
models, the loss and the framework, not a data loader. Run it where the numbers matter (a GPU)::

    python benchmarks/train_step.py --teacher resnet32x4 --student resnet8x4 --batch-size 64 --steps 100

On a CPU-only machine use small settings, e.g. ``--steps 5 --batch-size 16 --configs fp32``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from lightning_kd import DistillationLoss, DistillationModule
from lightning_kd.models import create_model

CONFIGS = {
    "fp32": {"precision": "32-true", "channels_last": False, "compile": False},
    "bf16": {"precision": "bf16-mixed", "channels_last": False, "compile": False},
    "bf16+cl": {"precision": "bf16-mixed", "channels_last": True, "compile": False},
    "bf16+cl+compile": {"precision": "bf16-mixed", "channels_last": True, "compile": True},
}


class ResidentBatches(IterableDataset):
    """``steps`` random batches generated once on ``device`` and replayed."""

    def __init__(self, steps: int, batch_size: int, num_classes: int, device: str, image_size: int = 32) -> None:
        generator = torch.Generator(device=device).manual_seed(0)
        self.x = torch.randn(batch_size * 4, 3, image_size, image_size, device=device, generator=generator)
        self.y = torch.randint(0, num_classes, (batch_size * 4,), device=device, generator=generator)
        self.steps, self.batch_size = steps, batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(self.steps):
            start = (step % 4) * self.batch_size
            yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class StepTimer(pl.Callback):
    """Wall time of the training steps after ``warmup`` steps (synchronised on CUDA)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.timed_steps = warmup, 0.0, 0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self._sync()
            self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sync()
        self.timed_steps = trainer.global_step - self.warmup
        self.elapsed = time.perf_counter() - self.start


def lightning_throughput(args: argparse.Namespace, config: dict[str, object], device: str) -> float:
    teacher = create_model(args.teacher, num_classes=100)
    module = DistillationModule(
        args.student,
        teacher,
        DistillationLoss("kd", preprocess="zscore", temperature=2.0),
        ce_weight=0.1,
        kd_weight=9.0,
        num_classes=100,
        channels_last=bool(config["channels_last"]),
        compile=bool(config["compile"]),
        check_finite_steps=0,
    )
    timer = StepTimer(args.warmup)
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=config["precision"],  # type: ignore[arg-type]
        max_steps=args.steps + args.warmup,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=50,
    )
    data = ResidentBatches(args.steps + args.warmup, args.batch_size, 100, device)
    trainer.fit(module, DataLoader(data, batch_size=None))
    return timer.timed_steps * args.batch_size / timer.elapsed


def plain_loop_throughput(args: argparse.Namespace, device: str) -> float:
    """The shape of research KD code: fp32, teacher under no_grad, z-score KD written inline, SGD."""
    teacher = create_model(args.teacher, num_classes=100).to(device).eval()
    student = create_model(args.student, num_classes=100).to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    data = ResidentBatches(args.steps + args.warmup, args.batch_size, 100, device)

    def z(logits: torch.Tensor) -> torch.Tensor:
        return (logits - logits.mean(1, keepdim=True)) / (1e-7 + logits.std(1, keepdim=True))

    start = 0.0
    for step, (x, y) in enumerate(data):
        if step == args.warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        kd = F.kl_div(F.log_softmax(z(s) / 2, 1), F.softmax(z(t) / 2, 1), reduction="none").sum(1).mean() * 4
        loss = 0.1 * F.cross_entropy(s, y) + 9.0 * kd
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (compilation, cudnn tuning)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = device == "cuda"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"{args.teacher} -> {args.student}, batch {args.batch_size}, {args.steps} timed steps on {name}")
    print(f"| {'setting':<40} | {'images/s':>10} | {'vs plain':>8} |")
    print(f"|{'-' * 42}|{'-' * 12}|{'-' * 10}|")
    plain = plain_loop_throughput(args, device)
    print(f"| {'plain PyTorch loop, fp32':<40} | {plain:>10.0f} | {1.0:>7.2f}x |", flush=True)
    for key in args.configs:
        value = lightning_throughput(args, CONFIGS[key], device)
        print(f"| {'DistillationModule, ' + key:<40} | {value:>10.0f} | {value / plain:>7.2f}x |", flush=True)


if __name__ == "__main__":
    main()
