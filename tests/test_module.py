"""DistillationModule: students of every kind, the objective by hand, logging, MLKD, and bad input."""

from __future__ import annotations

import csv
import math
from functools import partial
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lightning_kd import (
    DKD,
    CurriculumTemperature,
    DistillationLoss,
    DistillationModule,
    MaxLogitTemperature,
)
from lightning_kd.data import DigitsDataModule
from lightning_kd.models import create_model
from lightning_kd.module import kd_warmup
from lightning_kd.temperature import cosine_lambda
from tests.helpers import (
    LossRecorder,
    bn_teacher,
    clone_state,
    hand_ce,
    hand_kd,
    loader,
    make_trainer,
    mlp,
    random_dataset,
    states_equal,
)


class LitStudent(pl.LightningModule):
    """A LightningModule student with its own optimizer (Adam) and scheduler."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=3e-3)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class TupleStudent(nn.Module):
    """Returns ``(logits, features)`` like the CIFAR zoos of the KD literature."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.body(x)
        return self.fc(features), features


class DictStudent(TupleStudent):
    def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        logits, features = super().forward(x)
        return {"features": features, "logits": logits}


class BadOutputStudent(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x: Tensor) -> Any:
        logits = self.fc(x)
        return "no logits here" if self.kind == "string" else logits.unsqueeze(1)


# ----------------------------------------------------------------------------------------------------------
# students
def test_lightning_module_student_uses_its_own_optimizer_and_gets_ctkd_theta() -> None:
    loss = DistillationLoss("kd", temperature=CurriculumTemperature())
    module = DistillationModule(LitStudent(), bn_teacher(), loss)
    theta = module.loss.temperature.theta
    theta_before = theta.detach().clone()
    student_before = clone_state(module.student)
    trainer = make_trainer(max_epochs=2)
    trainer.fit(module, loader())

    optimizer = trainer.optimizers[0]
    assert len(trainer.optimizers) == 1 and type(optimizer) is torch.optim.Adam
    assert len(optimizer.param_groups) == 2  # the student's group, and CTKD's theta added at fit start
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in module.student.parameters()]
    assert optimizer.param_groups[1]["params"] == [theta]
    assert optimizer.defaults["lr"] == 3e-3
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == [3e-3, 3e-3]
    # StepLR halved both groups twice: theta follows the student's schedule
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([3e-3 / 4, 3e-3 / 4])
    assert not torch.equal(theta.detach(), theta_before)
    assert not states_equal(student_before, clone_state(module.student))


def test_lightning_module_student_without_loss_parameters_keeps_one_group() -> None:
    module = DistillationModule(LitStudent(), bn_teacher(), "kd")
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, loader())
    assert type(trainer.optimizers[0]) is torch.optim.Adam
    assert len(trainer.optimizers[0].param_groups) == 1


class _WarmupStudent(LitStudent):
    def __init__(self, sequential: bool) -> None:
        super().__init__()
        self.sequential = sequential

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=2)
        if not self.sequential:
            return {"optimizer": optimizer, "lr_scheduler": warmup}
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2)
        return {
            "optimizer": optimizer,
            "lr_scheduler": torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[2]),
        }


