"""Name → builder registry behind :func:`lightning_kd.models.create_model`.

A *builder* is any callable ``builder(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module``.
Builders are registered under a unique name with :func:`register_model`; the CIFAR and ImageNet zoos
of this package register themselves on import of :mod:`lightning_kd.models`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar, overload

from torch import nn

__all__ = ["ModelBuilder", "get_builder", "list_models", "register_model"]

ModelBuilder = Callable[..., nn.Module]
"""Signature of a builder: ``(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module``."""

_B = TypeVar("_B", bound=ModelBuilder)

#: The registry itself, in registration order. Private: use :func:`register_model` / :func:`list_models`.
_MODELS: dict[str, ModelBuilder] = {}

#: Separator between a source prefix (``timm``, ``torchvision``) and a model name; not allowed in names.
PREFIX_SEPARATOR = ":"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or name != name.strip() or PREFIX_SEPARATOR in name:
        raise ValueError(
            "Expected argument `name` to be a non-empty string without surrounding whitespace and without "
            f"{PREFIX_SEPARATOR!r} (reserved for the 'timm:' and 'torchvision:' prefixes), but got {name!r}."
        )
    return name


def _add(name: str, builder: ModelBuilder) -> None:
    if not callable(builder):
        raise ValueError(f"Expected the registered object to be callable, but got {builder!r}.")
    previous = _MODELS.get(name)
    if previous is not None and previous is not builder:
        warnings.warn(
            f"A model named {name!r} is already registered (builder "
            f"`{getattr(previous, '__module__', '?')}.{getattr(previous, '__qualname__', previous)}`); "
            f"it is replaced by `{getattr(builder, '__module__', '?')}."
            f"{getattr(builder, '__qualname__', builder)}`.",
            UserWarning,
            stacklevel=3,
        )
    _MODELS[name] = builder


@overload
def register_model(name: _B, /) -> _B: ...


@overload
def register_model(name: str | None = None, /) -> Callable[[_B], _B]: ...


def register_model(name: str | _B | None = None, /) -> _B | Callable[[_B], _B]:
    """Register a model builder under a name, for :func:`~lightning_kd.models.create_model`.

    Use it as a decorator, with an explicit name (``@register_model("my_net")``) or without one
    (``@register_model`` / ``@register_model()``, which use the function's ``__name__``). The builder is
    called as ``builder(num_classes=..., in_chans=..., **kwargs)`` and must return an ``nn.Module`` whose
    ``forward`` returns the logits. The decorated function is returned unchanged.

    Registering a name that is already taken replaces the previous builder and emits a ``UserWarning``.

    Args:
        name: The name to register under (no ``":"``, which is reserved for the ``timm:`` and
            ``torchvision:`` prefixes), or the builder itself when used as a bare decorator.

    Returns:
        The decorator, or the unchanged builder when used as a bare decorator.

    Raises:
        ValueError: If the name is empty, has surrounding whitespace or contains ``":"``.

    Example::

        from torch import nn
        from lightning_kd.models import create_model, register_model

        @register_model("tiny_mlp")
        def tiny_mlp(*, num_classes: int, in_chans: int = 3, hidden: int = 64) -> nn.Module:
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

        model = create_model("tiny_mlp", num_classes=10, hidden=32)
    """
    if callable(name):
        builder = name
        _add(_check_name(getattr(builder, "__name__", None)), builder)
        return builder

    explicit = None if name is None else _check_name(name)

    def decorator(builder: _B) -> _B:
        key = explicit if explicit is not None else _check_name(getattr(builder, "__name__", None))
        _add(key, builder)
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of all registered models, sorted case-insensitively.

    The list holds the built-in CIFAR zoo of the knowledge-distillation literature (``resnet8`` …
    ``resnet32x4``, ``ResNet18``, ``ResNet50``, ``wrn_16_1`` … ``wrn_40_2``, ``vgg8`` … ``vgg19``,
    ``MobileNetV2``, ``ShuffleV1``, ``ShuffleV2``), the ImageNet ``MobileNetV1`` and anything added with
    :func:`register_model`. Any `timm` or `torchvision` classifier is also available through
    ``create_model("timm:<name>", ...)`` / ``create_model("torchvision:<name>", ...)``; those are not listed.

    Returns:
        The registered names.

    Example:
        >>> from lightning_kd.models import list_models
        >>> "resnet32x4" in list_models() and "wrn_40_2" in list_models()
        True
        >>> [name for name in list_models() if name.startswith("Shuffle")]
        ['ShuffleV1', 'ShuffleV2']
    """
    return sorted(_MODELS, key=lambda name: (name.lower(), name))


def get_builder(name: str) -> ModelBuilder | None:
    """The builder registered under ``name``, or ``None``.

    Args:
        name: A registered name (exact, case-sensitive).

    Returns:
        The builder, or ``None`` if nothing is registered under ``name``.
    """
    return _MODELS.get(name)
