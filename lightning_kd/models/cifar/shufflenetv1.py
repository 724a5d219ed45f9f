"""ShuffleNet V1 (Zhang et al., 2018) for CIFAR, groups 3, as in CRD / mdistiller: ``ShuffleV1``.

Layout: 1×1 stem ``conv1`` (24 channels) and ``bn1``; stages ``layer1``…``layer3`` of 4/8/4 bottlenecks
(``conv1`` grouped 1×1, ``bn1``, ``conv2`` depthwise 3×3, ``bn2``, ``conv3`` grouped 1×1, ``bn3``) with
out channels 240/480/960, the first of each stage strided with an average-pooled shortcut concatenated to
the residual branch; global average pooling and the classifier ``linear``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["ChannelShuffle", "ShuffleNetV1", "ShuffleV1Bottleneck"]


class ChannelShuffle(nn.Module):
    """Channel shuffle: ``(B, g·c, H, W) → (B, c·g, H, W)`` by transposing the group and channel axes.

    Args:
        groups: Number of groups ``g``.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shuffle the channels.

        Args:
            x: Feature map ``(B, C, H, W)`` with ``C`` divisible by ``groups``.

        Returns:
            The feature map with shuffled channels, same shape.
        """
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleV1Bottleneck(nn.Module):
    """ShuffleNet V1 unit.

    With stride 2 the residual branch outputs ``out_channels`` channels, concatenated with the 3×3
    average-pooled input; with stride 1 it is added to the input.

    Args:
        in_channels: Input channels.
        out_channels: Output channels of the residual branch.
        stride: 1 or 2.
        groups: Groups of the 1×1 convolutions (the first one is not grouped when ``in_channels == 24``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid_channels = out_channels // 4
        first_groups = 1 if in_channels == 24 else groups
        self.conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.shuffle1 = ChannelShuffle(first_groups)
        self.conv2 = nn.Conv2d(
            mid_channels, mid_channels, kernel_size=3, stride=stride, padding=1, groups=mid_channels, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1)) if stride == 2 else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x: Input feature map ``(B, in_channels, H, W)``.

        Returns:
            The output feature map.
        """
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.shuffle1(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        return F.relu(torch.cat([out, res], 1) if self.stride == 2 else out + res)


class ShuffleNetV1(nn.Module):
    """ShuffleNet V1 for 32×32 inputs in the layout of the CRD checkpoints.

    Args:
        out_channels: Output channels of the three stages, e.g. ``(240, 480, 960)``.
        num_blocks: Units per stage, e.g. ``(4, 8, 4)``.
        groups: Groups of the 1×1 convolutions, e.g. 3.
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
    """

    def __init__(
        self,
        out_channels: Sequence[int],
        num_blocks: Sequence[int],
        groups: int,
        num_classes: int,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_channels = 24
        self.layer1 = self._make_layer(out_channels[0], num_blocks[0], groups)
        self.layer2 = self._make_layer(out_channels[1], num_blocks[1], groups)
        self.layer3 = self._make_layer(out_channels[2], num_blocks[2], groups)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_channels[2], num_classes)

    def _make_layer(self, out_channels: int, num_blocks: int, groups: int) -> nn.Sequential:
        layers = []
        for i in range(num_blocks):
            # The strided first unit concatenates its input, so its branch produces the difference.
            branch = out_channels - self.in_channels if i == 0 else out_channels
            layers.append(ShuffleV1Bottleneck(self.in_channels, branch, stride=2 if i == 0 else 1, groups=groups))
            self.in_channels = out_channels
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(self.avgpool(x), 1))


@register_model("ShuffleV1")
def shufflev1(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet V1 with groups 3 (channels 240/480/960, units 4/8/4). See :class:`ShuffleNetV1`."""
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), 3, num_classes=num_classes, in_chans=in_chans, **kwargs)
