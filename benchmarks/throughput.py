"""Training throughput: lightning-kd's fast path against a loop written like the published research code.

In one run on one device, for resnet32x4 -> resnet8x4 with KD + Z-score on CIFAR-100-shaped data (random
uint8 images written in the real ``cifar-100-python`` format, read by the real DataModule):

(a) ``reference``: a loop like the published code: fp32, torchvision CPU transforms (RandomCrop(32, 4),
    RandomHorizontalFlip, ToTensor, Normalize) in a DataLoader with 2 workers, batch 64, the teacher under
    ``no_grad``, SGD, ``loss.item()`` every step;
(b) ``lightning-kd``: ``DistillationModule`` under a ``Trainer`` with its fastest settings: device-resident data
    (``device_resident=True, drop_last=True``), bf16-mixed, channels-last, ``torch.compile``;
(c) ``student-only``: ``ClassifierModule`` with the same settings (the ceiling distillation is measured against);
(d) ``lightning-kd + cache``: (b) with a :class:`~lightning_kd.TeacherLogitCache` filled once beforehand (its
    fill time and size are reported): no teacher forward in training;

at batch 64 and 512 (a runs at 64 only, as the papers do). Images/s are steady state: after ``--warmup``
batches (compilation, cudnn tuning), over ``--steps`` batches. Peak memory is the accelerator's
``max_memory_allocated`` (the process's peak RSS on a CPU). It prints a table with the ratios (b)/(a) and
(b)/(c), (d)/(c) and writes JSON (``--json``).

``--tiny`` (CPU, what CI smoke-tests): tiny models and data, one thread, the same rows; plus the per-step
framework overhead: the CPU time of a ``DistillationModule`` step against a minimal LightningModule doing the
same math and logging its loss every step, medians of interleaved runs in this process, and the operations
and device-to-host reads (``aten._local_scalar_dense``) of one non-logging step of each.

    python benchmarks/throughput.py --json throughput.json           # on a GPU
    python benchmarks/throughput.py --tiny --json throughput-cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import StepTimer, environment, quiet_trainer, sync, write_json

from lightning_kd import ClassifierModule, DistillationModule, TeacherLogitCache
from lightning_kd.data import CIFAR100DataModule
from lightning_kd.data.cifar import CIFAR100_MEAN, CIFAR100_STD, read_cifar_split
from lightning_kd.logits import standardize
from lightning_kd.losses.functional import kd_kl
from lightning_kd.models import create_model
from lightning_kd.presets import create_loss

SYNC = "aten._local_scalar_dense.default"  # one device-to-host read (.item(), bool(tensor), ...)


def write_cifar(root: Path, n_train: int, n_test: int = 64) -> Path:
    """Random images in torchvision's ``cifar-100-python/{train,test,meta}`` pickles."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, n).tolist()
        entry = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": fine,
            "coarse_labels": [f // 5 for f in fine],
            "filenames": [f"{i}.png" for i in range(n)],
        }
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)], "coarse_label_names": []}, f, protocol=2)
    return root


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


# --------------------------------------------------------------------------------------------------------
# (a) the reference loop
# --------------------------------------------------------------------------------------------------------
class _TorchvisionStyleCIFAR(Dataset):
    """What torchvision's ``CIFAR100.__getitem__`` does (a PIL image through the transforms), on files that are
    not the official archive (torchvision's class checks their md5)."""

    def __init__(self, path: Path, transform: Callable[[Any], torch.Tensor]) -> None:
        self.data, self.labels = read_cifar_split(path)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.data[index])), self.labels[index]


def reference_loop(args: argparse.Namespace, root: Path, device: str, models: dict[str, Any]) -> dict[str, Any]:
    """fp32, torchvision transforms in a 2-worker DataLoader, teacher under no_grad, SGD, loss.item() per step."""
    transform = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)]
    )
    dataset = _TorchvisionStyleCIFAR(root / "cifar-100-python" / "train", transform)
    loader = DataLoader(
        dataset,
        batch_size=64,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device == "cuda",
        drop_last=True,
        persistent_workers=args.workers > 0,
    )
    teacher, student = models["teacher"]().to(device).eval(), models["student"]().to(device).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    total = args.warmup + args.steps
    done, start, cpu_start = 0, 0.0, 0.0
    reset_peak(device)
    while done < total:
        for x, y in loader:
            if done == args.warmup:
                sync()
                start, cpu_start = time.perf_counter(), time.process_time()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.no_grad():
                t = teacher(x)
            s = student(x)
            loss = 0.1 * F.cross_entropy(s, y) + 9.0 * kd_kl(standardize(s), standardize(t), temperature=2.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # as the research scripts do, every step (a host synchronisation)
            done += 1
            if done == total:
                break
    sync()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "images_per_s": args.steps * 64 / wall,
        "wall_s": wall,
        "cpu_s": cpu,
        "batch_size": 64,
        "peak_memory_mb": peak_memory_mb(device),
    }


