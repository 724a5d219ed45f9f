"""Shared pieces of the benchmarks: a steady-state step timer, the environment, and the JSON output."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import torch


def sync() -> None:
    """Wait for the accelerator (nothing to wait for on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(pl.Callback):
    """Wall and process CPU time of the training batches after ``warmup`` batches (synchronised on CUDA).

    Counts batches (``on_train_batch_end``), not ``global_step``: a module with several optimizers (an ablation's
    arms) steps each of them once per batch.
    """

    def __init__(self, warmup: int) -> None:
        self.warmup, self.batches, self.timed = warmup, 0, 0
        self.start = self.cpu_start = 0.0
        self.wall = self.cpu = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.batches == self.warmup:
            sync()
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.batches += 1

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync()
        self.timed = self.batches - self.warmup
        self.wall = time.perf_counter() - self.start
        self.cpu = time.process_time() - self.cpu_start


def quiet_trainer(**kwargs: Any) -> pl.Trainer:
    """A Trainer without logger, checkpoints, progress bar or summary (so they do not enter the timings)."""
    defaults: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "devices": 1,
        "log_every_n_steps": 50,
    }
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def environment() -> dict[str, Any]:
    """The device and the versions, for every report."""
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    """Write the benchmark's results (when a path is given)."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
