"""The per-step training accuracy equals torchmetrics' MulticlassAccuracy (which validation uses)."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from lightning_kd._metrics import TopKAccuracy


@pytest.mark.parametrize(("num_classes", "top_k"), [(10, 1), (10, 5), (3, 1), (100, 5)])
def test_topk_accuracy_equals_multiclass_accuracy(num_classes: int, top_k: int) -> None:
    g = torch.Generator().manual_seed(num_classes + top_k)
    ours, reference = TopKAccuracy(top_k), MulticlassAccuracy(num_classes, top_k=top_k, average="micro")
    for batch in (16, 7, 1):
        preds = torch.randn(batch, num_classes, generator=g)
        target = torch.randint(0, num_classes, (batch,), generator=g)
        ours.update(preds, target)
        reference.update(preds, target)
    torch.testing.assert_close(ours.compute(), reference.compute())


def test_topk_accuracy_by_hand() -> None:
    metric = TopKAccuracy(top_k=2)
    metric.update(torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]]), torch.tensor([2, 1, 1]))
    assert float(metric.compute()) == pytest.approx(2 / 3)  # rows 0 and 2 have their target in the top 2
