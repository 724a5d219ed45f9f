"""ImageNet models of the knowledge-distillation literature; importing this package registers them."""

from lightning_kd.models.imagenet.mobilenetv1 import MobileNetV1

__all__ = ["MobileNetV1"]
