"""The teacher-logit cache: exact served logits, the same training, refusal of stale caches and of augmentations
that cannot be enumerated, memory-mapped round trips, one cache for every ablation arm."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn

from lightning_kd import AblationModule, Arm, DistillationModule, TeacherLogitCache
from lightning_kd.cache import CacheIdentity, CacheMismatchError
from lightning_kd.cache.binding import cache_identity
from lightning_kd.cache.fill import fill_cache
from lightning_kd.data import AugmentationViews, CIFAR100DataModule, DigitsDataModule
from lightning_kd.data._views import crop_flip, stats_tensor, to_normalized_float
from lightning_kd.presets import create_loss
from tests.helpers import clone_state, make_trainer

N = 24  # fake CIFAR-100 training images: 24 x 162 views


def _write_cifar(root: Path, seed: int = 0) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", N), ("test", 8)):
        fine = rng.integers(0, 100, n).tolist()
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": fine, "coarse_labels": fine}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [str(i) for i in range(100)], "coarse_label_names": []}, f, protocol=2)
    return root


def _cnn(seed: int, classes: int = 100) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    )  # fmt: skip
    with torch.no_grad():
        model(torch.randn(16, 3, 32, 32))  # BatchNorm statistics of its own
    return model.eval()


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_cifar(tmp_path_factory.mktemp("cifar"))


def _data(root: Path, **kwargs: Any) -> CIFAR100DataModule:
    options: dict[str, Any] = {"batch_size": 8, "num_workers": 0, "verify_checksums": False, "return_views": True}
    return CIFAR100DataModule(root=str(root), **{**options, **kwargs})


def _identity(root: Path, teacher: nn.Module, **kwargs: Any) -> CacheIdentity:
    from lightning_kd.teacher import state_dict_sha256

    data = _data(root, **kwargs)
    data.setup("fit")
    return cache_identity(teacher_sha256=state_dict_sha256(teacher), datamodule=data, teacher_input=None,
                          channels_last=False, precision="32-true", num_classes=100)  # fmt: skip


def _filled(
    root: Path, path: Path | None, teacher: nn.Module, dtype: str = "float32", batch_size: int = 512
) -> TeacherLogitCache:
    cache = TeacherLogitCache(None if path is None else str(path), dtype=dtype)  # type: ignore[arg-type]
    cache.bind(_identity(root, teacher), "cpu")
    data = _data(root)
    data.setup("fit")
    images, _ = data._train_tensors()
    with torch.no_grad():
        fill_cache(cache, teacher, images, data.mean, data.std, batch_size=batch_size, progress=False)
    return cache


def _inputs(root: Path, views: AugmentationViews) -> torch.Tensor:
    data = _data(root)
    data.setup("fit")
    images, _ = data._train_tensors()
    x = crop_flip(images[views.index], views.dy, views.dx, views.flip, 4)
    # as the loaders make them: contiguous (crop_flip's result has the channels-last layout)
    return to_normalized_float(x, stats_tensor(data.mean), stats_tensor(data.std)).contiguous()


@pytest.mark.parametrize("fill_batch", [8, 512])
def test_served_logits_equal_the_recomputed_ones(cifar: Path, fill_batch: int) -> None:
    """fp32 cache against the teacher run on a training batch of 8 random views: bitwise, whether filled in batches
    of 8 or of 512 (the CPU's eval-mode kernels do not depend on the batch's composition). Where an accelerator's
    kernels do (cuDNN picks algorithms by shape), the docs promise 1e-6 of the logits' magnitude instead."""
    teacher = _cnn(1)
    cache = _filled(cifar, None, teacher, batch_size=fill_batch)
    assert cache.complete and cache.nbytes() >= N * 162 * 100 * 4
    g = torch.Generator().manual_seed(3)
    views = AugmentationViews(
        torch.randint(0, N, (8,), generator=g),
        torch.randint(0, 9, (8,), generator=g),
        torch.randint(0, 9, (8,), generator=g),
        torch.randint(0, 2, (8,), generator=g),
    )
    served = cache.teacher_logits(views, compute=lambda: pytest.fail("a complete cache runs no teacher"))
    with torch.no_grad():
        recomputed = teacher(_inputs(cifar, views))
    assert torch.equal(served, recomputed)


