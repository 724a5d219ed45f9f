"""DistillationModule: a LightningModule that trains a student against a frozen teacher."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from lightning_kd._batch import extract_logits, split_batch
from lightning_kd._frozen import FrozenTeacher
from lightning_kd._logging import is_logging_step
from lightning_kd._optim import attach_parameters
from lightning_kd.classifier import ClassifierModule, OptimizerFactory, SchedulerFactory, _accuracy
from lightning_kd.objective import DistillationLoss, DistillationOutput, build_loss
from lightning_kd.teacher import TeacherInputAdapter, load_teacher

__all__ = ["DistillationModule", "kd_warmup"]


def kd_warmup(epoch: int, warmup_epochs: int) -> float:
    """DKD's linear warm-up of the distillation weight: ``min(epoch / warmup_epochs, 1)``, epochs from 1.

    Example:
        >>> [kd_warmup(e, 20) for e in (1, 10, 20, 30)]
        [0.05, 0.5, 1.0, 1.0]
        >>> kd_warmup(1, 0)
        1.0
    """
    return 1.0 if warmup_epochs <= 0 else min(epoch / warmup_epochs, 1.0)


class DistillationModule(ClassifierModule):
    r"""Train a student to match a frozen teacher's logits, plus the ground truth.

    .. math:: \mathcal{L} = w_{CE}\,\mathrm{CE} + w_{KD} \cdot \mathrm{warmup}(e) \cdot \mathcal{L}_{KD}

    where :math:`\mathcal{L}_{KD}` comes from a :class:`~lightning_kd.DistillationLoss` (pre-process ∘
    temperature ∘ divergence). The teacher is held outside the module tree: it is never trained, never in
    an optimizer or DDP's buckets, never saved unless asked (``save_teacher=True``), always in eval mode, and
    not reported by Lightning as a module left in eval mode. It follows the module's device and dtype.

    Args:
        student: The student: any ``nn.Module`` classifier or LightningModule, or a model name for
            :func:`lightning_kd.models.create_model` (``"resnet8x4"``, ``"timm:vit_tiny_patch16_224"``, ...).
        teacher: An ``nn.Module`` or the path of a checkpoint (see :func:`lightning_kd.teacher.load_teacher`).
        loss: A :class:`~lightning_kd.DistillationLoss`, or a divergence name (``"kd"``, ``"dkd"``, ...) with
            ``loss_kwargs`` passed to ``DistillationLoss``.
        ce_weight: Weight of the cross-entropy; when given, replaces the loss's ``ce_weight``.
        kd_weight: Weight of the distillation parts; when given, replaces the loss's ``kd_weight``.
        kd_warmup_epochs: Ramp the distillation weight linearly over this many epochs (DKD uses 20).
        num_classes: Class count; inferred from the student's last linear layer when omitted.
        in_chans: Input channels, for students and teachers built by name.
        student_kwargs: More arguments for ``create_model`` when ``student`` is a name.
        teacher_arch: The teacher's architecture name when ``teacher`` is a weights-only file.
        teacher_kwargs: More arguments for ``create_model`` when building ``teacher_arch``.
        teacher_weights_only: Load the teacher file with ``torch.load(weights_only=True)``.
        teacher_input: Re-normalize/resize the student's input for the teacher.
        loss_kwargs: Arguments for ``DistillationLoss`` when ``loss`` is a name.
        optimizer: A factory ``params -> Optimizer`` (in YAML: ``class_path: torch.optim.SGD``...). When
            omitted, a LightningModule student's own ``configure_optimizers`` is used (the loss's parameters,
            e.g. CTKD's temperature, join its first optimizer at fit start), else SGD with the CIFAR recipe of
            the literature (lr 0.05, momentum 0.9, weight decay 5e-4).
        lr_scheduler: A factory ``optimizer -> LRScheduler``, stepped every epoch.
        logits_key: Where the logits are in the models' outputs (default: a tensor as is, the first item of a
            tuple such as ``(logits, features)``, the ``"logits"`` entry of a dict).
        compile: ``torch.compile`` the student's and the teacher's forward.
        channels_last: Use the channels-last memory format for models and image batches.
        save_teacher: Also store the teacher's weights in checkpoints (under ``"teacher_state_dict"``).
        check_finite_steps: Check logits for NaN/Inf (and targets' range) during the first this-many steps.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> student, teacher = nn.Linear(16, 4), nn.Linear(16, 4)
        >>> module = DistillationModule(student, teacher, DistillationLoss("kd", temperature=4.0),
        ...                             ce_weight=0.1, kd_weight=0.9)
        >>> out, student_logits, teacher_logits, target = module.compute_loss(
        ...     (torch.randn(8, 16), torch.randint(0, 4, (8,))))
        >>> sorted(out.parts), out.loss.shape
        (['ce', 'kd'], torch.Size([]))
    """

    def __init__(
        self,
        student: str | nn.Module,
        teacher: str | nn.Module,
        loss: DistillationLoss | str = "kd",
        *,
        ce_weight: float | None = None,
        kd_weight: float | None = None,
        kd_warmup_epochs: int = 0,
        num_classes: int | None = None,
        in_chans: int = 3,
        student_kwargs: dict[str, Any] | None = None,
        teacher_arch: str | None = None,
        teacher_kwargs: dict[str, Any] | None = None,
        teacher_weights_only: bool = True,
        teacher_input: TeacherInputAdapter | None = None,
        loss_kwargs: dict[str, Any] | None = None,
        optimizer: OptimizerFactory | None = None,
        lr_scheduler: SchedulerFactory | None = None,
        logits_key: str | int | None = None,
        compile: bool = False,
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
        # Objects (modules, factories) stay out of the hyperparameters: checkpoints hold only plain values.
        objects = {"student": student, "teacher": teacher, "loss": loss}
        ignored = [k for k, v in objects.items() if not isinstance(v, str)]
        self.save_hyperparameters(ignore=[*ignored, "teacher_input", "optimizer", "lr_scheduler"])
        if kd_warmup_epochs < 0:
            raise ValueError(
                f"Expected argument `kd_warmup_epochs` to be a non-negative integer, but got {kd_warmup_epochs}."
            )
        teacher_module = load_teacher(
            teacher,
            arch=teacher_arch,
            num_classes=self.num_classes if teacher_arch else None,
            in_chans=in_chans,
            arch_kwargs=teacher_kwargs,
            weights_only=teacher_weights_only,
        )
        self._teacher = FrozenTeacher(teacher_module)
        self.teacher_input = teacher_input

        self.loss = build_loss(loss, loss_kwargs, ce_weight=ce_weight, kd_weight=kd_weight)
        self.kd_warmup_epochs = kd_warmup_epochs
        self.save_teacher = save_teacher
        self.check_finite_steps = check_finite_steps
        self.teacher_val_metrics = _accuracy(self.num_classes, "val/teacher_")
        self._teacher_val_acc: dict[str, Tensor] | None = None
        self._checked_models = False

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

    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> DistillationModule:
        super()._apply(fn, *args, **kwargs)
        self._teacher.apply(fn)
        return self

    def unfreeze(self) -> DistillationModule:
        """Unfreeze the student and the loss (the teacher stays frozen: it is not part of this module)."""
        super().unfreeze()
        self.teacher.eval().requires_grad_(False)
        return self

    def teacher_logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for the student's input ``x`` (adapted by ``teacher_input``), no gradient."""
        if self.teacher_input is not None:
            x = self.teacher_input(x)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return extract_logits(self._teacher(x), self.logits_key)

    def setup(self, stage: str) -> None:
        if isinstance(self.model, pl.LightningModule) and self._trainer is not None:
            self.model.trainer = self.trainer  # its configure_optimizers may read trainer.max_epochs etc.
        super().setup(stage)
        if self.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        if self.compile_models and self._teacher.compiled is None:
            self._teacher.compiled = torch.compile(self.teacher)

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
        strong: dict[str, Tensor] = {}
        if isinstance(x, tuple):
            x, x_strong = x
            strong = {"student_logits_strong": self(x_strong), "teacher_logits_strong": self.teacher_logits(x_strong)}
        elif self.loss.needs_views:
            raise ValueError(
                f"Expected batches of ((x_weak, x_strong), y) for {type(self.loss.divergence).__name__}, but got a"
                " single view. Use a DataModule with `strong_aug=True`."
            )
        student_logits, teacher_logits = self(x), self.teacher_logits(x)
        if not self._checked_models:
            # Checked on the logits of the step itself: an extra forward pass in train mode would update the
            # student's BatchNorm statistics (and consume dropout randomness) outside of training.
            self._check_logits(student_logits, teacher_logits)
        out = self.loss(
            student_logits,
            teacher_logits,
            target,
            kd_scale=kd_warmup(self.current_epoch + 1, self.kd_warmup_epochs),
            check_finite=self.global_step < self.check_finite_steps,
            **strong,
        )
        return out, student_logits, teacher_logits, target

    def on_fit_start(self) -> None:
        self._teacher_val_acc = None
        attach_parameters(self.trainer, self.loss.parameters())

    def on_train_epoch_start(self) -> None:
        self.loss.set_epoch(self.current_epoch + 1)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        out, student_logits, teacher_logits, target = self.compute_loss(batch)
        batch_size = student_logits.shape[0]
        losses = {"train/loss": out.loss, "train/loss_kd": out.kd}
        if "ce" in out.parts:
            losses["train/loss_ce"] = out.parts["ce"]
        self.log_dict(losses, on_step=True, on_epoch=True, batch_size=batch_size)
        if is_logging_step(self._trainer):
            diagnostics: dict[str, Tensor | float] = {
                f"train/loss_{name}": value for name, value in out.parts.items() if name not in ("ce", "kd")
            }
            diagnostics.update(self._logit_stats(student_logits, teacher_logits, out))
            diagnostics["train/kd_scale"] = kd_warmup(self.current_epoch + 1, self.kd_warmup_epochs)
            self.log_dict(diagnostics, on_step=True, on_epoch=False, batch_size=batch_size)
        if target is not None:
            self.train_metrics.update(student_logits.detach(), target)
        return out.loss

    @staticmethod
    def _logit_stats(
        student_logits: Tensor, teacher_logits: Tensor, out: DistillationOutput
    ) -> dict[str, Tensor | float]:
        s, t = student_logits.detach().float(), teacher_logits.float()
        stats: dict[str, Tensor | float] = {
            "train/student_logit_std": s.std(dim=1).mean(),
            "train/student_logit_mean": s.mean(),
            "train/teacher_logit_std": t.std(dim=1).mean(),
            "train/teacher_logit_mean": t.mean(),
            "train/agreement": (s.argmax(1) == t.argmax(1)).float().mean(),
        }
        temperature = out.temperature
        if isinstance(temperature, Tensor):
            temperature = temperature.float()
            stats["train/temperature"] = temperature.mean()
            if temperature.numel() > 1:
                stats["train/temperature_min"] = temperature.min()
                stats["train/temperature_max"] = temperature.max()
        elif temperature is not None:
            stats["train/temperature"] = float(temperature)
        stats.update({f"train/{name}": float(value) for name, value in out.extra.items()})
        return stats

    # ----------------------------------------------------------------------------------------------------
    # evaluation: the student's metrics (base class) and the teacher's, computed once
    def on_validation_start(self) -> None:
        # The cached teacher accuracy belongs to the validation data of one fit; a separate `validate` call may
        # bring other data, so it computes the teacher's accuracy afresh.
        if self.trainer.state.fn != "fit":
            self._teacher_val_acc = None

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        # Validation (e.g. Lightning's sanity check) may come before the first training step: check there too,
        # before the metrics see logits of the wrong shape. The models are in eval mode: no side effects.
        if not self._checked_models:
            x, _ = split_batch(batch)
            self._check_models(x[0] if isinstance(x, tuple) else x)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = self._evaluate(batch, self.val_metrics, "val")
        if x is not None and self._teacher_val_acc is None:
            self.teacher_val_metrics.update(self.teacher_logits(x), split_batch(batch)[1])

    def on_validation_epoch_end(self) -> None:
        if self._teacher_val_acc is None:
            # The teacher is frozen and the validation data fixed: its accuracy is computed on the first full
            # validation epoch and cached (the sanity check sees only a few batches, so it is not cached).
            values = self.teacher_val_metrics.compute()
            self.teacher_val_metrics.reset()
            if not self.trainer.sanity_checking:
                self._teacher_val_acc = values
        else:
            values = self._teacher_val_acc
        self.log_dict(dict(values))
        super().on_validation_epoch_end()

    # ----------------------------------------------------------------------------------------------------
    # optimizers
    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's and the loss's (CTKD temperature) parameters that require grad."""
        return [p for p in [*self.model.parameters(), *self.loss.parameters()] if p.requires_grad]

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
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.save_teacher:
            checkpoint["teacher_state_dict"] = {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()}

    def on_load_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        saved = checkpoint.get("teacher_state_dict")
        if saved is not None:
            self.teacher.load_state_dict(saved)
            self.teacher.eval().requires_grad_(False)

    def export_student(self, path: str | Path) -> Path:
        """Write the student's plain ``state_dict`` (loadable into the bare architecture with ``strict=True``).

        Returns:
            The path written.
        """
        return self.export(path)
