"""Tests of the shared pieces: argument checks, Cutout, noise, the two-view wrapper, collation, and that
every DataModule's ``__init__`` is usable by jsonargparse (LightningCLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentParser
from torch.utils.data import TensorDataset

from lightning_kd.data import (
    AddGaussianNoise,
    CIFAR100DataModule,
    Cutout,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageNetDataModule,
    TwoViewDataset,
)
from lightning_kd.data._base import KDDataModuleBase
from lightning_kd.data._common import (
    check_directory,
    check_fraction,
    check_min_int,
    check_non_negative_int,
    check_positive_int,
    tuple_collate,
)


def test_argument_checks_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected argument `batch_size` to be a positive integer, but got 0\."):
        check_positive_int("batch_size", 0)
    with pytest.raises(ValueError, match=r"`batch_size` to be a positive integer, but got True\."):
        check_positive_int("batch_size", True)
    with pytest.raises(ValueError, match=r"`num_workers` to be a non-negative integer, but got -1\."):
        check_non_negative_int("num_workers", -1)
    with pytest.raises(ValueError, match=r"`image_size` to be an integer >= 8, but got 4\."):
        check_min_int("image_size", 4, 8)
    with pytest.raises(ValueError, match=r"`val_fraction` to be a float in the open interval \(0, 1\)"):
        check_fraction("val_fraction", 1.0)
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"Expected argument `root` to be a directory, but got '.*file\.txt'"):
        check_directory("root", str(file))
    assert check_positive_int("batch_size", 3) == 3
    assert check_fraction("val_fraction", 0.25) == 0.25
    # A directory that does not exist yet is accepted (the DataModules raise FileNotFoundError later).
    assert check_directory("root", str(tmp_path / "later")) == (tmp_path / "later").resolve()


def test_cutout_zeroes_one_clipped_square() -> None:
    torch.manual_seed(0)
    cutout = Cutout(size=16)
    image = torch.ones(3, 32, 32)
    full_squares = 0
    rows_hit, cols_hit = torch.zeros(32, dtype=torch.bool), torch.zeros(32, dtype=torch.bool)
    for _ in range(300):
        out = cutout(image)
        assert out.shape == image.shape
        assert torch.equal(image, torch.ones(3, 32, 32))  # input not modified in place
        hole = out[0] == 0
        assert torch.equal(hole.expand(3, -1, -1), out == 0)  # same hole in every channel
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 16 and 1 <= len(cols) <= 16
        # the zeroed pixels form exactly one axis-aligned rectangle (a square clipped at the border)
        assert int(hole.sum()) == len(rows) * len(cols)
        assert int(rows[-1] - rows[0]) + 1 == len(rows) and int(cols[-1] - cols[0]) + 1 == len(cols)
        full_squares += int(hole.sum()) == 256
        rows_hit |= hole.any(1)
        cols_hit |= hole.any(0)
    # centres are uniform over the image: some holes are whole, some clipped, and every row/col is reachable
    assert 0 < full_squares < 300
    assert bool(rows_hit.all()) and bool(cols_hit.all())
    assert repr(cutout) == "Cutout(size=16, fill=0.0)"
    with pytest.raises(ValueError, match=r"Expected argument `size` to be a positive integer, but got 0\."):
        Cutout(size=0)


def test_gaussian_noise() -> None:
    torch.manual_seed(0)
    noisy = AddGaussianNoise(std=0.5)(torch.full((10_000,), 2.0))
    assert abs(noisy.mean().item() - 2.0) < 0.03 and abs(noisy.std().item() - 0.5) < 0.03
    with pytest.raises(ValueError, match=r"Expected argument `std` to be a finite, non-negative float"):
        AddGaussianNoise(std=-1.0)


def test_two_view_dataset_and_tuple_collate() -> None:
    base = TensorDataset(torch.arange(6.0).reshape(6, 1, 1, 1), torch.arange(6))
    ds = TwoViewDataset(base, weak=lambda x: x + 1, strong=lambda x: x * 10)
    assert len(ds) == 6
    batch = tuple_collate([ds[i] for i in range(3)])
    assert isinstance(batch, tuple) and isinstance(batch[0], tuple)
    (weak, strong), y = batch
    assert weak.flatten().tolist() == [1.0, 2.0, 3.0]
    assert strong.flatten().tolist() == [0.0, 10.0, 20.0]
    assert y.tolist() == [0, 1, 2] and y.dtype == torch.int64


@pytest.mark.parametrize(
    ("cls", "args"),
    [
        (DigitsDataModule, ["--data.batch_size=8", "--data.image_size=32", "--data.strong_aug=true"]),
        (DigitsDataModule, ["--data.device_resident=true", "--data.return_views=true", "--data.shuffle_seed=3"]),
        (FashionMNISTDataModule, ["--data.root=/tmp/fmnist", "--data.batch_size=8", "--data.device_resident=false"]),
        (CIFAR100DataModule, ["--data.root=/tmp/cifar", "--data.strong_aug=true", "--data.pin_memory=false"]),
        (CIFAR100DataModule, ["--data.root=/tmp/cifar", "--data.device_resident=auto", "--data.drop_last=true"]),
        (ImageNetDataModule, ["--data.root=/tmp/imagenet", "--data.num_classes=1000", "--data.drop_last=true"]),
    ],
)
def test_datamodules_build_from_jsonargparse(cls: type[KDDataModuleBase], args: list[str]) -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    cfg = parser.parse_args(args)
    # ``instantiate`` replaces ``instantiate_classes`` in recent jsonargparse (the latter is deprecated)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    dm = instantiate(cfg).data
    assert isinstance(dm, cls)
    assert dm.batch_size == cfg.data.batch_size
    assert dm.hparams["batch_size"] == cfg.data.batch_size  # saved for checkpoints
    assert len(dm.mean) == len(dm.std) == dm.in_chans
    for key, value in vars(cfg.data).items():  # every option reaches the DataModule as parsed
        assert dm.hparams[key] == value
