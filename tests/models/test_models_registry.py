"""Registry and argument checks of :mod:`lightning_kd.models`: ``register_model``, ``list_models``, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import lightning_kd.models as models
from lightning_kd.models import _registry, create_model, list_models, register_model

#: The CIFAR zoo of the KD literature (CRD / mdistiller names) plus the ImageNet MobileNetV1.
EXPECTED_NAMES = {
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "ResNet18",
    "ResNet50",
    "wrn_16_1",
    "wrn_16_2",
    "wrn_40_1",
    "wrn_40_2",
    "vgg8",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "MobileNetV2",
    "ShuffleV1",
    "ShuffleV2",
    "MobileNetV1",
}


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Restore the global registry after a test that registers models."""
    saved = dict(_registry._MODELS)
    try:
        yield
    finally:
        _registry._MODELS.clear()
        _registry._MODELS.update(saved)


class _Linear(nn.Module):
    def __init__(self, num_classes: int, in_chans: int, hidden: int = 4) -> None:
        super().__init__()
        self.hidden = hidden
        self.in_chans = in_chans
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_public_api() -> None:
    assert models.__all__ == ["create_model", "list_models", "register_model"]
    for name in models.__all__:
        assert callable(getattr(models, name))


def test_list_models_holds_the_zoo_sorted_without_duplicates() -> None:
    names = list_models()
    assert set(names) >= EXPECTED_NAMES
    assert len(names) == len(set(names))
    assert names == sorted(names, key=str.lower)
    assert not any(":" in name for name in names)


def test_register_model_with_name_and_create(clean_registry: None) -> None:
    seen: dict[str, Any] = {}

    @register_model("test_tiny_linear")
    def builder(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> nn.Module:
        seen.update(num_classes=num_classes, in_chans=in_chans, **kwargs)
        return _Linear(num_classes, in_chans, **kwargs)

    assert builder.__name__ == "builder"  # returned unchanged
    assert "test_tiny_linear" in list_models()
    model = create_model("test_tiny_linear", num_classes=7, in_chans=2, hidden=9)
    assert seen == {"num_classes": 7, "in_chans": 2, "hidden": 9}
    assert isinstance(model, _Linear) and model.hidden == 9
    assert model(torch.randn(3, 2, 4, 4)).shape == (3, 7)
    # The default in_chans reaches the builder too.
    create_model("test_tiny_linear", num_classes=5)
    assert seen["in_chans"] == 3


def test_register_model_bare_and_empty_call_use_the_function_name(clean_registry: None) -> None:
    @register_model
    def test_bare_builder(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        return _Linear(num_classes, in_chans)

    @register_model()
    def test_call_builder(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        return _Linear(num_classes, in_chans)

    assert {"test_bare_builder", "test_call_builder"} <= set(list_models())
    assert isinstance(create_model("test_bare_builder", num_classes=3), _Linear)
    assert isinstance(create_model("test_call_builder", num_classes=3), _Linear)


def test_register_duplicate_name_warns_and_replaces(clean_registry: None) -> None:
    @register_model("test_dup")
    def first(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        return nn.Linear(1, num_classes)

    with pytest.warns(UserWarning, match=r"'test_dup' is already registered") as record:

        @register_model("test_dup")
        def second(*, num_classes: int, in_chans: int = 3) -> nn.Module:
            return _Linear(num_classes, in_chans)

    assert record[0].filename == __file__  # points at the registering code, not the library
    assert isinstance(create_model("test_dup", num_classes=4), _Linear)
    assert list_models().count("test_dup") == 1


def test_register_duplicate_of_a_zoo_name_warns(clean_registry: None) -> None:
    with pytest.warns(UserWarning, match=r"'resnet8' is already registered"):
        register_model("resnet8")(lambda **kw: _Linear(kw["num_classes"], kw["in_chans"]))
    assert isinstance(create_model("resnet8", num_classes=3), _Linear)


@pytest.mark.parametrize("name", ["", "timm:foo", " padded", 3])
def test_register_model_rejects_bad_names(name: Any, clean_registry: None) -> None:
    with pytest.raises(ValueError, match=r"Expected argument `name` to be a non-empty string"):
        register_model(name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "Expected argument `num_classes` to be an integer >= 2, but got 1."),
        ({"num_classes": 0}, "Expected argument `num_classes` to be an integer >= 2, but got 0."),
        ({"num_classes": 10.0}, "Expected argument `num_classes` to be an integer >= 2, but got 10.0."),
        ({"num_classes": "10"}, "Expected argument `num_classes` to be an integer >= 2, but got '10'."),
        ({"num_classes": True}, "Expected argument `num_classes` to be an integer >= 2, but got True."),
        ({"num_classes": 10, "in_chans": 0}, "Expected argument `in_chans` to be an integer >= 1, but got 0."),
        ({"num_classes": 10, "in_chans": 1.0}, "Expected argument `in_chans` to be an integer >= 1, but got 1.0."),
    ],
)
@pytest.mark.parametrize("name", ["resnet8", "timm:resnet18", "torchvision:resnet18"])
def test_invalid_num_classes_and_in_chans(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        create_model(name, **kwargs)


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError) as info:
        create_model("resnet9", num_classes=10)
    message = str(info.value)
    assert message.startswith("Expected argument `name` to be a registered model")
    assert "but got 'resnet9'" in message
    assert "Did you mean 'resnet8'" in message
    assert "list_models()" in message


def test_unknown_name_close_matches_ignore_case() -> None:
    with pytest.raises(ValueError, match=r"but got 'resnet18'\. Did you mean 'ResNet18'"):
        create_model("resnet18", num_classes=10)
    with pytest.raises(ValueError, match=r"Did you mean 'MobileNetV2'"):
        create_model("mobilenetv2", num_classes=10)


def test_unknown_name_without_close_match() -> None:
    with pytest.raises(ValueError, match=r"but got 'zzzzzz'\. No close match\. Call `lightning_kd.models"):
        create_model("zzzzzz", num_classes=10)


def test_unknown_prefix() -> None:
    with pytest.raises(ValueError, match=r"prefix 'timm:' or 'torchvision:'.*'tim:resnet18'.*Did you mean 'timm'"):
        create_model("tim:resnet18", num_classes=10)


def test_name_must_be_a_string() -> None:
    with pytest.raises(ValueError, match=r"^Expected argument `name` to be a string, but got 3\.$"):
        create_model(3, num_classes=10)  # type: ignore[arg-type]


def test_zoo_pretrained() -> None:
    with pytest.raises(ValueError, match=r"'resnet8' ships without weights"):
        create_model("resnet8", num_classes=10, pretrained=True)
    model = create_model("resnet8", num_classes=10, pretrained=False)
    assert model.fc.out_features == 10


def test_unexpected_kwarg_reaches_the_builder() -> None:
    with pytest.raises(TypeError, match="not_an_option"):
        create_model("resnet8", num_classes=10, not_an_option=1)


def test_builder_must_return_a_module(clean_registry: None) -> None:
    register_model("test_not_a_module")(lambda **kwargs: "oops")
    with pytest.raises(TypeError, match=r"'test_not_a_module' returned str, not an nn.Module"):
        create_model("test_not_a_module", num_classes=3)
