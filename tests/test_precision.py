"""Precision and performance options on CPU: bf16-mixed, torch.compile, channels_last."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightning_kd import DistillationLoss, DistillationModule, DistillationOutput
from tests.helpers import bn_teacher, clone_state, loader, make_trainer, mlp, random_dataset, small_cnn, states_equal


class RecordingModule(DistillationModule):
    """Keeps what compute_loss returned at each training step."""

    def compute_loss(self, batch: Any) -> tuple[DistillationOutput, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        result = super().compute_loss(batch)
        self.__dict__.setdefault("records", []).append(result)
        return result


class Plain(nn.Module):
    """Wraps a network in a module that is not a container (``bool()`` of its compiled form raises)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def _compiler_works() -> bool:
    try:
        compiled = torch.compile(lambda x: torch.sin(x) * 2 + 1)
        x = torch.randn(4)
        return bool(torch.allclose(compiled(x), torch.sin(x) * 2 + 1))
    except Exception:  # a missing C++ compiler surfaces as one of several backend errors
        return False


def test_bf16_mixed_step_with_float32_loss_parts() -> None:
    teacher = bn_teacher()
    teacher_state = clone_state(teacher)
    module = RecordingModule(
        mlp(), teacher, DistillationLoss("dkd", temperature=4.0), optimizer=partial(torch.optim.SGD, lr=0.1)
    )
    before = clone_state(module.student)
    trainer = make_trainer(max_steps=2, precision="bf16-mixed")
    trainer.fit(module, loader())

    records = module.__dict__["records"]
    assert len(records) == 2
    for out, student_logits, teacher_logits, _ in records:
        assert student_logits.dtype == torch.bfloat16  # autocast was on: the models ran in bf16
        assert teacher_logits.dtype == torch.bfloat16
        assert out.loss.dtype == torch.float32 and out.kd.dtype == torch.float32
        assert sorted(out.parts) == ["ce", "nckd", "tckd"]
        assert all(part.dtype == torch.float32 for part in out.parts.values())
        assert torch.isfinite(out.loss)
    assert not states_equal(before, clone_state(module.student))
    assert all(p.dtype == torch.float32 for p in module.student.parameters())  # mixed, not true bf16
    assert states_equal(teacher_state, clone_state(module.teacher))


