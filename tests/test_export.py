"""Exports never replace good weights with bad ones: atomic writes, failed and empty fits, NaN, unwritable folders.

Each test writes a "previous" export first (the trained teacher a student recipe reads) and checks it is
bitwise the same file afterwards, with a real Trainer on scikit-learn's digits.
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

import lightning_kd.export as export_module
from lightning_kd import ClassifierModule, DistillationModule
from lightning_kd.export import ExportStudent, save_atomically
from lightning_kd.guard import NonFiniteError
from tests.helpers import bn_teacher, make_trainer, mlp, states_equal

BATCHES = 8  # per epoch


def digits(nan_at_batch: int | None = None) -> DataLoader:
    """256 digits (8x8 images as 64 features in [0, 1]) in unshuffled batches of 32; optionally one NaN pixel."""
    data = load_digits()
    x = torch.tensor(data.data[: 32 * BATCHES], dtype=torch.float32) / 16
    y = torch.tensor(data.target[: 32 * BATCHES], dtype=torch.long)
    if nan_at_batch is not None:
        x[32 * nan_at_batch, 0] = float("nan")
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)


def trainer(root: Path, callbacks: list[pl.Callback], **kwargs: Any) -> pl.Trainer:
    return make_trainer(default_root_dir=str(root), callbacks=callbacks, **kwargs)


def previous_export(path: Path) -> bytes:
    """Write a known good export at ``path`` (what an earlier, finished run left) and return its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.clone() for k, v in mlp(seed=7).state_dict().items()}, path)
    return path.read_bytes()


