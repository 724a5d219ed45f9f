"""AblationModule: arms train as they would alone, one arm's failure spares the others, exact resume, export."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from lightning_kd import AblationModule, Arm, CurriculumTemperature, DistillationLoss, DistillationModule
from lightning_kd.data import DigitsDataModule
from lightning_kd.losses import Divergence, DivergenceInputs
from lightning_kd.presets import create_loss
from tests.helpers import (
    bn_teacher,
    clone_state,
    loader,
    make_trainer,
    mlp,
    optimizer_param_ids,
    random_dataset,
    small_cnn,
)

SGD = partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=5e-4)
STEP_LR = partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)


def _data() -> Any:
    return loader(random_dataset(48, seed=5), batch_size=16)


def _val() -> Any:
    return loader(random_dataset(32, seed=6), batch_size=16)


def _arms(**overrides: Any) -> list[Arm]:
    arms = {
        "kd": Arm("kd", small_cnn(), "kd", optimizer=SGD, lr_scheduler=STEP_LR),
        "kd_z": Arm("kd_z", small_cnn(), "kd_z", optimizer=SGD, lr_scheduler=STEP_LR),
        "dkd": Arm("dkd", small_cnn(), "dkd", optimizer=SGD, lr_scheduler=STEP_LR),
    }
    arms.update(overrides)
    return list(arms.values())


def test_an_arm_trains_exactly_as_it_would_alone() -> None:
    """The kd_z arm of a 3-arm run equals a DistillationModule with the same data order, initial weights and
    optimizer, bitwise (weights, BatchNorm statistics), after two epochs with a learning-rate schedule."""
    alone = DistillationModule(small_cnn(), bn_teacher(), create_loss("kd_z"), optimizer=SGD, lr_scheduler=STEP_LR)
    make_trainer(max_epochs=2, deterministic=True).fit(alone, _data(), _val())

    ablation = AblationModule(bn_teacher(), _arms())
    trainer = make_trainer(max_epochs=2, deterministic=True)
    trainer.fit(ablation, _data(), _val())
    assert trainer.global_step == 2 * 3 * 3  # Lightning counts every arm's optimizer step
    arm, reference = clone_state(ablation.arms["kd_z"]), clone_state(alone.student)
    assert arm.keys() == reference.keys()
    assert all(torch.equal(arm[k], reference[k]) for k in arm), [
        k for k in arm if not torch.equal(arm[k], reference[k])
    ]
    assert not torch.equal(arm["0.weight"], clone_state(ablation.arms["kd"])["0.weight"])  # the arms differ
    metrics = trainer.callback_metrics
    assert float(metrics["kd_z/val/acc1"]) == float(alone.trainer.callback_metrics["val/acc1"])
    assert float(metrics["val/teacher_acc1"]) == float(alone.trainer.callback_metrics["val/teacher_acc1"])
    for key in ("kd/train/loss", "dkd/train/loss_kd", "kd_z/train/loss_ce", "kd/val/acc1_best", "dkd/train/acc1"):
        assert key in metrics, key


class _NaNAfter(Divergence):
    """KD that turns NaN from its ``after``-th call on."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.calls = after, 0

    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        self.calls += 1
        kl = torch.nn.functional.kl_div(
            inputs.student_logits.log_softmax(1),
            inputs.teacher_logits.log_softmax(1),
            log_target=True,
            reduction="batchmean",
        )
        return {"kl": kl * float("nan") if self.calls > self.after else kl}


class _RaisesAfter(_NaNAfter):
    def compute(self, inputs: DivergenceInputs) -> dict[str, Tensor]:
        if self.calls >= self.after:
            raise RuntimeError("this arm's loss broke")
        return super().compute(inputs)


@pytest.mark.parametrize("failure", [_NaNAfter, _RaisesAfter])
def test_a_failing_arm_is_stopped_and_spares_the_others(failure: type[_NaNAfter]) -> None:
    bad = Arm("bad", small_cnn(), DistillationLoss(failure(after=2), temperature=4.0), optimizer=SGD)
    with_bad = AblationModule(bn_teacher(), [*_arms()[:2], bad])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(max_epochs=2, log_every_n_steps=1).fit(with_bad, _data())
    assert set(with_bad.stopped) == {"bad"}
    assert any("arm 'bad' stopped" in str(w.message) for w in caught)
    without = AblationModule(bn_teacher(), _arms()[:2])
    make_trainer(max_epochs=2, log_every_n_steps=1).fit(without, _data())
    for name in ("kd", "kd_z"):
        got, expected = clone_state(with_bad.arms[name]), clone_state(without.arms[name])
        assert all(torch.equal(got[k], expected[k]) for k in got), name


def test_every_arm_stopping_stops_the_run() -> None:
    from lightning_kd.guard import NonFiniteError

    arms = [Arm("bad", small_cnn(), DistillationLoss(_RaisesAfter(after=1), temperature=4.0))]
    with pytest.raises(
        NonFiniteError, match=r"Every arm of the ablation stopped: \{'bad': \"RuntimeError: this arm's loss broke"
    ):
        make_trainer(max_epochs=1).fit(AblationModule(bn_teacher(), arms), _data())


