"""Checkpoints of a DistillationModule: contents, loading, exact resume, export, and a crashed run."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_kd import CurriculumTemperature, DistillationLoss, DistillationModule
from tests.helpers import (
    bn_teacher,
    clone_state,
    loader,
    make_trainer,
    random_dataset,
    small_cnn,
    states_equal,
)

DATA = partial(random_dataset, 48, 11)  # 3 batches of 16


def _ctkd() -> DistillationLoss:
    return DistillationLoss("kd", temperature=CurriculumTemperature(decay_epochs=3))


def _module(save_teacher: bool = False, student_seed: int = 2, teacher_seed: int = 1) -> DistillationModule:
    """A BatchNorm CNN student, CTKD, SGD with momentum and a MultiStepLR schedule."""
    return DistillationModule(
        small_cnn(student_seed),
        bn_teacher(teacher_seed),
        _ctkd(),
        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9),
        lr_scheduler=partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[1, 2], gamma=0.5),
        save_teacher=save_teacher,
    )


def _trainer(dirpath: Path, max_epochs: int, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    checkpoint = ModelCheckpoint(dirpath=dirpath, save_last=True)
    return make_trainer(
        max_epochs=max_epochs,
        enable_checkpointing=True,
        deterministic=True,
        callbacks=[checkpoint, *(callbacks or [])],
    )


class FailAtEpoch(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"simulated failure in epoch {self.epoch + 1}")


def _assert_teacher_frozen(module: DistillationModule, reference: dict[str, torch.Tensor]) -> None:
    assert not module.teacher.training
    assert not any(p.requires_grad for p in module.teacher.parameters())
    assert states_equal(clone_state(module.teacher), reference)


@pytest.mark.parametrize("save_teacher", [False, True], ids=["default", "save_teacher"])
def test_checkpoint_contents_and_loading(tmp_path: Path, save_teacher: bool) -> None:
    module = _module(save_teacher)
    teacher_state = clone_state(module.teacher)
    _trainer(tmp_path, max_epochs=1).fit(module, loader(DATA()))
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)

    student_keys = {f"model.{k}" for k in module.student.state_dict()}
    expected = student_keys | {"loss.temperature.theta", "loss.temperature.epoch", "val_acc1_best.max_value"}
    assert set(checkpoint["state_dict"]) == expected
    assert states_equal(checkpoint["state_dict"], clone_state(module))
    assert int(checkpoint["state_dict"]["loss.temperature.epoch"]) == 1
    assert float(checkpoint["state_dict"]["loss.temperature.theta"]) != 1.0  # trained
    assert len(checkpoint["optimizer_states"]) == 1
    assert checkpoint["optimizer_states"][0]["state"]  # momentum buffers
    assert len(checkpoint["lr_schedulers"]) == 1 and checkpoint["lr_schedulers"][0]["last_epoch"] == 1
    teacher_weights = [v for v in teacher_state.values() if v.is_floating_point() and v.numel() > 1]
    for value in checkpoint["state_dict"].values():  # no teacher weights under any name
        assert not any(v.shape == value.shape and torch.equal(v, value) for v in teacher_weights)
    if save_teacher:
        assert states_equal(checkpoint["teacher_state_dict"], teacher_state)
    else:
        assert "teacher_state_dict" not in checkpoint

    # load_from_checkpoint with fresh objects: the student and theta come back; the teacher only if saved
    other_teacher = bn_teacher(seed=42)
    other_teacher_state = clone_state(other_teacher)
    loaded = DistillationModule.load_from_checkpoint(
        tmp_path / "last.ckpt", student=small_cnn(seed=99), teacher=other_teacher, loss=_ctkd()
    )
    assert states_equal(clone_state(loaded), clone_state(module))
    _assert_teacher_frozen(loaded, teacher_state if save_teacher else other_teacher_state)
    assert loaded.save_teacher is save_teacher

    # resume with trainer.fit(ckpt_path=...)
    resumed = _module(save_teacher, student_seed=98, teacher_seed=42)
    trainer = _trainer(tmp_path / "resumed", max_epochs=2)
    trainer.fit(resumed, loader(DATA()), ckpt_path=tmp_path / "last.ckpt")
    assert trainer.current_epoch == 2 and trainer.global_step == 6
    assert int(resumed.loss.temperature.epoch) == 2
    _assert_teacher_frozen(resumed, teacher_state if save_teacher else other_teacher_state)


def test_interrupted_run_resumes_exactly(tmp_path: Path) -> None:
    """Crash in epoch 3, resume from last.ckpt: bitwise the same as an uninterrupted run (CTKD, BN, momentum,
    MultiStepLR)."""
    pl.seed_everything(0)
    full = _module()
    full_trainer = _trainer(tmp_path / "full", max_epochs=4)
    full_trainer.fit(full, loader(DATA()))

    pl.seed_everything(0)
    crashed = _module()
    with pytest.raises(RuntimeError, match="simulated failure in epoch 3"):
        _trainer(tmp_path / "run", max_epochs=4, callbacks=[FailAtEpoch(2)]).fit(crashed, loader(DATA()))
    assert not states_equal(clone_state(crashed), clone_state(full))

    resumed = _module(student_seed=77)
    resumed_trainer = _trainer(tmp_path / "run", max_epochs=4)
    resumed_trainer.fit(resumed, loader(DATA()), ckpt_path=tmp_path / "run" / "last.ckpt")

    assert states_equal(clone_state(resumed), clone_state(full))  # student, BN statistics, theta, its epoch
    assert int(resumed.loss.temperature.epoch) == 4
    full_opt, resumed_opt = full_trainer.optimizers[0].state_dict(), resumed_trainer.optimizers[0].state_dict()
    assert [g["lr"] for g in full_opt["param_groups"]] == [g["lr"] for g in resumed_opt["param_groups"]]
    assert len(resumed_opt["param_groups"]) == 1  # theta is in the student's group (default optimizer)
    for index, state in full_opt["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed_opt["state"][index]["momentum_buffer"])
    full_sched = full_trainer.lr_scheduler_configs[0].scheduler.state_dict()
    assert full_sched == resumed_trainer.lr_scheduler_configs[0].scheduler.state_dict()


def test_failed_run_keeps_a_loadable_last_checkpoint(tmp_path: Path) -> None:
    module = _module()
    with pytest.raises(RuntimeError, match="simulated failure in epoch 2"):
        _trainer(tmp_path, max_epochs=3, callbacks=[FailAtEpoch(1)]).fit(module, loader(DATA()))
    path = tmp_path / "last.ckpt"
    assert path.is_file()
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 3
    loaded = DistillationModule.load_from_checkpoint(
        path, student=small_cnn(seed=5), teacher=bn_teacher(), loss=_ctkd()
    )
    # the failure came before any update of epoch 2: the checkpoint holds the module as it was at the crash,
    # except for the curriculum's epoch, which had already moved on to 2
    at_crash = clone_state(module)
    assert int(at_crash.pop("loss.temperature.epoch")) == 2
    saved = clone_state(loaded)
    assert int(saved.pop("loss.temperature.epoch")) == 1
    assert states_equal(saved, at_crash)


def test_export_student_loads_into_the_bare_architecture(tmp_path: Path) -> None:
    module = _module()
    make_trainer(max_epochs=1).fit(module, loader(DATA()))
    module.eval()
    x, y = DATA().tensors
    with torch.no_grad():
        logits = module(x)

    path = module.export_student(tmp_path / "export" / "student.pt")
    assert path == tmp_path / "export" / "student.pt"
    weights = torch.load(path, weights_only=True)
    assert isinstance(weights, dict) and all(isinstance(v, torch.Tensor) for v in weights.values())
    assert list(weights) == list(module.student.state_dict())  # no "model." prefix, no loss or teacher keys

    bare = small_cnn(seed=123)
    bare.load_state_dict(weights, strict=True)
    bare.eval()
    with torch.no_grad():
        exported_logits = bare(x)
    assert torch.equal(exported_logits, logits)
    assert torch.equal(exported_logits.argmax(1) == y, logits.argmax(1) == y)


def test_best_validation_accuracy_survives_a_resume(tmp_path: Path) -> None:
    """`val/acc1_best` is the best over the whole run, also when the run was resumed from a checkpoint."""
    pl.seed_everything(0)
    module = _module()
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(module, loader(DATA()), loader(random_dataset(32, 5)))
    best = float(trainer.callback_metrics["val/acc1_best"])
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert float(checkpoint["state_dict"]["val_acc1_best.max_value"]) == pytest.approx(best)
    fresh = _module(student_seed=77)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert float(fresh.val_acc1_best.compute()) == pytest.approx(best)

    resumed = _module(student_seed=77)
    resumed_trainer = _trainer(tmp_path, max_epochs=3)
    resumed_trainer.fit(resumed, loader(DATA()), loader(random_dataset(32, 5)), ckpt_path=tmp_path / "last.ckpt")
    last = float(resumed_trainer.callback_metrics["val/acc1"])
    assert float(resumed_trainer.callback_metrics["val/acc1_best"]) == pytest.approx(max(best, last))