def test_training_with_the_cache_gives_the_same_student(cifar: Path, tmp_path: Path) -> None:
    teacher = _cnn(1)
    cache = TeacherLogitCache(str(tmp_path / "cache"), fill="lazy")
    results = []
    for teacher_cache in (None, cache):
        pl.seed_everything(5)
        module = DistillationModule(_cnn(2), teacher, create_loss("kd_z"), teacher_cache=teacher_cache)
        make_trainer(max_epochs=2, deterministic=True).fit(module, datamodule=_data(cifar))
        results.append(clone_state(module.student))
    plain, cached = results
    assert all(torch.equal(plain[k], cached[k]) for k in plain)
    assert 0 < cache.filled_fraction() < 1  # lazily filled: the views training drew, kept on disk
    again = TeacherLogitCache(str(tmp_path / "cache"))
    again.bind(_identity(cifar, teacher), "cpu")
    assert again.filled_fraction() == cache.filled_fraction()


def test_float16_storage_is_within_float16_rounding(cifar: Path) -> None:
    teacher = _cnn(1)
    exact, half = _filled(cifar, None, teacher), _filled(cifar, None, teacher, dtype="float16")
    views = AugmentationViews(
        torch.arange(8), torch.full((8,), 4), torch.full((8,), 4), torch.zeros(8, dtype=torch.long)
    )
    a, b = (c.teacher_logits(views, compute=lambda: pytest.fail()) for c in (exact, half))
    assert b.dtype == torch.float32 and not torch.equal(a, b)
    assert torch.allclose(b, a.half().float(), rtol=0, atol=0)  # exactly the float16 rounding of the logits
    loss = create_loss("kd_z")
    student = torch.randn(8, 100, generator=torch.Generator().manual_seed(1))
    target = torch.randint(0, 100, (8,))
    effect = abs(float(loss(student, a, target).loss) - float(loss(student, b, target).loss))
    assert effect < 1e-3 * float(loss(student, a, target).loss)


@pytest.mark.parametrize("field", ["teacher_sha256", "data_sha256", "teacher_input", "dtype", "top_k"])
def test_a_stale_cache_is_refused_naming_what_differs(cifar: Path, tmp_path: Path, field: str) -> None:
    teacher = _cnn(1)
    _filled(cifar, tmp_path / "cache", teacher)
    identity = _identity(cifar, teacher)
    cache = TeacherLogitCache(str(tmp_path / "cache"))
    if field == "teacher_sha256":
        identity = _identity(cifar, _cnn(7))
    elif field == "data_sha256":
        identity = _identity(_write_cifar(tmp_path / "other", seed=9), teacher)
    elif field == "teacher_input":
        identity = dataclasses.replace(identity, teacher_input=identity.teacher_input.replace("32-true", "bf16-mixed"))
    elif field == "dtype":
        cache = TeacherLogitCache(str(tmp_path / "cache"), dtype="float16")
    else:
        cache = TeacherLogitCache(str(tmp_path / "cache"), top_k=5)
    with pytest.raises(CacheMismatchError, match=rf"does not match this run: {field} \(cache "):
        cache.bind(identity, "cpu")
    assert not cache.is_bound


def test_another_augmentation_space_is_refused(cifar: Path, tmp_path: Path) -> None:
    teacher = _cnn(1)
    _filled(cifar, tmp_path / "cache", teacher)
    other = dataclasses.replace(_identity(cifar, teacher), padding=2)
    with pytest.raises(CacheMismatchError, match=r"padding \(cache 4, run 2\)"):
        TeacherLogitCache(str(tmp_path / "cache")).bind(other, "cpu")