class _NoRecompileAfterFirstEpoch(pl.Callback):
    """From the second epoch on, any recompilation is an error (the shapes are fixed)."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch._dynamo.config.error_on_recompile = trainer.current_epoch > 0

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch._dynamo.config.error_on_recompile = False


def test_compile(tmp_path: Path) -> None:
    """Compiled student, teacher and objective train as eager does (within float tolerance), with no recompilation
    after the first epoch, and checkpoints that load into a module that is not compiled."""
    if not _compiler_works():
        pytest.fail("torch.compile does not work on this machine (no C++ compiler for inductor)")
    data = loader(random_dataset(48), batch_size=16)  # 48 = 3 full batches: fixed shapes
    eager = RecordingModule(Plain(mlp()), Plain(bn_teacher()), "kd", optimizer=partial(torch.optim.SGD, lr=0.1))
    make_trainer(max_epochs=2).fit(eager, data)

    teacher = Plain(bn_teacher())
    teacher_state = clone_state(teacher)
    module = RecordingModule(Plain(mlp()), teacher, "kd", compile=True, optimizer=partial(torch.optim.SGD, lr=0.1))
    trainer = make_trainer(max_epochs=2, callbacks=[_NoRecompileAfterFirstEpoch()])
    trainer.fit(module, data)
    assert module._compiled is not None and module._compiled._orig_mod is module.student
    assert module._teacher.compiled is not None and module._teacher.compiled._orig_mod is module.teacher
    assert module._objective is not None
    eager_losses = [float(out.loss) for out, *_ in eager.__dict__["records"]]
    compiled_losses = [float(out.loss) for out, *_ in module.__dict__["records"]]
    assert len(compiled_losses) == 6
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5, abs=1e-6)
    for key, value in eager.student.state_dict().items():
        torch.testing.assert_close(module.student.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    assert states_equal(teacher_state, clone_state(module.teacher))

    # the compiled wrappers add no keys: the checkpoint loads into a module that is not compiled
    assert list(module.state_dict()) == list(eager.state_dict())
    trainer.save_checkpoint(tmp_path / "compiled.ckpt")
    loaded = DistillationModule.load_from_checkpoint(
        tmp_path / "compiled.ckpt", student=Plain(mlp(9)), teacher=bn_teacher()
    )
    assert states_equal(clone_state(loaded), clone_state(module))
    with pytest.raises(ValueError, match=r"`compile` to be one of 'default', 'max-autotune'"):
        DistillationModule(mlp(), bn_teacher(), compile="fast")


def test_channels_last_with_a_cnn() -> None:
    def cnn_teacher() -> nn.Module:
        teacher = small_cnn(seed=9)
        with torch.no_grad():
            teacher(torch.randn(8, 1, 8, 8))  # BatchNorm statistics of its own
        return teacher

    teacher = cnn_teacher()
    teacher_state = clone_state(teacher)
    module = DistillationModule(small_cnn(), teacher, channels_last=True, optimizer=partial(torch.optim.SGD, lr=0.1))
    reference = DistillationModule(small_cnn(), cnn_teacher(), optimizer=partial(torch.optim.SGD, lr=0.1))
    data = loader()
    make_trainer(max_steps=2).fit(module, data)
    make_trainer(max_steps=2).fit(reference, data)

    for model in (module.student, module.teacher):
        conv = model[3].weight  # (8, 4, 3, 3): the 1-channel first conv is both layouts at once
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert states_equal(teacher_state, clone_state(module.teacher))
    for key, value in reference.student.state_dict().items():  # the same training as contiguous
        torch.testing.assert_close(module.student.state_dict()[key], value, rtol=1e-4, atol=1e-6)
    assert not states_equal(clone_state(small_cnn()), clone_state(module.student))


PRECISIONS = ["32-true", "64-true", "bf16-true", "bf16-mixed"]
_DTYPES = {"32-true": torch.float32, "64-true": torch.float64, "bf16-true": torch.bfloat16, "bf16-mixed": torch.float32}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_module_and_callback_train_under_every_precision(precision: str) -> None:
    """The module and the callback under each precision: the teacher follows the weights' dtype, the step is
    finite, the teacher stays as it was (in that dtype)."""
    from lightning_kd import KnowledgeDistillation
    from tests.helpers import LitClassifier

    teacher = bn_teacher()
    module = DistillationModule(mlp(), teacher, DistillationLoss("kd", temperature=4.0))
    trainer = make_trainer(max_steps=2, precision=precision)
    trainer.fit(module, loader())
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])
    assert {p.dtype for p in module.teacher.parameters()} == {_DTYPES[precision]}

    callback = KnowledgeDistillation(teacher, DistillationLoss("kd", temperature=4.0), kd_weight=0.5)
    lit = LitClassifier()
    trainer = make_trainer(max_steps=2, precision=precision, callbacks=[callback])
    trainer.fit(lit, loader())
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss_kd"])
    assert {p.dtype for p in callback.teacher.parameters()} == {_DTYPES[precision]}
    reference = {k: v.to(_DTYPES[precision]) for k, v in clone_state(teacher).items() if v.is_floating_point()}
    assert states_equal(reference, {k: v for k, v in clone_state(callback.teacher).items() if v.is_floating_point()})


def test_callback_float64_step_equals_the_hand_computation() -> None:
    """Under 64-true the callback's added term is kd_weight * KD computed in float64 by hand."""
    from lightning_kd import KnowledgeDistillation
    from tests.helpers import LitClassifier, LossRecorder, hand_ce, hand_kd

    teacher = bn_teacher()
    lit = LitClassifier()
    x, y = next(iter(loader()))
    with torch.no_grad():
        student64, teacher64 = lit.double(), bn_teacher().double().eval()
        expected = hand_ce(student64(x.double()), y) + 0.5 * hand_kd(student64(x.double()), teacher64(x.double()), 4.0)
    recorder = LossRecorder()
    callback = KnowledgeDistillation(teacher, DistillationLoss("kd", temperature=4.0), kd_weight=0.5)
    make_trainer(max_steps=1, precision="64-true", callbacks=[callback, recorder]).fit(LitClassifier(), loader())
    assert recorder.losses[0].dtype == torch.float64
    torch.testing.assert_close(recorder.losses[0], expected, rtol=1e-12, atol=1e-12)
