"""The single entry point :func:`create_model`: registered zoo, ``timm:<name>`` and ``torchvision:<name>``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from lightning_kd._validation import check_min_int, close_matches
from lightning_kd.models._registry import PREFIX_SEPARATOR, get_builder, list_models

__all__ = ["create_model"]

_EXTERNAL_SOURCES = ("timm", "torchvision")

#: torchvision classifiers with auxiliary heads: their train-mode ``forward`` returns a named tuple unless
#: ``aux_logits=False``, which is therefore the default here (every model must return the logits only).
_TORCHVISION_AUX_LOGITS = frozenset({"googlenet", "inception_v3"})


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    matches = close_matches(word, candidates, n=5, cutoff=0.6)
    if not matches:
        return "No close match."
    return "Did you mean " + ", ".join(repr(m) for m in matches) + "?"


def create_model(name: str, *, num_classes: int, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """Build a classifier whose ``forward(x)`` returns the logits ``(B, num_classes)``.

    ``name`` is one of:

    * a registered name (see :func:`~lightning_kd.models.list_models`): the CIFAR zoo of the
      knowledge-distillation literature (``resnet8`` … ``resnet110``, ``resnet8x4``, ``resnet32x4``,
      ``ResNet18``, ``ResNet50``, ``wrn_16_1``, ``wrn_16_2``, ``wrn_40_1``, ``wrn_40_2``, ``vgg8`` … ``vgg19``,
      ``MobileNetV2``, ``ShuffleV1``, ``ShuffleV2``), whose ``state_dict`` matches the widely shared CIFAR-100
      teacher checkpoints (CRD / mdistiller), and the ImageNet ``MobileNetV1``. No weights are bundled: load
      a checkpoint with ``model.load_state_dict(torch.load(path)["model"])``.
    * ``"timm:<name>"``: any `timm` model, built by ``timm.create_model(name, pretrained=False,
      num_classes=num_classes, in_chans=in_chans, **kwargs)``; weights are downloaded only if you pass
      ``pretrained=True``.
    * ``"torchvision:<name>"``: any torchvision classifier, built by ``torchvision.models.get_model(name,
      weights=None, num_classes=num_classes, **kwargs)``; weights only if you pass ``weights=``. For
      ``in_chans != 3`` the stem convolution is replaced by one with the same hyper-parameters and
      ``in_chans`` inputs (its weights adapted from the original ones as in timm: summed over RGB for one
      channel, tiled and rescaled otherwise). ``googlenet`` and ``inception_v3`` default to
      ``aux_logits=False`` (and ``init_weights=True`` without weights).

    Args:
        name: The model name, optionally prefixed by ``timm:`` or ``torchvision:``.
        num_classes: Number of classes (size of the logits), at least 2.
        in_chans: Number of input channels, at least 1 (e.g. 1 for Fashion-MNIST). For the zoo it only
            changes the stem convolution's input channels; key names stay the same.
        **kwargs: Passed on to the builder (zoo), ``timm.create_model`` or ``torchvision.models.get_model``.

    Returns:
        The model, in training mode.

    Raises:
        ValueError: If ``num_classes`` or ``in_chans`` is not a valid integer, if ``name`` is unknown (the
            message lists close matches), or if a torchvision model's stem convolution cannot be found.

    Example:
        >>> import torch
        >>> from lightning_kd.models import create_model
        >>> model = create_model("resnet8", num_classes=100).eval()
        >>> sum(p.numel() for p in model.parameters())
        83892
        >>> with torch.no_grad():
        ...     model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 100])
        >>> create_model("wrn_16_1", num_classes=10, in_chans=1).conv1.weight.shape
        torch.Size([16, 1, 3, 3])
        >>> create_model("resnet9", num_classes=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `name` to be a registered model, ... got 'resnet9'. Did you mean 'resnet8', ...
    """
    if not isinstance(name, str):
        raise ValueError(f"Expected argument `name` to be a string, but got {name!r}.")
    check_min_int("num_classes", num_classes, 2)
    check_min_int("in_chans", in_chans, 1)

    prefix, sep, rest = name.partition(PREFIX_SEPARATOR)
    if sep:
        if prefix == "timm":
            return _create_timm(rest, num_classes=num_classes, in_chans=in_chans, **kwargs)
        if prefix == "torchvision":
            return _create_torchvision(rest, num_classes=num_classes, in_chans=in_chans, **kwargs)
        raise ValueError(
            f"Expected argument `name` to have the prefix 'timm:' or 'torchvision:' (or none), but got "
            f"{name!r} with prefix {prefix!r}. {_did_you_mean(prefix, _EXTERNAL_SOURCES)}"
        )

    builder = get_builder(name)
    if builder is None:
        raise ValueError(
            "Expected argument `name` to be a registered model, 'timm:<name>' or 'torchvision:<name>', but got "
            f"{name!r}. {_did_you_mean(name, list_models())} "
            "Call `lightning_kd.models.list_models()` to see the registered models."
        )
    if kwargs.pop("pretrained", False):
        raise ValueError(
            f"The registered model {name!r} ships without weights, so `pretrained=True` is not supported: "
            'load a checkpoint with `model.load_state_dict(torch.load(path)["model"])`, or use a '
            "'timm:<name>' / 'torchvision:<name>' model."
        )
    model = builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"The builder registered as {name!r} returned {type(model).__name__}, not an nn.Module.")
    return model


def _create_timm(name: str, *, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    import timm

    # Names with their own source prefix (``hf-hub:``, ``local-dir:``) are resolved by timm itself.
    if PREFIX_SEPARATOR not in name and not timm.is_model(name):
        raise ValueError(
            f"Expected argument `name` to be 'timm:' followed by a timm model name, but got {'timm:' + name!r}. "
            f"{_did_you_mean(name, timm.list_models())} See `timm.list_models()` for the available names."
        )
    pretrained = bool(kwargs.pop("pretrained", False))
    model: nn.Module = timm.create_model(
        name, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs
    )
    return model


def _torchvision_classifiers() -> list[str]:
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def _create_torchvision(name: str, *, num_classes: int, in_chans: int, **kwargs: Any) -> nn.Module:
    import torchvision

    classifiers = _torchvision_classifiers()
    if name not in classifiers:
        raise ValueError(
            "Expected argument `name` to be 'torchvision:' followed by a torchvision classification model, "
            f"but got {'torchvision:' + name!r}. {_did_you_mean(name, classifiers)} "
            "See `torchvision.models.list_models(module=torchvision.models)` for the available names."
        )
    weights = kwargs.pop("weights", None)
    if name in _TORCHVISION_AUX_LOGITS:
        kwargs.setdefault("aux_logits", False)
        if weights is None:  # keep today's init and silence torchvision's FutureWarning about it
            kwargs.setdefault("init_weights", True)
    model: nn.Module = torchvision.models.get_model(name, weights=weights, num_classes=num_classes, **kwargs)
    if in_chans != 3:
        if getattr(model, "transform_input", False):
            raise ValueError(
                f"torchvision model {name!r} has `transform_input=True`, which normalizes 3 RGB channels; "
                f"it cannot take in_chans={in_chans}. Pass `transform_input=False`."
            )
        _replace_stem(model, in_chans, model_name=name)
    return model


def _replace_stem(model: nn.Module, in_chans: int, *, model_name: str = "model") -> nn.Conv2d:
    """Replace the stem convolution of ``model`` (its first ``nn.Conv2d``) by one taking ``in_chans`` inputs.

    The stem must be the first ``nn.Conv2d`` registered in the model, take 3 input channels and have
    ``groups=1``; otherwise a ``ValueError`` is raised rather than guessing.

    Args:
        model: The model, modified in place.
        in_chans: The new number of input channels.
        model_name: Used in the error message.

    Returns:
        The new stem convolution.
    """
    found = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None or found[1].in_channels != 3 or found[1].groups != 1:
        where = "no nn.Conv2d" if found is None else f"{found[0]!r} = {found[1]!r}"
        raise ValueError(
            f"Cannot find the stem convolution of torchvision model {model_name!r} to set in_chans={in_chans}: "
            f"expected its first nn.Conv2d to take 3 input channels with groups=1, but found {where}. "
            "Use in_chans=3 (e.g. repeat grayscale images to 3 channels) or a 'timm:<name>' model."
        )
    from timm.models import adapt_input_conv  # timm's rule for adapting a stem to other input channels

    path, old = found
    new = nn.Conv2d(
        in_chans,
        old.out_channels,
        kernel_size=old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=1,
        bias=old.bias is not None,
        padding_mode=old.padding_mode,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(in_chans, old.weight))  # summed over RGB for one channel, else tiled
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    parent_path, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent_path), attr, new)
    return new