@pytest.mark.parametrize(
    ("options", "loss", "match"),
    [
        ({"strong_aug": True, "return_views": False}, "mlkd", r"finite crop-and-flip space .* MLKD's strong view"),
        ({"return_views": False}, "kd", r"pass `return_views=True`"),
    ],
)
def test_data_that_cannot_serve_the_cache_is_refused_before_the_first_step(
    cifar: Path, options: dict[str, Any], loss: str, match: str
) -> None:
    module = DistillationModule(_cnn(2), _cnn(1), create_loss(loss), teacher_cache=TeacherLogitCache())
    trainer = make_trainer(max_epochs=1)
    with pytest.raises(ValueError, match=match):
        trainer.fit(module, datamodule=_data(cifar, **options))
    assert trainer.global_step == 0


def test_memory_mapped_round_trip_and_precomputed_mode(cifar: Path, tmp_path: Path) -> None:
    teacher = _cnn(1)
    filled = _filled(cifar, tmp_path / "cache", teacher)
    views = AugmentationViews(torch.arange(6), torch.arange(6), torch.arange(6).flip(0), torch.tensor([0, 1] * 3))
    expected = filled.teacher_logits(views, compute=lambda: pytest.fail())
    for storage in ("mmap", "device"):
        reopened = TeacherLogitCache(str(tmp_path / "cache"), storage=storage, fill="precomputed")  # type: ignore[arg-type]
        reopened.bind(_identity(cifar, teacher), "cpu")
        assert reopened.complete
        assert torch.equal(reopened.teacher_logits(views, compute=lambda: pytest.fail()), expected)
    with pytest.raises(ValueError, match=r"for `fill='precomputed'`, but it does not exist"):
        TeacherLogitCache(str(tmp_path / "nowhere"), fill="precomputed").bind(_identity(cifar, teacher), "cpu")
    with pytest.raises(ValueError, match=r"Expected `fill='precomputed'` .* under 2 processes"):
        TeacherLogitCache().bind(_identity(cifar, teacher), "cpu", world_size=2)


def test_top_k_keeps_the_largest_logits_and_the_mean_of_the_rest(cifar: Path) -> None:
    teacher = _cnn(1)
    cache = TeacherLogitCache(top_k=5)
    cache.bind(_identity(cifar, teacher), "cpu")
    views = AugmentationViews(
        torch.arange(4), torch.full((4,), 4), torch.full((4,), 4), torch.zeros(4, dtype=torch.long)
    )
    with torch.no_grad():
        logits = teacher(_inputs(cifar, views))
    served = cache.teacher_logits(views, compute=lambda: logits)
    top = logits.topk(5, dim=1)
    assert torch.equal(served.gather(1, top.indices), top.values)
    rest = (logits.sum(1) - top.values.sum(1)) / 95
    mask = torch.ones_like(logits, dtype=torch.bool).scatter_(1, top.indices, False)
    torch.testing.assert_close(served[mask].view(4, 95), rest.view(4, 1).expand(4, 95))


def test_one_cache_serves_every_arm_of_an_ablation() -> None:
    data = DigitsDataModule(batch_size=64, return_views=True)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    cache = TeacherLogitCache()
    arms = [
        Arm("kd", nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), "kd"),
        Arm("kd_z", nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), "kd_z"),
    ]
    calls = []
    module = AblationModule(teacher, arms, num_classes=10, in_chans=1, teacher_cache=cache)
    original = module._teacher.logits
    module._teacher.logits = lambda x: calls.append(len(x)) or original(x)  # type: ignore[method-assign]
    make_trainer(max_epochs=2, limit_val_batches=0).fit(module, datamodule=data)
    assert sum(calls) == 1437  # the teacher ran once per image (epoch 1), not per arm nor per epoch
    assert cache.complete
