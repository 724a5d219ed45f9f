"""KnowledgeDistillation: distilling into an unmodified LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from lightning_kd import DKD, CurriculumTemperature, DistillationLoss, KnowledgeDistillation
from tests.helpers import (
    LossRecorder,
    bn_teacher,
    clone_state,
    hand_ce,
    hand_dkd,
    hand_kd,
    loader,
    make_trainer,
    mlp,
    optimizer_param_ids,
    random_dataset,
    states_equal,
)


class PlainClassifier(pl.LightningModule):
    """An ordinary LightningModule that knows nothing about distillation; training_step calls ``self(x)``."""

    def __init__(self, seed: int = 0, momentum: float = 0.0) -> None:
        super().__init__()
        self.net = mlp(seed)
        self.momentum = momentum

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train/ce", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.2, momentum=self.momentum)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 2], gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class NetCallingClassifier(PlainClassifier):
    """Its training_step calls ``self.net(x)`` (not ``self(x)``) and returns a dict."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return {"loss": F.cross_entropy(self.net(x), y)}


class FailInSecondEpoch(pl.Callback):
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated failure")


def _assert_module_untouched(module: pl.LightningModule, names: list[str], keys: list[str]) -> None:
    assert type(module) in (PlainClassifier, NetCallingClassifier)
    assert "training_step" not in vars(module)
    assert module.training_step.__func__ is type(module).training_step  # type: ignore[attr-defined]
    assert [n for n, _ in module.named_modules()] == names
    assert list(module.state_dict()) == keys
    assert all(not m._forward_hooks for m in module.modules())


def test_callback_adds_kd_weight_times_kd_and_leaves_the_module_unchanged(tmp_path: Path) -> None:
    data = random_dataset(32, seed=4)
    first_x, first_y = data.tensors[0][:16], data.tensors[1][:16]
    teacher = bn_teacher()
    teacher_state = clone_state(teacher)

    plain = PlainClassifier()
    make_trainer(max_epochs=1).fit(plain, loader(data))

    module = PlainClassifier()
    names, keys = [n for n, _ in module.named_modules()], list(module.state_dict())
    with torch.no_grad():
        student_logits, teacher_logits = module(first_x), teacher.eval()(first_x)
        expected = hand_ce(student_logits, first_y) + 0.7 * hand_kd(student_logits, teacher_logits, 4.0)
    callback = KnowledgeDistillation(teacher, "kd", kd_weight=0.7, loss_kwargs={"temperature": 4.0})
    recorder = LossRecorder()
    trainer = make_trainer(max_epochs=1, callbacks=[callback, recorder], log_every_n_steps=1)
    trainer.fit(module, loader(data))

    torch.testing.assert_close(recorder.losses[0].double(), expected, rtol=1e-5, atol=1e-6)
    assert not states_equal(clone_state(plain), clone_state(module))  # the teacher changed the training
    assert "train/loss_kd" in trainer.callback_metrics and "train/agreement" in trainer.callback_metrics
    assert "train/temperature" in trainer.callback_metrics and "train/ce" in trainer.callback_metrics

    _assert_module_untouched(module, names, keys)
    frozen = callback.teacher
    assert {id(p) for p in frozen.parameters()}.isdisjoint(optimizer_param_ids(trainer))
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert states_equal(teacher_state, clone_state(frozen))
    # the caller's teacher object is not changed (a frozen copy is held)
    assert all(p.requires_grad for p in teacher.parameters()) and states_equal(teacher_state, clone_state(teacher))

    path = tmp_path / "module.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    assert list(checkpoint["state_dict"]) == keys  # the module's own weights only, no teacher
    assert "KnowledgeDistillation" in checkpoint["callbacks"]