# --------------------------------------------------------------------------------------------------------
# (b), (c) lightning-kd
# --------------------------------------------------------------------------------------------------------
def lightning_run(
    args: argparse.Namespace,
    root: Path,
    device: str,
    models: dict[str, Any],
    batch_size: int,
    *,
    distill: bool,
    cache: TeacherLogitCache | None = None,
) -> dict[str, Any]:
    fast = args.fast_settings
    data = CIFAR100DataModule(
        root=str(root),
        batch_size=batch_size,
        num_workers=0,
        verify_checksums=False,
        device_resident=True,
        drop_last=True,
        return_views=cache is not None,
    )
    common: dict[str, Any] = {"channels_last": fast["channels_last"], "compile": fast["compile"]}
    module: pl.LightningModule
    if distill:
        module = DistillationModule(
            models["student"](),
            models["teacher"](),
            create_loss("kd_z"),
            num_classes=100,
            check_finite_steps=0,
            teacher_cache=cache,
            **common,
        )
    else:
        module = ClassifierModule(models["student"](), num_classes=100, **common)
    module.configure_optimizers = _sgd(module)  # type: ignore[method-assign]
    timer = StepTimer(args.warmup)
    trainer = quiet_trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        precision=fast["precision"],
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        callbacks=[timer],
    )
    reset_peak(device)
    trainer.fit(module, datamodule=data)
    return {
        "images_per_s": timer.timed * batch_size / timer.wall,
        "wall_s": timer.wall,
        "cpu_s": timer.cpu,
        "batch_size": batch_size,
        "peak_memory_mb": peak_memory_mb(device),
    }


def filled_cache(
    args: argparse.Namespace, root: Path, path: Path, device: str, models: dict[str, Any]
) -> tuple[TeacherLogitCache, dict[str, Any]]:
    """A teacher-logit cache of the teacher over the whole space (162 views per image), filled once."""
    from lightning_kd.cache.binding import cache_identity
    from lightning_kd.cache.fill import fill_cache
    from lightning_kd.teacher import load_teacher, state_dict_sha256

    fast = args.fast_settings
    data = CIFAR100DataModule(root=str(root), verify_checksums=False, return_views=True, device_resident=True)
    data.setup("fit")
    teacher = load_teacher(models["teacher"]()).to(device)
    precision = str(fast["precision"])
    dtype = "float16" if device == "cuda" else "float32"
    cache = TeacherLogitCache(str(path), dtype=dtype)  # type: ignore[arg-type]
    identity = cache_identity(
        teacher_sha256=state_dict_sha256(teacher),
        datamodule=data,
        teacher_input=None,
        channels_last=bool(fast["channels_last"]),
        precision=precision,
        num_classes=100,
    )
    cache.bind(identity, device)
    images, _ = data._train_tensors()
    context = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if precision == "bf16-mixed" else None
    stats = fill_cache(
        cache,
        teacher,
        images,
        data.mean,
        data.std,
        device=device,
        channels_last=bool(fast["channels_last"]),
        forward_context=context or contextlib.nullcontext,
        progress=False,
    )
    reopened = TeacherLogitCache(str(path), dtype=dtype, fill="precomputed")  # type: ignore[arg-type]
    return reopened, {**stats, "dtype": dtype}


def _sgd(module: pl.LightningModule) -> Callable[[], Any]:
    def configure() -> Any:
        params = [p for p in module.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)

    return configure


