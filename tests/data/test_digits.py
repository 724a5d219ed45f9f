"""DigitsDataModule: scikit-learn's bundled 8x8 digits, in memory (offline)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from lightning_kd.data import AugmentationViews, DeviceResidentLoader, DigitsDataModule
from lightning_kd.data.digits import DIGITS_MEAN, DIGITS_STD

MEAN, STD = DIGITS_MEAN[0], DIGITS_STD[0]


def test_properties() -> None:
    dm = DigitsDataModule(image_size=32)
    assert (dm.num_classes, dm.in_chans, dm.image_size) == (10, 1, 32)
    assert dm.mean == (0.3053,) and dm.std == (0.3760,)
    data = load_digits().data / 16.0  # the constants are the statistics of the whole 8x8 dataset
    assert float(data.mean()) == pytest.approx(MEAN, abs=1e-4) and float(data.std()) == pytest.approx(STD, abs=1e-4)


@pytest.mark.parametrize("image_size", [8, 32])
def test_batches_shapes_dtypes_ranges(image_size: int) -> None:
    dm = DigitsDataModule(batch_size=64, image_size=image_size)
    dm.setup("fit")
    assert len(dm.train_set) == 1437 and len(dm.val_set) == 360  # type: ignore[arg-type]
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        batch = next(iter(loader))
        assert isinstance(batch, tuple) and len(batch) == 2
        x, y = batch
        assert x.shape == (64, 1, image_size, image_size) and x.dtype == torch.float32
        assert y.shape == (64,) and y.dtype == torch.int64
        assert int(y.min()) >= 0 and int(y.max()) <= 9
        pixels = x * STD + MEAN
        assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6
    assert len(list(dm.train_dataloader())) == 23  # ceil(1437 / 64): the last partial batch is kept


def test_normalization_matches_raw_pixels() -> None:
    dm = DigitsDataModule(batch_size=360)
    dm.setup("validate")
    x, y = next(iter(dm.val_dataloader()))
    data, target = load_digits(return_X_y=True)
    indices = dm.val_indices.numpy()  # type: ignore[union-attr]
    expected = (torch.from_numpy(data[indices] / 16.0).float().view(-1, 1, 8, 8) - MEAN) / STD
    torch.testing.assert_close(x, expected)
    assert y.tolist() == target[indices].tolist()
    # e.g. a 16 (full ink) pixel normalizes to (1 - 0.3053) / 0.3760 = 1.8476 and a 0 to -0.8120
    assert float(x.max()) == pytest.approx(1.8476, abs=1e-4)
    assert float(x.min()) == pytest.approx(-0.8120, abs=1e-4)


def test_upsampling_is_bilinear_of_the_same_images() -> None:
    small, big = DigitsDataModule(), DigitsDataModule(image_size=16)
    small.setup()
    big.setup()
    x8 = small.val_set.tensors[0] * STD + MEAN  # type: ignore[union-attr]
    x16 = big.val_set.tensors[0] * STD + MEAN  # type: ignore[union-attr]
    expected = nn.functional.interpolate(x8, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(x16, expected, atol=1e-5, rtol=0)


def test_split_is_deterministic_stratified_and_disjoint() -> None:
    def split(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        dm = DigitsDataModule(seed=seed)
        dm.setup()
        return dm.train_indices, dm.val_indices  # type: ignore[return-value]

    train_a, val_a = split(0)
    train_b, val_b = split(0)
    _, val_c = split(1)
    assert torch.equal(train_a, train_b) and torch.equal(val_a, val_b)
    assert not torch.equal(val_a, val_c)
    assert len(np.intersect1d(train_a, val_a)) == 0 and len(train_a) + len(val_a) == 1797
    # stratified: each class keeps its share (about 20 % of ~180 images) in the held-out split
    target = load_digits().target
    val_counts, all_counts = np.bincount(target[val_a.numpy()]), np.bincount(target)
    assert np.all(np.abs(val_counts - 0.2 * all_counts) <= 1)


def test_val_fraction_changes_split_size() -> None:
    dm = DigitsDataModule(val_fraction=0.5)
    dm.setup()
    assert len(dm.val_set) == 899 and len(dm.train_set) == 898  # type: ignore[arg-type]


@pytest.mark.parametrize("image_size", [8, 32])
def test_strong_aug_two_views(image_size: int) -> None:
    dm = DigitsDataModule(batch_size=16, image_size=image_size, strong_aug=True)
    dm.setup("fit")
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, tuple) and isinstance(batch[0], tuple) and len(batch[0]) == 2
    (x_weak, x_strong), y = batch
    assert x_weak.shape == x_strong.shape == (16, 1, image_size, image_size)
    assert x_weak.dtype == x_strong.dtype == torch.float32 and y.dtype == torch.int64
    assert not torch.allclose(x_weak, x_strong)
    # weak view: a shifted clean image, so its pixels stay on the normalized [0, 1] range
    pixels = x_weak * STD + MEAN
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6
    # strong view: every sample has a Cutout hole (exact zeros, whereas noise makes zeros improbable)
    assert all(bool((view == 0).any()) for view in x_strong)
    # evaluation loaders stay single-view
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape == (16, 1, image_size, image_size)


def test_weak_view_is_a_small_shift_of_the_clean_image() -> None:
    plain, two_view = DigitsDataModule(), DigitsDataModule(strong_aug=True)
    plain.setup()
    two_view.setup()
    clean = plain.train_set[0][0]  # type: ignore[index]
    torch.manual_seed(0)
    weak_views = [two_view.train_set[0][0][0] for _ in range(30)]  # type: ignore[index]
    assert any(torch.allclose(view, clean) for view in weak_views)  # shift (0, 0) happens
    assert any(not torch.allclose(view, clean) for view in weak_views)
    for view in weak_views:  # every view is the clean image shifted by at most one pixel
        padded = nn.functional.pad(clean * STD + MEAN, (1, 1, 1, 1))
        candidates = [padded[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)]
        assert any(torch.allclose(view * STD + MEAN, c, atol=1e-6) for c in candidates)


def test_loader_before_setup() -> None:
    with pytest.raises(RuntimeError, match=r"the train split is not set up; call `setup\(\)` first"):
        DigitsDataModule().train_dataloader()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"Expected argument `batch_size` to be a positive integer, but got 0\."),
        ({"batch_size": -3}, r"Expected argument `batch_size` to be a positive integer, but got -3\."),
        ({"num_workers": -1}, r"Expected argument `num_workers` to be a non-negative integer, but got -1\."),
        ({"val_fraction": 0.0}, r"`val_fraction` to be a float in the open interval \(0, 1\), but got 0\.0\."),
        ({"val_fraction": 1.0}, r"`val_fraction` to be a float in the open interval \(0, 1\), but got 1\.0\."),
        ({"val_fraction": -0.2}, r"`val_fraction` to be a float in the open interval \(0, 1\), but got -0\.2\."),
        ({"image_size": 4}, r"Expected argument `image_size` to be an integer >= 8, but got 4\."),
        ({"seed": "zero"}, r"Expected argument `seed` to be a non-negative integer, but got 'zero'\."),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs)


class _TinyClassifier(pl.LightningModule):
    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(image_size * image_size, 10))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        if isinstance(x, tuple):  # two views: train on both
            x = torch.cat(x)
            y = torch.cat([y, y])
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("strong_aug", [False, True])
def test_runs_in_a_lightning_trainer(strong_aug: bool) -> None:
    dm = DigitsDataModule(batch_size=32, image_size=16, strong_aug=strong_aug)
    trainer = pl.Trainer(
        accelerator="cpu",
        fast_dev_run=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_TinyClassifier(16), datamodule=dm)
    assert trainer.state.finished


class _ViewsRecorder(pl.LightningModule):
    """A linear classifier that records the epoch and the views of every training batch."""

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.net = nn.Linear(image_size * image_size, 10)
        self.seen: list[tuple[int, AugmentationViews]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, views = batch
        self.seen.append((self.current_epoch, views))
        return nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(**kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_device_path_in_a_trainer() -> None:
    dm = DigitsDataModule(batch_size=32, image_size=16, device_resident=True)
    trainer = _trainer(max_steps=3, limit_val_batches=2)
    trainer.fit(_TinyClassifier(16), datamodule=dm)
    assert trainer.state.finished and trainer.global_step == 3
    assert isinstance(trainer.train_dataloader, DeviceResidentLoader)
    assert trainer.num_training_batches == 45  # ceil(1437 / 32), as the CPU DataLoader


def test_device_path_reads_the_epoch_and_the_seed_from_the_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # restored after the test; seed_everything overwrites it
    pl.seed_everything(7, verbose=False)
    dm = DigitsDataModule(batch_size=64, device_resident=True, return_views=True)
    module = _ViewsRecorder(8)
    _trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=0).fit(module, datamodule=dm)
    assert [epoch for epoch, _ in module.seen] == [0, 0, 0, 1, 1, 1]
    for epoch in (0, 1):  # the order of DistributedSampler(shuffle=True, seed=7) in that epoch, for one process
        expected = torch.randperm(1437, generator=torch.Generator().manual_seed(7 + epoch))[: 3 * 64]
        seen = torch.cat([views.index for e, views in module.seen if e == epoch])
        assert torch.equal(seen, expected)
        assert all(int(v.dy.abs().sum() + v.dx.abs().sum() + v.flip.sum()) == 0 for e, v in module.seen)


def test_device_path_gives_the_cpu_path_tensors() -> None:
    dm = DigitsDataModule(batch_size=100, image_size=16, device_resident=True, return_views=True, shuffle_seed=1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceResidentLoader) and dm.uses_device_path()
    cpu_images, cpu_labels = dm.train_set.tensors  # type: ignore[union-attr]
    seen = []
    for x, y, views in loader:
        assert torch.equal(x, cpu_images[views.index]) and torch.equal(y, cpu_labels[views.index])
        seen.append(views.index)
    assert sorted(torch.cat(seen).tolist()) == list(range(1437))
    # the CPU path with views: the same tensors, in the DataLoader's order
    cpu = DigitsDataModule(batch_size=100, image_size=16, device_resident=False, return_views=True)
    cpu.setup("fit")
    x, y, views = next(iter(cpu.train_dataloader()))
    assert torch.equal(x, cpu_images[views.index]) and torch.equal(y, cpu_labels[views.index])


@pytest.mark.parametrize("drop_last", [False, True])
def test_steps_per_epoch_on_both_paths(drop_last: bool) -> None:
    lengths = []
    for device_resident in (False, True):
        dm = DigitsDataModule(batch_size=64, drop_last=drop_last, device_resident=device_resident)
        dm.setup("fit")
        lengths.append(len(dm.train_dataloader()))
    assert lengths == ([22, 22] if drop_last else [23, 23])  # 1437 = 22 * 64 + 29


def test_device_options_refused_with_strong_aug() -> None:
    with pytest.raises(ValueError, match=r"`device_resident` to be False or 'auto' here, but got True: `strong_aug"):
        DigitsDataModule(strong_aug=True, device_resident=True)
    with pytest.raises(ValueError, match=r"`return_views` to be False here, but got True: `strong_aug=True`"):
        DigitsDataModule(strong_aug=True, return_views=True)
    dm = DigitsDataModule(strong_aug=True)  # "auto" keeps the CPU path for the strong view
    assert dm.augmentation_space is None and not dm.uses_device_path()
    with pytest.raises(ValueError, match=r"Expected argument `device_resident` to be True, False or 'auto'"):
        DigitsDataModule(device_resident="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected argument `shuffle_seed` to be a non-negative integer"):
        DigitsDataModule(shuffle_seed=-1)


def test_distillation_module_trains_on_batches_with_views() -> None:
    from lightning_kd import DistillationModule
    from tests.helpers import bn_teacher, clone_state, make_trainer, mlp, states_equal

    module = DistillationModule(mlp(), bn_teacher(), "kd")
    before = clone_state(module.student)
    trainer = make_trainer(max_steps=3, limit_val_batches=1)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=64, device_resident=True, return_views=True))
    assert trainer.global_step == 3 and isinstance(trainer.train_dataloader, DeviceResidentLoader)
    assert not states_equal(before, clone_state(module.student))
