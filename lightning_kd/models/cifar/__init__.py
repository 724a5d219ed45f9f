"""The CIFAR zoo of the knowledge-distillation literature; importing this package registers it.

Every model keeps the module names and shapes of the widely shared CIFAR-100 teacher checkpoints
(CRD / mdistiller), uses global average pooling before its classifier (so other input sizes work) and
returns the logits only.
"""

from lightning_kd.models.cifar.mobilenetv2 import CifarMobileNetV2
from lightning_kd.models.cifar.resnet import CifarResNet
from lightning_kd.models.cifar.resnetv2 import ResNetV2
from lightning_kd.models.cifar.shufflenetv1 import ShuffleNetV1
from lightning_kd.models.cifar.shufflenetv2 import ShuffleNetV2
from lightning_kd.models.cifar.vgg import CifarVGG
from lightning_kd.models.cifar.wrn import WideResNet

__all__ = [
    "CifarMobileNetV2",
    "CifarResNet",
    "CifarVGG",
    "ResNetV2",
    "ShuffleNetV1",
    "ShuffleNetV2",
    "WideResNet",
]
