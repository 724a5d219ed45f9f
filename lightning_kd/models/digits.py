"""The small networks of ``lightning-kd demo`` on scikit-learn's 8x8 digits: ``demo_cnn`` and ``demo_mlp``.

Registered like the rest of the zoo, so recipes, ``analyze`` and ``create_model`` know them by name.
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctests)
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["demo_cnn", "demo_mlp"]


@register_model("demo_cnn")
def demo_cnn(*, num_classes: int, in_chans: int = 1, width: int = 16) -> nn.Module:
    """The demo's teacher: three 3x3 convolutions with BatchNorm, a 2x2 max-pool, global average pooling.

    Args:
        num_classes: Number of classes.
        in_chans: Input channels.
        width: Channels of the first convolution (the others have twice as many).

    Example:
        >>> model = demo_cnn(num_classes=10)
        >>> model(torch.zeros(2, 1, 8, 8)).shape, sum(p.numel() for p in model.parameters())
        (torch.Size([2, 10]), 14538)
    """
    w = width
    return nn.Sequential(
        nn.Conv2d(in_chans, w, 3, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, padding=1),
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1),
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * w, num_classes),
    )


@register_model("demo_mlp")
def demo_mlp(*, num_classes: int, in_chans: int = 1, image_size: int = 8, hidden: int = 8) -> nn.Module:
    """The demo's student: ``Flatten -> Linear(in_chans * image_size**2, hidden) -> ReLU -> Linear``.

    Args:
        num_classes: Number of classes.
        in_chans: Input channels.
        image_size: Side of the (square) input images.
        hidden: Hidden units.

    Example:
        >>> model = demo_mlp(num_classes=10)
        >>> model(torch.zeros(2, 1, 8, 8)).shape, sum(p.numel() for p in model.parameters())
        (torch.Size([2, 10]), 610)
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_chans * image_size * image_size, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
