"""CIFAR100DataModule on tiny fake ``cifar-100-python`` files written in the real pickle format."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.datasets import CIFAR100

from lightning_kd.data import AugmentationViews, CIFAR100DataModule, DeviceResidentLoader
from lightning_kd.data.cifar import CIFAR100_MEAN, CIFAR100_STD

GRAY = 128
N_TRAIN, N_TEST = 10, 6


def _write_split(path: Path, data: np.ndarray, fine: list[int]) -> None:
    # The official files are Python 2 pickles with ``str`` keys; torchvision loads them with
    # ``encoding="latin1"``, which yields ``str`` keys ("data", "fine_labels"), so that is what we write.
    entry = {
        "data": data,
        "fine_labels": fine,
        "coarse_labels": [label // 5 for label in fine],
        "filenames": [f"img_{i}.png" for i in range(len(fine))],
        "batch_label": "fake",
    }
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(N_TRAIN, 3072), dtype=np.uint8)  # textured: augmentations show
    _write_split(folder / "train", train, [int(v) for v in rng.integers(0, 100, N_TRAIN)])
    test = np.full((N_TEST, 3072), GRAY, dtype=np.uint8)  # constant gray
    _write_split(folder / "test", test, [0, 1, 2, 97, 98, 99])
    meta = {
        "fine_label_names": [f"fine_{i}" for i in range(100)],
        "coarse_label_names": [f"coarse_{i}" for i in range(20)],
    }
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return tmp_path


def _dm(root: Path, **kwargs: object) -> CIFAR100DataModule:
    return CIFAR100DataModule(
        root=str(root),
        batch_size=4,
        num_workers=0,
        verify_checksums=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_properties() -> None:
    dm = CIFAR100DataModule(root="anywhere")
    assert (dm.num_classes, dm.in_chans, dm.image_size) == (100, 3, 32)
    assert dm.mean == CIFAR100_MEAN and dm.std == CIFAR100_STD
    assert dm.batch_size == 64 and dm.num_workers == 4
    assert dm.data_dir == Path("anywhere").resolve() / "cifar-100-python"


def test_batches_shapes_dtypes_and_normalization(cifar_root: Path) -> None:
    dm = _dm(cifar_root)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == N_TRAIN and len(dm.val_set) == N_TEST  # type: ignore[arg-type]

    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (4,) and y.dtype == torch.int64
    assert int(y.min()) >= 0 and int(y.max()) < 100
    pixels = x * torch.tensor(CIFAR100_STD).view(1, 3, 1, 1) + torch.tensor(CIFAR100_MEAN).view(1, 3, 1, 1)
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5

    # validation = test split; a constant gray 128 normalizes to (128/255 - mean) / std per channel
    expected = [(GRAY / 255 - m) / s for m, s in zip(CIFAR100_MEAN, CIFAR100_STD, strict=True)]
    assert expected[0] == pytest.approx(-0.019211, abs=1e-5)  # by hand: (0.501961 - 0.5071) / 0.2675
    for loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        xv, yv = next(iter(loader))
        assert xv.shape == (4, 3, 32, 32) and xv.dtype == torch.float32 and yv.dtype == torch.int64
        assert yv.tolist() == [0, 1, 2, 97]  # not shuffled
        for c in range(3):
            torch.testing.assert_close(xv[:, c], torch.full((4, 32, 32), expected[c]), atol=1e-6, rtol=0)


def test_train_augmentation_is_random(cifar_root: Path) -> None:
    dm = _dm(cifar_root)
    dm.setup("fit")
    torch.manual_seed(0)
    first = [dm.train_set[0][0] for _ in range(5)]  # type: ignore[index]
    assert any(not torch.equal(first[0], other) for other in first[1:])


def test_strong_aug_two_views(cifar_root: Path) -> None:
    dm = _dm(cifar_root, strong_aug=True)
    dm.setup("fit")
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, tuple) and isinstance(batch[0], tuple) and len(batch[0]) == 2
    (x_weak, x_strong), y = batch
    assert x_weak.shape == x_strong.shape == (4, 3, 32, 32)
    assert x_weak.dtype == x_strong.dtype == torch.float32 and y.dtype == torch.int64
    assert not torch.allclose(x_weak, x_strong)
    # validation stays single-view
    xv, _ = next(iter(dm.val_dataloader()))
    assert xv.shape == (4, 3, 32, 32)


def test_strong_view_has_cutout_hole(cifar_root: Path) -> None:
    dm = _dm(cifar_root, strong_aug=True)
    dm.setup("fit")
    torch.manual_seed(1)
    (_, strong), _ = dm.train_set[0]  # type: ignore[index]
    # random uint8 pixels essentially never normalize to exactly 0 in all channels; the Cutout hole does
    hole = (strong == 0).all(dim=0)
    assert 16 <= int(hole.sum()) <= 256


def test_checksums_are_verified_by_default(cifar_root: Path) -> None:
    dm = CIFAR100DataModule(root=str(cifar_root), batch_size=4, num_workers=0)
    dm.prepare_data()  # only checks that the files exist
    with pytest.raises(RuntimeError, match=r"failed the md5 check.*verify_checksums=False"):
        dm.setup("fit")


@pytest.mark.parametrize("method", ["prepare_data", "setup"])
def test_missing_files(tmp_path: Path, method: str) -> None:
    dm = CIFAR100DataModule(root=str(tmp_path / "nope"), num_workers=0)
    expected_dir = (tmp_path / "nope").resolve() / "cifar-100-python"
    with pytest.raises(FileNotFoundError) as info:
        getattr(dm, method)()
    message = str(info.value)
    assert f"'{expected_dir}'" in message
    assert "train, test, meta" in message
    assert "download=True" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message


def test_partially_missing_files(cifar_root: Path) -> None:
    (cifar_root / "cifar-100-python" / "meta").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing meta\."):
        _dm(cifar_root).setup("fit")


def test_loader_before_setup(cifar_root: Path) -> None:
    with pytest.raises(RuntimeError, match=r"call `setup\(\)` first"):
        _dm(cifar_root).train_dataloader()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Expected argument `batch_size` to be a positive integer, but got 0\."):
        CIFAR100DataModule(root=str(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match=r"Expected argument `num_workers` to be a non-negative integer"):
        CIFAR100DataModule(root=str(tmp_path), num_workers=-1)
    file = tmp_path / "a_file"
    file.write_bytes(b"")
    with pytest.raises(ValueError, match=r"Expected argument `root` to be a directory, but got '.*a_file'"):
        CIFAR100DataModule(root=str(file))


# --------------------------------------------------------------------------------------------------------
# The CPU path gives torchvision's tensors; the views and the device path describe the same augmentation.
# --------------------------------------------------------------------------------------------------------
@pytest.fixture
def official_md5(cifar_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fake files "official": torchvision's public md5 lists name their md5."""
    folder = cifar_root / "cifar-100-python"
    md5 = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in ("train", "test", "meta")}
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": md5["meta"]})


