"""KnowledgeDistillation: a callback that makes an existing LightningModule distill from a teacher."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from typing_extensions import override

from lightning_kd._batch import extract_logits, split_batch
from lightning_kd._diagnostics import StepLogger
from lightning_kd._frozen import FrozenTeacher
from lightning_kd._optim import attach_parameters
from lightning_kd._validation import check_non_negative_int
from lightning_kd.guard import NonFiniteGuard
from lightning_kd.objective import DistillationLoss, DistillationOutput, build_loss
from lightning_kd.teacher import TeacherInputAdapter, load_teacher

__all__ = ["KnowledgeDistillation"]


class KnowledgeDistillation(pl.Callback):
    r"""Add a distillation loss to the loss an unmodified LightningModule's ``training_step`` returns.

    During ``fit`` the callback watches the module's forward calls inside ``training_step`` (a forward hook
    on the module, or on the submodule named by ``student_attr``). For each call it runs the frozen teacher
    on the same input and adds ``kd_weight * warmup * KD(student_logits, teacher_logits)`` to the returned
    loss. The module's own loss (usually its cross-entropy) is kept as it is; the loss's ``ce_weight`` is not
    used. Nothing of the module changes: its ``state_dict``, checkpoints and exported weights are its own. The
    teacher follows the module's device and precision (``Trainer(precision="bf16-true")``, ``"64-true"``, ...
    convert it as they convert the module). It logs the same keys as
    :class:`~lightning_kd.DistillationModule` (``train/loss_kd`` every step, the diagnostics on logging steps),
    except ``train/loss`` and ``train/loss_ce``, which are the module's own to log, and it guards every step
    against NaN/Inf in the same way.

    The callback's state (the loss's, e.g. CTKD's learnable temperature and its curriculum position) is in
    :meth:`state_dict`, so resuming from a checkpoint restores it. Parameters of the loss (CTKD's
    :math:`\theta`) join the module's first optimizer as a new parameter group with that optimizer's
    defaults (its learning rate and weight decay) at the start of ``fit``; under DDP their gradients are
    averaged over processes through the strategy before each optimizer step. With ``strategy="ddp_spawn"``
    the training runs in worker processes: the callback object of the launching process keeps the state it
    had before ``fit`` (Lightning sends back the module's weights, not callbacks'). Read the learned
    temperature from ``trainer.callback_metrics["train/temperature"]`` or from the checkpoint's callback state
    there, or use ``strategy="ddp"``, whose processes include the launching one.

    Args:
        teacher: An ``nn.Module`` (copied: your module is not changed) or the path of a checkpoint (see
            :func:`lightning_kd.teacher.load_teacher`).
        loss: A :class:`~lightning_kd.DistillationLoss`, or a divergence name with ``loss_kwargs``. The object
            is not changed by the callback.
        kd_weight: Weight of the distillation loss; when given, overrides the loss's default for this callback.
        kd_warmup_epochs: Ramp the weight linearly over this many epochs; when given, overrides the loss's.
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
        check_finite_steps: During the first this-many steps, check logits for NaN/Inf at once.

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
        kd_warmup_epochs: int | None = None,
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
        loss, weights = build_loss(loss, loss_kwargs, kd_weight=kd_weight, kd_warmup_epochs=kd_warmup_epochs)
        if loss.needs_views:
            raise ValueError(
                f"Expected a single-view divergence for the callback, but got {type(loss.divergence).__name__},"
                " which needs weak and strong views: use DistillationModule for it."
            )
        self.loss = loss
        # The module's own loss holds its cross-entropy: the callback adds the distillation term only.
        self.weights = weights.override(ce_weight=0.0)
        self.teacher_input = teacher_input
        self._teacher = FrozenTeacher(
            load_teacher(
                teacher,
                arch=teacher_arch,
                num_classes=num_classes,
                in_chans=in_chans,
                weights_only=teacher_weights_only,
            ),
            input_adapter=teacher_input,
            logits_key=logits_key,
        )
        self.student_attr = student_attr
        self.logits_key = logits_key
        self.get_input = get_input
        self.get_target = get_target
        self.check_finite_steps = check_non_negative_int("check_finite_steps", check_finite_steps)
        self._guard = NonFiniteGuard(("loss", "loss_kd", "student_logits", "teacher_logits"))
        self._step_logger = StepLogger(with_total=False)
        self._captured: list[tuple[Any, Any]] | None = None
        self._hook: Any = None
        self._original_step: Any = None
        self._module: pl.LightningModule | None = None

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher network."""
        return self._teacher.module

    @property
    @override
    def state_key(self) -> str:
        return "KnowledgeDistillation"

    # ----------------------------------------------------------------------------------------------------
    def _watched(self, pl_module: pl.LightningModule) -> nn.Module:
        if self.student_attr is None:
            return pl_module
        return pl_module.get_submodule(self.student_attr)

    @override
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

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The precision plugin converts the module's weights (bf16-true, 64-true, ...) and its inputs; the
        # teacher, outside the module, is converted the same way so it runs on the same inputs.
        trainer.strategy.precision_plugin.convert_module(self.teacher)
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
        self._guard.window = max(1, getattr(trainer, "log_every_n_steps", 0) or 50)
        self._guard.reset()
        self._step_logger.reset()
        self._module = pl_module
        self._hook = self._watched(pl_module).register_forward_hook(self._capture)
        self._original_step = pl_module.training_step
        callback = self

        def training_step(*args: Any, **kwargs: Any) -> Any:
            return callback._distill_step(pl_module, *args, **kwargs)

        # An instance attribute shadows the class's training_step for the duration of fit only (restored in
        # on_fit_end/teardown): Lightning backpropagates the loss training_step returns, and this is the one
        # place where the distillation term can join it without changes to the user's module. There is no
        # public hook between training_step and backward that may change the loss; tests/test_callback.py
        # fails loudly if an upgrade of Lightning stops calling the instance attribute.
        pl_module.training_step = training_step  # type: ignore[method-assign]

    def _restore(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._module is not None and self._original_step is not None:
            del self._module.training_step
        self._module, self._original_step = None, None

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._guard.check()
        self._step_logger.log_epoch(pl_module)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()
        self._guard.check()

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # A failed fit skips on_fit_end and teardown: leave the module as it was all the same.
        self._restore()

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.loss.set_epoch(trainer.current_epoch + 1)

    @override
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
        batch_idx = args[1] if len(args) > 1 else kwargs.get("batch_idx", 0)
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
        own_loss = result["loss"] if isinstance(result, dict) else result
        if not isinstance(own_loss, Tensor):
            raise ValueError(
                "Expected training_step to return a loss tensor or a dict with a 'loss' tensor,"
                f" but got {type(result).__name__}."
            )
        target = self._target(batch) if self.loss.needs_target else None
        trainer = pl_module.trainer
        out, student_logits, teacher_logits = self._distill(captured, batch, target, trainer)
        self._guard.record(
            [own_loss, out.kd, student_logits.detach().sum(), teacher_logits.sum()],
            step=trainer.global_step,
            batch_idx=int(batch_idx),
            epoch=trainer.current_epoch,
        )
        if self._step_logger.log_step(pl_module, out, student_logits, teacher_logits):
            self._guard.check()
            self.loss.observe(out)
        if isinstance(result, dict):
            return {**result, "loss": own_loss + out.kd}
        return own_loss + out.kd

    def _distill(
        self, captured: list[tuple[Any, Any]], batch: Any, target: Tensor | None, trainer: pl.Trainer
    ) -> tuple[DistillationOutput, Tensor, Tensor]:
        """The distillation term of every captured forward call, summed (the last call's output otherwise)."""
        kd_total: Tensor | None = None
        out: DistillationOutput | None = None
        student_logits = teacher_logits = torch.empty(0)
        for call_input, call_output in captured:
            x = self.get_input(batch) if self.get_input is not None else call_input
            if not isinstance(x, Tensor):
                x, _ = split_batch(batch)
                if not isinstance(x, Tensor):
                    raise ValueError("Expected the student's input to be a tensor: pass `get_input`.")
            student_logits = extract_logits(call_output, self.logits_key)
            teacher_logits = self._teacher.logits(x)
            if teacher_logits.shape[1] != student_logits.shape[1]:
                raise ValueError(
                    "Expected the teacher and the student to predict the same number of classes, but the teacher"
                    f" outputs {teacher_logits.shape[1]} and the student {student_logits.shape[1]}."
                )
            out = self.loss(
                student_logits,
                teacher_logits,
                target,
                weights=self.weights,
                kd_scale=self.weights.kd_scale(trainer.current_epoch + 1),
                check_finite=trainer.global_step < self.check_finite_steps,
            )
            kd_total = out.kd if kd_total is None else kd_total + out.kd
        assert out is not None and kd_total is not None
        return dataclasses.replace(out, kd=kd_total), student_logits, teacher_logits

    def teacher_logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for the student's input ``x`` (adapted by ``teacher_input``), no gradient."""
        return self._teacher.logits(x)

    def _target(self, batch: Any) -> Tensor:
        target = self.get_target(batch) if self.get_target is not None else split_batch(batch)[1]
        if target is None:
            raise ValueError(
                f"Expected batches with targets for {type(self.loss.divergence).__name__}, but the batch has none:"
                " pass `get_target`."
            )
        return target

    # ----------------------------------------------------------------------------------------------------
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss.state_dict()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss.load_state_dict(state_dict["loss"])
