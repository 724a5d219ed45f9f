"""ShuffleNet V2 (Ma et al., 2018) for CIFAR, net size 1, as in CRD / mdistiller: ``ShuffleV2``.

Layout: 1×1 stem ``conv1`` (24 channels) and ``bn1``; stages ``layer1``…``layer3``, each a down-sampling
unit (``conv1``…``conv5``, ``bn1``…``bn5``) followed by 3/7/3 basic units (``conv1``…``conv3``,
``bn1``…``bn3`` on half of the channels), with 116/232/464 channels; ``conv2``/``bn2`` to 1024 channels,
global average pooling and the classifier ``linear``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_kd.models._registry import register_model
from lightning_kd.models.cifar.shufflenetv1 import ChannelShuffle

__all__ = ["NET_SIZES", "ShuffleNetV2", "ShuffleV2BasicUnit", "ShuffleV2DownUnit"]

#: Channels ``(stage1, stage2, stage3, last conv)`` and basic units per stage, per net size.
NET_SIZES: dict[float, tuple[tuple[int, int, int, int], tuple[int, int, int]]] = {
    0.5: ((48, 96, 192, 1024), (3, 7, 3)),
    1: ((116, 232, 464, 1024), (3, 7, 3)),
    1.5: ((176, 352, 704, 1024), (3, 7, 3)),
    2: ((224, 488, 976, 2048), (3, 7, 3)),
}


class ShuffleV2BasicUnit(nn.Module):
    """Basic unit: split the channels in halves, transform one (1×1, depthwise 3×3, 1×1), concat, shuffle.

    Args:
        channels: Input and output channels (even).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(half, half, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, kernel_size=3, stride=1, padding=1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x: Input feature map ``(B, channels, H, W)``.

        Returns:
            The output feature map, same shape.
        """
        half = x.shape[1] // 2
        x1, x2 = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return self.shuffle(torch.cat([x1, out], 1))


class ShuffleV2DownUnit(nn.Module):
    """Down-sampling unit: two strided branches of ``out_channels / 2`` channels each, concat, shuffle.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (even).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        # Left branch: depthwise 3×3 (stride 2), 1×1.
        self.conv1 = nn.Conv2d(
            in_channels, in_channels, kernel_size=3, stride=2, padding=1, groups=in_channels, bias=False
        )
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # Right branch: 1×1, depthwise 3×3 (stride 2), 1×1.
        self.conv3 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, kernel_size=3, stride=2, padding=1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, kernel_size=1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the unit.

        Args:
            x: Input feature map ``(B, in_channels, H, W)``.

        Returns:
            The output feature map ``(B, out_channels, H / 2, W / 2)``.
        """
        left = self.bn1(self.conv1(x))
        left = F.relu(self.bn2(self.conv2(left)))
        right = F.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = F.relu(self.bn5(self.conv5(right)))
        return self.shuffle(torch.cat([left, right], 1))


class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 for 32×32 inputs in the layout of the CRD checkpoints.

    Args:
        out_channels: Channels of the three stages and of the last 1×1 conv, e.g. ``(116, 232, 464, 1024)``.
        num_blocks: Basic units per stage after the down-sampling unit, e.g. ``(3, 7, 3)``.
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
    """

    def __init__(
        self, out_channels: Sequence[int], num_blocks: Sequence[int], num_classes: int, in_chans: int = 3
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_channels = 24
        self.layer1 = self._make_layer(out_channels[0], num_blocks[0])
        self.layer2 = self._make_layer(out_channels[1], num_blocks[1])
        self.layer3 = self._make_layer(out_channels[2], num_blocks[2])
        self.conv2 = nn.Conv2d(out_channels[2], out_channels[3], kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(out_channels[3], num_classes)

    def _make_layer(self, out_channels: int, num_blocks: int) -> nn.Sequential:
        layers: list[nn.Module] = [ShuffleV2DownUnit(self.in_channels, out_channels)]
        layers += [ShuffleV2BasicUnit(out_channels) for _ in range(num_blocks)]
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
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(torch.flatten(self.avgpool(x), 1))


@register_model("ShuffleV2")
def shufflev2(*, num_classes: int, in_chans: int = 3, net_size: float = 1, **kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet V2 (net size 1: channels 116/232/464, last conv 1024). See :class:`ShuffleNetV2`.

    Args:
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
        net_size: One of ``0.5``, ``1``, ``1.5``, ``2`` (the KD zoo uses 1).
        **kwargs: Passed to :class:`ShuffleNetV2`.

    Returns:
        The model.

    Raises:
        ValueError: If ``net_size`` is not supported.
    """
    if net_size not in NET_SIZES:
        raise ValueError(f"Expected argument `net_size` to be one of {sorted(NET_SIZES)}, but got {net_size!r}.")
    channels, blocks = NET_SIZES[net_size]
    return ShuffleNetV2(channels, blocks, num_classes=num_classes, in_chans=in_chans, **kwargs)
