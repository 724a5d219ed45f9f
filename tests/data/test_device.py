"""DeviceResidentLoader on the CPU: the augmentation distribution, epochs, seeds, DDP shares, lengths and the
pixels of each batch, against independent references (counts, DistributedSampler, DataLoader, numpy)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lightning_kd._batch import split_batch
from lightning_kd.data import AugmentationSpace, AugmentationViews, DeviceResidentLoader

CIFAR_SPACE = AugmentationSpace(padding=4, flip=True)
MEAN, STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)


def _images(n: int, size: int = 8, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def _loader(images: torch.Tensor, **kwargs: Any) -> DeviceResidentLoader:
    options: dict[str, Any] = {"batch_size": 8, "mean": MEAN, "std": STD, "space": CIFAR_SPACE, "seed": 3}
    options.update(kwargs)
    return DeviceResidentLoader(images, torch.arange(images.shape[0]) % 100, return_views=True, **options)


def _epoch(loader: DeviceResidentLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor, AugmentationViews]]:
    loader.set_epoch(epoch)
    return list(loader)


def _cat_views(batches: list[tuple[torch.Tensor, torch.Tensor, AugmentationViews]]) -> AugmentationViews:
    return AugmentationViews(*(torch.cat([b[2][i] for b in batches]) for i in range(4)))


def test_crop_offsets_and_flips_are_uniform() -> None:
    # 8,100 draws over the 81 offsets x 2 flips (50 expected per cell); a fixed seed makes the test deterministic.
    loader = _loader(_images(1620, size=4), batch_size=256)
    epochs = [_cat_views(_epoch(loader, epoch)) for epoch in range(5)]
    views = AugmentationViews(*(torch.cat(field) for field in zip(*epochs, strict=True)))
    assert views.dy.dtype == views.dx.dtype == views.flip.dtype == views.index.dtype == torch.int64
    assert int(views.dy.min()) == int(views.dx.min()) == 0 and int(views.dy.max()) == int(views.dx.max()) == 8
    assert set(views.flip.tolist()) == {0, 1}
    cells = np.bincount((views.dy * 18 + views.dx * 2 + views.flip).numpy(), minlength=162)
    expected = len(views.dy) / 162
    chi_square = float(((cells - expected) ** 2 / expected).sum())
    # scipy.stats.chi2.ppf(1e-4, 161) = 102.6 and chi2.ppf(1 - 1e-4, 161) = 236.4: random, and uniform
    assert 102.6 < chi_square < 236.4, chi_square
    flips = int(views.flip.sum())  # Binomial(8100, 1/2): sd 45
    assert abs(flips - 4050) < 4.5 * 45, flips


def test_each_image_exactly_once_per_epoch() -> None:
    images = _images(37)
    loader = _loader(images)
    for epoch in range(3):
        batches = _epoch(loader, epoch)
        assert [len(y) for _, y, _ in batches] == [8, 8, 8, 8, 5]
        views = _cat_views(batches)
        assert sorted(views.index.tolist()) == list(range(37))
        labels = torch.cat([y for _, y, _ in batches])
        assert torch.equal(labels, views.index % 100)  # each label belongs to its image


def test_seed_and_epoch_determine_the_batches() -> None:
    images = _images(37)
    first, again = _epoch(_loader(images), 0), _epoch(_loader(images), 0)
    for (x1, y1, v1), (x2, y2, v2) in zip(first, again, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and all(map(torch.equal, v1, v2))
    next_epoch = _cat_views(_epoch(_loader(images), 1))
    other_seed = _cat_views(_epoch(_loader(images, seed=4), 0))
    assert not torch.equal(next_epoch.index, _cat_views(first).index)
    assert not torch.equal(other_seed.index, _cat_views(first).index)
    # the epoch can also come from a callable read when an iteration starts (the Trainer's current epoch)
    from_fn = _cat_views(list(_loader(images, epoch_fn=lambda: 1)))
    assert torch.equal(from_fn.index, next_epoch.index) and torch.equal(from_fn.dy, next_epoch.dy)


@pytest.mark.parametrize(("size", "world_size"), [(37, 2), (10, 3), (40, 4)])
def test_ranks_take_the_shares_of_distributed_sampler(size: int, world_size: int) -> None:
    images = _images(size)
    for epoch in (0, 1):
        shares = []
        for rank in range(world_size):
            loader = _loader(images, rank=rank, world_size=world_size, batch_size=4)
            indices = _cat_views(_epoch(loader, epoch)).index.tolist()
            sampler: DistributedSampler[int] = DistributedSampler(
                TensorDataset(torch.zeros(size)), num_replicas=world_size, rank=rank, shuffle=True, seed=3
            )
            sampler.set_epoch(epoch)
            assert indices == list(sampler)
            shares.append(indices)
        union = [i for share in shares for i in share]
        assert set(union) == set(range(size))  # every image, and only the padding repeated
        assert len(union) == -(-size // world_size) * world_size
        assert len(union) - len(set(union)) == len(union) - size


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("size", "batch_size", "world_size"), [(37, 8, 1), (37, 8, 2), (40, 5, 3), (9, 4, 4)])
def test_steps_per_epoch_equal_the_dataloader(size: int, batch_size: int, world_size: int, drop_last: bool) -> None:
    dataset = TensorDataset(torch.zeros(size))
    for rank in range(world_size):
        sampler: DistributedSampler[int] = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=0)
        reference = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last)
        loader = _loader(_images(size), batch_size=batch_size, rank=rank, world_size=world_size, drop_last=drop_last)
        assert len(loader) == len(reference) == len(list(loader))
        if drop_last:
            assert all(len(y) == batch_size for _, y, _ in loader)


def test_crop_and_flip_equal_a_hand_made_reference() -> None:
    images = _images(12, size=8)
    x, _, views = next(iter(_loader(images, batch_size=12, channels_last=True)))
    assert x.shape == (12, 3, 8, 8) and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert set(views.flip.tolist()) == {0, 1}
    mean, std = np.array(MEAN).reshape(3, 1, 1), np.array(STD).reshape(3, 1, 1)
    for b in range(12):
        i, dy, dx, flip = (int(t[b]) for t in views)
        padded = np.zeros((3, 16, 16), dtype=np.uint8)
        padded[:, 4:12, 4:12] = images[i].numpy()
        crop = padded[:, dy : dy + 8, dx : dx + 8]
        crop = crop[:, :, ::-1] if flip else crop
        expected = (crop / 255.0 - mean) / std
        np.testing.assert_allclose(x[b].numpy(), expected, rtol=0, atol=1e-5)


def test_normalisation_of_uint8_and_float_images() -> None:
    images = _images(5)
    x, _, views = next(iter(_loader(images, batch_size=5, space=AugmentationSpace(padding=0, flip=False))))
    assert views.dy.tolist() == views.dx.tolist() == views.flip.tolist() == [0] * 5
    raw = images[views.index].double()
    expected = (raw / 255 - torch.tensor(MEAN).view(1, 3, 1, 1).double()) / torch.tensor(STD).view(1, 3, 1, 1).double()
    torch.testing.assert_close(x, expected.float(), rtol=0, atol=1e-6)
    assert x.is_contiguous()
    floats = torch.rand(5, 1, 4, 4)  # float images in [0, 1] (the upsampled digits) are not divided by 255
    loader = DeviceResidentLoader(floats, torch.zeros(5), batch_size=5, mean=(0.25,), std=(0.5,), return_views=True)
    xf, _, vf = next(iter(loader))
    torch.testing.assert_close(xf, (floats[vf.index] - 0.25) / 0.5)


def test_batches_have_the_layout_split_batch_reads() -> None:
    x, y, views = batch = next(iter(_loader(_images(9))))
    inputs, target = split_batch(batch)
    assert inputs is x and target is y and isinstance(views, AugmentationViews)
    plain = next(iter(DeviceResidentLoader(_images(9), torch.zeros(9), batch_size=4, mean=MEAN, std=STD)))
    assert len(plain) == 2


def test_bad_arguments() -> None:
    images, labels = _images(4), torch.zeros(4)
    with pytest.raises(ValueError, match=r"Expected argument `rank` to be in 0 \.\. 1, but got 2\."):
        DeviceResidentLoader(images, labels, batch_size=2, mean=MEAN, std=STD, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"Expected argument `world_size` to be a positive integer, but got 0\."):
        DeviceResidentLoader(images, labels, batch_size=2, mean=MEAN, std=STD, world_size=0)
    with pytest.raises(ValueError, match=r"`images` of shape \(N, C, H, W\) and `labels` of shape \(N,\)"):
        DeviceResidentLoader(images, torch.zeros(3), batch_size=2, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match=r"`mean` and `std` to have one value per channel \(3\), but got 1 and 1"):
        DeviceResidentLoader(images, labels, batch_size=2, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match=r"`images` to be uint8 or floating, but got torch\.int64"):
        DeviceResidentLoader(images.long(), labels, batch_size=2, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match=r"Expected argument `padding` to be a non-negative integer, but got -1"):
        AugmentationSpace(padding=-1, flip=False)
