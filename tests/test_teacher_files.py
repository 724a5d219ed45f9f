"""Teacher files that are not checkpoints, or broken ones: each is named as such, with its path and size.

Every file is written by the test into ``tmp_path`` in its real on-disk form; the advice to switch safe loading
off is given only when the weights-only loader really refused a named Python global.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_kd import DistillationModule, load_teacher
from lightning_kd.models import create_model
from tests.helpers import mlp, states_equal


def _weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return dict(create_model("resnet8", num_classes=10, in_chans=1).state_dict())


def _checkpoint_bytes(tmp_path: Path, *, zip_format: bool = True) -> bytes:
    path = tmp_path / "whole.pth"
    torch.save({"model": _weights(), "epoch": 240}, path, _use_new_zipfile_serialization=zip_format)
    data = path.read_bytes()
    path.unlink()
    return data


def _random_bytes(tmp_path: Path) -> bytes:
    data = random.Random(0).randbytes(4096)
    assert data[:1] not in (b"c", b"\x93")  # does not start with a pickle GLOBAL opcode: plain noise
    return data


def _yaml(tmp_path: Path) -> bytes:
    return b"model:\n  class_path: lightning_kd.ClassifierModule\n  init_args:\n    model: resnet8\n"


def _zip_without_checkpoint(tmp_path: Path) -> bytes:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "weights are elsewhere")
        archive.writestr("archive/notes.txt", "not data.pkl")
    data = path.read_bytes()
    path.unlink()
    return data


FILES: dict[str, Callable[[Path], bytes]] = {
    "random bytes": _random_bytes,
    "an empty file": lambda tmp_path: b"",
    "a truncated checkpoint": lambda tmp_path: _checkpoint_bytes(tmp_path)[:-4000],
    "a checkpoint cut to its first bytes": lambda tmp_path: _checkpoint_bytes(tmp_path)[:10],
    "a truncated legacy checkpoint": lambda tmp_path: (lambda d: d[: len(d) // 2])(
        _checkpoint_bytes(tmp_path, zip_format=False)
    ),
    "a YAML file": _yaml,
    "a zip that is not a checkpoint": _zip_without_checkpoint,
    "a plain pickle": lambda tmp_path: pickle.dumps({"model": [1, 2, 3]}),
}


@pytest.mark.parametrize("weights_only", [True, False])
@pytest.mark.parametrize("kind", list(FILES))
def test_a_broken_or_foreign_file_is_reported_with_its_path_and_size(
    tmp_path: Path, kind: str, weights_only: bool
) -> None:
    data = FILES[kind](tmp_path)
    path = tmp_path / "teacher.pth"
    path.write_bytes(data)
    with pytest.raises(ValueError) as raised:
        load_teacher(path, arch="resnet8", in_chans=1, weights_only=weights_only)
    message = str(raised.value)
    assert f"not a PyTorch checkpoint or corrupt: {path} (size {len(data)} bytes)" in message
    assert "teacher_weights_only" not in message  # no advice to switch safe loading off for a broken file


def test_a_broken_teacher_file_fails_when_the_module_is_built(tmp_path: Path) -> None:
    path = tmp_path / "resnet8.pth"
    path.write_bytes(_checkpoint_bytes(tmp_path)[:-4000])
    with pytest.raises(ValueError, match=re.escape(f"corrupt: {path} (size {path.stat().st_size} bytes)")):
        DistillationModule(mlp(), str(path), teacher_arch="resnet8", in_chans=1)


def test_the_intact_checkpoint_those_files_were_cut_from_loads(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pth"
    path.write_bytes(_checkpoint_bytes(tmp_path))
    assert states_equal(load_teacher(path, arch="resnet8", in_chans=1).state_dict(), _weights())


@pytest.mark.parametrize(
    ("payload", "global_name"),
    [
        (lambda: nn.Sequential(nn.Linear(2, 2)), "torch.nn.modules.container.Sequential"),
        (lambda: {"model": _weights(), "args": argparse.Namespace(lr=0.05)}, "argparse.Namespace"),
    ],
    ids=["a pickled module", "a training script's argparse options"],
)
def test_a_refused_global_keeps_the_advice_and_names_it(
    tmp_path: Path, payload: Callable[[], object], global_name: str
) -> None:
    path = tmp_path / "teacher.pth"
    torch.save(payload(), path)
    with pytest.raises(ValueError, match="teacher_weights_only=False") as raised:
        load_teacher(path, arch="resnet8", in_chans=1)
    assert f"`{global_name}`" in str(raised.value)
    assert "corrupt" not in str(raised.value)


def test_a_global_from_a_blocked_module_is_named_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pth"
    torch.save({"model": _weights(), "hook": os.system}, path)  # pickled by reference; nothing runs here
    with pytest.raises(ValueError, match="can run any command") as raised:
        load_teacher(path, arch="resnet8", in_chans=1)
    assert f"`{os.system.__module__}.system`" in str(raised.value)  # posix.system (nt.system on Windows)


def test_a_directory_is_not_reported_as_missing(tmp_path: Path) -> None:
    folder = tmp_path / "teachers"
    folder.mkdir()
    torch.save(_weights(), folder / "resnet8.pth")
    with pytest.raises(IsADirectoryError) as raised:
        load_teacher(folder, arch="resnet8", in_chans=1)
    message = str(raised.value)
    assert f"{folder} is a directory" in message and "resnet8.pth" in message
    assert "does not exist" not in message


def test_a_missing_file_is_reported_as_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'nope.pth'} does not exist")):
        load_teacher(tmp_path / "nope.pth", arch="resnet8", in_chans=1)