def test_ctkd_theta_joins_the_optimizer_is_checkpointed_and_resumes_exactly(tmp_path: Path) -> None:
    def run(max_epochs: int, ckpt_path: str | None = None) -> tuple[PlainClassifier, KnowledgeDistillation, Any]:
        pl.seed_everything(0)
        module = PlainClassifier(momentum=0.9)
        temperature = CurriculumTemperature(decay_epochs=3)
        callback = KnowledgeDistillation(bn_teacher(), DistillationLoss("kd", temperature=temperature))
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
        trainer = make_trainer(
            max_epochs=max_epochs, callbacks=[callback, checkpoint], enable_checkpointing=True, deterministic=True
        )
        trainer.fit(module, loader(random_dataset(48, seed=5)), ckpt_path=ckpt_path)
        return module, callback, trainer

    full, full_callback, trainer = run(3)
    theta = full_callback.loss.temperature.theta
    optimizer = trainer.optimizers[0]
    assert len(optimizer.param_groups) == 2 and optimizer.param_groups[1]["params"] == [theta]
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.05, 0.05])  # both follow MultiStepLR
    assert float(theta.detach()) != 1.0  # trained (adversarially) from its initial value
    assert int(full_callback.loss.temperature.epoch) == 3

    (tmp_path / "ckpt" / "last.ckpt").unlink()
    _, first_callback, _ = run(2)
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    state = saved["callbacks"]["KnowledgeDistillation"]["loss"]
    assert torch.equal(state["temperature.theta"], first_callback.loss.temperature.theta.detach())
    assert int(state["temperature.epoch"]) == 2
    assert len(saved["optimizer_states"][0]["param_groups"]) == 2

    resumed, resumed_callback, _ = run(3, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert states_equal(clone_state(full), clone_state(resumed))
    assert torch.equal(resumed_callback.loss.temperature.theta.detach(), theta.detach())
    assert int(resumed_callback.loss.temperature.epoch) == 3


def test_student_attr_for_a_training_step_calling_a_submodule() -> None:
    data = random_dataset(16, seed=6)
    module = NetCallingClassifier()
    names, keys = [n for n, _ in module.named_modules()], list(module.state_dict())
    before = clone_state(module)
    callback = KnowledgeDistillation(bn_teacher(), "kd", kd_weight=0.5, loss_kwargs={"temperature": 2.0})
    trainer = make_trainer(max_epochs=1, callbacks=[callback])
    with pytest.raises(ValueError, match=r"Expected training_step to call the module's forward \(`self\(x\)`\)"):
        trainer.fit(module, loader(data))
    assert trainer.global_step == 0 and states_equal(before, clone_state(module))
    _assert_module_untouched(module, names, keys)

    teacher = bn_teacher()
    with torch.no_grad():
        x, y = data.tensors
        expected = hand_ce(module.net(x), y) + 0.5 * hand_kd(module.net(x), teacher.eval()(x), 2.0)
    callback = KnowledgeDistillation(teacher, "kd", kd_weight=0.5, loss_kwargs={"temperature": 2.0}, student_attr="net")
    recorder = LossRecorder()
    make_trainer(max_epochs=1, callbacks=[callback, recorder]).fit(module, loader(data))
    torch.testing.assert_close(recorder.losses[0].double(), expected, rtol=1e-5, atol=1e-6)
    assert not states_equal(before, clone_state(module))
    _assert_module_untouched(module, names, keys)

    with pytest.raises(ValueError, match="`student_attr` to name a submodule of NetCallingClassifier"):
        make_trainer(callbacks=[KnowledgeDistillation(bn_teacher(), student_attr="nope")]).fit(module, loader(data))


def test_dkd_uses_the_batch_target() -> None:
    data = random_dataset(16, seed=8)
    x, y = data.tensors
    module, teacher = PlainClassifier(), bn_teacher()
    with torch.no_grad():
        s, t = module(x), teacher.eval()(x)
    loss = DistillationLoss(DKD(alpha=1.0, beta=4.0), temperature=4.0, ce_weight=5.0)  # ce_weight is not used
    recorder = LossRecorder()
    make_trainer(max_steps=1, callbacks=[KnowledgeDistillation(teacher, loss), recorder]).fit(module, loader(data))

    added = recorder.losses[0].double() - hand_ce(s, y)
    torch.testing.assert_close(added, hand_dkd(s, t, y, 1.0, 4.0, 4.0), rtol=1e-5, atol=1e-6)
    wrong = hand_dkd(s, t, (y + 1) % 10, 1.0, 4.0, 4.0)
    assert abs(float(added - wrong)) > 1e-3


def test_dkd_needs_targets() -> None:
    class InputsOnly(PlainClassifier):
        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            return self(batch).logsumexp(1).mean()

    dataset = random_dataset(16).tensors[0]
    callback = KnowledgeDistillation(bn_teacher(), DistillationLoss("dkd", temperature=4.0))
    with pytest.raises(ValueError, match="Expected batches with targets for DKD"):
        make_trainer(callbacks=[callback]).fit(InputsOnly(), torch.utils.data.DataLoader(dataset, batch_size=8))
    callback = KnowledgeDistillation(
        bn_teacher(), DistillationLoss("dkd", temperature=4.0), get_target=lambda b: torch.zeros(len(b)).long()
    )
    make_trainer(max_steps=1, callbacks=[callback]).fit(InputsOnly(), torch.utils.data.DataLoader(dataset, 8))


def test_mlkd_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"single-view divergence.*MLKD.*use DistillationModule"):
        KnowledgeDistillation(bn_teacher(), "mlkd")


def test_teacher_with_other_class_count_fails_before_an_update() -> None:
    module = PlainClassifier()
    before = clone_state(module)
    trainer = make_trainer(callbacks=[KnowledgeDistillation(bn_teacher(num_classes=4))])
    with pytest.raises(ValueError, match="the teacher outputs 4 and the student 10"):
        trainer.fit(module, loader())
    assert states_equal(before, clone_state(module))


def test_a_failed_fit_leaves_the_module_unchanged() -> None:
    module = PlainClassifier()
    names, keys = [n for n, _ in module.named_modules()], list(module.state_dict())
    trainer = make_trainer(max_epochs=3, callbacks=[KnowledgeDistillation(bn_teacher()), FailInSecondEpoch()])
    with pytest.raises(RuntimeError, match="simulated failure"):
        trainer.fit(module, loader())
    assert trainer.global_step == 2
    _assert_module_untouched(module, names, keys)
