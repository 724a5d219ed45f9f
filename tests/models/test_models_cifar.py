"""The CIFAR zoo and the ImageNet MobileNetV1: parameter counts, exact ``state_dict`` layout, forward, I/O.

The references (parameter counts of the CRD / mdistiller CIFAR-100 checkpoints and key → shape lists built
here from the published layout rules) are independent of the implementation.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_kd.models import create_model

#: Parameter counts with 100 classes (CIFAR-100 checkpoints of CRD / mdistiller).
PARAM_COUNTS = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "ResNet18": 11_220_132,
    "ResNet50": 23_705_252,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "vgg11": 9_277_284,
    "vgg13": 9_462_180,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
    "MobileNetV2": 812_836,
    "ShuffleV1": 949_258,
    "ShuffleV2": 1_355_528,
}

Shapes = dict[str, tuple[int, ...]]


# --------------------------------------------------------------------------------------------------------------
# Independent references: expected ``state_dict`` key → shape, in order, from the layout rules.
# --------------------------------------------------------------------------------------------------------------


class _Layout:
    def __init__(self) -> None:
        self.shapes: Shapes = {}

    def conv(self, key: str, out_c: int, in_c_per_group: int, k: int, bias: bool = False) -> None:
        self.shapes[f"{key}.weight"] = (out_c, in_c_per_group, k, k)
        if bias:
            self.shapes[f"{key}.bias"] = (out_c,)

    def bn(self, key: str, c: int) -> None:
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            self.shapes[f"{key}.{suffix}"] = (c,)
        self.shapes[f"{key}.num_batches_tracked"] = ()

    def linear(self, key: str, out_f: int, in_f: int) -> None:
        self.shapes[f"{key}.weight"] = (out_f, in_f)
        self.shapes[f"{key}.bias"] = (out_f,)


def cifar_resnet_layout(depth: int, widths: tuple[int, int, int, int], classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1", widths[0], in_chans, 3)
    lay.bn("bn1", widths[0])
    c_in = widths[0]
    for stage, (width, stride) in enumerate(zip(widths[1:], (1, 2, 2), strict=True), start=1):
        for i in range((depth - 2) // 6):
            p = f"layer{stage}.{i}"
            lay.conv(f"{p}.conv1", width, c_in, 3)
            lay.bn(f"{p}.bn1", width)
            lay.conv(f"{p}.conv2", width, width, 3)
            lay.bn(f"{p}.bn2", width)
            if i == 0 and (stride != 1 or c_in != width):
                lay.conv(f"{p}.downsample.0", width, c_in, 1)
                lay.bn(f"{p}.downsample.1", width)
            c_in = width
    lay.linear("fc", classes, widths[3])
    return lay.shapes


def resnetv2_layout(bottleneck: bool, blocks: tuple[int, ...], classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1", 64, in_chans, 3)
    lay.bn("bn1", 64)
    expansion = 4 if bottleneck else 1
    c_in = 64
    for stage, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), blocks, (1, 2, 2, 2), strict=True), 1):
        for i in range(n):
            p = f"layer{stage}.{i}"
            if bottleneck:
                lay.conv(f"{p}.conv1", planes, c_in, 1)
                lay.bn(f"{p}.bn1", planes)
                lay.conv(f"{p}.conv2", planes, planes, 3)
                lay.bn(f"{p}.bn2", planes)
                lay.conv(f"{p}.conv3", planes * 4, planes, 1)
                lay.bn(f"{p}.bn3", planes * 4)
            else:
                lay.conv(f"{p}.conv1", planes, c_in, 3)
                lay.bn(f"{p}.bn1", planes)
                lay.conv(f"{p}.conv2", planes, planes, 3)
                lay.bn(f"{p}.bn2", planes)
            if i == 0 and (stride != 1 or c_in != planes * expansion):
                lay.conv(f"{p}.shortcut.0", planes * expansion, c_in, 1)
                lay.bn(f"{p}.shortcut.1", planes * expansion)
            c_in = planes * expansion
    lay.linear("linear", classes, 512 * expansion)
    return lay.shapes


def wrn_layout(depth: int, k: int, classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1", 16, in_chans, 3)
    c_in = 16
    for group, width in enumerate((16 * k, 32 * k, 64 * k), start=1):
        for i in range((depth - 4) // 6):
            p = f"block{group}.layer.{i}"
            lay.bn(f"{p}.bn1", c_in)
            lay.conv(f"{p}.conv1", width, c_in, 3)
            lay.bn(f"{p}.bn2", width)
            lay.conv(f"{p}.conv2", width, width, 3)
            if c_in != width:
                lay.conv(f"{p}.convShortcut", width, c_in, 1)
            c_in = width
    lay.bn("bn1", 64 * k)
    lay.linear("fc", classes, 64 * k)
    return lay.shapes


VGG_CFGS = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


def vgg_layout(cfg: list[list[int]], classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    c_in = in_chans
    for b, widths in enumerate(cfg):
        for j, width in enumerate(widths):
            lay.conv(f"block{b}.{3 * j}", width, c_in, 3, bias=True)
            lay.bn(f"block{b}.{3 * j + 1}", width)
            c_in = width
    lay.linear("classifier", classes, 512)
    return lay.shapes


def mobilenetv2_layout(classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1.0", 16, in_chans, 3)
    lay.bn("conv1.1", 16)
    c_in = 16
    stages = [(1, 8, 1), (6, 12, 2), (6, 16, 3), (6, 32, 4), (6, 48, 3), (6, 80, 3), (6, 160, 1)]
    for s, (t, c, n) in enumerate(stages):
        for i in range(n):
            p = f"blocks.{s}.{i}.conv"
            hidden = c_in * t
            lay.conv(f"{p}.0", hidden, c_in, 1)
            lay.bn(f"{p}.1", hidden)
            lay.conv(f"{p}.3", hidden, 1, 3)  # depthwise
            lay.bn(f"{p}.4", hidden)
            lay.conv(f"{p}.6", c, hidden, 1)
            lay.bn(f"{p}.7", c)
            c_in = c
    lay.conv("conv2.0", 1280, 160, 1)
    lay.bn("conv2.1", 1280)
    lay.linear("classifier.0", classes, 1280)
    return lay.shapes


def shufflev1_layout(classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1", 24, in_chans, 1)
    lay.bn("bn1", 24)
    c_in, groups = 24, 3
    for stage, (out_c, n) in enumerate(((240, 4), (480, 8), (960, 4)), start=1):
        for i in range(n):
            p = f"layer{stage}.{i}"
            branch = out_c - c_in if i == 0 else out_c
            mid = branch // 4
            g1 = 1 if c_in == 24 else groups
            lay.conv(f"{p}.conv1", mid, c_in // g1, 1)
            lay.bn(f"{p}.bn1", mid)
            lay.conv(f"{p}.conv2", mid, 1, 3)
            lay.bn(f"{p}.bn2", mid)
            lay.conv(f"{p}.conv3", branch, mid // groups, 1)
            lay.bn(f"{p}.bn3", branch)
            c_in = out_c
    lay.linear("linear", classes, 960)
    return lay.shapes


def shufflev2_layout(classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("conv1", 24, in_chans, 1)
    lay.bn("bn1", 24)
    c_in = 24
    for stage, (out_c, n) in enumerate(((116, 3), (232, 7), (464, 3)), start=1):
        mid = out_c // 2
        p = f"layer{stage}.0"
        lay.conv(f"{p}.conv1", c_in, 1, 3)
        lay.bn(f"{p}.bn1", c_in)
        lay.conv(f"{p}.conv2", mid, c_in, 1)
        lay.bn(f"{p}.bn2", mid)
        lay.conv(f"{p}.conv3", mid, c_in, 1)
        lay.bn(f"{p}.bn3", mid)
        lay.conv(f"{p}.conv4", mid, 1, 3)
        lay.bn(f"{p}.bn4", mid)
        lay.conv(f"{p}.conv5", mid, mid, 1)
        lay.bn(f"{p}.bn5", mid)
        for i in range(1, n + 1):
            p = f"layer{stage}.{i}"
            lay.conv(f"{p}.conv1", mid, mid, 1)
            lay.bn(f"{p}.bn1", mid)
            lay.conv(f"{p}.conv2", mid, 1, 3)
            lay.bn(f"{p}.bn2", mid)
            lay.conv(f"{p}.conv3", mid, mid, 1)
            lay.bn(f"{p}.bn3", mid)
        c_in = out_c
    lay.conv("conv2", 1024, 464, 1)
    lay.bn("bn2", 1024)
    lay.linear("linear", classes, 1024)
    return lay.shapes


def mobilenetv1_layout(classes: int, in_chans: int) -> Shapes:
    lay = _Layout()
    lay.conv("model.0.0", 32, in_chans, 3)
    lay.bn("model.0.1", 32)
    c_in = 32
    widths = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    for j, width in enumerate(widths, start=1):
        lay.conv(f"model.{j}.0", c_in, 1, 3)
        lay.bn(f"model.{j}.1", c_in)
        lay.conv(f"model.{j}.3", width, c_in, 1)
        lay.bn(f"model.{j}.4", width)
        c_in = width
    lay.linear("fc", classes, 1024)
    return lay.shapes


def expected_layout(name: str, classes: int = 100, in_chans: int = 3) -> Shapes:
    thin, wide = (16, 16, 32, 64), (32, 64, 128, 256)
    if name.startswith("resnet"):
        wide_model = name.endswith("x4")
        depth = int(name.removeprefix("resnet").removesuffix("x4"))
        return cifar_resnet_layout(depth, wide if wide_model else thin, classes, in_chans)
    if name == "ResNet18":
        return resnetv2_layout(False, (2, 2, 2, 2), classes, in_chans)
    if name == "ResNet50":
        return resnetv2_layout(True, (3, 4, 6, 3), classes, in_chans)
    if name.startswith("wrn_"):
        _, depth, k = name.split("_")
        return wrn_layout(int(depth), int(k), classes, in_chans)
    if name in VGG_CFGS:
        return vgg_layout(VGG_CFGS[name], classes, in_chans)
    return {
        "MobileNetV2": mobilenetv2_layout,
        "ShuffleV1": shufflev1_layout,
        "ShuffleV2": shufflev2_layout,
        "MobileNetV1": mobilenetv1_layout,
    }[name](classes, in_chans)


def actual_layout(model: nn.Module) -> Shapes:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------------


def test_reference_layouts_agree_with_the_published_counts() -> None:
    """Sanity check of the references themselves: their parameter counts are the published ones."""
    for name, count in PARAM_COUNTS.items():
        shapes = expected_layout(name)
        total = sum(
            torch.Size(shape).numel()
            for key, shape in shapes.items()
            if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        assert total == count, name


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_cifar_zoo_count_layout_and_forward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=100)
    assert n_params(model) == PARAM_COUNTS[name]
    # Same keys, in the same order, with the same shapes as the shared checkpoints.
    assert list(actual_layout(model).items()) == list(expected_layout(name).items())
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32))
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 100)
    assert torch.isfinite(logits).all()
    assert not torch.equal(logits[0], logits[1])


def test_spot_check_layout_rules() -> None:
    keys = {name: set(create_model(name, num_classes=100).state_dict()) for name in ("resnet8x4", "resnet32")}
    assert "layer1.0.downsample.0.weight" in keys["resnet8x4"]
    assert "layer1.0.downsample.1.running_var" in keys["resnet8x4"]
    assert "layer2.0.downsample.0.weight" in keys["resnet32"]
    assert not any(key.startswith("layer1.0.downsample") for key in keys["resnet32"])
    assert "layer1.4.conv2.weight" in keys["resnet32"] and "layer1.5.conv1.weight" not in keys["resnet32"]

    wrn = create_model("wrn_40_2", num_classes=100).state_dict()
    assert wrn["block1.layer.0.convShortcut.weight"].shape == (32, 16, 1, 1)
    assert "block1.layer.1.convShortcut.weight" not in wrn
    assert "block3.layer.5.conv2.weight" in wrn and "block3.layer.6.conv2.weight" not in wrn
    assert "block1.layer.0.convShortcut.weight" not in create_model("wrn_16_1", num_classes=100).state_dict()

    vgg = create_model("vgg13", num_classes=100).state_dict()
    assert vgg["block0.3.weight"].shape == (64, 64, 3, 3)
    assert vgg["block0.3.bias"].shape == (64,)
    assert "block0.4.running_mean" in vgg and "block0.2.weight" not in vgg
    assert vgg["classifier.weight"].shape == (100, 512)

    mnv2 = create_model("MobileNetV2", num_classes=100).state_dict()
    assert mnv2["blocks.0.0.conv.0.weight"].shape == (16, 16, 1, 1)  # expand conv even with expansion 1
    assert mnv2["blocks.6.0.conv.7.running_mean"].shape == (160,)
    assert mnv2["classifier.0.weight"].shape == (100, 1280)

    r18 = create_model("ResNet18", num_classes=100).state_dict()
    assert "layer2.0.shortcut.0.weight" in r18 and "layer1.0.shortcut.0.weight" not in r18
    assert "layer1.0.shortcut.0.weight" in create_model("ResNet50", num_classes=100).state_dict()


@pytest.mark.parametrize("name", ["resnet8x4", "ResNet18", "wrn_16_2", "vgg8", "MobileNetV2", "ShuffleV1", "ShuffleV2"])
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = create_model(name, num_classes=10)
    with torch.no_grad():  # non-trivial BatchNorm running statistics
        source(torch.randn(4, 3, 32, 32) * 2 + 0.5)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": source.state_dict()}, path)

    target = create_model(name, num_classes=10).eval()
    source.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(target(x), source(x))
        result = target.load_state_dict(torch.load(path)["model"], strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        assert torch.equal(target(x), source(x))


@pytest.mark.parametrize("name", ["resnet8", "resnet8x4", "ResNet18", "wrn_16_1", "vgg8", "MobileNetV2", "ShuffleV1"])
def test_in_chans_one_at_28px_keeps_key_names(name: str) -> None:
    model = create_model(name, num_classes=10, in_chans=1)
    assert list(actual_layout(model).items()) == list(expected_layout(name, classes=10, in_chans=1).items())
    assert list(model.state_dict()) == list(create_model(name, num_classes=10).state_dict())
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_shufflev2_other_input_sizes() -> None:
    model = create_model("ShuffleV2", num_classes=10, in_chans=1).eval()
    assert model.conv1.weight.shape == (24, 1, 1, 1)
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 10)


def _capture(module: nn.Module) -> list[torch.Tensor]:
    store: list[torch.Tensor] = []
    module.register_forward_hook(lambda _m, _i, out: store.append(out))
    return store


def test_global_pooling_equals_the_original_fixed_pooling_at_32px() -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # CIFAR ResNet: AvgPool2d(8) on the last stage.
        model = create_model("resnet8", num_classes=10).eval()
        feats = _capture(model.layer3)
        logits = model(x)
        assert feats[0].shape[-2:] == (8, 8)
        torch.testing.assert_close(logits, model.fc(F.avg_pool2d(feats[0], 8).flatten(1)))
        # ShuffleNet V1: avg_pool2d(out, 4).
        model = create_model("ShuffleV1", num_classes=10).eval()
        feats = _capture(model.layer3)
        logits = model(x)
        torch.testing.assert_close(logits, model.linear(F.avg_pool2d(feats[0], 4).flatten(1)))
        # MobileNetV2: AvgPool2d(input_size // 16, ceil_mode=True) after conv2.
        model = create_model("MobileNetV2", num_classes=10).eval()
        feats = _capture(model.conv2)
        logits = model(x)
        pooled = F.avg_pool2d(feats[0], 2, ceil_mode=True).flatten(1)
        torch.testing.assert_close(logits, model.classifier(pooled))


def test_vgg_pool3_only_for_64px_inputs() -> None:
    model = create_model("vgg8", num_classes=10).eval()
    seen = _capture(model.block4)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
        model(torch.randn(1, 3, 64, 64))
        assert model(torch.randn(2, 3, 28, 28)).shape == (2, 10)
    assert seen[0].shape[-2:] == (4, 4)  # 32 px: pools 0-2 only
    assert seen[1].shape[-2:] == (4, 4)  # 64 px: pool3 as well (CRD's Tiny-ImageNet setting)


def test_wrn_pre_activation_shortcut() -> None:
    """With a channel change, the shortcut convolves the *pre-activated* input (bn1 + ReLU)."""
    torch.manual_seed(0)
    block = create_model("wrn_16_2", num_classes=10).block1.layer[0].eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        pre = F.relu(block.bn1(x))
        residual = block.conv2(F.relu(block.bn2(block.conv1(pre))))
        torch.testing.assert_close(block(x), block.convShortcut(pre) + residual)


def test_models_are_trainable_and_return_logits_only() -> None:
    model = create_model("resnet8", num_classes=5)
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    out.sum().backward()
    assert model.conv1.weight.grad is not None


def test_mobilenetv1_imagenet() -> None:
    model = create_model("MobileNetV1", num_classes=1000)
    assert n_params(model) == 4_231_976
    assert list(actual_layout(model).items()) == list(expected_layout("MobileNetV1", classes=1000).items())
    small = create_model("MobileNetV1", num_classes=10, in_chans=1).eval()
    assert small.model[0][0].weight.shape == (32, 1, 3, 3)
    with torch.no_grad():
        assert small(torch.randn(1, 1, 64, 64)).shape == (1, 10)


def test_shufflev2_net_size() -> None:
    assert create_model("ShuffleV2", num_classes=10, net_size=0.5).linear.in_features == 1024
    with pytest.raises(ValueError, match=r"Expected argument `net_size` to be one of \[0\.5, 1, 1\.5, 2\], but got 3"):
        create_model("ShuffleV2", num_classes=10, net_size=3)