class _LearningRates(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


@pytest.mark.parametrize("sequential", [False, True], ids=["LinearLR", "SequentialLR"])
def test_ctkd_theta_follows_a_warm_up_scheduler(sequential: bool) -> None:
    """CTKD's theta joins a LightningModule student's optimizer at the warm-up's current point, and nested
    schedulers schedule it too."""
    module = DistillationModule(
        _WarmupStudent(sequential), bn_teacher(), DistillationLoss("kd", temperature=CurriculumTemperature())
    )
    recorder = _LearningRates()
    trainer = make_trainer(max_epochs=4, callbacks=[recorder])
    trainer.fit(module, loader())
    recorder.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])
    assert len(recorder.lrs) == 5
    for student_lr, theta_lr in recorder.lrs:
        assert theta_lr == pytest.approx(student_lr)  # not up to 10x it: the warm-up starts at 0.1x
    assert recorder.lrs[0][0] == pytest.approx(0.01)
    assert recorder.lrs[2][0] == pytest.approx(0.1)
    if sequential:
        assert recorder.lrs[3][0] == pytest.approx(0.05) and recorder.lrs[4][0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("student_cls", [TupleStudent, DictStudent])
def test_students_returning_tuples_and_dicts(student_cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    student = student_cls()
    module = DistillationModule(student, bn_teacher(), optimizer=partial(torch.optim.SGD, lr=0.1))
    assert module.num_classes == 10
    x = torch.randn(3, 1, 8, 8)
    output = student(x)
    logits = output[0] if isinstance(output, tuple) else output["logits"]
    torch.testing.assert_close(module(x), logits)

    before = clone_state(module.student)
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, loader(), loader())
    assert not states_equal(before, clone_state(module.student))
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert "val/acc1" in trainer.callback_metrics


def test_logits_key_for_other_output_layouts() -> None:
    class Named(TupleStudent):
        def forward(self, x: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
            return {"out": super().forward(x)[0]}

    module = DistillationModule(Named(), bn_teacher(), logits_key="out")
    out, student_logits, _, _ = module.compute_loss(next(iter(loader())))
    assert student_logits.shape == (16, 10) and torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="looked up with 'out'"):
        DistillationModule(DictStudent(), bn_teacher(), logits_key="out")(torch.randn(2, 1, 8, 8))


def test_student_built_by_name() -> None:
    module = DistillationModule("resnet8", bn_teacher(), num_classes=10, in_chans=1)
    reference = create_model("resnet8", num_classes=10, in_chans=1)
    assert type(module.student) is type(reference)
    assert module.student.state_dict().keys() == reference.state_dict().keys()
    assert module.student.conv1.weight.shape[1] == 1
    assert module.hparams["student"] == "resnet8"
    with torch.no_grad():
        assert module(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="num_classes"):
        DistillationModule("resnet8", bn_teacher(), in_chans=1)


# ----------------------------------------------------------------------------------------------------------
# the objective, by hand
def test_total_loss_by_hand_with_kd_warmup_over_epochs() -> None:
    """loss = ce_weight * CE + kd_weight * min(epoch / warmup, 1) * KD; lr 0 keeps the models fixed."""
    student, teacher = mlp(), bn_teacher()
    module = DistillationModule(
        student,
        teacher,
        DistillationLoss("kd", temperature=4.0),
        ce_weight=0.3,
        kd_weight=0.7,
        kd_warmup_epochs=4,
        optimizer=partial(torch.optim.SGD, lr=0.0),
    )
    data = random_dataset(16, seed=7)
    recorder = LossRecorder()
    make_trainer(max_epochs=6, callbacks=[recorder]).fit(module, loader(data, batch_size=16))

    x, y = data.tensors
    with torch.no_grad():
        ce = hand_ce(student(x), y)
        kd = hand_kd(student(x), teacher.eval()(x), 4.0)
    assert recorder.epochs == [0, 1, 2, 3, 4, 5]
    warmup = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [kd_warmup(e + 1, 4) for e in recorder.epochs] == warmup
    for loss, factor in zip(recorder.losses, warmup, strict=True):
        expected = 0.3 * ce + 0.7 * factor * kd
        torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)
    assert float(ce) > 0.1 and float(kd) > 0.01  # both parts matter


