"""FashionMNISTDataModule on a tiny IDX ``.gz`` set written by the test, and on the real Debian files."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_kd.data import AugmentationSpace, AugmentationViews, DeviceResidentLoader, FashionMNISTDataModule
from lightning_kd.data.fashion_mnist import DEFAULT_ROOT, FASHION_MNIST_MEAN, FASHION_MNIST_STD, read_idx_gz

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
MEAN, STD = FASHION_MNIST_MEAN[0], FASHION_MNIST_STD[0]


def _write_images(path: Path, images: np.ndarray, magic: int = 2051) -> None:
    n, rows, cols = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">iiii", magic, n, rows, cols) + images.astype(np.uint8).tobytes())


def _write_labels(path: Path, labels: np.ndarray, magic: int = 2049) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">ii", magic, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def fmnist_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    # train: textured images; test: image i is constant i * 25 (0, 25, ..., 225)
    _write_images(tmp_path / FILES[0], rng.integers(0, 256, (20, 28, 28)))
    _write_labels(tmp_path / FILES[1], np.arange(20) % 10)
    _write_images(tmp_path / FILES[2], np.repeat(np.arange(10) * 25, 28 * 28).reshape(10, 28, 28))
    _write_labels(tmp_path / FILES[3], np.arange(10)[::-1])
    return tmp_path


def test_properties() -> None:
    dm = FashionMNISTDataModule()
    assert dm.root == Path(DEFAULT_ROOT)
    assert (dm.num_classes, dm.in_chans, dm.image_size) == (10, 1, 28)
    assert dm.mean == (0.2860,) and dm.std == (0.3530,)
    assert dm.batch_size == 128


def test_read_idx_gz(fmnist_root: Path) -> None:
    images = read_idx_gz(fmnist_root / FILES[2], 2051)
    assert images.shape == (10, 28, 28) and images.dtype == np.uint8 and int(images[3, 5, 7]) == 75
    assert read_idx_gz(fmnist_root / FILES[3], 2049).tolist() == list(range(9, -1, -1))
    with pytest.raises(ValueError, match=r"Expected IDX magic number 2049 in '.*', but got 2051\."):
        read_idx_gz(fmnist_root / FILES[2], 2049)


def test_batches_and_normalization(fmnist_root: Path) -> None:
    dm = FashionMNISTDataModule(root=str(fmnist_root), batch_size=4)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 20 and len(dm.val_set) == 10  # type: ignore[arg-type]

    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (4,) and y.dtype == torch.int64 and set(y.tolist()) <= set(range(10))
    pixels = x * STD + MEAN
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6

    for loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        xv, yv = next(iter(loader))
        assert yv.tolist() == [9, 8, 7, 6]  # fixed order
        for i in range(4):  # test image i is constant i * 25: normalizes to (i * 25 / 255 - mean) / std
            torch.testing.assert_close(xv[i], torch.full((1, 28, 28), (i * 25 / 255 - MEAN) / STD))
    assert float(xv[0].max()) == pytest.approx(-0.81020, abs=1e-5)  # black, by hand: -0.2860 / 0.3530


def test_augment_shifts_training_images(fmnist_root: Path) -> None:
    plain = FashionMNISTDataModule(root=str(fmnist_root))
    plain.setup("fit")
    assert torch.equal(plain.train_set[0][0], plain.train_set[0][0])  # type: ignore[index]
    augmented = FashionMNISTDataModule(root=str(fmnist_root), augment=True)
    augmented.setup("fit")
    torch.manual_seed(0)
    views = [augmented.train_set[0][0] for _ in range(5)]  # type: ignore[index]
    assert all(v.shape == (1, 28, 28) for v in views)
    assert any(not torch.equal(views[0], v) for v in views[1:])
    # the test split is never augmented
    torch.testing.assert_close(augmented.test_set[1][0], plain.test_set[1][0])  # type: ignore[index]


@pytest.mark.parametrize("missing", FILES)
def test_missing_file(fmnist_root: Path, missing: str) -> None:
    (fmnist_root / missing).unlink()
    dm = FashionMNISTDataModule(root=str(fmnist_root))
    for method in (dm.prepare_data, dm.setup):
        with pytest.raises(FileNotFoundError) as info:
            method()
        message = str(info.value)
        assert f"looked in '{fmnist_root.resolve()}', missing {missing}." in message
        assert "dataset-fashion-mnist" in message


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(f"looked in '{tmp_path / 'none'}'")):
        FashionMNISTDataModule(root=str(tmp_path / "none")).setup()


def test_corrupt_files(fmnist_root: Path) -> None:
    _write_images(fmnist_root / FILES[0], np.zeros((20, 28, 28)), magic=2049)
    with pytest.raises(ValueError, match=r"Expected IDX magic number 2051"):
        FashionMNISTDataModule(root=str(fmnist_root)).setup("fit")
    with gzip.open(fmnist_root / FILES[0], "wb") as f:  # header says 20 images, data holds 19
        f.write(struct.pack(">iiii", 2051, 20, 28, 28) + bytes(19 * 28 * 28))
    with pytest.raises(ValueError, match=r"Expected 15680 data bytes .* but got 14896\."):
        FashionMNISTDataModule(root=str(fmnist_root)).setup("fit")
    _write_images(fmnist_root / FILES[0], np.zeros((19, 28, 28)))  # 19 images, 20 labels
    with pytest.raises(ValueError, match=r"Expected N 28x28 images and N labels"):
        FashionMNISTDataModule(root=str(fmnist_root)).setup("fit")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected argument `batch_size` to be a positive integer, but got 0\."):
        FashionMNISTDataModule(root=str(tmp_path), batch_size=0)
    file = tmp_path / "f"
    file.write_text("")
    with pytest.raises(ValueError, match=r"Expected argument `root` to be a directory"):
        FashionMNISTDataModule(root=str(file))


def test_real_debian_files(real_fashion_mnist: Path) -> None:
    dm = FashionMNISTDataModule(root=str(real_fashion_mnist), batch_size=256)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 60_000 and len(dm.test_set) == 10_000  # type: ignore[arg-type]
    for dataset in (dm.train_set, dm.test_set):
        labels = dataset.labels  # type: ignore[union-attr]
        assert labels.dtype == torch.int64 and labels.unique().tolist() == list(range(10))
        assert dataset.images.shape[1:] == (1, 28, 28)  # type: ignore[union-attr]
    # the fixed mean/std are the training set's statistics
    train_pixels = dm.train_set.images.float() / 255  # type: ignore[union-attr]
    assert float(train_pixels.mean()) == pytest.approx(MEAN, abs=1e-4)
    assert float(train_pixels.std()) == pytest.approx(STD, abs=1e-4)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (256, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape == (256, 1, 28, 28)


def test_views_on_the_cpu_path_are_the_random_crops_draws(fmnist_root: Path) -> None:
    dm = FashionMNISTDataModule(root=str(fmnist_root), batch_size=5, augment=True)
    with_views = FashionMNISTDataModule(root=str(fmnist_root), batch_size=5, augment=True, return_views=True)
    dm.setup("fit")
    with_views.setup("fit")
    torch.manual_seed(4)
    expected = list(dm.train_dataloader())
    torch.manual_seed(4)
    got = list(with_views.train_dataloader())
    raw = read_idx_gz(fmnist_root / FILES[0], 2051)
    for (x_ref, y_ref), (x, y, views) in zip(expected, got, strict=True):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
        _assert_crops(x, views, raw)


def _assert_crops(x: torch.Tensor, views: AugmentationViews, raw: np.ndarray, padding: int = 2) -> None:
    assert views.flip.tolist() == [0] * len(x)  # no flips for clothes
    for b in range(len(x)):
        i, dy, dx = int(views.index[b]), int(views.dy[b]), int(views.dx[b])
        assert 0 <= dy <= 2 * padding and 0 <= dx <= 2 * padding
        padded = np.zeros((28 + 2 * padding, 28 + 2 * padding))
        padded[padding : padding + 28, padding : padding + 28] = raw[i]
        expected = (padded[dy : dy + 28, dx : dx + 28] / 255 - MEAN) / STD
        np.testing.assert_allclose(x[b, 0].numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("augment", [False, True])
def test_device_path(fmnist_root: Path, augment: bool) -> None:
    dm = FashionMNISTDataModule(
        root=str(fmnist_root), batch_size=8, augment=augment, device_resident=True, return_views=True
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceResidentLoader) and len(loader) == 3
    raw = read_idx_gz(fmnist_root / FILES[0], 2051)
    offsets = set()
    for x, y, views in loader:
        assert x.shape[1:] == (1, 28, 28) and torch.equal(y, torch.from_numpy(np.arange(20) % 10)[views.index])
        _assert_crops(x, views, raw, padding=2 if augment else 0)
        offsets |= set(zip(views.dy.tolist(), views.dx.tolist(), strict=True))
    assert (len(offsets) > 1) == augment
    assert dm.augmentation_space == AugmentationSpace(padding=2 if augment else 0, flip=False)
