"""The shipped recipes: generated from one set of tables, their headers, and a training step of every one.

* ``test_recipes_match_generator``: the committed YAMLs under ``lightning_kd/recipes/`` are exactly what
  ``recipes/generate.py`` writes.
* The settings and header tests compare recipes with values typed here from the papers and released configs.
* ``test_recipe_fast_dev_run`` (every recipe; marker ``recipes``, deselect with ``-m "not recipes"``):
  ``lightning-kd fit`` parses it, instantiates the model (student and teacher, the teacher loaded from its
  checkpoint), the DataModule and the Trainer, and runs one ``fit`` step and one validation step with
  ``fast_dev_run``.

The data are tiny fake copies written once per session in a workspace folder laid out as the recipes expect
(``data/cifar-100-python/{train,test,meta}`` as torchvision's pickles, ``data/imagenet/{train,val}`` as PNG
ImageFolders, the four Fashion-MNIST IDX files), and each recipe's teacher is a ``create_model(...)`` state_dict
saved as ``{"model": state_dict}`` at its relative teacher path (``checkpoints/cifar100/<teacher>.pth``, ...).
To keep those files small, each convolution kernel holds one random input channel repeated over the others
(a stride-0 tensor, which ``torch.save`` stores once): the teacher has the real architecture and shapes, loads
through the real path and gives finite, input-dependent logits. The tests run in that workspace, so the recipes'
relative paths are used as written; a second ``--config`` file overrides only what the fake data need: batch
size 2, no worker processes, no md5 check for the fake CIFAR files, 4 ImageNet classes at 32 px, 48-px ViT inputs,
the Fashion-MNIST folder, and CPU.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import pickle
import re
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.cli import LightningCLI
from PIL import Image
from torch import Tensor

from lightning_kd import AblationModule, ClassifierModule, DistillationModule
from lightning_kd.cli import KDLightningCLI
from lightning_kd.models import create_model
from lightning_kd.recipes import list_recipes

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "lightning_kd" / "recipes"
GENERATOR_DIR = REPO / "recipes"
#: Recipe ids: paths under lightning_kd/recipes/ without ".yaml".
RECIPES = sorted(p.relative_to(RECIPE_DIR).with_suffix("").as_posix() for p in RECIPE_DIR.rglob("*.yaml"))
IMAGENET_CLASSES = 4
VIT_TEST_SIZE = 48  # not 32, so a batch of the right size shows the ViT transforms ran
TEACHER_LINE = re.compile(r"^# Teacher top-1: (\d+\.\d+) \(([^()]+)\)$", re.MULTILINE)

#: Published top-1 of the teachers the recipes load, typed from [LS] Tables 1-3 (shared CIFAR-100 checkpoints,
#: torchvision's ImageNet weights).
PUBLISHED_TEACHERS = {
    ("cifar100", "resnet32x4"): 79.42,
    ("cifar100", "wrn_40_2"): 75.61,
    ("cifar100", "vgg13"): 74.64,
    ("cifar100", "ResNet50"): 79.34,
    ("cifar100", "resnet56"): 72.34,
    ("cifar100", "resnet110"): 74.31,
    ("imagenet", "torchvision:resnet34"): 73.31,
    ("imagenet", "torchvision:resnet50"): 76.16,
}


def load_generator() -> ModuleType:
    """``recipes/generate.py`` as a module (a script beside its table modules, not part of the package)."""
    spec = importlib.util.spec_from_file_location("recipes_generate", GENERATOR_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def recipe_text(name: str) -> str:
    return (RECIPE_DIR / f"{name}.yaml").read_text(encoding="utf-8")


@functools.cache
def read_recipe(name: str) -> dict[str, Any]:
    """A recipe's config (parsed once per session: treat it as read-only)."""
    config: dict[str, Any] = yaml.safe_load(recipe_text(name))
    return config


def _data_class(config: dict[str, Any]) -> str:
    return str(config["data"]["class_path"]).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------------------------------------
