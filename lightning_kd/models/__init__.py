"""Model zoo: ``create_model(name, num_classes=..., in_chans=...)`` for teachers and students.

* the CIFAR zoo of the knowledge-distillation literature (``resnet8`` … ``resnet32x4``, ``ResNet18``,
  ``ResNet50``, ``wrn_*``, ``vgg*``, ``MobileNetV2``, ``ShuffleV1``, ``ShuffleV2``) with the ``state_dict``
  layout of the shared CRD / mdistiller CIFAR-100 checkpoints, and the ImageNet ``MobileNetV1``;
* ``"timm:<name>"`` for any timm model and ``"torchvision:<name>"`` for any torchvision classifier;
* ``demo_cnn`` and ``demo_mlp``, the small networks of ``lightning-kd demo`` (8x8 digits);
* your own models, registered with :func:`register_model`.

Every model's ``forward(x)`` returns the logits ``(B, num_classes)``.
"""

from lightning_kd.models import cifar, digits, imagenet  # noqa: F401  (registers the zoo)
from lightning_kd.models._factory import create_model
from lightning_kd.models._registry import list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
