"""VGG with batch normalization for CIFAR: ``vgg8``, ``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``.

Layout of the CRD / mdistiller checkpoints: five Sequentials ``block0`` … ``block4`` of
``(3×3 conv with bias, BN, ReLU)`` triples whose last ReLU is dropped (so ``block{b}.{3j}`` is a conv and
``block{b}.{3j+1}`` a BN), 2×2 max-pools ``pool0`` … ``pool3`` between blocks (``pool3`` only for inputs
of 64 px or more, as CRD does for 64-px inputs), global average pooling ``pool4`` and the classifier
``classifier`` (``Linear(512, num_classes)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_kd.models._registry import register_model

__all__ = ["VGG_CONFIGS", "CifarVGG"]

#: Conv widths per block of each configuration (CRD naming: S = vgg8, A = vgg11, B = vgg13, D = vgg16, E = vgg19).
VGG_CONFIGS: dict[str, list[list[int]]] = {
    "S": [[64], [128], [256], [512], [512]],
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _make_block(widths: Sequence[int], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.BatchNorm2d(width), nn.ReLU(True)]
        in_channels = width
    return nn.Sequential(*layers[:-1])


class CifarVGG(nn.Module):
    """VGG-BN for 32×32 inputs in the layout of the CRD checkpoints.

    Args:
        cfg: Conv widths of the five blocks, e.g. ``VGG_CONFIGS["B"]``; the last block must end with 512.
        num_classes: Number of classes.
        in_chans: Input channels of the first convolution.

    Raises:
        ValueError: If ``cfg`` does not have five non-empty blocks ending with 512 channels.
    """

    def __init__(self, cfg: Sequence[Sequence[int]], num_classes: int, in_chans: int = 3) -> None:
        super().__init__()
        if len(cfg) != 5 or any(len(block) == 0 for block in cfg) or cfg[-1][-1] != 512:
            raise ValueError(
                f"Expected argument `cfg` to have 5 non-empty blocks, the last ending with 512, but got {cfg!r}."
            )
        self.block0 = _make_block(cfg[0], in_chans)
        self.block1 = _make_block(cfg[1], cfg[0][-1])
        self.block2 = _make_block(cfg[2], cfg[1][-1])
        self.block3 = _make_block(cfg[3], cfg[2][-1])
        self.block4 = _make_block(cfg[4], cfg[3][-1])
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
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
        height = x.shape[2]
        x = self.pool0(F.relu(self.block0(x)))
        x = self.pool1(F.relu(self.block1(x)))
        x = self.pool2(F.relu(self.block2(x)))
        x = F.relu(self.block3(x))
        if height >= 64:
            x = self.pool3(x)
        x = F.relu(self.block4(x))
        return self.classifier(torch.flatten(self.pool4(x), 1))


@register_model("vgg8")
def vgg8_bn(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarVGG:
    """VGG-8 with BN (config ``"S"``). See :class:`CifarVGG`."""
    return CifarVGG(VGG_CONFIGS["S"], num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("vgg11")
def vgg11_bn(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarVGG:
    """VGG-11 with BN (config ``"A"``). See :class:`CifarVGG`."""
    return CifarVGG(VGG_CONFIGS["A"], num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("vgg13")
def vgg13_bn(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarVGG:
    """VGG-13 with BN (config ``"B"``). See :class:`CifarVGG`."""
    return CifarVGG(VGG_CONFIGS["B"], num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("vgg16")
def vgg16_bn(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarVGG:
    """VGG-16 with BN (config ``"D"``). See :class:`CifarVGG`."""
    return CifarVGG(VGG_CONFIGS["D"], num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model("vgg19")
def vgg19_bn(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> CifarVGG:
    """VGG-19 with BN (config ``"E"``). See :class:`CifarVGG`."""
    return CifarVGG(VGG_CONFIGS["E"], num_classes=num_classes, in_chans=in_chans, **kwargs)
