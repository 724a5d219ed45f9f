"""Teachers: loading every checkpoint format, the frozen-teacher invariant, and the input adapter."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.model_summary import ModelSummary
from torch import nn

from lightning_kd import (
    ClassifierModule,
    CurriculumTemperature,
    DistillationLoss,
    DistillationModule,
    TeacherInputAdapter,
    load_teacher,
)
from lightning_kd.models import create_model
from tests.helpers import (
    bn_teacher,
    clone_state,
    loader,
    make_trainer,
    mlp,
    optimizer_param_ids,
    random_dataset,
    states_equal,
)


def _resnet8(seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    model = create_model("resnet8", num_classes=10, in_chans=1)
    with torch.no_grad():  # non-initial BatchNorm statistics, so a wrongly loaded buffer would show
        model(torch.randn(8, 1, 8, 8) * 3 + 1)
    return model


def _assert_frozen(module: DistillationModule, reference: dict[str, torch.Tensor]) -> None:
    teacher = module.teacher
    assert teacher.training is False
    assert all(not m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    assert states_equal(clone_state(teacher), reference)


# ----------------------------------------------------------------------------------------------------------
# checkpoint formats
def test_teacher_from_lightning_checkpoint_of_a_classifier_module(tmp_path: Path) -> None:
    classifier = ClassifierModule(_resnet8(), optimizer=partial(torch.optim.SGD, lr=0.1))
    before = clone_state(classifier.model)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="teacher")
    trainer = make_trainer(max_steps=1, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(classifier, loader(random_dataset(16)))
    trained = clone_state(classifier.model)
    assert not states_equal(before, trained)  # one real step happened (weights and BN statistics moved)
    path = Path(checkpoint.best_model_path)
    assert path.suffix == ".ckpt" and path.is_file()

    module = DistillationModule(mlp(), str(path), teacher_arch="resnet8", in_chans=1)
    assert type(module.teacher).__name__ == type(classifier.model).__name__
    _assert_frozen(module, trained)


@pytest.mark.parametrize(
    "layout",
    ["model", "state_dict", "model_state_dict", "plain", "module_prefix", "model_prefix", "module_model_prefix"],
)
def test_teacher_from_weights_file(tmp_path: Path, layout: str) -> None:
    source = _resnet8()
    weights = clone_state(source)
    payload: object
    if layout in ("model", "state_dict", "model_state_dict"):
        payload = {layout: weights, "epoch": 240, "best_acc": 0.9}  # the shared CIFAR-100 teacher format
    elif layout == "plain":
        payload = weights
    else:
        prefix = {"module_prefix": "module.", "model_prefix": "model.", "module_model_prefix": "module.model."}
        payload = {"state_dict": {prefix[layout] + k: v for k, v in weights.items()}}
    path = tmp_path / "teacher.pth"
    torch.save(payload, path)

    module = DistillationModule(mlp(), str(path), teacher_arch="resnet8", in_chans=1)
    _assert_frozen(module, weights)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module.teacher_logits(x), source.eval()(x), rtol=0, atol=0)


def test_teacher_from_pickled_module_needs_weights_only_false(tmp_path: Path) -> None:
    teacher = bn_teacher()
    path = tmp_path / "teacher.pt"
    torch.save(teacher, path)
    with pytest.raises(ValueError, match="teacher_weights_only=False"):
        DistillationModule(mlp(), str(path))
    module = DistillationModule(mlp(), str(path), teacher_weights_only=False)
    _assert_frozen(module, clone_state(teacher))


def test_weights_file_without_arch_asks_for_teacher_arch(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pth"
    torch.save({"model": clone_state(_resnet8())}, path)
    with pytest.raises(ValueError, match="teacher_arch"):
        DistillationModule(mlp(), str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DistillationModule(mlp(), str(tmp_path / "missing.pth"), teacher_arch="resnet8", in_chans=1)


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    weights = clone_state(_resnet8())
    weights.pop("fc.weight")
    weights["extra.weight"] = torch.zeros(3)
    path = tmp_path / "teacher.pth"
    torch.save({"model": weights}, path)
    with pytest.raises(ValueError, match="does not match architecture 'resnet8'") as info:
        load_teacher(path, arch="resnet8", num_classes=10, in_chans=1)
    message = str(info.value)
    assert "missing keys: fc.weight;" in message
    assert "unexpected keys: extra.weight;" in message


def test_wrong_class_count_is_a_shape_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "teacher.pth"
    torch.save({"model": clone_state(_resnet8())}, path)
    with pytest.raises(ValueError, match=r"fc\.weight: checkpoint \(10, 64\) vs model \(100, 64\)"):
        DistillationModule(mlp(num_classes=100), str(path), teacher_arch="resnet8", in_chans=1)


# ----------------------------------------------------------------------------------------------------------
# the frozen-teacher invariant
def test_teacher_stays_frozen_through_fit_validate_fit_train_and_unfreeze() -> None:
    teacher = bn_teacher()
    reference = clone_state(teacher)
    loss = DistillationLoss("kd", temperature=CurriculumTemperature())
    module = DistillationModule(mlp(), teacher, loss, optimizer=partial(torch.optim.SGD, lr=0.5, momentum=0.9))
    assert states_equal(clone_state(module.teacher), reference)
    # not in the module tree: not a submodule, not a parameter, not in the state_dict
    assert all(m is not module.teacher for m in module.modules())
    teacher_ids = {id(p) for p in module.teacher.parameters()}
    assert teacher_ids.isdisjoint(id(p) for p in module.parameters())
    assert not any(k.startswith(("teacher", "_teacher")) for k in module.state_dict())

    student_before = clone_state(module.student)
    trainer = make_trainer(max_epochs=2)
    trainer.fit(module, loader(), loader())
    assert not states_equal(student_before, clone_state(module.student))  # the student did train
    assert teacher_ids.isdisjoint(optimizer_param_ids(trainer))
    assert {id(p) for p in module.trainable_parameters()} == optimizer_param_ids(trainer)
    _assert_frozen(module, reference)

    make_trainer().validate(module, loader())
    _assert_frozen(module, reference)

    module.teacher.train()  # even a teacher switched to train mode by hand is run in eval mode
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, loader(), loader())
    assert teacher_ids.isdisjoint(optimizer_param_ids(trainer))
    _assert_frozen(module, reference)

    module.train()
    _assert_frozen(module, reference)
    module.freeze()
    module.unfreeze()
    assert all(p.requires_grad for p in module.student.parameters())
    _assert_frozen(module, reference)


def test_teacher_follows_dtype_moves_and_stays_frozen() -> None:
    module = DistillationModule(mlp(), bn_teacher())
    module.double()
    assert all(p.dtype == torch.float64 for p in module.teacher.parameters())
    assert module.teacher.state_dict()["2.running_mean"].dtype == torch.float64
    assert not any(p.requires_grad for p in module.teacher.parameters())
    module.float()
    assert all(p.dtype == torch.float32 for p in module.teacher.parameters())


def test_no_eval_mode_warning_and_teacher_not_trainable_in_summary() -> None:
    module = DistillationModule(mlp(), bn_teacher(), DistillationLoss("kd", temperature=CurriculumTemperature()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(max_steps=1).fit(module, loader())
    assert not [w for w in caught if "eval mode" in str(w.message)]

    summary = ModelSummary(module, max_depth=-1)
    student_params = sum(p.numel() for p in module.student.parameters())
    loss_params = sum(p.numel() for p in module.loss.parameters())
    assert loss_params == 1  # CTKD's theta
    assert summary.trainable_parameters == student_params + loss_params
    assert summary.total_parameters == student_params + loss_params
    teacher_params = sum(p.numel() for p in module.teacher.parameters())
    assert teacher_params > 0 and summary.total_parameters < student_params + loss_params + teacher_params


def test_eval_mode_warning_detection_works() -> None:
    """Control for the test above: a registered submodule left in eval mode does trigger the warning."""
    model = mlp()
    module = ClassifierModule(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = make_trainer(max_steps=1)
        module.model[1].eval()
        trainer.fit(module, loader())
    assert [w for w in caught if "eval mode" in str(w.message)]


# ----------------------------------------------------------------------------------------------------------
# TeacherInputAdapter
def test_adapter_renormalizes_by_hand() -> None:
    s_mean, s_std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    t_mean, t_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    adapter = TeacherInputAdapter(s_mean, s_std, t_mean, t_std)
    x = torch.randn(2, 3, 4, 5)
    expected = torch.empty_like(x)
    for c in range(3):
        pixels = x[:, c] * s_std[c] + s_mean[c]  # undo the student's normalization
        expected[:, c] = (pixels - t_mean[c]) / t_std[c]  # apply the teacher's
    torch.testing.assert_close(adapter(x), expected, rtol=1e-6, atol=1e-6)
    assert adapter(x).shape == x.shape
    with pytest.raises(ValueError, match="given together"):
        TeacherInputAdapter(student_mean=(0.5,), student_std=(0.5,))


def test_adapter_resizes_bilinearly() -> None:
    adapter = TeacherInputAdapter(size=16)
    x = torch.randn(2, 1, 8, 8)
    out = adapter(x)
    assert out.shape == (2, 1, 16, 16)
    torch.testing.assert_close(out, F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False))


def test_teacher_expecting_16px_input_trains_end_to_end_with_8px_student() -> None:
    torch.manual_seed(5)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(256, 10))  # only accepts 1x16x16 images
    with pytest.raises(RuntimeError):
        teacher(torch.randn(2, 1, 8, 8))
    adapter = TeacherInputAdapter((0.3,), (0.4,), (0.5,), (0.25,), size=16)
    module = DistillationModule(mlp(), teacher, teacher_input=adapter, optimizer=partial(torch.optim.SGD, lr=0.1))
    x = torch.randn(4, 1, 8, 8)
    renormalized = (x * 0.4 + 0.3 - 0.5) / 0.25
    expected = teacher(F.interpolate(renormalized, size=(16, 16), mode="bilinear", align_corners=False))
    torch.testing.assert_close(module.teacher_logits(x), expected, rtol=1e-5, atol=1e-5)

    before = clone_state(module.student)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, loader(), loader())
    assert not states_equal(before, clone_state(module.student))
    assert torch.isfinite(trainer.callback_metrics["train/loss_kd"])
    assert "val/teacher_acc1" in trainer.callback_metrics


def test_a_teacher_passed_as_a_module_is_left_as_it_was() -> None:
    """The caller's module keeps its mode and requires_grad flags (the run's teacher is a frozen copy), so it can be
    trained again afterwards (which failed with "optimizer got an empty parameter list" when it was frozen)."""
    from lightning_kd import KnowledgeDistillation

    teacher = bn_teacher()
    teacher.train()
    before = clone_state(teacher)
    module = DistillationModule(mlp(), teacher, DistillationLoss("kd", temperature=4.0))
    callback = KnowledgeDistillation(teacher, "kd")
    make_trainer(max_steps=2).fit(module, loader())
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    assert module.teacher is not teacher and callback.teacher is not teacher
    assert states_equal(before, clone_state(teacher))
    optimizer = torch.optim.SGD(teacher.parameters(), lr=0.1)  # the user trains their module again
    loss = teacher(torch.randn(4, 1, 8, 8)).sum()
    loss.backward()
    optimizer.step()
    assert not states_equal(before, clone_state(teacher))