def _torchvision_transforms() -> tuple[T.Compose, T.Compose]:
    normalize = T.Normalize((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))
    train = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    return train, T.Compose([T.ToTensor(), normalize])


@pytest.mark.usefixtures("official_md5")
def test_cpu_path_gives_torchvision_cifar100_tensors(cifar_root: Path) -> None:
    train_tf, eval_tf = _torchvision_transforms()
    reference_train = CIFAR100(str(cifar_root), train=True, transform=train_tf)
    reference_test = CIFAR100(str(cifar_root), train=False, transform=eval_tf)
    dm = CIFAR100DataModule(root=str(cifar_root), batch_size=4, num_workers=0)  # md5 verified (and matching)
    dm.setup("fit")
    for mine, reference in ((dm.train_dataloader(), reference_train), (dm.val_dataloader(), reference_test)):
        shuffle = mine.dataset is dm.train_set  # type: ignore[union-attr]
        torch.manual_seed(5)
        expected = list(DataLoader(reference, batch_size=4, shuffle=shuffle))
        torch.manual_seed(5)
        got = list(mine)
        assert len(got) == len(expected) == (3 if shuffle else 2)
        for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
            assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_views_on_the_cpu_path_are_the_transforms_draws(cifar_root: Path) -> None:
    dm, with_views = _dm(cifar_root), _dm(cifar_root, return_views=True)
    dm.setup("fit")
    with_views.setup("fit")
    raw = _raw_train(cifar_root)
    torch.manual_seed(9)
    x_ref, y_ref = next(iter(dm.train_dataloader()))
    torch.manual_seed(9)
    x, y, views = next(iter(with_views.train_dataloader()))
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert all(t.dtype == torch.int64 and t.shape == (4,) for t in views)
    _assert_crops(x, views, raw)