def test_ce_and_kd_weights_override_the_loss_weights() -> None:
    loss = DistillationLoss("kd", temperature=2.0, ce_weight=1.0, kd_weight=1.0)
    module = DistillationModule(mlp(), bn_teacher(), loss, ce_weight=0.0, kd_weight=2.5)
    assert (module.weights.ce_weight, module.weights.kd_weight) == (0.0, 2.5)
    assert (loss.ce_weight, loss.kd_weight) == (1.0, 1.0)  # the caller's object is not changed
    x, y = next(iter(loader()))
    out, student_logits, teacher_logits, target = module.compute_loss((x, y))
    assert sorted(out.parts) == ["kl"] and target is y
    torch.testing.assert_close(
        out.loss.double(), 2.5 * hand_kd(student_logits, teacher_logits, 2.0), rtol=1e-5, atol=1e-6
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_everything_is_logged_under_the_documented_keys(tmp_path: Path) -> None:
    loss = DistillationLoss(DKD(alpha=1.0, beta=2.0), temperature=CurriculumTemperature(decay_epochs=10))
    teacher = bn_teacher()
    module = DistillationModule(mlp(), teacher, loss, optimizer=partial(torch.optim.SGD, lr=0.05))
    logger = CSVLogger(tmp_path, name="", version="run")
    trainer = make_trainer(max_epochs=2, logger=logger, log_every_n_steps=1)
    val = random_dataset(24, seed=3)
    trainer.fit(module, loader(), loader(val, batch_size=8))

    columns, rows = _read_csv(Path(logger.log_dir) / "metrics.csv")
    # the losses every step and per epoch; the other parts and the diagnostics on logging steps
    for key in ["train/loss", "train/loss_ce", "train/loss_kd"]:
        assert f"{key}_step" in columns and f"{key}_epoch" in columns, key
    diagnostic_keys = [
        "train/loss_tckd",
        "train/loss_nckd",
        "train/temperature",
        "train/lambda",
        "train/student_logit_std",
        "train/student_logit_mean",
        "train/teacher_logit_std",
        "train/teacher_logit_mean",
        "train/agreement",
        "train/kd_scale",
    ]
    for key in diagnostic_keys:
        assert key in columns, key
    for key in ["train/acc1", "train/acc5", "val/loss", "val/acc1", "val/acc5", "val/teacher_acc1"]:
        assert key in columns, key
    assert "val/teacher_acc5" in columns and "val/acc1_best" in columns

    steps = [r for r in rows if r.get("train/loss_step")]
    assert len(steps) == 4  # 2 batches x 2 epochs, one row each
    first = steps[0]
    # the total is the sum of its parts; CTKD starts at 1 + 20 * sigmoid(1); lambda follows the curriculum
    total = float(first["train/loss_ce_step"]) + sum(float(first[f"train/loss_{p}"]) for p in ("tckd", "nckd"))
    assert float(first["train/loss_step"]) == pytest.approx(total, rel=1e-5)
    assert float(first["train/loss_kd_step"]) == pytest.approx(
        float(first["train/loss_tckd"]) + float(first["train/loss_nckd"]), rel=1e-5
    )
    assert float(first["train/temperature"]) == pytest.approx(1 + 20 / (1 + math.exp(-1.0)), rel=1e-5)
    assert float(steps[0]["train/lambda"]) == pytest.approx(cosine_lambda(1, decay_epochs=10))
    assert float(steps[-1]["train/lambda"]) == pytest.approx(cosine_lambda(2, decay_epochs=10))
    assert 0.0 <= float(first["train/agreement"]) <= 1.0

    validations = [r for r in rows if r.get("val/acc1")]
    assert len(validations) == 2
    x, y = val.tensors
    with torch.no_grad():
        teacher_acc = (teacher(x).argmax(1) == y).float().mean().item()
        student_acc = (module(x).argmax(1) == y).float().mean().item()
    for row in validations:
        assert float(row["val/teacher_acc1"]) == pytest.approx(teacher_acc)
    assert float(validations[-1]["val/acc1"]) == pytest.approx(student_acc)
    best = max(float(r["val/acc1"]) for r in validations)
    assert float(validations[-1]["val/acc1_best"]) == pytest.approx(best)


def test_per_sample_temperature_logs_its_range() -> None:
    module = DistillationModule(mlp(), bn_teacher(), DistillationLoss("kd", temperature=MaxLogitTemperature()))
    trainer = make_trainer(max_steps=1, log_every_n_steps=1)
    trainer.fit(module, loader())
    metrics = trainer.callback_metrics
    low, mean, high = (float(metrics[f"train/temperature{s}"]) for s in ("_min", "", "_max"))
    assert 0 < low <= mean <= high and low < high


def test_mlkd_trains_an_epoch_on_two_view_digits() -> None:
    datamodule = DigitsDataModule(batch_size=128, strong_aug=True)
    module = DistillationModule(
        mlp(), bn_teacher(), "mlkd", loss_kwargs={"temperature": 4.0}, optimizer=partial(torch.optim.SGD, lr=0.05)
    )
    before = clone_state(module.student)
    trainer = make_trainer(max_epochs=1, log_every_n_steps=1)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == math.ceil(1437 / 128)
    assert not states_equal(before, clone_state(module.student))
    metrics = trainer.callback_metrics
    for part in ("kd_weak", "kd_strong", "batch", "class", "ce"):
        assert math.isfinite(float(metrics[f"train/loss_{part}"])), part
    assert "val/acc1" in metrics and "val/teacher_acc1" in metrics

    single_view = DistillationModule(mlp(), bn_teacher(), "mlkd", loss_kwargs={"temperature": 4.0})
    with pytest.raises(ValueError, match="strong_aug=True"):
        single_view.compute_loss(next(iter(loader())))


# ----------------------------------------------------------------------------------------------------------
# bad input: a clear error before any update
def _fit_fails(module: DistillationModule, train: Any, match: str, val: Any = None) -> None:
    before = clone_state(module.student)
    trainer = make_trainer(max_epochs=1, num_sanity_val_steps=2)
    with pytest.raises(ValueError, match=match):
        trainer.fit(module, train, val)
    assert trainer.global_step == 0
    assert states_equal(before, clone_state(module.student))


@pytest.mark.parametrize("with_val", [False, True], ids=["train", "sanity-check"])
def test_teacher_and_student_with_different_class_counts(with_val: bool) -> None:
    module = DistillationModule(mlp(), bn_teacher(num_classes=5))
    match = "same number of classes, but the teacher outputs 5 and the student 10"
    _fit_fails(module, loader(), match, loader() if with_val else None)


def test_student_outputs_other_than_num_classes() -> None:
    module = DistillationModule(mlp(num_classes=7), bn_teacher(num_classes=7), num_classes=10)
    _fit_fails(module, loader(random_dataset(classes=7)), r"output 10 classes \(`num_classes`\), but it outputs 7")


def test_teacher_architecture_mismatch_lists_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "resnet8.pth"
    torch.save({"model": create_model("resnet8", num_classes=10, in_chans=1).state_dict()}, path)
    with pytest.raises(ValueError, match="does not match architecture 'resnet14'") as info:
        DistillationModule(mlp(), str(path), teacher_arch="resnet14", in_chans=1)
    assert "missing keys: layer1.1.conv1.weight" in str(info.value)
    assert "unexpected keys: none" in str(info.value)


@pytest.mark.parametrize(("kind", "described"), [("string", "but got str"), ("3d", r"Tensor of shape \(16, 1, 10\)")])
def test_student_output_without_logits(kind: str, described: str) -> None:
    module = DistillationModule(BadOutputStudent(kind), bn_teacher(), num_classes=10)
    _fit_fails(module, loader(), f"Expected the model's output to hold logits.*{described}")


class _DictDataset(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"pixels": torch.zeros(1, 8, 8), "class": index}


@pytest.mark.parametrize(
    ("batches", "described"),
    [
        (DataLoader(list(range(4)), batch_size=None), "but got int"),
        (DataLoader(_DictDataset(), batch_size=2), r"but got dict with keys \['class', 'pixels'\]"),
    ],
    ids=["int", "dict"],
)
def test_batches_the_default_getter_cannot_unpack(batches: DataLoader, described: str) -> None:
    module = DistillationModule(mlp(), bn_teacher())
    _fit_fails(module, batches, f"Expected argument `batch` to be .*{described}")


def test_unknown_loss_name_lists_names_and_closest_match() -> None:
    with pytest.raises(ValueError, match="Expected argument `divergence` to be one of") as info:
        DistillationModule(mlp(), bn_teacher(), "kdd")
    message = str(info.value)
    for name in ("'dist'", "'dkd'", "'kd'", "'mlkd'", "'ttm'", "'wttm'"):
        assert name in message
    assert "but got 'kdd'. Did you mean 'kd'" in message


def test_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kd_warmup_epochs"):
        DistillationModule(mlp(), bn_teacher(), kd_warmup_epochs=-1)
    with pytest.raises(ValueError, match="loss_kwargs"):
        DistillationModule(mlp(), bn_teacher(), DistillationLoss("kd"), loss_kwargs={"temperature": 2.0})
    with pytest.raises(ValueError, match="kd_weight"):
        DistillationModule(mlp(), bn_teacher(), kd_weight=-1.0)
    with pytest.raises(TypeError, match="DistillationLoss or a divergence name"):
        DistillationModule(mlp(), bn_teacher(), nn.KLDivLoss())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# views, batch shapes and the non-finite guard
def _bn_student(seed: int = 5) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))


