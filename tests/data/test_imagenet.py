"""ImageNetDataModule on a tiny ImageFolder tree of PNGs (3 classes x 2 images per split)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_kd.data import ImageNetDataModule
from lightning_kd.data.imagenet import IMAGENET_MEAN, IMAGENET_STD

CLASSES = ("n01440764", "n01443537", "n01484850")
# One constant colour per class in ``val`` (so the normalized value can be checked by hand).
COLOURS = {"n01440764": (255, 0, 128), "n01443537": (0, 255, 64), "n01484850": (10, 20, 30)}


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    root = tmp_path / "imagenet"
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        for i, (w, h) in enumerate([(40, 30), (24, 36)]):
            train_dir, val_dir = root / "train" / cls, root / "val" / cls
            train_dir.mkdir(parents=True, exist_ok=True)
            val_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(train_dir / f"{i}.png")
            Image.new("RGB", (w, h), COLOURS[cls]).save(val_dir / f"{i}.png")
    return root


def _expected(colour: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor([(v / 255 - m) / s for v, m, s in zip(colour, IMAGENET_MEAN, IMAGENET_STD, strict=True)])


def test_properties_and_class_count(imagenet_root: Path) -> None:
    dm = ImageNetDataModule(root=str(imagenet_root), num_workers=0)
    assert dm.num_classes == 3  # counted from root/train before setup
    assert (dm.in_chans, dm.image_size) == (3, 224)
    assert dm.mean == IMAGENET_MEAN and dm.std == IMAGENET_STD
    assert ImageNetDataModule(root="/does/not/matter", num_classes=1000).num_classes == 1000


def test_batches_small_size(imagenet_root: Path) -> None:
    dm = ImageNetDataModule(root=str(imagenet_root), batch_size=4, num_workers=0, image_size=32)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == len(dm.val_set) == 6  # type: ignore[arg-type]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (4,) and y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2}

    for loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        xv, yv = next(iter(loader))
        assert xv.shape == (4, 3, 32, 32) and yv.tolist() == [0, 0, 1, 1]
        for img, label in zip(xv, yv, strict=True):
            expected = _expected(COLOURS[CLASSES[int(label)]]).view(3, 1, 1).expand(3, 32, 32)
            torch.testing.assert_close(img, expected, atol=1e-5, rtol=0)


def test_val_batch_default_size(imagenet_root: Path) -> None:
    dm = ImageNetDataModule(root=str(imagenet_root), batch_size=6, num_workers=0)
    dm.setup("validate")
    assert dm.train_set is None  # only the val folder is indexed for validation
    xv, yv = next(iter(dm.val_dataloader()))
    assert xv.shape == (6, 3, 224, 224) and xv.dtype == torch.float32
    assert yv.tolist() == [0, 0, 1, 1, 2, 2]


def test_class_count_mismatch(imagenet_root: Path) -> None:
    dm = ImageNetDataModule(root=str(imagenet_root), num_workers=0, num_classes=1000)
    with pytest.raises(ValueError, match=r"Expected 1000 class folders in '.*train', but found 3\."):
        dm.setup("fit")


@pytest.mark.parametrize("split", ["train", "val"])
def test_missing_split_folder(imagenet_root: Path, split: str) -> None:
    for path in sorted((imagenet_root / split).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (imagenet_root / split).rmdir()
    dm = ImageNetDataModule(root=str(imagenet_root), num_workers=0, num_classes=3)
    where = re.escape(f"{split}/' ({imagenet_root / split})")
    with pytest.raises(FileNotFoundError, match=rf"ImageNet data not found: looked in .*{where}"):
        dm.prepare_data()
    with pytest.raises(FileNotFoundError, match=r"root/train/<class>/<image>"):
        dm.setup("fit")


def test_missing_root(tmp_path: Path) -> None:
    dm = ImageNetDataModule(root=str(tmp_path / "absent"), num_workers=0)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent" / "val"))):
        _ = dm.num_classes


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected argument `batch_size` to be a positive integer, but got 0\."):
        ImageNetDataModule(root=str(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match=r"Expected argument `image_size` to be an integer >= 8, but got 4\."):
        ImageNetDataModule(root=str(tmp_path), image_size=4)
    with pytest.raises(ValueError, match=r"Expected argument `num_classes` to be a positive integer, but got 0\."):
        ImageNetDataModule(root=str(tmp_path), num_classes=0)
    file = tmp_path / "f"
    file.write_text("")
    with pytest.raises(ValueError, match=r"Expected argument `root` to be a directory"):
        ImageNetDataModule(root=str(file))


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_class_names_must_match_between_splits(tmp_path: Path, stage: str) -> None:
    # same number of classes (3), different names: every validation label would be shifted
    for split, names in (("train", ("cat", "dog", "fox")), ("val", ("ant", "cat", "dog"))):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / name / "0.png")
    dm = ImageNetDataModule(root=str(tmp_path), num_workers=0)
    assert dm.num_classes == 3
    with pytest.raises(ValueError) as info:
        dm.setup(stage)
    message = str(info.value)
    assert re.search(r"Expected the same class folders in '.*train' and '.*val'", message)
    assert "missing in val/: fox; missing in train/: ant." in message
