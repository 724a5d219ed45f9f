"""A training step that is not a logging step reads nothing back from the device (no host synchronisation).

Counted with a ``TorchDispatchMode``: every ``.item()``, ``bool(tensor)``, ``int(tensor)`` or value check is an
``aten._local_scalar_dense`` call. On an accelerator each one stalls the queue. The first steps' checks
(``check_finite_steps``) are the one allowed exception, and logging steps may read what they log.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader

from lightning_kd import DistillationModule, KnowledgeDistillation
from lightning_kd.presets import PRESETS, create_loss
from tests.helpers import LitClassifier, bn_teacher, make_trainer, mlp, random_dataset

SYNC = "aten._local_scalar_dense.default"


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


class _ProbeSteps(pl.Callback):
    """The dispatched operations from ``on_train_batch_start`` to ``on_train_batch_end`` of chosen steps."""

    def __init__(self, steps: tuple[int, ...]) -> None:
        self.steps = steps
        self.counts: dict[int, Counter[str]] = {}
        self._mode: _CountOps | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step in self.steps:
            self._mode = _CountOps()
            self._mode.__enter__()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self.counts[trainer.global_step - 1] = self._mode.ops
            self._mode = None


def _two_view_data() -> list[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
    x, y = random_dataset(64).tensors
    return [((x[i], -x[i]), y[i]) for i in range(len(y))]


def _run(module: pl.LightningModule, *, callbacks: list[pl.Callback] | None = None, two_views: bool = False) -> Any:
    probe = _ProbeSteps((0, 3, 4))
    data = DataLoader(_two_view_data() if two_views else random_dataset(64), batch_size=8)
    make_trainer(max_steps=6, callbacks=[*(callbacks or []), probe], log_every_n_steps=4).fit(module, data)
    return probe.counts


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_non_logging_module_step_does_not_synchronise(preset: str) -> None:
    module = DistillationModule(mlp(), bn_teacher(), create_loss(preset))
    counts = _run(module, two_views=PRESETS[preset].needs_views)
    assert counts[4][SYNC] == 0, f"{preset}: {counts[4][SYNC]} host reads in a non-logging step"
    assert counts[0][SYNC] > 0  # the first step checks values (finite logits, target range)
    assert counts[3][SYNC] > 0  # a logging step (the 4th) reads its diagnostics and the guard's buffer


@pytest.mark.parametrize("preset", ["kd_z", "ctkd_z", "dkd", "maxlogit_z"])
def test_a_non_logging_callback_step_does_not_synchronise(preset: str) -> None:
    counts = _run(LitClassifier(), callbacks=[KnowledgeDistillation(bn_teacher(), create_loss(preset))])
    assert counts[4][SYNC] == 0, f"{preset}: {counts[4][SYNC]} host reads in a non-logging step"