def test_mlkd_forwards_the_weak_view_first() -> None:
    """The student's BatchNorm statistics after an MLKD step are those of weak-then-strong, as in the released code."""
    g = torch.Generator().manual_seed(3)
    weak, strong = torch.randn(8, 1, 8, 8, generator=g), torch.randn(8, 1, 8, 8, generator=g) * 3 + 1
    y = torch.randint(0, 10, (8,), generator=g)
    module = DistillationModule(_bn_student(), bn_teacher(), "mlkd", loss_kwargs={"temperature": 4.0})
    module.train()
    module.compute_loss(((weak, strong), y))
    reference = _bn_student().train()
    with torch.no_grad():
        reference(weak)
        reference(strong)
    bn, ref_bn = module.student[2], reference[2]
    assert torch.equal(bn.running_mean, ref_bn.running_mean) and torch.equal(bn.running_var, ref_bn.running_var)
    other_order = _bn_student().train()
    with torch.no_grad():
        other_order(strong)
        other_order(weak)
    assert not torch.equal(bn.running_mean, other_order[2].running_mean)


def test_two_view_batches_with_a_single_view_divergence_are_refused() -> None:
    module = DistillationModule(mlp(), bn_teacher(), "kd")
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    with pytest.raises(
        ValueError, match=r"Expected single-view batches \(x, y\) for KD, but got \(\(x_weak, x_strong\)"
    ):
        module.compute_loss(((x, x), y))


