"""Filling a teacher-logit cache once: every view of every training image through the teacher.

``lightning-kd cache fill --config RECIPE [overrides]`` builds the recipe's model and data exactly as
``lightning-kd fit`` would (LightningCLI), then runs the teacher over the whole augmentation space with a progress
bar and an estimate of the time left. The inputs are made by the same functions as the training batches
(:func:`lightning_kd.data._views.crop_flip` and the normalisation), so the cached logits are the teacher's for
exactly the inputs training would give it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from lightning_kd.cache.store import TeacherLogitCache
from lightning_kd.data import AugmentationViews
from lightning_kd.data._views import crop_flip, stats_tensor, to_normalized_float

__all__ = ["fill_cache", "main"]


def _all_views(num_samples: int, padding: int, flip: bool, chunk: int) -> Iterator[AugmentationViews]:
    """Every (image, crop offset, flip), view by view, in chunks of images."""
    side = 2 * padding + 1
    for dy in range(side):
        for dx in range(side):
            for f in (0, 1) if flip else (0,):
                for start in range(0, num_samples, chunk):
                    index = torch.arange(start, min(start + chunk, num_samples))
                    full = torch.full_like(index, 1)
                    yield AugmentationViews(index, full * dy, full * dx, full * f)


def fill_cache(
    cache: TeacherLogitCache,
    teacher_logits: Callable[[Tensor], Tensor],
    images: Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    channels_last: bool = False,
    forward_context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    progress: bool = True,
) -> dict[str, float]:
    """Run ``teacher_logits`` on every view of ``images`` (uint8 or float in [0, 1], before normalisation) and
    store the logits in the bound ``cache``.

    Returns:
        ``{"views": ..., "seconds": ..., "views_per_s": ..., "bytes": ...}``.
    """
    identity = cache.identity
    if identity is None:
        raise RuntimeError("Expected a bound cache (`cache.bind(identity, device)`), but it is not bound.")
    device = torch.device(device)
    images = images.to(device)
    mean_t, std_t = stats_tensor(mean, device), stats_tensor(std, device)
    total = identity.num_views * identity.num_samples
    batches = _all_views(identity.num_samples, identity.padding, identity.flip, batch_size)
    start = time.perf_counter()
    bar = _progress(total) if progress else None
    done = 0
    with torch.no_grad():
        for views in batches:
            views = AugmentationViews(*(t.to(device) for t in views))
            x = crop_flip(images[views.index], views.dy, views.dx, views.flip, identity.padding)
            x = to_normalized_float(x, mean_t, std_t)
            x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            with forward_context():
                logits = teacher_logits(x)
            cache.write(views, logits)
            done += len(views.index)
            if bar is not None:
                bar[0].update(bar[1], completed=done)
    if bar is not None:
        bar[0].stop()
    cache.flush()
    seconds = time.perf_counter() - start
    return {
        "views": float(total),
        "seconds": seconds,
        "views_per_s": total / max(seconds, 1e-9),
        "bytes": float(cache.nbytes()),
    }


def _progress(total: int) -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("filling the teacher-logit cache"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    bar.start()
    return bar, bar.add_task("fill", total=total)


def main(argv: list[str] | None = None) -> int:
    """``lightning-kd cache fill --config RECIPE [--path DIR] [--dtype float16] [--batch-size N] [overrides]``."""
    parser = argparse.ArgumentParser(prog="lightning-kd cache", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fill = sub.add_parser("fill", help="fill a cache with the teacher of a recipe (or config)")
    fill.add_argument("--config", required=True, help="the recipe (id or path), as for `lightning-kd fit`")
    fill.add_argument("--path", default=None, help="the cache folder (default: the recipe's `teacher_cache.path`)")
    fill.add_argument("--dtype", default=None, choices=["float32", "float16"])
    fill.add_argument("--top-k", type=int, default=None)
    fill.add_argument("--batch-size", type=int, default=512, help="images per teacher forward")
    try:
        args, overrides = parser.parse_known_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    from lightning_kd.cache.binding import cache_identity
    from lightning_kd.cli import KDLightningCLI

    cli = KDLightningCLI(args=["--config", args.config, *overrides], run=False)
    module, datamodule, trainer = cli.model, cli.datamodule, cli.trainer
    configured = getattr(module, "teacher_cache", None)
    path = args.path or (str(configured.path) if configured is not None and configured.path is not None else None)
    if path is None:
        print("error: no cache folder: pass --path, or set `teacher_cache` in the config", file=sys.stderr)
        return 2
    cache = TeacherLogitCache(
        path,
        dtype=args.dtype or (configured.dtype if configured is not None else "float32"),
        top_k=args.top_k if args.top_k is not None else (configured.top_k if configured is not None else None),
        storage="mmap",
    )
    datamodule.setup("fit")
    precision = trainer.precision_plugin
    device = trainer.strategy.root_device
    teacher = module._teacher
    precision.convert_module(teacher.module)
    teacher.apply(lambda t: t.to(device))
    if module.teacher_input is not None:
        module.teacher_input.to(device)
    if getattr(module, "channels_last", False):
        teacher.use_channels_last()
    identity = cache_identity(
        teacher_sha256=module.teacher_sha256,
        datamodule=datamodule,
        teacher_input=module.teacher_input,
        channels_last=bool(getattr(module, "channels_last", False)),
        precision=str(trainer.precision),
        num_classes=int(module.num_classes),
    )
    cache.bind(identity, device)
    images, _ = datamodule._train_tensors()
    stats = fill_cache(
        cache,
        teacher.logits,
        images,
        datamodule.mean,
        datamodule.std,
        device=device,
        batch_size=args.batch_size,
        forward_context=precision.forward_context,
    )
    print(
        f"filled {int(stats['views']):,} views ({identity.num_samples:,} images x {identity.num_views}) in"
        f" {stats['seconds']:.1f} s ({stats['views_per_s']:,.0f} views/s); {stats['bytes'] / 2**20:,.1f} MiB in {path}"
    )
    return 0