def _raw_train(root: Path) -> np.ndarray:
    with open(root / "cifar-100-python" / "train", "rb") as f:
        return pickle.load(f)["data"].reshape(-1, 3, 32, 32)


def _assert_crops(x: torch.Tensor, views: AugmentationViews, raw: np.ndarray) -> None:
    mean, std = np.array(CIFAR100_MEAN).reshape(3, 1, 1), np.array(CIFAR100_STD).reshape(3, 1, 1)
    for b in range(len(x)):
        i, dy, dx, flip = (int(t[b]) for t in views)
        assert 0 <= dy <= 8 and 0 <= dx <= 8
        padded = np.zeros((3, 40, 40))
        padded[:, 4:36, 4:36] = raw[i]
        crop = padded[:, dy : dy + 32, dx : dx + 32]
        crop = crop[:, :, ::-1] if flip else crop
        np.testing.assert_allclose(x[b].numpy(), (crop / 255 - mean) / std, rtol=0, atol=1e-5)


def test_device_path(cifar_root: Path) -> None:
    dm = _dm(cifar_root, device_resident=True, return_views=True, shuffle_seed=2)
    cpu = _dm(cifar_root, device_resident=False)
    dm.setup("fit")
    cpu.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceResidentLoader) and len(loader) == len(cpu.train_dataloader()) == 3
    raw, seen = _raw_train(cifar_root), []
    for x, y, views in loader:
        assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
        _assert_crops(x, views, raw)
        seen += views.index.tolist()
    assert sorted(seen) == list(range(N_TRAIN))
    fixed = _dm(cifar_root, device_resident=True, drop_last=True)
    fixed.setup("fit")
    assert len(fixed.train_dataloader()) == 2 and all(len(y) == 4 for _, y in fixed.train_dataloader())


def test_device_path_refusals(cifar_root: Path) -> None:
    with pytest.raises(ValueError, match=r"`device_resident` to be False or 'auto' here, but got True: `strong_aug"):
        _dm(cifar_root, strong_aug=True, device_resident=True)
    with pytest.raises(ValueError, match=r"`return_views` to be False here, but got True: `strong_aug=True`"):
        _dm(cifar_root, strong_aug=True, return_views=True)

    class Plain(CIFAR100DataModule):
        def train_transform(self) -> T.Compose:
            return T.Compose([T.ToTensor()])

    with pytest.raises(ValueError, match=r"got True: Plain overrides `train_transform\(\)`.*`device_resident=False`"):
        Plain(root=str(cifar_root), device_resident=True)
    with pytest.raises(ValueError, match=r"got True: Plain overrides `train_transform\(\)`"):
        Plain(root=str(cifar_root), return_views=True)
    plain = Plain(root=str(cifar_root), num_workers=0, verify_checksums=False)  # "auto": the CPU path
    assert plain.augmentation_space is None and not plain.uses_device_path()
    plain.setup("fit")
    x, _ = plain.train_set[3]  # type: ignore[index]
    torch.testing.assert_close(x, torch.from_numpy(_raw_train(cifar_root)[3] / 255).float())  # the subclass's transform
