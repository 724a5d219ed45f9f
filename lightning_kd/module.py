"""DistillationModule: a LightningModule that trains a student against a frozen teacher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MetricCollection
from typing_extensions import override

from lightning_kd._batch import split_batch
from lightning_kd._diagnostics import StepLogger
from lightning_kd._frozen import FrozenTeacher
from lightning_kd._optim import attach_parameters
from lightning_kd._validation import check_non_negative_int
from lightning_kd.cache.binding import as_cache, batch_views, bind_for_fit
from lightning_kd.cache.store import TeacherLogitCache
from lightning_kd.classifier import ClassifierModule, OptimizerFactory, SchedulerFactory, _accuracy
from lightning_kd.guard import NonFiniteGuard
from lightning_kd.objective import DistillationLoss, DistillationOutput, build_loss
from lightning_kd.teacher import TeacherInputAdapter, load_teacher, state_dict_sha256
from lightning_kd.weighting import kd_warmup

__all__ = ["DistillationModule", "kd_warmup"]

#: What the non-finite guard's error adds for a run whose temperature is learned adversarially.
_CTKD_HINT = (
    "With a learned (CTKD) temperature, try a smaller `t_range` or a `lambda_min` closer to 0 (a milder"
    " gradient reversal)."
)


def warn_if_teacher_changed(recorded: str | None, current: str, teacher: object, *, what: str) -> None:
    """Warn (on rank zero) when a teacher's weights are not the ones a run or checkpoint recorded."""
    if recorded is None or recorded == current:
        return
    where = f" loaded from {teacher}" if isinstance(teacher, (str, Path)) else ""
    rank_zero_warn(
        f"The teacher changed: {what} recorded a teacher whose weights have SHA-256 {recorded}, but the teacher"
        f"{where} has {current}. Results are not comparable with that run's; restore the original teacher to"
        " continue it, or go on with this teacher knowingly (its identity is recorded from now on)."
    )