def test_resume_continues_every_arm_exactly(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    straight = AblationModule(bn_teacher(), _arms())
    make_trainer(max_epochs=2, deterministic=True).fit(straight, _data())

    first = AblationModule(bn_teacher(), _arms())
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    make_trainer(max_epochs=1, deterministic=True, enable_checkpointing=True, callbacks=[checkpoint]).fit(
        first, _data()
    )
    resumed = AblationModule(bn_teacher(), _arms())
    make_trainer(max_epochs=2, deterministic=True).fit(resumed, _data(), ckpt_path=tmp_path / "last.ckpt")
    for name in straight.arm_names:
        got, expected = clone_state(resumed.arms[name]), clone_state(straight.arms[name])
        assert all(torch.equal(got[k], expected[k]) for k in got), name


def test_ctkd_temperatures_belong_to_their_arms() -> None:
    arms = [
        Arm("ctkd", small_cnn(), DistillationLoss("kd", temperature=CurriculumTemperature()), optimizer=SGD),
        Arm("ctkd_strong", small_cnn(), DistillationLoss("kd", temperature=CurriculumTemperature()), kd_weight=9.0),
    ]
    module = AblationModule(bn_teacher(), arms)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, _data())
    first, second = (module.losses[n].temperature.theta for n in ("ctkd", "ctkd_strong"))  # type: ignore[union-attr]
    assert first is not second and float(first) != float(second) and float(first) != 1.0
    owners = [{id(p) for g in opt.param_groups for p in g["params"]} for opt in trainer.optimizers]
    assert id(first) in owners[0] and id(first) not in owners[1] and id(second) in owners[1]
    assert {id(first), id(second)} <= optimizer_param_ids(trainer)


def test_export_arm_loads_into_the_bare_architecture(tmp_path: Path) -> None:
    module = AblationModule(bn_teacher(), _arms())
    make_trainer(max_steps=3).fit(module, _data())
    path = module.export_arm("dkd", tmp_path / "dkd.pt")
    bare = small_cnn(seed=99)
    bare.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert all(torch.equal(v, module.arms["dkd"].state_dict()[k]) for k, v in bare.state_dict().items())
    module.export(tmp_path / "student.pt")
    assert sorted(p.name for p in tmp_path.glob("student-*.pt")) == [
        "student-dkd.pt",
        "student-kd.pt",
        "student-kd_z.pt",
    ]
    with pytest.raises(ValueError, match=r"`name` to be one of 'dkd', 'kd', 'kd_z', but got 'kdz'"):
        module.export_arm("kdz", tmp_path / "x.pt")


def test_arms_are_validated() -> None:
    with pytest.raises(ValueError, match=r"`arms` to hold at least one Arm"):
        AblationModule(bn_teacher(), [])
    with pytest.raises(ValueError, match=r"distinct names, but got \['kd'\] more than once"):
        AblationModule(bn_teacher(), [Arm("kd", small_cnn()), Arm("kd", small_cnn())])
    with pytest.raises(ValueError, match=r"letters, digits and '_', '\+', '-', but got 'kd z'"):
        Arm("kd z", small_cnn())
    with pytest.raises(ValueError, match=r"`preset` to be one of .* but got 'kdz'"):
        AblationModule(bn_teacher(), [Arm("kd", small_cnn(), "kdz")])


def test_an_arm_on_device_resident_data_trains_as_it_would_alone() -> None:
    """The fast data path (batches augmented on the device, drawn from the seed and the epoch) serves the arms the
    batches it serves a single module: the same weights, bitwise."""

    def data() -> DigitsDataModule:
        return DigitsDataModule(batch_size=32, image_size=8, device_resident=True, drop_last=True, shuffle_seed=3)

    sgd = partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    alone = DistillationModule(small_cnn(), bn_teacher(), create_loss("kd_z"), optimizer=sgd)
    make_trainer(max_epochs=1, limit_train_batches=4, deterministic=True).fit(alone, datamodule=data())
    arms = [Arm("kd", small_cnn(), "kd", optimizer=sgd), Arm("kd_z", small_cnn(), "kd_z", optimizer=sgd)]
    ablation = AblationModule(bn_teacher(), arms)
    make_trainer(max_epochs=1, limit_train_batches=4, deterministic=True).fit(ablation, datamodule=data())
    arm, reference = clone_state(ablation.arms["kd_z"]), clone_state(alone.student)
    assert all(torch.equal(arm[k], reference[k]) for k in reference)
    assert not torch.equal(reference["0.weight"], clone_state(small_cnn())["0.weight"])  # it trained


def test_compiled_arms_train_as_eager_ones() -> None:
    sgd = partial(torch.optim.SGD, lr=0.1)

    def module(compile: bool) -> AblationModule:
        arms = [Arm("kd", mlp(), "kd", optimizer=sgd), Arm("kd_z", mlp(), "kd_z", optimizer=sgd)]
        return AblationModule(bn_teacher(), arms, compile=compile)

    eager, compiled = module(False), module(True)
    make_trainer(max_epochs=2).fit(eager, _data())
    make_trainer(max_epochs=2).fit(compiled, _data())
    assert sorted(compiled._compiled) == ["kd", "kd_z"] and compiled._teacher.compiled is not None
    for name in ("kd", "kd_z"):
        for key, value in clone_state(eager.arms[name]).items():
            torch.testing.assert_close(clone_state(compiled.arms[name])[key], value, rtol=1e-5, atol=1e-6)
    assert list(compiled.state_dict()) == list(eager.state_dict())  # the compiled wrappers add no keys
