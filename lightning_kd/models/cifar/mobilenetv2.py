"""MobileNetV2 for CIFAR (width 0.5, expansion 6) as in CRD / mdistiller: ``MobileNetV2``.

Layout: stride-2 stem ``conv1.{0,1}``; seven stages ``blocks.{s}`` of inverted residuals whose Sequential
``conv`` holds expand 1×1 (``0``), BN (``1``), depthwise 3×3 (``3``), BN (``4``), project 1×1 (``6``) and BN
(``7``) — the expand convolution exists even with expansion 1; ``conv2.{0,1}`` to 1280 channels; global
average pooling and ``classifier.0``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["CifarMobileNetV2", "InvertedResidual"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Inverted residual: 1×1 expand, 3×3 depthwise, 1×1 linear projection, each followed by BN.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the depthwise convolution.
        expand_ratio: Expansion factor of the hidden width (the expand conv is kept even when it is 1).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input feature map ``(B, in_channels, H, W)``.

        Returns:
            The output feature map ``(B, out_channels, H / stride, W / stride)``.
        """
        out = self.conv(x)
        return x + out if self.use_residual else out


class CifarMobileNetV2(nn.Module):
    """MobileNetV2 for 32×32 inputs in the layout of the CRD checkpoints.

    Args:
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
        width_mult: Width multiplier of every stage (0.5 in the KD literature); the last conv keeps 1280
            channels unless ``width_mult > 1``.
        expand_ratio: Expansion factor of all stages but the first (which uses 1).
    """

    #: ``(expansion, channels, repeats, stride)`` per stage; ``None`` is replaced by ``expand_ratio``.
    SETTINGS: tuple[tuple[int | None, int, int, int], ...] = (
        (1, 16, 1, 1),
        (None, 24, 2, 1),
        (None, 32, 3, 2),
        (None, 64, 4, 2),
        (None, 96, 3, 1),
        (None, 160, 3, 2),
        (None, 320, 1, 1),
    )

    def __init__(self, num_classes: int, in_chans: int = 3, width_mult: float = 0.5, expand_ratio: int = 6) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"Expected argument `width_mult` to be > 0, but got {width_mult!r}.")
        if expand_ratio < 1:
            raise ValueError(f"Expected argument `expand_ratio` to be an integer >= 1, but got {expand_ratio!r}.")
        channels = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(in_chans, channels, 3, 2)
        self.blocks = nn.ModuleList()
        for t, c, n, s in self.SETTINGS:
            out_channels = int(c * width_mult)
            stage = []
            for i in range(n):
                stage.append(
                    InvertedResidual(channels, out_channels, s if i == 0 else 1, expand_ratio if t is None else t)
                )
                channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        last_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(channels, last_channels, 1, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last_channels, num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        x = self.conv2(x)
        return self.classifier(torch.flatten(self.avgpool(x), 1))


@register_model("MobileNetV2")
def mobilenetv2_cifar(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarMobileNetV2:
    """MobileNetV2 with width 0.5 and expansion 6 (CRD's ``mobile_half``). See :class:`CifarMobileNetV2`."""
    kwargs.setdefault("width_mult", 0.5)
    kwargs.setdefault("expand_ratio", 6)
    return CifarMobileNetV2(num_classes=num_classes, in_chans=in_chans, **kwargs)
