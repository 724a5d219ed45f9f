"""ImageNet-style ResNet18 / ResNet50 with a CIFAR stem (CRD's ``resnetv2``): ``ResNet18``, ``ResNet50``.

The stem is a 3×3 stride-1 convolution without max-pooling; four stages ``layer1``…``layer4`` of widths
64/128/256/512 (basic blocks ``[2, 2, 2, 2]`` or bottlenecks ``[3, 4, 6, 3]``) use projections named
``shortcut.{0,1}`` and the classifier is ``linear``, as in the CRD / mdistiller CIFAR-100 checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["ResNetBasicBlock", "ResNetBottleneck", "ResNetV2"]


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ResNetBasicBlock(nn.Module):
    """Basic block (two 3×3 conv-BN) with a ``shortcut`` Sequential (empty for the identity).

    Args:
        in_planes: Input channels.
        planes: Output channels.
        stride: Stride of the first convolution (and of the projection).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input feature map ``(B, in_planes, H, W)``.

        Returns:
            The output feature map ``(B, planes, H / stride, W / stride)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetBottleneck(nn.Module):
    """Bottleneck block (1×1, 3×3, 1×1 conv-BN; expansion 4) with a ``shortcut`` Sequential.

    Args:
        in_planes: Input channels.
        planes: Bottleneck width; the block outputs ``4 * planes`` channels.
        stride: Stride of the 3×3 convolution (and of the projection).
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input feature map ``(B, in_planes, H, W)``.

        Returns:
            The output feature map ``(B, 4 * planes, H / stride, W / stride)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNetV2(nn.Module):
    """ResNet with a CIFAR stem (3×3 stride-1 conv, no max-pool), as CRD's ``resnetv2``.

    Args:
        block: :class:`ResNetBasicBlock` or :class:`ResNetBottleneck`.
        num_blocks: Blocks per stage, e.g. ``[2, 2, 2, 2]``.
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
    """

    def __init__(
        self,
        block: type[ResNetBasicBlock] | type[ResNetBottleneck],
        num_blocks: Sequence[int],
        num_classes: int,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4:
            raise ValueError(f"Expected argument `num_blocks` to have 4 entries, but got {list(num_blocks)!r}.")
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(
        self,
        block: type[ResNetBasicBlock] | type[ResNetBottleneck],
        planes: int,
        blocks: int,
        stride: int,
    ) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers.append(block(self.in_planes, planes, stride if i == 0 else 1))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(torch.flatten(self.avgpool(x), 1))


@register_model("ResNet18")
def resnet18_cifar(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> ResNetV2:
    """ResNet-18 with a CIFAR stem (basic blocks ``[2, 2, 2, 2]``). See :class:`ResNetV2`."""
    return ResNetV2(ResNetBasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("ResNet50")
def resnet50_cifar(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> ResNetV2:
    """ResNet-50 with a CIFAR stem (bottlenecks ``[3, 4, 6, 3]``). See :class:`ResNetV2`."""
    return ResNetV2(ResNetBottleneck, [3, 4, 6, 3], num_classes=num_classes, in_chans=in_chans, **kwargs)
