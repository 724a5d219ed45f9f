"""CIFAR ResNets of the knowledge-distillation literature: ``resnet8`` … ``resnet110``, ``resnet8x4``, ``resnet32x4``.

The layout (module names, shapes) equals the CIFAR-100 teacher checkpoints shared by CRD and mdistiller:
a 3×3 stem ``conv1``/``bn1``, three stages ``layer1``…``layer3`` of ``(depth - 2) / 6`` basic blocks
(``conv1``, ``bn1``, ``conv2``, ``bn2`` and, where the shape changes, a projection ``downsample.{0,1}``),
global average pooling and the classifier ``fc``. Stage widths are 16/32/64 after a 16-channel stem, or
64/128/256 after a 32-channel stem for the "×4" models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["BasicBlock", "CifarResNet"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity or 1×1-projection shortcut.

    Args:
        in_planes: Input channels.
        planes: Output channels.
        stride: Stride of the first convolution (and of the projection).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input feature map ``(B, in_planes, H, W)``.

        Returns:
            The output feature map ``(B, planes, H / stride, W / stride)``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """ResNet for 32×32 inputs (He et al., 2016, Sec. 4.2) in the layout of the CRD checkpoints.

    Args:
        depth: Network depth ``6n + 2`` (8, 14, 20, 32, 44, 56, 110, …).
        num_filters: Widths ``[stem, stage1, stage2, stage3]``, e.g. ``[16, 16, 32, 64]``.
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.

    Raises:
        ValueError: If ``depth`` is not of the form ``6n + 2`` or ``num_filters`` does not have 4 entries.
    """

    def __init__(self, depth: int, num_filters: Sequence[int], num_classes: int, in_chans: int = 3) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"Expected argument `depth` to be 6n + 2 with n >= 1, but got {depth!r}.")
        if len(num_filters) != 4:
            raise ValueError(f"Expected argument `num_filters` to have 4 entries, but got {list(num_filters)!r}.")
        n = (depth - 2) // 6
        self.in_planes = num_filters[0]
        self.conv1 = nn.Conv2d(in_chans, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(num_filters[1], n, stride=1)
        self.layer2 = self._make_layer(num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(num_filters[3], n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(num_filters[3] * BasicBlock.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            layers.append(BasicBlock(self.in_planes, planes, stride if i == 0 else 1))
            self.in_planes = planes * BasicBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


_THIN = (16, 16, 32, 64)
_WIDE = (32, 64, 128, 256)


@register_model("resnet8")
def resnet8(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-8 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(8, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet14")
def resnet14(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-14 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(14, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet20")
def resnet20(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-20 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(20, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet32")
def resnet32(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-32 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(32, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet44")
def resnet44(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-44 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(44, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet56")
def resnet56(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-56 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(56, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet110")
def resnet110(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-110 (widths 16/16/32/64). See :class:`CifarResNet`."""
    return CifarResNet(110, _THIN, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet8x4")
def resnet8x4(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-8 with 4× wider stages (32/64/128/256). See :class:`CifarResNet`."""
    return CifarResNet(8, _WIDE, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("resnet32x4")
def resnet32x4(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-32 with 4× wider stages (32/64/128/256). See :class:`CifarResNet`."""
    return CifarResNet(32, _WIDE, num_classes=num_classes, in_chans=in_chans, **kwargs)