def teacher_accuracy(
    metrics: MetricCollection, cached: dict[str, Tensor] | None, *, sanity_checking: bool
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """The teacher's validation accuracies to log at the end of a validation epoch, and what to cache.

    The teacher is frozen and the validation data fixed: its accuracy is computed on the first full validation
    epoch and cached (the sanity check sees only a few batches, so it is not cached). ``cached``: the values of
    an earlier epoch, or None.
    """
    if cached is not None:
        return cached, cached
    values = metrics.compute()
    metrics.reset()
    return dict(values), None if sanity_checking else dict(values)


class DistillationModule(ClassifierModule):
    r"""Train a student to match a frozen teacher's logits, plus the ground truth.

    .. math:: \mathcal{L} = w_{CE}\,\mathrm{CE} + w_{KD} \cdot \mathrm{warmup}(e) \cdot \mathcal{L}_{KD}

    where :math:`\mathcal{L}_{KD}` comes from a :class:`~lightning_kd.DistillationLoss` (pre-process ∘
    temperature ∘ divergence). The teacher is held outside the module tree: it is never trained, never in
    an optimizer or DDP's buckets, never saved unless asked (``save_teacher=True``), always in eval mode, and
    not reported by Lightning as a module left in eval mode. It follows the module's device and dtype. A
    teacher passed as a module is copied (your module is not changed); its identity, the SHA-256 of its
    weights, is the hyperparameter ``teacher_sha256`` (in ``hparams.yaml`` and checkpoints), compared again by
    ``load_from_checkpoint`` and when a fit resumes from a checkpoint, which warn when the teacher changed.

    A cheap guard checks every training step for NaN/Inf (loss and logits) without reading the device each
    step: it stops the run with an error naming the step, batch and tensor (see ``check_finite_steps`` for
    the full checks of the first steps).

    Args:
        student: The student: any ``nn.Module`` classifier or LightningModule, or a model name for
            :func:`lightning_kd.models.create_model` (``"resnet8x4"``, ``"timm:vit_tiny_patch16_224"``, ...).
        teacher: An ``nn.Module`` or the path of a checkpoint (see :func:`lightning_kd.teacher.load_teacher`).
        loss: A :class:`~lightning_kd.DistillationLoss`, or a divergence name (``"kd"``, ``"dkd"``, ...) with
            ``loss_kwargs`` passed to ``DistillationLoss``. The object is not changed by this module.
        ce_weight: Weight of the cross-entropy; when given, overrides the loss's default for this module.
        kd_weight: Weight of the distillation parts; when given, overrides the loss's default for this module.
        kd_warmup_epochs: Ramp the distillation weight linearly over this many epochs (DKD uses 20); when
            given, overrides the loss's default.
        num_classes: Class count; inferred from the student's last linear layer when omitted.
        in_chans: Input channels, for students and teachers built by name.
        student_kwargs: More arguments for ``create_model`` when ``student`` is a name.
        teacher_arch: The teacher's architecture name when ``teacher`` is a weights-only file.
        teacher_kwargs: More arguments for ``create_model`` when building ``teacher_arch``.
        teacher_weights_only: Load the teacher file with ``torch.load(weights_only=True)``.
        teacher_input: Re-normalize/resize the student's input for the teacher.
        teacher_sha256: The expected identity of the teacher's weights
            (:func:`~lightning_kd.teacher.state_dict_sha256`), e.g. a checkpoint's: a teacher with other weights
            gives a warning that says so. ``None``: nothing to compare with. Either way the identity of the
            teacher in use is recorded under this name.
        teacher_cache: A :class:`~lightning_kd.TeacherLogitCache` (or its folder): the teacher's logits of every
            augmented view computed once and reused; needs a DataModule with ``return_views=True`` and an
            enumerable augmentation (checked at the start of fit).
        loss_kwargs: Arguments for ``DistillationLoss`` when ``loss`` is a name.
        optimizer: A factory ``params -> Optimizer`` (in YAML: ``class_path: torch.optim.SGD``...). When
            omitted, a LightningModule student's own ``configure_optimizers`` is used (the loss's parameters,
            e.g. CTKD's temperature, join its first optimizer at fit start), else SGD with the CIFAR recipe of
            the literature (lr 0.05, momentum 0.9, weight decay 5e-4).
        lr_scheduler: A factory ``optimizer -> LRScheduler``, stepped every epoch.
        logits_key: Where the logits are in the models' outputs (default: a tensor as is, the first item of a
            tuple such as ``(logits, features)``, the ``"logits"`` entry of a dict).
        compile: ``torch.compile`` the student's and the teacher's forward and the objective: ``True``
            (``"default"``) or a ``torch.compile`` mode (``"reduce-overhead"``: CUDA graphs; ``"max-autotune"``).
            The teacher then runs under ``torch.inference_mode``. Use fixed batch shapes (the DataModules'
            ``drop_last=True``) so the epoch's last batch causes no recompilation.
        channels_last: Use the channels-last memory format for models and image batches.
        save_teacher: Also store the teacher's weights in checkpoints (under ``"teacher_state_dict"``).
        check_finite_steps: During the first this-many steps, check logits for NaN/Inf and targets'
            range at once (host synchronisations); later steps rely on the guard.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> student, teacher = nn.Linear(16, 4), nn.Linear(16, 4)
        >>> module = DistillationModule(student, teacher, DistillationLoss("kd", temperature=4.0),
        ...                             ce_weight=0.1, kd_weight=0.9)
        >>> out, student_logits, teacher_logits, target = module.compute_loss(
        ...     (torch.randn(8, 16), torch.randint(0, 4, (8,))))
        >>> sorted(out.parts), out.loss.shape
        (['ce', 'kl'], torch.Size([]))
    """

    def __init__(
        self,
        student: str | nn.Module,
        teacher: str | nn.Module,
        loss: DistillationLoss | str = "kd",
        *,
        ce_weight: float | None = None,
        kd_weight: float | None = None,
        kd_warmup_epochs: int | None = None,
        num_classes: int | None = None,
        in_chans: int = 3,
        student_kwargs: dict[str, Any] | None = None,
        teacher_arch: str | None = None,
        teacher_kwargs: dict[str, Any] | None = None,
        teacher_weights_only: bool = True,
        teacher_input: TeacherInputAdapter | None = None,
        teacher_sha256: str | None = None,
        teacher_cache: str | TeacherLogitCache | None = None,
        loss_kwargs: dict[str, Any] | None = None,
        optimizer: OptimizerFactory | None = None,
        lr_scheduler: SchedulerFactory | None = None,
        logits_key: str | int | None = None,
        compile: bool | str = False,
        channels_last: bool = False,
        save_teacher: bool = False,
        check_finite_steps: int = 1,
    ) -> None:
        super().__init__(
            student,
            num_classes=num_classes,
            in_chans=in_chans,
            model_kwargs=student_kwargs,
            optimizer=optimizer,
            lr_scheduler=lr_scheduler,
            logits_key=logits_key,
            compile=compile,
            channels_last=channels_last,
        )
        self.check_finite_steps = check_non_negative_int("check_finite_steps", check_finite_steps)
        self.loss, self.weights = build_loss(
            loss, loss_kwargs, ce_weight=ce_weight, kd_weight=kd_weight, kd_warmup_epochs=kd_warmup_epochs
        )
        teacher_module = load_teacher(
            teacher,
            arch=teacher_arch,
            num_classes=self.num_classes if teacher_arch else None,
            in_chans=in_chans,
            arch_kwargs=teacher_kwargs,
            weights_only=teacher_weights_only,
        )
        identity = state_dict_sha256(teacher_module)
        warn_if_teacher_changed(teacher_sha256, identity, teacher, what="`teacher_sha256` (e.g. a checkpoint's)")
        # Objects (modules, factories) stay out of the hyperparameters: checkpoints hold only plain values.
        objects = {"student": student, "teacher": teacher, "loss": loss, "teacher_cache": teacher_cache}
        ignored = [k for k, v in objects.items() if not isinstance(v, str)]
        self.save_hyperparameters(ignore=[*ignored, "teacher_input", "optimizer", "lr_scheduler"])
        # The identity of the teacher in use, recorded whatever was given (LightningCLI passes the arguments as
        # configured): a dict updates the hyperparameters, the logged ones included.
        self.save_hyperparameters({"teacher_sha256": identity})
        self.teacher_input = teacher_input
        self._teacher = FrozenTeacher(teacher_module, input_adapter=teacher_input, logits_key=logits_key)
        self.save_teacher = save_teacher
        self.teacher_val_metrics = _accuracy(self.num_classes, "val/teacher_")
        self._teacher_val_acc: dict[str, Tensor] | None = None
        self._checked_models = False
        hint = _CTKD_HINT if any(p.requires_grad for p in self.loss.parameters()) else ""
        self._guard = NonFiniteGuard(("loss", "student_logits", "teacher_logits"), hint=hint)
        self._step_logger = StepLogger()
        self._objective: Callable[..., DistillationOutput] | None = None
        self.teacher_cache = as_cache(teacher_cache)

    # ----------------------------------------------------------------------------------------------------
    # student and teacher
    @property
    def student(self) -> nn.Module:
        """The student network (stored as ``model``, so checkpoints hold it under ``model.*``)."""
        return self.model

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher network."""
        return self._teacher.module

    @property
    def teacher_sha256(self) -> str:
        """The identity of the teacher's weights (see :func:`~lightning_kd.teacher.state_dict_sha256`)."""
        return str(self.hparams["teacher_sha256"])

    @override
    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> DistillationModule:
        # No public hook moves objects outside the module tree along with it: `_apply` is what .to(), .cuda(),
        # .half() and Lightning's precision plugins call, so the teacher follows the student's device and dtype
        # here. tests/test_teacher.py fails if an upgrade of torch stops routing moves through it.
        super()._apply(fn, *args, **kwargs)
        self._teacher.apply(fn)
        return self

    @override
    def unfreeze(self) -> DistillationModule:
        """Unfreeze the student and the loss (the teacher stays frozen: it is not part of this module)."""
        super().unfreeze()
        self.teacher.eval().requires_grad_(False)
        return self

    def teacher_logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for the student's input ``x`` (adapted by ``teacher_input``), no gradient."""
        return self._teacher.logits(x)

    @override
    def setup(self, stage: str) -> None:
        if isinstance(self.model, pl.LightningModule) and self._trainer is not None:
            self.model.trainer = self.trainer  # its configure_optimizers may read trainer.max_epochs etc.
        super().setup(stage)
        if self.channels_last:
            self._teacher.use_channels_last()
        if self.compile_mode is not None:
            self._teacher.compile(self.compile_mode)
            if self._objective is None:
                # The objective's small kernels (standardize, softmax, KL, cross-entropy) fused; kept out of the
                # module tree like the compiled student, so state_dict and checkpoints keep their keys.
                self.__dict__["_objective"] = torch.compile(self.loss, mode=self.compile_mode)

    def _check_logits(self, s: Tensor, t: Tensor) -> None:
        """Fail early, before the first update, when student and teacher don't fit together."""
        if s.shape[1] != self.num_classes:
            raise ValueError(
                f"Expected the student to output {self.num_classes} classes (`num_classes`),"
                f" but it outputs {s.shape[1]}."
            )
        if t.shape[1] != s.shape[1]:
            raise ValueError(
                "Expected the teacher and the student to predict the same number of classes, but the teacher"
                f" outputs {t.shape[1]} and the student {s.shape[1]}."
            )
        self._checked_models = True

    def _check_models(self, x: Tensor) -> None:
        """Run both models on ``x`` (no gradient) and check that their logits fit together."""
        with torch.no_grad():
            self._check_logits(self(x), self.teacher_logits(x))

    # ----------------------------------------------------------------------------------------------------
    # training
    def compute_loss(self, batch: Any) -> tuple[DistillationOutput, Tensor, Tensor, Tensor | None]:
        """The distillation objective on one batch: the loss output, student and teacher logits, target."""
        x, target = split_batch(batch)
        divergence = type(self.loss.divergence).__name__
        x_strong: Tensor | None = None
        if isinstance(x, tuple):
            if not self.loss.needs_views:
                raise ValueError(
                    f"Expected single-view batches (x, y) for {divergence}, but got ((x_weak, x_strong), y): its"
                    " objective has no strong-view term. Use a DataModule without `strong_aug`."
                )
            x, x_strong = x
        elif self.loss.needs_views:
            raise ValueError(
                f"Expected batches of ((x_weak, x_strong), y) for {divergence}, but got a single view. Use a"
                " DataModule with `strong_aug=True`."
            )
        # The weak view first, as the released MLKD code does: the student's BatchNorm statistics see the views
        # in the same order, so checkpoints match the reference.
        student_logits = self(x)
        if self.teacher_cache is not None and self.teacher_cache.is_bound and self.training:
            weak = x
            teacher_logits = self.teacher_cache.teacher_logits(batch_views(batch), lambda: self.teacher_logits(weak))
        else:
            teacher_logits = self.teacher_logits(x)
        strong: dict[str, Tensor] = {}
        if x_strong is not None:
            strong = {"student_logits_strong": self(x_strong), "teacher_logits_strong": self.teacher_logits(x_strong)}
        if not self._checked_models:
            # Checked on the logits of the step itself: an extra forward pass in train mode would update the
            # student's BatchNorm statistics (and consume dropout randomness) outside of training.
            self._check_logits(student_logits, teacher_logits)
        trainer = self._trainer
        epoch, step = (trainer.current_epoch, trainer.global_step) if trainer is not None else (0, 0)
        check = step < self.check_finite_steps
        # The first steps' value checks read tensors back to the host: eager there, compiled after.
        objective = self._objective if (self._objective is not None and not check) else self.loss
        out = objective(
            student_logits,
            teacher_logits,
            target,
            weights=self.weights,
            kd_scale=self.weights.kd_scale(epoch + 1),
            check_finite=check,
            **strong,
        )
        return out, student_logits, teacher_logits, target

    @override
    def on_fit_start(self) -> None:
        self._teacher_val_acc = None
        self._guard.window = max(1, getattr(self.trainer, "log_every_n_steps", 0) or 50)
        self._guard.reset()
        self._step_logger.reset()
        attach_parameters(self.trainer, self.loss.parameters())
        if self.teacher_cache is not None:
            bind_for_fit(
                self.teacher_cache,
                self.trainer,
                teacher_sha256=self.teacher_sha256,
                teacher_input=self.teacher_input,
                channels_last=self.channels_last,
                num_classes=self.num_classes,
            )

    @override
    def on_train_epoch_start(self) -> None:
        self.loss.set_epoch(self.current_epoch + 1)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        out, student_logits, teacher_logits, target = self.compute_loss(batch)
        self._guard.record(
            [out.loss, student_logits.detach().sum(), teacher_logits.sum()],
            step=self.global_step,
            batch_idx=batch_idx,
            epoch=self.current_epoch,
        )
        if self._step_logger.log_step(self, out, student_logits, teacher_logits):
            self._guard.check()
            self.loss.observe(out)
        if target is not None:
            self.train_metrics.update(student_logits.detach(), target)
        return out.loss

    @override
    def on_train_epoch_end(self) -> None:
        self._guard.check()
        self._step_logger.log_epoch(self)
        if self.teacher_cache is not None:
            self.teacher_cache.flush()
        super().on_train_epoch_end()

    @override
    def on_fit_end(self) -> None:
        self._guard.check()
        if self.teacher_cache is not None:
            self.teacher_cache.flush()

    # ----------------------------------------------------------------------------------------------------
    # evaluation: the student's metrics (base class) and the teacher's, computed once
    @override
    def on_validation_start(self) -> None:
        # The cached teacher accuracy belongs to the validation data of one fit; a separate `validate` call may
        # bring other data, so it computes the teacher's accuracy afresh.
        if self.trainer.state.fn != "fit":
            self._teacher_val_acc = None

    @override
    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        # Validation (e.g. Lightning's sanity check) may come before the first training step: check there too,
        # before the metrics see logits of the wrong shape. The models are in eval mode: no side effects.
        if not self._checked_models:
            x, _ = split_batch(batch)
            self._check_models(x[0] if isinstance(x, tuple) else x)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = self._evaluate(batch, self.val_metrics, "val")
        if x is not None and self._teacher_val_acc is None:
            self.teacher_val_metrics.update(self.teacher_logits(x), split_batch(batch)[1])

    @override
    def on_validation_epoch_end(self) -> None:
        values, self._teacher_val_acc = teacher_accuracy(
            self.teacher_val_metrics, self._teacher_val_acc, sanity_checking=self.trainer.sanity_checking
        )
        self.log_dict(values)
        super().on_validation_epoch_end()

    # ----------------------------------------------------------------------------------------------------
    # optimizers
    @override
    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's and the loss's (CTKD temperature) parameters that require grad."""
        return [p for p in [*self.model.parameters(), *self.loss.parameters()] if p.requires_grad]

    @override
    def configure_optimizers(self) -> Any:
        student = self.model
        if (
            self.optimizer_factory is None
            and isinstance(student, pl.LightningModule)
            and type(student).configure_optimizers is not pl.LightningModule.configure_optimizers
        ):
            return student.configure_optimizers()  # the loss's parameters join its first optimizer in on_fit_start
        return super().configure_optimizers()

    # ----------------------------------------------------------------------------------------------------
    # checkpoints and export
    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.save_teacher:
            checkpoint["teacher_state_dict"] = {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()}

    @override
    def on_load_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        saved = checkpoint.get("teacher_state_dict")
        if saved is not None:
            self.teacher.load_state_dict(saved)
            self.teacher.eval().requires_grad_(False)
            self.hparams["teacher_sha256"] = state_dict_sha256(self.teacher)
            return
        recorded = (checkpoint.get("hyper_parameters") or {}).get("teacher_sha256")
        warn_if_teacher_changed(recorded, self.teacher_sha256, self.hparams.get("teacher"), what="the checkpoint")

    def export_student(self, path: str | Path) -> Path:
        """Write the student's plain ``state_dict`` (loadable into the bare architecture with ``strict=True``).

        Returns:
            The path written.
        """
        return self.export(path)
