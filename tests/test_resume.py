"""Kill ``lightning-kd fit`` mid-epoch, resume it with ``--ckpt_path last``, and get the uninterrupted run's weights.

The interrupted run and its resume are subprocesses of ``python -m lightning_kd fit``; the interrupted one is
paused by a callback at a fixed batch of its second epoch (after the first epoch's ``last.ckpt`` is written) and
killed with SIGKILL there, like a machine that goes away: nothing runs at exit. The uninterrupted run of the
same config runs in the test's process meanwhile, with the same number of threads.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_kd.cli import main
from lightning_kd.data import DigitsDataModule

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
EPOCHS = 2
STEPS_PER_EPOCH = 23  # ceil(1437 training digits / 64)


class OrderedDigits(DigitsDataModule):
    """Digits without shuffling: the data order of an epoch does not depend on the process's RNG history."""

    @override
    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_set, "train", shuffle=False)


class PauseAt(pl.Callback):
    """At ``(epoch, batch)``: write ``marker`` and wait to be killed (exit 3 after ``timeout`` seconds)."""

    def __init__(self, epoch: int, batch: int, marker: str, timeout: float = 300.0) -> None:
        self.epoch, self.batch, self.marker, self.timeout = epoch, batch, marker, timeout

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            Path(self.marker).write_text(f"{trainer.global_step}\n")
            time.sleep(self.timeout)
            os._exit(3)


def _config(root: Path, callbacks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": EPOCHS,
            "default_root_dir": str(root),
            "accelerator": "cpu",
            "devices": 1,
            "deterministic": True,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 5,
            "callbacks": callbacks,
        },
        "model": {
            "class_path": "lightning_kd.ClassifierModule",
            "init_args": {
                "model": "demo_cnn",  # BatchNorm: its running statistics must resume too
                "num_classes": 10,
                "in_chans": 1,
                "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05, "momentum": 0.9}},
                "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1}},
            },
        },
        "data": {"class_path": "test_resume.OrderedDigits", "init_args": {"batch_size": 64}},
        "export": {"dirpath": str(root / "export")},
    }


def _write_config(tmp_path: Path, name: str, callbacks: list[dict[str, Any]] | None = None) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path / name, callbacks or [])))
    return config


def _start(config: Path, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),  # as in this process, which runs the reference
    }
    log = open(config.with_suffix(f".{len(list(config.parent.glob('*.log')))}.log"), "w")  # noqa: SIM115
    command = [sys.executable, "-m", "lightning_kd", "fit", "--config", str(config), *extra]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=config.parent)


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("*.log")))


def _validation(run_dir: Path) -> list[tuple[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [(row["epoch"], row["val/acc1"]) for row in csv.DictReader(f) if row.get("val/acc1")]


@pytest.fixture
def _restore_torch_flags(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process run sets Lightning's ``deterministic=True`` flags: give the other tests theirs back."""
    monkeypatch.setattr(sys, "argv", ["lightning-kd"])
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", os.environ.get("CUBLAS_WORKSPACE_CONFIG", ""))
    enabled, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.mark.usefixtures("_restore_torch_flags")
def test_kill_mid_epoch_and_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    marker = tmp_path / "paused"
    pause = {"class_path": "test_resume.PauseAt", "init_args": {"epoch": 1, "batch": 7, "marker": str(marker)}}
    interrupted = _start(_write_config(tmp_path, "b", callbacks=[pause]))
    assert main(["fit", "--config", str(_write_config(tmp_path, "a"))]) == 0  # the reference, meanwhile
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert interrupted.poll() is None, _logs(tmp_path)
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.1)
    interrupted.kill()  # SIGKILL in epoch 1: epoch 0 is in last.ckpt, the 7 batches of epoch 1 are lost
    interrupted.wait(timeout=60)
    run_dir = tmp_path / "b" / "version_0"
    assert int(marker.read_text()) == STEPS_PER_EPOCH + 7
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    resumed = _start(_write_config(tmp_path, "b"), "--ckpt_path", "last")  # the same config, without the pause
    assert resumed.wait(timeout=300) == 0, _logs(tmp_path)

    assert [p.name for p in (tmp_path / "b").iterdir() if p.name.startswith("version_")] == ["version_0"]
    expected = torch.load(tmp_path / "a" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    got = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (got["epoch"], got["global_step"]) == (expected["epoch"], expected["global_step"]) == (1, 2 * 23)
    # Bitwise: the same operations in the same order on the same CPU, from the same checkpointed state.
    assert expected["state_dict"].keys() == got["state_dict"].keys()
    for key, value in expected["state_dict"].items():
        assert torch.equal(value, got["state_dict"][key]), key
    expected_momentum = [s["momentum_buffer"] for s in expected["optimizer_states"][0]["state"].values()]
    got_momentum = [s["momentum_buffer"] for s in got["optimizer_states"][0]["state"].values()]
    assert len(got_momentum) == len(expected_momentum) > 0
    assert all(torch.equal(a, b) for a, b in zip(expected_momentum, got_momentum, strict=True))
    assert got["lr_schedulers"] == expected["lr_schedulers"] and len(got["lr_schedulers"]) == 1
    # The run's metrics.csv covers every epoch once, with the uninterrupted run's values.
    assert _validation(run_dir) == _validation(tmp_path / "a" / "version_0")
    assert [epoch for epoch, _ in _validation(run_dir)] == ["0", "1"]