def messages(record: Iterable[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if "ExportStudent" in str(w.message)]


class StopAt(pl.Callback):
    """Raise ``error`` at the end of training batch ``batch`` of epoch ``epoch`` (after its optimizer step)."""

    def __init__(self, error: BaseException, epoch: int, batch: int) -> None:
        self.error, self.epoch, self.batch = error, epoch, batch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if trainer.current_epoch == self.epoch and idx == self.batch:
            raise self.error


class CountBatches(pl.Callback):
    def __init__(self) -> None:
        self.started = 0

    def on_train_batch_start(self, *args: Any) -> None:
        self.started += 1


@pytest.fixture
def restore_sigint() -> Iterator[None]:
    """Lightning ignores SIGINT after a KeyboardInterrupt (for its shutdown): give pytest its handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


# --------------------------------------------------------------------------------------------------------
# A finished fit.
# --------------------------------------------------------------------------------------------------------
def test_finished_fit_replaces_the_export_with_the_trained_weights(tmp_path: Path) -> None:
    target = tmp_path / "out" / "student.pt"
    previous = previous_export(target)
    module = ClassifierModule(mlp())
    export = ExportStudent(dirpath=str(tmp_path / "out"))
    trainer(tmp_path, [export]).fit(module, digits())

    assert export.last_path == target
    assert target.read_bytes() != previous
    assert states_equal(torch.load(target, weights_only=True), module.model.state_dict())
    assert sorted(p.name for p in target.parent.iterdir()) == ["student.pt"]  # no temporary or probe file left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # the permissions torch.save(path) would give


# --------------------------------------------------------------------------------------------------------
# A failed fit: Ctrl-C, an exception.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("restore_sigint")
def test_ctrl_c_mid_epoch_keeps_the_previous_export(tmp_path: Path) -> None:
    target = tmp_path / "student.pt"
    previous = previous_export(target)
    module = ClassifierModule(mlp())
    with pytest.warns(UserWarning) as record, pytest.raises(SystemExit):  # Lightning exits 1 after Ctrl-C
        trainer(tmp_path, [ExportStudent(), StopAt(KeyboardInterrupt(), epoch=0, batch=3)]).fit(module, digits())

    assert target.read_bytes() == previous
    failed = tmp_path / "student.failed.pt"
    assert states_equal(torch.load(failed, weights_only=True), module.model.state_dict())
    (message,) = messages(record)
    assert "KeyboardInterrupt after 4 training steps" in message  # batches 0..3 were stepped
    assert str(failed) in message and f"{target} keeps its previous weights" in message
    assert "the trained weights" not in message


@pytest.mark.parametrize(("epoch", "batch", "steps"), [(1, 2, BATCHES + 3), (0, 0, 1)])
def test_exception_mid_run_keeps_the_previous_export(tmp_path: Path, epoch: int, batch: int, steps: int) -> None:
    target = tmp_path / "resnet20.pth"
    previous = previous_export(target)
    module = ClassifierModule(mlp())
    export = ExportStudent("resnet20.pth")
    with pytest.warns(UserWarning) as record, pytest.raises(RuntimeError, match="data went missing"):
        trainer(tmp_path, [export, StopAt(RuntimeError("data went missing"), epoch, batch)], max_epochs=2).fit(
            module, digits()
        )

    assert target.read_bytes() == previous
    failed = tmp_path / "resnet20.failed.pth"
    assert export.last_path == failed
    assert states_equal(torch.load(failed, weights_only=True), module.model.state_dict())
    (message,) = messages(record)
    assert f"RuntimeError after {steps} training steps" in message


def test_exception_before_any_step_exports_nothing(tmp_path: Path) -> None:
    class FailAtStart(pl.Callback):
        def on_train_start(self, *args: Any) -> None:
            raise RuntimeError("no data")

    target = tmp_path / "student.pt"
    previous = previous_export(target)
    with pytest.warns(UserWarning) as record, pytest.raises(RuntimeError, match="no data"):
        trainer(tmp_path, [ExportStudent(), FailAtStart()]).fit(ClassifierModule(mlp()), digits())

    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt"]
    (message,) = messages(record)
    assert "before any training step: nothing exported" in message


# --------------------------------------------------------------------------------------------------------
# A fit that trained nothing.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_previous", [True, False])
def test_zero_steps_never_replace_the_export(tmp_path: Path, with_previous: bool) -> None:
    target = tmp_path / "student.pt"
    previous = previous_export(target) if with_previous else None
    export = ExportStudent()
    with pytest.warns(UserWarning) as record:
        trainer(tmp_path, [export], max_epochs=0).fit(ClassifierModule(mlp()), digits())

    assert export.last_path is None
    if previous is None:
        assert list(tmp_path.iterdir()) == []
    else:
        assert target.read_bytes() == previous
        assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt"]  # no .failed file either
    (message,) = messages(record)
    assert "0 training steps" in message and "nothing exported" in message
    assert ("keeps its previous weights" if with_previous else "was not written") in message
    assert "the trained weights" not in message


# --------------------------------------------------------------------------------------------------------
# NaN / Inf weights.
# --------------------------------------------------------------------------------------------------------
class PoisonAtTrainEnd(pl.Callback):
    """Makes one layer's weights NaN after the last step, before the export (a bug in a user's hook, say)."""

    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with torch.no_grad():
            self.layer.weight.fill_(float("nan"))


def test_nan_weights_after_a_finished_fit_are_not_exported(tmp_path: Path) -> None:
    target = tmp_path / "student.pt"
    previous = previous_export(target)
    student = mlp()
    hidden = student[1]
    assert isinstance(hidden, nn.Linear)
    module = ClassifierModule(student)
    with pytest.raises(NonFiniteError, match=r"Refusing to export .*/student\.pt \(not written\)"):
        trainer(tmp_path, [PoisonAtTrainEnd(hidden), ExportStudent()]).fit(module, digits())

    assert torch.isnan(hidden.weight).all() and module.global_step > 0  # a finished fit, NaN weights
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt"]


def test_a_nan_batch_stops_a_classifier_run_and_keeps_the_previous_export(tmp_path: Path) -> None:
    target = tmp_path / "student.pt"
    previous = previous_export(target)
    with pytest.warns(UserWarning, match="could not be exported"), pytest.raises(NonFiniteError, match="step 2"):
        trainer(tmp_path, [ExportStudent()]).fit(ClassifierModule(mlp()), digits(nan_at_batch=2))
    assert target.read_bytes() == previous


def test_nan_stop_during_distillation_keeps_the_previous_export(tmp_path: Path) -> None:
    target = tmp_path / "student.pt"
    previous = previous_export(target)
    module = DistillationModule(mlp(), bn_teacher())
    with pytest.warns(UserWarning) as record, pytest.raises(NonFiniteError, match="training step 2"):
        trainer(tmp_path, [ExportStudent()]).fit(module, digits(nan_at_batch=2))

    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt"]  # NaN weights go nowhere
    (message,) = messages(record)
    assert "could not be exported" in message and "NaN or Inf" in message


def test_export_refuses_non_finite_tensors_and_names_them(tmp_path: Path) -> None:
    norm = nn.BatchNorm1d(4)
    model = nn.Sequential(nn.Linear(4, 4), norm)
    assert norm.running_var is not None
    with torch.no_grad():
        norm.running_var[2] = float("inf")  # a buffer, not a parameter
    path = tmp_path / "model.pt"
    with pytest.raises(NonFiniteError, match=r"non-finite tensors: 1\.running_var\."):
        ClassifierModule(model, num_classes=4).export(path)
    assert not path.exists()


# --------------------------------------------------------------------------------------------------------
# The folder, and the write itself.
# --------------------------------------------------------------------------------------------------------
def _unwritable(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(``dirpath``, the folder the error must name) for each kind of export folder that cannot be written."""
    if kind == "a folder under a regular file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        return tmp_path / "notes.txt" / "exports", tmp_path / "notes.txt" / "exports"
    if kind == "a folder name longer than the filesystem allows":
        folder = tmp_path / ("x" * 300)  # NAME_MAX is 255 on Linux, macOS and Windows filesystems
        return folder, folder
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder, folder