def test_dist_with_a_last_batch_of_one_trains_the_epoch() -> None:
    """17 samples in batches of 16 leave a batch of one: DIST's intra-class term is 0 there, no crash."""
    module = DistillationModule(mlp(), bn_teacher(), DistillationLoss("dist", temperature=4.0))
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, loader(random_dataset(17), batch_size=16))
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])


def test_negative_check_finite_steps_is_refused() -> None:
    with pytest.raises(ValueError, match=r"`check_finite_steps` to be a non-negative integer, but got -1"):
        DistillationModule(mlp(), bn_teacher(), check_finite_steps=-1)


class _PoisonedData(Dataset):
    """Random digits-shaped samples; one NaN pixel in sample ``bad``."""

    def __init__(self, n: int, bad: int) -> None:
        self.x, self.y = random_dataset(n).tensors
        self.x = self.x.clone()
        self.x[bad, 0, 3, 3] = float("nan")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.x[index], self.y[index]


@pytest.mark.parametrize("temperature", ["fixed", "ctkd"])
def test_a_nan_after_the_first_steps_stops_the_run_naming_step_batch_and_tensor(temperature: str) -> None:
    from lightning_kd import CurriculumTemperature
    from lightning_kd.guard import NonFiniteError

    policy: Any = 4.0 if temperature == "fixed" else CurriculumTemperature()
    module = DistillationModule(mlp(), bn_teacher(), DistillationLoss("kd", temperature=policy))
    data = DataLoader(_PoisonedData(32, bad=3 * 4 + 1), batch_size=4)  # sample 13: batch 3 of epoch 0
    trainer = make_trainer(max_epochs=2)
    with pytest.raises(
        NonFiniteError,
        match=r"Non-finite loss, student_logits, teacher_logits .* at training step 3"
        r" \(epoch 0, batch 3\)",
    ) as error:
        trainer.fit(module, data)
    assert trainer.current_epoch == 0  # stopped in the epoch of the NaN (at its end, the guard's read)
    if temperature == "ctkd":
        assert "lambda_min" in str(error.value) and "<= 0" not in str(error.value)
