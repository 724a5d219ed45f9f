"""``timm:<name>`` and ``torchvision:<name>`` models through :func:`lightning_kd.models.create_model`.

Nothing is downloaded: every model is built without pretrained weights (the default).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn

from lightning_kd.models import create_model
from lightning_kd.models._factory import _replace_stem

# ---------------------------------------------------------------------------------------------------- timm


def test_timm_vit_for_cifar() -> None:
    model = create_model("timm:vit_tiny_patch16_224", num_classes=100, img_size=32, patch_size=4).eval()
    assert model.patch_embed.proj.weight.shape == (192, 3, 4, 4)
    assert model.head.out_features == 100
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_timm_in_chans_and_pretrained_false() -> None:
    model = create_model(
        "timm:deit_tiny_patch16_224", num_classes=10, in_chans=1, img_size=32, patch_size=8, pretrained=False
    ).eval()
    assert model.patch_embed.proj.weight.shape == (192, 1, 8, 8)
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_timm_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError) as info:
        create_model("timm:vit_tiny_patch16_22", num_classes=10)
    message = str(info.value)
    assert "but got 'timm:vit_tiny_patch16_22'" in message
    assert "Did you mean 'vit_tiny_patch16_224'" in message
    assert "timm.list_models()" in message


# ----------------------------------------------------------------------------------------------- torchvision


def test_torchvision_resnet18_in_chans_1() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=10)
    torch.manual_seed(0)
    model = create_model("torchvision:resnet18", num_classes=10, in_chans=1)
    stem = model.conv1
    assert isinstance(stem, nn.Conv2d)
    assert (stem.in_channels, stem.out_channels) == (1, 64)
    assert (stem.kernel_size, stem.stride, stem.padding, stem.bias) == ((7, 7), (2, 2), (3, 3), None)
    # The new stem is the original one summed over RGB (timm's rule), the rest is untouched.
    torch.testing.assert_close(stem.weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    assert model.fc.out_features == 10
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_torchvision_in_chans_3_is_the_plain_model() -> None:
    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v3_small(num_classes=7)
    torch.manual_seed(0)
    model = create_model("torchvision:mobilenet_v3_small", num_classes=7)
    assert list(model.state_dict()) == list(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize(("name", "stem"), [("mobilenet_v3_small", "features.0.0"), ("squeezenet1_1", "features.0")])
def test_torchvision_stem_of_other_families(name: str, stem: str) -> None:
    model = create_model(f"torchvision:{name}", num_classes=5, in_chans=4).eval()
    conv = model.get_submodule(stem)
    assert isinstance(conv, nn.Conv2d) and conv.in_channels == 4
    with torch.no_grad():
        assert model(torch.randn(2, 4, 64, 64)).shape == (2, 5)


def test_torchvision_googlenet_returns_logits_in_train_mode() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FutureWarning about the default initialisation
        model = create_model("torchvision:googlenet", num_classes=10)
    assert model.aux1 is None
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_torchvision_transform_input_with_other_in_chans() -> None:
    with pytest.raises(ValueError, match=r"'inception_v3' has `transform_input=True`"):
        create_model("torchvision:inception_v3", num_classes=10, in_chans=1, transform_input=True)


def test_torchvision_unknown_or_non_classifier_names() -> None:
    with pytest.raises(ValueError, match=r"but got 'torchvision:resnet19'\. Did you mean 'resnet18'"):
        create_model("torchvision:resnet19", num_classes=10)
    with pytest.raises(ValueError, match=r"torchvision classification model, but got 'torchvision:fcn_resnet50'"):
        create_model("torchvision:fcn_resnet50", num_classes=10)


def test_replace_stem_refuses_to_guess() -> None:
    with pytest.raises(ValueError, match=r"Cannot find the stem convolution .* no nn.Conv2d"):
        _replace_stem(nn.Sequential(nn.Flatten(), nn.Linear(3, 4)), 1)
    with pytest.raises(ValueError, match=r"expected its first nn.Conv2d to take 3 input channels"):
        _replace_stem(nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3)), 2)


def test_replaced_stem_weights_follow_timms_rule() -> None:
    """Summed over RGB for one input channel; tiled and scaled by 3 / in_chans otherwise (so the response to a
    constant image is kept)."""
    weight = torch.arange(6.0).reshape(2, 3, 1, 1)

    def stem(in_chans: int) -> torch.Tensor:
        model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False))
        with torch.no_grad():
            model[0].weight.copy_(weight)
        return _replace_stem(model, in_chans).weight.detach()

    torch.testing.assert_close(stem(1), torch.tensor([3.0, 12.0]).reshape(2, 1, 1, 1))
    torch.testing.assert_close(stem(2), weight[:, :2] * 1.5)
    six = stem(6)
    torch.testing.assert_close(six, torch.cat([weight, weight], 1) * 0.5)
    torch.testing.assert_close(six.sum(1), weight.sum(1))
