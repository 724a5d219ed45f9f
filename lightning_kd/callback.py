"""KnowledgeDistillation: a callback that makes an existing LightningModule distill from a teacher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from lightning_kd._batch import extract_logits, split_batch
from lightning_kd._frozen import FrozenTeacher
from lightning_kd._logging import is_logging_step
from lightning_kd._optim import attach_parameters
from lightning_kd.module import kd_warmup
from lightning_kd.objective import DistillationLoss, build_loss
from lightning_kd.teacher import TeacherInputAdapter, load_teacher

__all__ = ["KnowledgeDistillation"]


class KnowledgeDistillation(pl.Callback):
    r"""Add a distillation loss to the loss an unmodified LightningModule's ``training_step`` returns.

    During ``fit`` the callback watches the module's forward calls inside ``training_step`` (a forward hook
    on the module, or on the submodule named by ``student_attr``). For each call it runs the frozen teacher
    on the same input and adds ``kd_weight * warmup * KD(student_logits, teacher_logits)`` to the returned
    loss. The module's own loss (usually its cross-entropy) is kept as it is; the loss's ``ce_weight`` is not
    used. Nothing of the module changes: its ``state_dict``, checkpoints and exported weights are its own.

    The callback's state (the loss's, e.g. CTKD's learnable temperature and its curriculum position) is in
    :meth:`state_dict`, so resuming from a checkpoint restores it. Parameters of the loss (CTKD's
    :math:`\theta`) join the module's first optimizer as a new parameter group with that optimizer's
    defaults (its learning rate and weight decay) at the start of ``fit``; under DDP their gradients are
    averaged over processes through the strategy before each optimizer step.

    Args:
        teacher: An ``nn.Module`` or the path of a checkpoint (see :func:`lightning_kd.teacher.load_teacher`).
        loss: A :class:`~lightning_kd.DistillationLoss`, or a divergence name with ``loss_kwargs``.
        kd_weight: Weight of the distillation loss; when given, replaces the loss's ``kd_weight``.
        kd_warmup_epochs: Ramp the weight linearly over this many epochs.
        teacher_arch: The teacher's architecture name when ``teacher`` is a weights-only file.
        num_classes: The teacher's class count for ``teacher_arch`` (inferred from the weights if omitted).
        in_chans: Input channels for ``teacher_arch``.
        teacher_weights_only: Load the teacher file with ``torch.load(weights_only=True)``.
        teacher_input: Re-normalize/resize the student's input for the teacher.
        loss_kwargs: Arguments for ``DistillationLoss`` when ``loss`` is a name.
        student_attr: Name of the submodule whose forward gives the student's logits; ``None`` hooks the
            LightningModule's own forward (for ``training_step`` implementations that call ``self(x)``).
        logits_key: Where the logits are in the forward's output (default: tensor, first tuple item,
            ``"logits"`` key).
        get_input: ``batch -> input`` for the teacher; default: the input the student's forward received.
        get_target: ``batch -> target`` (needed by DKD); default: the second item of an ``(x, y)`` batch.
        check_finite_steps: Check logits for NaN/Inf during the first this-many steps.

    Example:
        >>> import lightning.pytorch as pl
        >>> from torch import nn
        >>> callback = KnowledgeDistillation(teacher=nn.Linear(8, 3), loss="kd", kd_weight=0.9,
        ...                                  loss_kwargs={"temperature": 4.0})
        >>> trainer = pl.Trainer(callbacks=[callback], logger=False, enable_checkpointing=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
    """

    def __init__(
        self,
        teacher: str | nn.Module,
        loss: DistillationLoss | str = "kd",
        *,
        kd_weight: float | None = None,
        kd_warmup_epochs: int = 0,
        teacher_arch: str | None = None,
        num_classes: int | None = None,
        in_chans: int = 3,
        teacher_weights_only: bool = True,
        teacher_input: TeacherInputAdapter | None = None,
        loss_kwargs: dict[str, Any] | None = None,
        student_attr: str | None = None,
        logits_key: str | int | None = None,
        get_input: Callable[[Any], Tensor] | None = None,
        get_target: Callable[[Any], Tensor] | None = None,
        check_finite_steps: int = 1,
    ) -> None:
        if kd_warmup_epochs < 0:
            raise ValueError(
                f"Expected argument `kd_warmup_epochs` to be a non-negative integer, but got {kd_warmup_epochs}."
            )
        loss = build_loss(loss, loss_kwargs, kd_weight=kd_weight)
        if loss.needs_views:
            raise ValueError(
                f"Expected a single-view divergence for the callback, but got {type(loss.divergence).__name__},"
                " which needs weak and strong views: use DistillationModule for it."
            )
        self.loss = loss
        self._teacher = FrozenTeacher(
            load_teacher(
                teacher,
                arch=teacher_arch,
                num_classes=num_classes,
                in_chans=in_chans,
                weights_only=teacher_weights_only,
            )
        )
        self.teacher_input = teacher_input
        self.kd_warmup_epochs = kd_warmup_epochs
        self.student_attr = student_attr
        self.logits_key = logits_key
        self.get_input = get_input
        self.get_target = get_target
        self.check_finite_steps = check_finite_steps
        self._captured: list[tuple[Any, Any]] | None = None
        self._hook: Any = None
        self._original_step: Any = None
        self._module: pl.LightningModule | None = None

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher network."""
        return self._teacher.module

    @property
    def state_key(self) -> str:
        return "KnowledgeDistillation"

    # ----------------------------------------------------------------------------------------------------
    def _watched(self, pl_module: pl.LightningModule) -> nn.Module:
        if self.student_attr is None:
            return pl_module
        module = pl_module.get_submodule(self.student_attr)
        return module

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        try:
            self._watched(pl_module)
        except AttributeError as error:
            raise ValueError(
                f"Expected argument `student_attr` to name a submodule of {type(pl_module).__name__}, but got"
                f" {self.student_attr!r}."
            ) from error

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._teacher.apply(lambda t: t.to(pl_module.device))
        if self.teacher_input is not None:
            self.teacher_input.to(pl_module.device)
        self.loss.to(pl_module.device)
        with torch.no_grad():
            # `ddp_spawn` on CPU passes the callback to its processes with every tensor in shared memory, and
            # Lightning un-shares only the LightningModule's: each process would then step the same CTKD
            # parameter. Give each process its own copy (the read-only teacher may stay shared).
            for tensor in (*self.loss.parameters(), *self.loss.buffers()):
                if tensor.is_shared():
                    tensor.data = tensor.data.clone()
        attach_parameters(trainer, self.loss.parameters())
        self._module = pl_module
        self._hook = self._watched(pl_module).register_forward_hook(self._capture)
        self._original_step = pl_module.training_step
        callback = self

        def training_step(*args: Any, **kwargs: Any) -> Any:
            return callback._distill_step(pl_module, *args, **kwargs)

        # An instance attribute shadows the class's training_step for the duration of fit only (restored in
        # on_fit_end/teardown): Lightning backpropagates the loss training_step returns, and this is the one
        # place where the distillation term can join it without changes to the user's module.
        pl_module.training_step = training_step  # type: ignore[method-assign]

    def _restore(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._module is not None and self._original_step is not None:
            del self._module.training_step
        self._module, self._original_step = None, None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # A failed fit skips on_fit_end and teardown: leave the module as it was all the same.
        self._restore()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.loss.set_epoch(trainer.current_epoch + 1)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if trainer.world_size > 1:
            for param in self.loss.parameters():
                if param.grad is not None:
                    param.grad = trainer.strategy.reduce(param.grad, reduce_op="mean")

    # ----------------------------------------------------------------------------------------------------
    def _capture(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._captured is not None and module.training:
            self._captured.append((args[0] if args else None, output))

    def _distill_step(self, pl_module: pl.LightningModule, *args: Any, **kwargs: Any) -> Any:
        batch = args[0] if args else kwargs.get("batch")
        self._captured = []
        try:
            result = self._original_step(*args, **kwargs)
        finally:
            captured, self._captured = self._captured, None
        if result is None:
            return result
        if not captured:
            where = f"`{self.student_attr}`" if self.student_attr else "the module's forward (`self(x)`)"
            raise ValueError(
                f"Expected training_step to call {where}, whose output holds the student's logits, but it made no"
                " such call. Pass `student_attr` with the name of the network training_step calls."
            )
        target = self._target(batch) if self.loss.divergence.needs_target else None
        trainer = pl_module.trainer
        check = trainer.global_step < self.check_finite_steps
        kd_total: Tensor | None = None
        for call_input, call_output in captured:
            x = self.get_input(batch) if self.get_input is not None else call_input
            if not isinstance(x, Tensor):
                x, _ = split_batch(batch)
                if not isinstance(x, Tensor):
                    raise ValueError("Expected the student's input to be a tensor: pass `get_input`.")
            student_logits = extract_logits(call_output, self.logits_key)
            teacher_logits = self._teacher_logits(x)
            if teacher_logits.shape[1] != student_logits.shape[1]:
                raise ValueError(
                    "Expected the teacher and the student to predict the same number of classes, but the teacher"
                    f" outputs {teacher_logits.shape[1]} and the student {student_logits.shape[1]}."
                )
            out = self.loss(
                student_logits,
                teacher_logits,
                target,
                kd_scale=kd_warmup(trainer.current_epoch + 1, self.kd_warmup_epochs),
                check_finite=check,
            )
            kd_total = out.kd if kd_total is None else kd_total + out.kd
        assert kd_total is not None
        batch_size = student_logits.shape[0]
        pl_module.log("train/loss_kd", kd_total.detach(), on_step=True, on_epoch=True, batch_size=batch_size)
        if is_logging_step(trainer):  # diagnostics of the step's last forward call
            self._log_diagnostics(pl_module, student_logits, teacher_logits, out.temperature, out.extra)
        if isinstance(result, Tensor):
            return result + kd_total
        if isinstance(result, dict) and isinstance(result.get("loss"), Tensor):
            return {**result, "loss": result["loss"] + kd_total}
        raise ValueError(
            "Expected training_step to return a loss tensor or a dict with a 'loss' tensor,"
            f" but got {type(result).__name__}."
        )

    def _teacher_logits(self, x: Tensor) -> Tensor:
        if self.teacher_input is not None:
            x = self.teacher_input(x)
        return extract_logits(self._teacher(x), self.logits_key)

    def _target(self, batch: Any) -> Tensor:
        target = self.get_target(batch) if self.get_target is not None else split_batch(batch)[1]
        if target is None:
            raise ValueError(
                f"Expected batches with targets for {type(self.loss.divergence).__name__}, but the batch has none:"
                " pass `get_target`."
            )
        return target

    def _log_diagnostics(
        self,
        pl_module: pl.LightningModule,
        student_logits: Tensor,
        teacher_logits: Tensor,
        temperature: float | Tensor | None,
        extra: dict[str, float],
    ) -> None:
        batch_size = student_logits.shape[0]
        values: dict[str, Tensor | float] = {
            "train/agreement": (student_logits.detach().argmax(1) == teacher_logits.argmax(1)).float().mean(),
        }
        if isinstance(temperature, Tensor):
            values["train/temperature"] = temperature.float().mean()
        elif temperature is not None:
            values["train/temperature"] = float(temperature)
        values.update({f"train/{k}": v for k, v in extra.items()})
        pl_module.log_dict(values, on_step=True, on_epoch=False, batch_size=batch_size)

    # ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss.load_state_dict(state_dict["loss"])