# --------------------------------------------------------------------------------------------------------
# the per-step overhead on CPU (tiny models): DistillationModule vs a minimal LightningModule
# --------------------------------------------------------------------------------------------------------
def _tiny_net(seed: int, hidden: int, batch_norm: bool) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(64, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    return nn.Sequential(*layers, nn.ReLU(), nn.Linear(hidden, 10))


class Minimal(pl.LightningModule):
    """The same math as DistillationModule with KD+Z, written inline, logging its loss every step."""

    def __init__(self) -> None:
        super().__init__()
        self.student = _tiny_net(0, 32, False)
        self.teacher = _tiny_net(1, 32, True).eval().requires_grad_(False)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        s = self.student(x)
        with torch.no_grad():
            t = self.teacher(x)
        loss = 0.1 * F.cross_entropy(s, y) + 9.0 * kd_kl(standardize(s), standardize(t), temperature=2.0)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


class _CPUStepTimes(pl.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._start = time.process_time()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step > self.warmup:
            self.times.append(time.process_time() - self._start)


class _CountOps(TorchDispatchMode):
    """Counts the dispatched ATen operations; ``aten._local_scalar_dense`` is a device-to-host read."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


class _CountStep(pl.Callback):
    """The operations of one training step (``on_train_batch_start`` to ``on_train_batch_end``)."""

    def __init__(self, step: int) -> None:
        self.step, self.ops, self._mode = step, Counter[str](), None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            self._mode = _CountOps()
            self._mode.__enter__()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self.ops, self._mode = self._mode.ops, None


def overhead(steps: int, repeats: int) -> dict[str, Any]:
    """Median CPU time per step of each, in interleaved runs; their ratio (target: at most 1.25)."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(64 * steps, 1, 8, 8, generator=g), torch.randint(0, 10, (64 * steps,), generator=g)
    )

    def median_step(module: pl.LightningModule) -> float:
        timer = _CPUStepTimes(warmup=20)
        quiet_trainer(accelerator="cpu", max_steps=steps, callbacks=[timer]).fit(
            module, DataLoader(data, batch_size=64)
        )
        return statistics.median(timer.times)

    def distillation() -> DistillationModule:
        module = DistillationModule(_tiny_net(0, 32, False), _tiny_net(1, 32, True), create_loss("kd_z"))
        module.configure_optimizers = _sgd(module)  # type: ignore[method-assign]
        return module

    def step_ops(module: pl.LightningModule) -> dict[str, int]:
        # step 21: past the first steps' value checks, not a logging step (every 50th)
        counter = _CountStep(step=21)
        quiet_trainer(accelerator="cpu", max_steps=23, callbacks=[counter]).fit(module, DataLoader(data, batch_size=64))
        return {"operations": sum(counter.ops.values()), "host_reads": counter.ops[SYNC]}

    ours, minimal = [], []
    for _ in range(repeats):
        ours.append(median_step(distillation()))
        minimal.append(median_step(Minimal()))
    return {
        "ops_per_step": {"distillation_module": step_ops(distillation()), "minimal_module": step_ops(Minimal())},
        "distillation_module_ms": 1e3 * statistics.median(ours),
        "minimal_module_ms": 1e3 * statistics.median(minimal),
        "ratio": statistics.median(ours) / statistics.median(minimal),
        "steps": steps,
        "repeats": repeats,
    }


# --------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU preset: tiny models and data, one thread")
    parser.add_argument("--steps", type=int, default=None, help="timed batches per row")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference loop")
    parser.add_argument("--train-images", type=int, default=None, help="training images (default 50000; --tiny 256)")
    parser.add_argument("--compile", default=None, help="torch.compile mode of the fast settings ('none' for off)")
    parser.add_argument("--overhead-steps", type=int, default=200, help="--tiny: steps of each overhead run")
    parser.add_argument("--overhead-repeats", type=int, default=3, help="--tiny: interleaved overhead runs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if args.tiny:
        torch.set_num_threads(1)
    args.steps = args.steps or (20 if args.tiny else 300)
    args.warmup = args.warmup or (5 if args.tiny else 50)
    batch_sizes = args.batch_sizes or ([64] if args.tiny else [64, 512])
    compile_mode = args.compile or ("none" if args.tiny else "max-autotune-no-cudagraphs")
    args.fast_settings = {
        "precision": "bf16-mixed" if device == "cuda" else "32-true",
        "channels_last": device == "cuda",
        "compile": False if compile_mode == "none" else compile_mode,
    }
    names = ("demo_cnn", "demo_mlp") if args.tiny else ("resnet32x4", "resnet8x4")
    teacher_kwargs: dict[str, Any] = {"in_chans": 3, "width": 8} if args.tiny else {}
    student_kwargs: dict[str, Any] = {"image_size": 32, "in_chans": 3} if args.tiny else {}

    def seeded(name: str, seed: int, extra: dict[str, Any]) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            torch.manual_seed(seed)  # the same weights in every row (the cache is the teacher's)
            return create_model(name, num_classes=100, **extra)

        return build

    models = {"teacher": seeded(names[0], 1, teacher_kwargs), "student": seeded(names[1], 0, student_kwargs)}
    # Epochs repeat until the last timed batch (drop_last), so the training set only has to hold a few batches;
    # its size sets the cache's: 162 views per image.
    n_train = args.train_images or (256 if args.tiny else 50_000)
    if n_train < max([*batch_sizes, 64]):
        parser.error(f"--train-images must hold at least one batch of the largest batch size, got {n_train}")
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = write_cifar(Path(tmp), n_train)
        rows["reference (batch 64)"] = reference_loop(args, root, device, models)
        cache, fill = filled_cache(args, root, Path(tmp) / "cache", device, models)
        for batch in batch_sizes:
            rows[f"lightning-kd (batch {batch})"] = lightning_run(args, root, device, models, batch, distill=True)
            rows[f"lightning-kd + cache (batch {batch})"] = lightning_run(
                args, root, device, models, batch, distill=True, cache=cache
            )
            rows[f"student-only (batch {batch})"] = lightning_run(args, root, device, models, batch, distill=False)
    reference = rows["reference (batch 64)"]["images_per_s"]
    ratios = {}
    for batch in batch_sizes:
        ours = rows[f"lightning-kd (batch {batch})"]["images_per_s"]
        cached = rows[f"lightning-kd + cache (batch {batch})"]["images_per_s"]
        ratios[f"batch {batch}: lightning-kd / reference"] = ours / reference
        ratios[f"batch {batch}: lightning-kd + cache / student-only"] = (
            cached / rows[f"student-only (batch {batch})"]["images_per_s"]
        )
        ratios[f"batch {batch}: lightning-kd / student-only"] = (
            ours / rows[f"student-only (batch {batch})"]["images_per_s"]
        )
    result: dict[str, Any] = {
        "environment": environment(),
        "settings": {
            "teacher": names[0],
            "student": names[1],
            "fast": args.fast_settings,
            "steps": args.steps,
            "warmup": args.warmup,
            "reference_workers": args.workers,
        },
        "rows": rows,
        "ratios": ratios,
    }
    result["cache"] = fill
    if args.tiny:
        result["overhead"] = overhead(steps=args.overhead_steps, repeats=args.overhead_repeats)
    env = result["environment"]
    print(
        f"{names[0]} -> {names[1]}, KD+Z, {args.steps} timed batches after {args.warmup}, on {env['device']},"
        f" torch {env['torch']}, Lightning {env['lightning']}, CUDA {env['cuda']}"
    )
    print(f"fast settings: {args.fast_settings}")
    print("| row | images/s | peak memory (MB) |")
    print("|---|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['images_per_s']:.0f} | {row['peak_memory_mb']:.0f} |")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}x")
    print(
        f"teacher-logit cache: {int(fill['views']):,} views filled in {fill['seconds']:.1f} s"
        f" ({fill['views_per_s']:,.0f} views/s), {fill['bytes'] / 2**20:,.1f} MiB ({fill['dtype']})"
    )
    if "overhead" in result:
        o = result["overhead"]
        print(
            f"per-step CPU time: DistillationModule {o['distillation_module_ms']:.3f} ms, minimal LightningModule"
            f" {o['minimal_module_ms']:.3f} ms: {o['ratio']:.2f}x (target <= 1.25)"
        )
        ours, minimal = o["ops_per_step"]["distillation_module"], o["ops_per_step"]["minimal_module"]
        print(
            f"a non-logging step: DistillationModule {ours['operations']} operations, {ours['host_reads']} host reads;"
            f" minimal LightningModule {minimal['operations']} operations, {minimal['host_reads']} host reads"
        )
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
