"""Wide ResNets (Zagoruyko & Komodakis, 2016) for CIFAR: ``wrn_16_1``, ``wrn_16_2``, ``wrn_40_1``, ``wrn_40_2``.

Pre-activation layout of the CRD / mdistiller checkpoints: stem ``conv1``; three groups
``block{1,2,3}.layer.{i}`` of ``(depth - 4) / 6`` blocks with ``bn1``, ``conv1``, ``bn2``, ``conv2`` and,
only where the channel count changes, a 1×1 ``convShortcut``; a final ``bn1`` and the classifier ``fc``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["NetworkBlock", "WideBasicBlock", "WideResNet"]


class WideBasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3×3, BN-ReLU-(dropout)-conv3×3, plus shortcut.

    When the channel count changes, the shortcut is a 1×1 convolution ``convShortcut`` applied to the
    pre-activated input (as in the original implementation); otherwise it is the identity.

    Args:
        in_planes: Input channels.
        out_planes: Output channels.
        stride: Stride of the first convolution (and of ``convShortcut``).
        drop_rate: Dropout probability between the two convolutions.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut: nn.Conv2d | None = None  # checkpoint key name
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: Input feature map ``(B, in_planes, H, W)``.

        Returns:
            The output feature map ``(B, out_planes, H / stride, W / stride)``.
        """
        pre = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.convShortcut is None else self.convShortcut(pre)
        return shortcut + out


class NetworkBlock(nn.Module):
    """A group of :class:`WideBasicBlock` held in the Sequential ``layer``.

    Args:
        num_layers: Number of blocks.
        in_planes: Input channels of the first block.
        out_planes: Output channels of every block.
        stride: Stride of the first block.
        drop_rate: Dropout probability inside the blocks.
    """

    def __init__(self, num_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *(
                WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
                for i in range(num_layers)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the blocks.

        Args:
            x: Input feature map.

        Returns:
            The output feature map.
        """
        return self.layer(x)


class WideResNet(nn.Module):
    """Wide ResNet WRN-``depth``-``widen_factor`` for 32×32 inputs.

    Args:
        depth: Network depth ``6n + 4`` (16, 28, 40, …).
        widen_factor: Width multiplier ``k``; group widths are ``16k``, ``32k``, ``64k``.
        num_classes: Number of classes.
        in_chans: Input channels of the stem convolution.
        drop_rate: Dropout probability inside the blocks.

    Raises:
        ValueError: If ``depth`` is not of the form ``6n + 4`` or ``widen_factor`` < 1.
    """

    def __init__(
        self, depth: int, widen_factor: int, num_classes: int, in_chans: int = 3, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"Expected argument `depth` to be 6n + 4 with n >= 1, but got {depth!r}.")
        if widen_factor < 1:
            raise ValueError(f"Expected argument `widen_factor` to be an integer >= 1, but got {widen_factor!r}.")
        n = (depth - 4) // 6
        channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_chans, channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, channels[1], channels[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, channels[2], channels[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[3], num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the logits.

        Args:
            x: Images ``(B, in_chans, H, W)``.

        Returns:
            Logits ``(B, num_classes)``.
        """
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _wrn(depth: int, widen_factor: int, num_classes: int, in_chans: int, **kwargs: Any) -> WideResNet:
    return WideResNet(depth, widen_factor, num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("wrn_16_1")
def wrn_16_1(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> WideResNet:
    """WRN-16-1. See :class:`WideResNet`."""
    return _wrn(16, 1, num_classes, in_chans, **kwargs)


@register_model("wrn_16_2")
def wrn_16_2(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> WideResNet:
    """WRN-16-2. See :class:`WideResNet`."""
    return _wrn(16, 2, num_classes, in_chans, **kwargs)


@register_model("wrn_40_1")
def wrn_40_1(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> WideResNet:
    """WRN-40-1. See :class:`WideResNet`."""
    return _wrn(40, 1, num_classes, in_chans, **kwargs)


@register_model("wrn_40_2")
def wrn_40_2(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> WideResNet:
    """WRN-40-2. See :class:`WideResNet`."""
    return _wrn(40, 2, num_classes, in_chans, **kwargs)