@pytest.mark.parametrize(
    "kind", ["a read-only folder", "a folder under a regular file", "a folder name longer than the filesystem allows"]
)
def test_unwritable_folder_is_an_error_at_setup(tmp_path: Path, kind: str) -> None:
    dirpath, named = _unwritable(tmp_path, kind)
    if kind == "a read-only folder" and os.access(dirpath, os.W_OK):
        # root (CAP_DAC_OVERRIDE) writes into a 0o500 folder: the mode cannot stop it, so this case is checked
        # as the user it is meant for only; the other two kinds stop root as well
        probe = dirpath / "probe"
        probe.write_bytes(b"")
        probe.unlink()
        dirpath.chmod(0o700)
        dirpath, named = _unwritable(tmp_path, "a folder under a regular file")
    counter = CountBatches()
    try:
        with pytest.raises(OSError, match="Expected the export folder to be writable") as raised:
            trainer(tmp_path, [ExportStudent(dirpath=str(dirpath)), counter]).fit(ClassifierModule(mlp()), digits())
    finally:
        if kind == "a read-only folder" and dirpath.is_dir():
            dirpath.chmod(0o700)  # so that pytest can remove it
    assert str(named) in str(raised.value)
    assert counter.started == 0  # raised at setup, before any training


def test_export_path_that_is_a_directory_is_an_error_at_setup(tmp_path: Path) -> None:
    (tmp_path / "student.pt").mkdir()
    counter = CountBatches()
    with pytest.raises(OSError, match=re.escape(f"{tmp_path / 'student.pt'} to be a file, but it is a directory")):
        trainer(tmp_path, [ExportStudent(), counter]).fit(ClassifierModule(mlp()), digits())
    assert counter.started == 0


class _FullDisk(io.FileIO):
    """A file whose writes fail with ENOSPC once ``budget`` bytes are written (a simulated full disk)."""

    budget = 2048
    written = 0

    def write(self, data: Any) -> int:
        room = self.budget - _FullDisk.written
        if len(data) > room:
            super().write(bytes(memoryview(data)[:room]))
            _FullDisk.written += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _FullDisk.written += len(data)
        return super().write(data)


def _full_disk_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    return io.BufferedWriter(_FullDisk(file, mode.replace("b", "")))


def test_full_disk_during_the_export_keeps_the_previous_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The operating system's ENOSPC is simulated: the export module's file writes fail once 2 KiB are on disk.
    target = tmp_path / "student.pt"
    previous = previous_export(target)
    monkeypatch.setattr(export_module, "open", _full_disk_open, raising=False)
    monkeypatch.setattr(_FullDisk, "written", 0)
    with pytest.raises(OSError) as raised:
        trainer(tmp_path, [ExportStudent()]).fit(ClassifierModule(mlp()), digits())

    assert raised.value.errno == errno.ENOSPC
    assert _FullDisk.written == _FullDisk.budget  # the write did start, and stopped half-way
    assert target.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.pt"]  # the partial temporary file is removed


def test_save_atomically_replaces_only_a_complete_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "weights.pt"
    save_atomically({"w": torch.arange(4.0)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.tensor([0.0, 1.0, 2.0, 3.0]))
    before = path.read_bytes()
    monkeypatch.setattr(export_module, "open", _full_disk_open, raising=False)
    monkeypatch.setattr(_FullDisk, "written", 0)
    with pytest.raises(OSError, match=re.escape(f"No space left on device; {path} was not written")) as raised:
        save_atomically({"w": torch.zeros(10_000)}, path)
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]
