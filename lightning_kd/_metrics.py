"""The per-step training accuracy: a torchmetrics ``Metric`` whose update reads nothing back from the device.

torchmetrics' ``MulticlassAccuracy(top_k=5)`` one-hot encodes the targets in every update, and
``torch.nn.functional.one_hot`` checks the values on the CPU (two reads per update). In the training step, where
the integration promises no host synchronisation, this counts the samples whose target is among the top-k
predictions instead: a ``topk``, a comparison and a sum, accumulated on the device. It stays a torchmetrics
``Metric``, so its states are summed over DDP processes in ``compute`` as every other metric's. Validation and
test keep ``MulticlassAccuracy``; ``tests/test_metrics.py`` checks that both give the same values.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from typing_extensions import override

__all__ = ["TopKAccuracy"]


class TopKAccuracy(Metric):
    """Micro-averaged top-k accuracy of class scores (B, C) against integer targets (B,).

    Example:
        >>> metric = TopKAccuracy(top_k=2)
        >>> metric.update(torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4]]), torch.tensor([2, 1]))
        >>> metric.compute()
        tensor(0.5000)
    """

    full_state_update = False
    correct: Tensor
    total: Tensor

    def __init__(self, top_k: int = 1) -> None:
        super().__init__()
        self.top_k = top_k
        self.add_state("correct", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    @override
    def update(self, preds: Tensor, target: Tensor) -> None:
        k = min(self.top_k, preds.shape[1])
        if k == 1:  # argmax, as MulticlassAccuracy's top-1 (the same choice among tied scores)
            hits = preds.argmax(dim=1) == target
        else:
            hits = (preds.topk(k, dim=1).indices == target.unsqueeze(1)).any(dim=1)
        self.correct += hits.sum()
        self.total += target.numel()

    @override
    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp_min(1)
