"""The shipped recipes: generated from one table, parse, instantiate, and train a step on tiny fake data.

* ``test_recipes_match_generator``: the committed YAMLs are exactly what ``recipes/generate.py`` writes.
* ``test_recipe_fast_dev_run`` (every recipe): ``lightning-kd fit`` parses it, instantiates the model
  (student and teacher, the teacher loaded from its checkpoint), the DataModule and the Trainer, and runs one
  ``fit`` step and one validation step with ``fast_dev_run``.

The data are tiny fake copies written once per session in a workspace folder laid out as the recipes
expect (``data/cifar-100-python/{train,test,meta}`` as torchvision's pickles, ``data/imagenet/{train,val}``
as PNG ImageFolders, the four Fashion-MNIST IDX files), and the teachers are randomly initialized
``create_model(...)`` state_dicts saved as ``{"model": state_dict}`` at each recipe's relative teacher path
(``checkpoints/cifar100/<teacher>.pth``, ...). The tests run in that workspace, so the recipes' relative
paths are used as written; they override only what the fake data need: batch size 2, no worker processes,
no md5 check for the fake CIFAR files, 4 ImageNet classes at 32 px, the Fashion-MNIST folder, and CPU.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lightning_kd import ClassifierModule, DistillationModule
from lightning_kd.cli import KDLightningCLI
from lightning_kd.models import create_model
from lightning_kd.recipes import list_recipes

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "recipes"
RECIPES = sorted(p.relative_to(RECIPE_DIR).as_posix() for p in RECIPE_DIR.rglob("*.yaml"))
IMAGENET_CLASSES = 4


def load_generator() -> ModuleType:
    """``recipes/generate.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("recipes_generate", RECIPE_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def read_recipe(name: str) -> dict[str, Any]:
    with open(RECIPE_DIR / name, encoding="utf-8") as f:
        config: dict[str, Any] = yaml.safe_load(f)
    return config


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
    if config["data"]["class_path"].endswith("ImageNetDataModule"):
        return IMAGENET_CLASSES
    return int(config["model"]["init_args"]["num_classes"])


def write_fake_teachers(workspace: Path) -> None:
    """A randomly initialized teacher checkpoint (``{"model": state_dict}``) at each recipe's teacher path."""
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
        # Half precision halves the files (load_state_dict casts back): jsonargparse reads a path given for a
        # `str | nn.Module` argument to see whether it is a config file, which takes time for large files.
        state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
        torch.save({"model": state}, path)
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


def overrides(name: str, workspace: Path) -> list[str]:
    """Command-line overrides that fit a recipe to the fake data, on the CPU."""
    config = read_recipe(name)
    data = config["data"]["class_path"].rsplit(".", 1)[-1]
    args = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--data.init_args.batch_size=2"]
    if data == "CIFAR100DataModule":
        args += ["--data.init_args.num_workers=0", "--data.init_args.verify_checksums=false"]
    elif data == "ImageNetDataModule":
        args += [
            "--data.init_args.num_workers=0",
            f"--data.init_args.num_classes={IMAGENET_CLASSES}",
            f"--model.init_args.num_classes={IMAGENET_CLASSES}",
            "--data.init_args.image_size=32",
        ]
    elif data == "FashionMNISTDataModule":
        args.append(f"--data.init_args.root={workspace / 'data' / 'fashion_mnist'}")
    if "dirpath" in config.get("export", {}):  # keep exported teachers out of the shared checkpoints/
        args.append(f"--export.dirpath={workspace / 'exported'}")
    return args


# --------------------------------------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------------------------------------
def test_recipes_match_generator() -> None:
    generator = load_generator()
    rendered = generator.render_all()
    on_disk = {name: (RECIPE_DIR / name).read_text(encoding="utf-8") for name in RECIPES}
    assert sorted(on_disk) == sorted(rendered), "run `python recipes/generate.py` (recipes added or removed)"
    stale = [name for name in rendered if on_disk[name] != rendered[name]]
    assert not stale, f"run `python recipes/generate.py`: out of date: {stale[:5]}"
    assert generator.main(["--check"]) == 0


def test_recipe_set() -> None:
    """The experiments the recipes must cover, each with a one-line description."""
    methods = ["kd", "kd_z", "ctkd", "ctkd_z", "dkd", "dkd_z", "mlkd", "mlkd_z", "maxlogit", "dist", "ttm", "wttm"]
    pairs = [
        "resnet32x4_ShuffleV2", "resnet32x4_wrn_16_2", "resnet32x4_wrn_40_2", "wrn_40_2_resnet8x4",
        "wrn_40_2_MobileNetV2", "vgg13_MobileNetV2", "ResNet50_MobileNetV2", "resnet32x4_resnet8x4", "vgg13_vgg8",
        "wrn_40_2_wrn_40_1", "wrn_40_2_wrn_16_2", "resnet56_resnet20", "resnet110_resnet32", "resnet110_resnet20",
    ]  # fmt: skip
    expected = {f"cifar100/{m}/{p}.yaml" for m in methods for p in pairs}
    expected |= {
        f"cifar100/teachers/{t}.yaml" for t in ("resnet32x4", "wrn_40_2", "vgg13", "ResNet50", "resnet56", "resnet110")
    }
    expected |= {
        f"imagenet/{m}/{p}.yaml"
        for m in ("kd", "kd_z", "dkd", "dkd_z")
        for p in ("resnet34_resnet18", "resnet50_MobileNetV1")
    }
    assert expected <= set(RECIPES)
    for prefix in ("vit/", "fashion_mnist/teachers/", "fashion_mnist/kd_z/", "digits/teachers/", "digits/kd_z/"):
        assert any(name.startswith(prefix) for name in RECIPES), prefix
    listed = list_recipes(RECIPE_DIR)
    assert len(listed) == len(RECIPES) and all(r.description for r in listed)


@pytest.mark.parametrize(
    ("name", "temperature", "kd_weight", "ce_weight"),
    [
        ("cifar100/kd_z/resnet32x4_resnet8x4.yaml", 2.0, 9.0, 0.1),
        ("cifar100/kd_z/resnet110_resnet20.yaml", 4.0, 12.0, 0.1),
        ("cifar100/kd_z/vgg13_vgg8.yaml", 3.0, 9.0, 0.1),
        ("cifar100/kd_z/resnet32x4_wrn_40_2.yaml", 3.0, 9.0, 0.1),
        ("cifar100/kd_z/ResNet50_MobileNetV2.yaml", 3.0, 1.0, 0.1),
        ("cifar100/kd/wrn_40_2_wrn_40_1.yaml", 4.0, 0.9, 0.1),
        ("imagenet/kd_z/resnet34_resnet18.yaml", 2.0, 9.0, 1.0),
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
    dkd = read_recipe(f"cifar100/dkd/{pair}.yaml")["model"]["init_args"]
    dkd_z = read_recipe(f"cifar100/dkd_z/{pair}.yaml")["model"]["init_args"]
    assert dkd["loss"]["init_args"]["divergence"]["init_args"] == {"alpha": 1.0, "beta": beta}
    assert dkd_z["loss"]["init_args"]["divergence"]["init_args"] == {"alpha": 9.0, "beta": 9.0 * beta}
    assert (dkd["loss"]["init_args"]["temperature"], dkd_z["loss"]["init_args"]["temperature"]) == (4.0, 2.0)
    assert dkd["kd_warmup_epochs"] == dkd_z["kd_warmup_epochs"] == 20


@pytest.mark.parametrize(
    ("name", "lr", "epochs"),
    [
        ("cifar100/kd/resnet32x4_ShuffleV2.yaml", 0.01, 240),
        ("cifar100/dkd/vgg13_MobileNetV2.yaml", 0.01, 240),
        ("cifar100/kd/vgg13_vgg8.yaml", 0.05, 240),
        ("cifar100/mlkd/resnet32x4_resnet8x4.yaml", 0.025, 480),
        ("cifar100/mlkd_z/vgg13_vgg8.yaml", 0.01, 480),
        ("cifar100/mlkd/wrn_40_2_MobileNetV2.yaml", 0.005, 480),
        ("cifar100/mlkd_z/resnet32x4_ShuffleV2.yaml", 0.01, 960),
        ("cifar100/teachers/resnet32x4.yaml", 0.05, 240),
    ],
)
def test_schedules(name: str, lr: float, epochs: int) -> None:
    config = read_recipe(name)
    args = config["model"]["init_args"]
    assert args["optimizer"]["init_args"]["lr"] == lr
    assert config["trainer"]["max_epochs"] == epochs
    if name.startswith("cifar100/"):
        assert args["optimizer"]["init_args"]["weight_decay"] == 5e-4
        assert args["lr_scheduler"]["init_args"]["milestones"] == [150, 180, 210]
        assert config["data"]["init_args"]["batch_size"] == 64
        assert config["data"]["init_args"].get("strong_aug", False) == ("/mlkd" in name)


# --------------------------------------------------------------------------------------------------------
# Parse and instantiate every recipe; train a step of a subset.
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
    else:
        assert type(cli.model) is ClassifierModule
        assert init_args.model == config["model"]["init_args"]["model"]
    assert cli.model.num_classes == _num_classes(config)
    assert type(cli.datamodule).__name__ == config["data"]["class_path"].rsplit(".", 1)[-1]
    assert cli.trainer.max_epochs == config["trainer"]["max_epochs"] or cli.trainer.fast_dev_run
    callbacks = {type(c).__name__ for c in cli.trainer.callbacks}
    assert {"ModelCheckpoint", "ExportStudent"} <= callbacks


@pytest.fixture
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the workspace, with a bare ``sys.argv`` (LightningCLI warns when it also sees pytest's)."""
    monkeypatch.chdir(workspace)
    monkeypatch.setattr(sys, "argv", ["lightning-kd"])
    return workspace


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_fast_dev_run(name: str, in_workspace: Path) -> None:
    args = [
        "fit",
        "--config",
        str(RECIPE_DIR / name),
        *overrides(name, in_workspace),
        "--trainer.fast_dev_run=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    cli = KDLightningCLI(args=args)
    check_instantiated(cli, name)
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert "val/acc1" in cli.trainer.callback_metrics
