"""ImageNet MobileNetV1 (Howard et al., 2017) as used for ResNet50 → MobileNetV1 distillation: ``MobileNetV1``.

Layout of the mdistiller checkpoint: a Sequential ``model`` holding a 3×3 stride-2 conv-BN-ReLU stem
(``model.0``), thirteen depthwise-separable blocks (``model.1`` … ``model.13``, each depthwise 3×3 conv,
BN, ReLU, pointwise 1×1 conv, BN, ReLU) with widths 64, 128 (s2), 128, 256 (s2), 256, 512 (s2), 512 ×5,
1024 (s2), 1024, and the pooling ``model.14``; then the classifier ``fc`` (``Linear(1024, num_classes)``).
The pooling is global (adaptive), which equals the original 7×7 average pooling for 224-px inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["MobileNetV1"]

#: ``(out_channels, stride)`` of the depthwise-separable blocks.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


def _conv_bn(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _conv_dw(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 (width 1.0) for 224×224 ImageNet inputs in the layout of the mdistiller checkpoint.

    Args:
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(in_chans, 32, 2)]
        channels = 32
        for out_channels, stride in _BLOCKS:
            layers.append(_conv_dw(channels, out_channels, stride))
            channels = out_channels
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.model = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        return self.fc(torch.flatten(self.model(x), 1))


@register_model("MobileNetV1")
def mobilenetv1(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> MobileNetV1:
    """ImageNet MobileNetV1 (the student of ResNet50 → MobileNetV1 distillation). See :class:`MobileNetV1`."""
    return MobileNetV1(num_classes=num_classes, in_chans=in_chans, **kwargs)