# Fake data and teachers.
# --------------------------------------------------------------------------------------------------------
def write_fake_cifar100(root: Path, n_train: int = 4, n_test: int = 4) -> None:
    """torchvision's ``cifar-100-python/{train,test,meta}`` pickles (str keys, as read with latin1)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [int(v) for v in rng.integers(0, 100, n)]
        entry = {
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            "fine_labels": fine,
            "coarse_labels": [label // 5 for label in fine],
            "filenames": [f"{split}_{i}.png" for i in range(n)],
            "batch_label": "fake",
        }
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {"fine_label_names": [f"class_{i}" for i in range(100)], "coarse_label_names": [str(i) for i in range(20)]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)


def write_fake_imagenet(root: Path, classes: int = IMAGENET_CLASSES, per_class: int = 2) -> None:
    """``root/{train,val}/<class>/<image>.png``, random 40x40 RGB images."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"img_{i}.png")


def write_fake_fashion_mnist(root: Path, n_train: int = 4, n_test: int = 4) -> None:
    """The four gzip-compressed IDX files of Fashion-MNIST."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        with gzip.open(root / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">iiii", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(root / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">ii", 2049, n) + labels.tobytes())


def _num_classes(config: dict[str, Any]) -> int:
    if _data_class(config) == "ImageNetDataModule":
        return IMAGENET_CLASSES
    return int(config["model"]["init_args"]["num_classes"])


def compact_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """The model's state_dict in half precision, each conv kernel one input channel repeated (stored once).

    jsonargparse reads a file given for a ``str | nn.Module`` argument to see whether it is a config, and the
    teacher is loaded once per recipe: full random weights would mean ~50 MB per ResNet-50 teacher read many
    times per test. The shapes are the architecture's, so loading still checks them.
    """
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point() and value.ndim > 2 and value.shape[1] > 1:
            value = (value[:, :1] * value.shape[1] ** -0.5).half().expand(value.shape)
        elif value.is_floating_point():
            value = value.half()
        state[key] = value
    return state


def write_fake_teachers(workspace: Path) -> None:
    """A random teacher checkpoint (``{"model": state_dict}``) at each recipe's teacher path."""
    written: set[str] = set()
    for name in RECIPES:
        config = read_recipe(name)
        args = config["model"]["init_args"]
        if "teacher" not in args or args["teacher"] in written:
            continue
        torch.manual_seed(0)
        model = create_model(
            args["teacher_arch"],
            num_classes=_num_classes(config),
            in_chans=args.get("in_chans", 3),
            **(args.get("teacher_kwargs") or {}),
        )
        path = workspace / args["teacher"]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": compact_state_dict(model)}, path)
        written.add(args["teacher"])


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the recipes expect: fake ``data/`` and ``checkpoints/``."""
    root = tmp_path_factory.mktemp("workspace")
    write_fake_cifar100(root / "data")
    write_fake_imagenet(root / "data" / "imagenet")
    write_fake_fashion_mnist(root / "data" / "fashion_mnist")
    write_fake_teachers(root)
    return root


def overrides(name: str, workspace: Path) -> dict[str, Any]:
    """The config that fits a recipe to the fake data and one ``fast_dev_run`` step on the CPU.

    It is given as a second ``--config`` file, which LightningCLI merges over the recipe exactly as it would the
    same ``--key=value`` flags, but validates once rather than once per flag (about a tenth of a test's time).
    """
    config = read_recipe(name)
    data = _data_class(config)
    trainer = {"accelerator": "cpu", "devices": 1, "fast_dev_run": 1}
    trainer |= {"enable_progress_bar": False, "enable_model_summary": False}
    data_args: dict[str, Any] = {"batch_size": 2}
    model_args: dict[str, Any] = {}
    if data in ("CIFAR100DataModule", "CIFAR100ViTDataModule"):
        data_args |= {"num_workers": 0, "verify_checksums": False}
    if data == "CIFAR100ViTDataModule":
        key = "student_kwargs" if "student" in config["model"]["init_args"] else "model_kwargs"
        model_args[key] = {**config["model"]["init_args"][key], "img_size": VIT_TEST_SIZE}
        data_args["image_size"] = VIT_TEST_SIZE
    elif data == "ImageNetDataModule":
        data_args |= {"num_workers": 0, "num_classes": IMAGENET_CLASSES, "image_size": 32}
        model_args["num_classes"] = IMAGENET_CLASSES
    elif data == "FashionMNISTDataModule":
        data_args["root"] = str(workspace / "data" / "fashion_mnist")
    out: dict[str, Any] = {"trainer": trainer, "data": {"init_args": data_args}}
    if model_args:
        out["model"] = {"init_args": model_args}
    if "dirpath" in config.get("export", {}):  # keep exported teachers out of the shared checkpoints/
        out["export"] = {"dirpath": str(workspace / "exported")}
    return out


# --------------------------------------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------------------------------------
def test_recipes_match_generator() -> None:
    generator = load_generator()
    rendered = {path.removesuffix(".yaml"): text for path, text in generator.render_all().items()}
    on_disk = {name: recipe_text(name) for name in RECIPES}
    assert sorted(on_disk) == sorted(rendered), "run `python recipes/generate.py` (recipes added or removed)"
    stale = [name for name in rendered if on_disk[name] != rendered[name]]
    assert not stale, f"run `python recipes/generate.py`: out of date: {stale[:5]}"
    assert generator.main(["--check"]) == 0


def test_generator_check_finds_a_changed_and_a_stale_file(tmp_path: Path) -> None:
    generator = load_generator()
    assert generator.main(["--root", str(tmp_path)]) == 0  # writes every recipe into an empty folder
    assert len(list(tmp_path.rglob("*.yaml"))) == len(RECIPES)
    target = tmp_path / "cifar100" / "kd" / "vgg13_vgg8.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace("lr: 0.05", "lr: 0.5"), encoding="utf-8")
    stale = tmp_path / "cifar100" / "kd" / "old_pair.yaml"
    stale.write_text(f"{generator.GENERATED_MARK}: edit its tables.\ntrainer: {{}}\n", encoding="utf-8")
    mine = tmp_path / "cifar100" / "kd" / "my_own.yaml"  # not generated: left alone
    mine.write_text("trainer: {}\n", encoding="utf-8")
    assert generator.main(["--check", "--root", str(tmp_path)]) == 1
    assert generator.main(["--root", str(tmp_path)]) == 0
    assert "lr: 0.05" in target.read_text(encoding="utf-8") and not stale.exists() and mine.exists()
    assert generator.main(["--check", "--root", str(tmp_path)]) == 0  # a file of one's own is not the tables'


def test_generator_files_are_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in GENERATOR_DIR.glob("*.py")}
    assert len(sizes) >= 5 and max(sizes.values()) <= 400, sizes


def test_recipe_set() -> None:
    """The experiments the recipes must cover, each with a one-line description."""
    methods = ["kd", "kd_z", "ctkd", "ctkd_z", "dkd", "dkd_z", "mlkd", "mlkd_z", "maxlogit_z", "dist", "ttm", "wttm"]
    pairs = [
        "resnet32x4_ShuffleV2", "resnet32x4_wrn_16_2", "resnet32x4_wrn_40_2", "wrn_40_2_resnet8x4",
        "wrn_40_2_MobileNetV2", "vgg13_MobileNetV2", "ResNet50_MobileNetV2", "resnet32x4_resnet8x4", "vgg13_vgg8",
        "wrn_40_2_wrn_40_1", "wrn_40_2_wrn_16_2", "resnet56_resnet20", "resnet110_resnet32", "resnet110_resnet20",
    ]  # fmt: skip
    expected = {f"cifar100/{m}/{p}" for m in methods for p in pairs}
    expected |= {f"cifar100/{m}/{p}_same_schedule" for m in ("mlkd", "mlkd_z") for p in pairs}
    expected |= {
        f"cifar100/teachers/{t}" for t in ("resnet32x4", "wrn_40_2", "vgg13", "ResNet50", "resnet56", "resnet110")
    }
    expected |= {
        f"imagenet/{m}/{p}"
        for m in ("kd", "kd_z", "dkd", "dkd_z")
        for p in ("resnet34_resnet18", "resnet50_MobileNetV1")
    }
    expected |= {f"vit/{kind}/{s}" for s in ("deit_tiny", "pit_tiny") for kind in ("scratch",)}
    expected |= {f"vit/kd_z/resnet56_{s}" for s in ("deit_tiny", "pit_tiny")}
    assert expected <= set(RECIPES)
    assert not any("/maxlogit/" in name for name in RECIPES)  # one spelling per method: the preset name
    for prefix in ("fashion_mnist/teachers/", "fashion_mnist/kd_z/", "digits/teachers/", "digits/kd_z/"):
        assert any(name.startswith(prefix) for name in RECIPES), prefix
    listed = list_recipes(RECIPE_DIR)
    assert [r.name for r in listed] == RECIPES and all(r.description for r in listed)


# --------------------------------------------------------------------------------------------------------
# Settings, against the papers' and released configs' values.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "temperature", "kd_weight", "ce_weight"),
    [
        ("cifar100/kd_z/resnet32x4_resnet8x4", 2.0, 9.0, 0.1),
        ("cifar100/kd_z/resnet110_resnet20", 4.0, 12.0, 0.1),
        ("cifar100/kd_z/vgg13_vgg8", 3.0, 9.0, 0.1),
        ("cifar100/kd_z/resnet32x4_wrn_40_2", 3.0, 9.0, 0.1),
        ("cifar100/kd_z/ResNet50_MobileNetV2", 3.0, 1.0, 0.1),
        ("cifar100/kd/wrn_40_2_wrn_40_1", 4.0, 0.9, 0.1),
        ("imagenet/kd_z/resnet34_resnet18", 2.0, 9.0, 1.0),
        ("imagenet/kd/resnet34_resnet18", 1.0, 0.5, 0.5),
        ("vit/kd_z/resnet56_deit_tiny", 3.0, 10.0, 0.5),
        ("vit/kd_z/resnet56_pit_tiny", 2.0, 9.0, 0.5),
    ],
)
def test_kd_settings(name: str, temperature: float, kd_weight: float, ce_weight: float) -> None:
    loss = read_recipe(name)["model"]["init_args"]["loss"]["init_args"]
    assert (loss["temperature"], loss["kd_weight"], loss["ce_weight"]) == (temperature, kd_weight, ce_weight)


@pytest.mark.parametrize(
    ("pair", "beta"),
    [("resnet32x4_resnet8x4", 8.0), ("resnet56_resnet20", 2.0), ("resnet110_resnet32", 2.0), ("vgg13_vgg8", 6.0),
     ("vgg13_MobileNetV2", 6.0), ("wrn_40_2_wrn_16_2", 6.0), ("wrn_40_2_wrn_40_1", 6.0)],
)  # fmt: skip
def test_dkd_settings(pair: str, beta: float) -> None:
    dkd = read_recipe(f"cifar100/dkd/{pair}")["model"]["init_args"]
    dkd_z = read_recipe(f"cifar100/dkd_z/{pair}")["model"]["init_args"]
    assert dkd["loss"]["init_args"]["divergence"]["init_args"] == {"alpha": 1.0, "beta": beta}
    assert dkd_z["loss"]["init_args"]["divergence"]["init_args"] == {"alpha": 9.0, "beta": 9.0 * beta}
    assert (dkd["loss"]["init_args"]["temperature"], dkd_z["loss"]["init_args"]["temperature"]) == (4.0, 2.0)
    assert dkd["kd_warmup_epochs"] == dkd_z["kd_warmup_epochs"] == 20
    assert "kd_warmup_epochs" not in dkd["loss"]["init_args"]  # the warm-up is the module's, once


@pytest.mark.parametrize(
    ("name", "lr", "epochs", "views"),
    [
        ("cifar100/kd/resnet32x4_ShuffleV2", 0.01, 240, None),
        ("cifar100/dkd/vgg13_MobileNetV2", 0.01, 240, None),
        ("cifar100/kd/vgg13_vgg8", 0.05, 240, None),
        ("cifar100/mlkd/resnet32x4_resnet8x4", 0.025, 480, "randaugment"),
        ("cifar100/mlkd_z/vgg13_vgg8", 0.01, 480, "randaugment"),
        ("cifar100/mlkd/wrn_40_2_MobileNetV2", 0.005, 480, "randaugment"),
        ("cifar100/mlkd_z/resnet32x4_ShuffleV2", 0.01, 960, "randaugment"),
        ("cifar100/mlkd/resnet32x4_resnet8x4_same_schedule", 0.05, 240, "standard"),
        ("cifar100/mlkd_z/resnet32x4_ShuffleV2_same_schedule", 0.01, 240, "standard"),
        ("cifar100/teachers/resnet32x4", 0.05, 240, None),
    ],
)
def test_cifar_schedules(name: str, lr: float, epochs: int, views: str | None) -> None:
    config = read_recipe(name)
    args = config["model"]["init_args"]
    data = config["data"]["init_args"]
    assert args["optimizer"]["init_args"] == {"lr": lr, "momentum": 0.9, "weight_decay": 5e-4}
    assert args["lr_scheduler"]["init_args"]["milestones"] == [150, 180, 210]
    assert config["trainer"]["max_epochs"] == epochs
    assert data["batch_size"] == 64
    assert data.get("strong_aug", False) == (views is not None)
    assert data.get("strong_view", "randaugment" if views else None) == views


def test_mlkd_same_schedule_variant_changes_only_schedule_and_views() -> None:
    for method in ("mlkd", "mlkd_z"):
        full, same = (
            read_recipe(f"cifar100/{method}/vgg13_vgg8"),
            read_recipe(f"cifar100/{method}/vgg13_vgg8_same_schedule"),
        )
        kd = read_recipe("cifar100/kd/vgg13_vgg8")
        assert same["model"]["init_args"]["loss"] == full["model"]["init_args"]["loss"]
        for key in ("optimizer", "lr_scheduler"):
            assert same["model"]["init_args"][key] == kd["model"]["init_args"][key]
        assert same["trainer"]["max_epochs"] == kd["trainer"]["max_epochs"] == 240
        assert "same-schedule comparison" in recipe_text(f"cifar100/{method}/vgg13_vgg8_same_schedule").splitlines()[0]


@pytest.mark.parametrize("name", ["vit/kd_z/resnet56_deit_tiny", "vit/scratch/pit_tiny"])
def test_vit_settings(name: str) -> None:
    config = read_recipe(name)
    args = config["model"]["init_args"]
    assert args["optimizer"] == {"class_path": "torch.optim.AdamW", "init_args": {"lr": 5e-4, "weight_decay": 0.05}}
    scheduler = args["lr_scheduler"]
    assert scheduler["class_path"] == "lightning_kd.schedulers.WarmupCosineLR"
    assert scheduler["init_args"] == {
        "warmup_epochs": 20,
        "max_epochs": 300,
        "warmup_start_factor": 0.001,
        "eta_min": 5e-6,
    }
    assert config["trainer"]["max_epochs"] == 300
    assert config["data"]["init_args"]["batch_size"] == 128
    assert (args.get("student_kwargs") or args.get("model_kwargs")) == {"drop_path_rate": 0.1}
    if "teacher_input" in args:
        adapter = args["teacher_input"]["init_args"]
        assert adapter["size"] == 32
        assert adapter["student_mean"] == [0.485, 0.456, 0.406] and adapter["teacher_mean"] == [0.5071, 0.4867, 0.4408]


# --------------------------------------------------------------------------------------------------------
# Headers.
# --------------------------------------------------------------------------------------------------------
def test_headers_name_the_teacher_the_commands_and_the_device() -> None:
    for name in RECIPES:
        text, config = recipe_text(name), read_recipe(name)
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        assert "A GPU is used automatically" in header, name
        assert re.search(rf"lightning-kd fit --config {re.escape(name)}$", header, re.MULTILINE), name
        assert "recipes/" not in header.replace("recipes/generate.py", ""), name  # ids, not checkout paths
        args = config["model"]["init_args"]
        if config["model"]["class_path"] not in ("lightning_kd.DistillationModule", "lightning_kd.AblationModule"):
            assert not TEACHER_LINE.search(header), name
            continue
        assert f"lightning-kd check-teacher --config {name}\n" in header + "\n", name
        published = PUBLISHED_TEACHERS.get((name.split("/")[0].replace("vit", "cifar100"), args["teacher_arch"]))
        lines = TEACHER_LINE.findall(header)
        if published is None:  # the offline settings: the user trains the teacher first
            assert not lines and name.startswith(("digits/", "fashion_mnist/")), name
        else:
            assert len(lines) == 1 and float(lines[0][0]) == published and lines[0][1], name


def test_digits_headers_say_how_long_a_cpu_run_takes() -> None:
    digits = [name for name in RECIPES if name.startswith("digits/")]
    assert digits
    for name in digits:
        match = re.search(r"On a 2-core CPU: about (\d+) (s|min) \((\d+\.\d) s per epoch, measured", recipe_text(name))
        assert match, name
        total = int(match.group(1)) * (60 if match.group(2) == "min" else 1)
        assert math.isclose(total, float(match.group(3)) * read_recipe(name)["trainer"]["max_epochs"], rel_tol=0.25)


def test_provenance_notes() -> None:
    dist = recipe_text("cifar100/dist/resnet32x4_resnet8x4")
    assert "dist_cifar.yaml" in dist and "no CIFAR config" not in dist
    assert "Reported top-1: 76.31 ± 0.19 ([DIST] README" in dist
    mlkd = recipe_text("cifar100/mlkd/resnet32x4_resnet8x4")
    assert "480 epochs" in mlkd and "240" in mlkd and "5ee473f" in mlkd


# --------------------------------------------------------------------------------------------------------
# Parse and instantiate every recipe; train a step.
# --------------------------------------------------------------------------------------------------------
def check_instantiated(cli: KDLightningCLI, name: str) -> None:
    """The recipe's classes, names and the CLI's default callbacks are what the YAML says."""
    config = read_recipe(name)
    init_args = cli.config[cli.subcommand].model.init_args if cli.subcommand else cli.config.model.init_args
    if config["model"]["class_path"] == "lightning_kd.DistillationModule":
        assert isinstance(cli.model, DistillationModule)
        # A model name stays a name for create_model (never resolved as a same-named nn.Module class).
        assert init_args.student == config["model"]["init_args"]["student"]
        assert not any(p.requires_grad for p in cli.model.teacher.parameters())
    elif config["model"]["class_path"] == "lightning_kd.AblationModule":
        assert isinstance(cli.model, AblationModule)
        assert cli.model.arm_names == [arm["name"] for arm in config["model"]["init_args"]["arms"]]
        assert not any(p.requires_grad for p in cli.model.teacher.parameters())
    else:
        assert type(cli.model) is ClassifierModule
        assert init_args.model == config["model"]["init_args"]["model"]
    assert cli.model.num_classes == _num_classes(config)
    assert type(cli.datamodule).__name__ == _data_class(config)
    assert cli.trainer.max_epochs == config["trainer"]["max_epochs"] or cli.trainer.fast_dev_run
    callbacks = {type(c).__name__ for c in cli.trainer.callbacks}
    assert {"ModelCheckpoint", "ExportStudent"} <= callbacks


def check_vit(cli: KDLightningCLI) -> None:
    """The ViT recipes' images are ``image_size`` px, and their warm-up scheduler took its first step."""
    image, _ = cli.datamodule.train_set[0]
    assert tuple(image.shape) == (3, VIT_TEST_SIZE, VIT_TEST_SIZE)
    (config,) = cli.trainer.lr_scheduler_configs
    assert type(config.scheduler).__name__ == "WarmupCosineLR"
    # After the one epoch of fast_dev_run: 5e-4 x (0.001 + 0.999 x 1/20), LinearLR's second value.
    assert math.isclose(cli.trainer.optimizers[0].param_groups[0]["lr"], 5e-4 * (0.001 + 0.999 / 20), rel_tol=1e-6)


class FitCLI(KDLightningCLI):
    """``lightning-kd`` with its ``fit`` subcommand only.

    The ``fit`` parser is the command line's own; the ``validate``/``test``/``predict`` parsers, which a recipe's
    ``fit`` never uses, are not built (building them is most of the parser's cost, paid once per recipe).
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"fit": LightningCLI.subcommands()["fit"]}


@pytest.fixture
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the workspace, with a bare ``sys.argv`` (LightningCLI warns when it also sees pytest's)."""
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(sys, "argv", ["lightning-kd"])
    return workspace


@pytest.mark.recipes
@pytest.mark.parametrize("name", RECIPES)
def test_recipe_fast_dev_run(name: str, in_workspace: Path, tmp_path: Path) -> None:
    fit_to_fake_data = tmp_path / "overrides.yaml"
    fit_to_fake_data.write_text(yaml.safe_dump(overrides(name, in_workspace)), encoding="utf-8")
    args = ["fit", "--config", str(RECIPE_DIR / f"{name}.yaml"), "--config", str(fit_to_fake_data)]
    cli = FitCLI(args=args)
    check_instantiated(cli, name)
    assert cli.trainer.state.finished
    metrics = cli.trainer.callback_metrics
    if isinstance(cli.model, AblationModule):  # one batch: one optimizer step per arm
        assert cli.trainer.global_step == len(cli.model.arm_names)
        assert all(torch.isfinite(metrics[f"{arm}/train/loss"]) for arm in cli.model.arm_names)
    else:
        assert cli.trainer.global_step == 1
        assert torch.isfinite(metrics["train/loss"])
    assert "val/acc1" in metrics
    if name.startswith("vit/"):
        check_vit(cli)
