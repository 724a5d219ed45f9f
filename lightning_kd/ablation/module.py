"""AblationModule: several students (arms) against one frozen teacher, on the same batches, in one run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MaxMetric, MetricCollection
from typing_extensions import override

from lightning_kd._batch import split_batch
from lightning_kd._diagnostics import StepLogger
from lightning_kd._frozen import FrozenTeacher
from lightning_kd._validation import check_non_negative_int
from lightning_kd.ablation.arm import Arm, BuiltArm, build_arms
from lightning_kd.cache.binding import as_cache, batch_views, bind_for_fit
from lightning_kd.cache.store import TeacherLogitCache
from lightning_kd.classifier import _accuracy, compile_mode
from lightning_kd.export import check_finite, save_atomically
from lightning_kd.guard import NonFiniteError, NonFiniteGuard
from lightning_kd.module import teacher_accuracy, warn_if_teacher_changed
from lightning_kd.objective import DistillationLoss, DistillationOutput
from lightning_kd.teacher import TeacherInputAdapter, load_teacher, state_dict_sha256

__all__ = ["AblationModule"]


def _no_distillation(student_logits: Tensor, target: Tensor, ce_weight: float) -> DistillationOutput:
    """The baseline arm's objective: cross-entropy only."""
    ce = ce_weight * F.cross_entropy(student_logits.float(), target.long())
    return DistillationOutput(loss=ce, parts={"ce": ce}, kd=ce.new_zeros(()), temperature=None)


class AblationModule(pl.LightningModule):
    r"""Train several students (*arms*) against one frozen teacher on the same batches: a paired ablation.

    Each batch is loaded and augmented once and the teacher runs once on it; every arm computes its own
    objective and takes its own optimizer step on that batch. Arms with the same student architecture start from
    the same initial weights (``paired_init``), so their differences are the methods', not the seeds'. An arm's
    result is what it would be trained alone (as a :class:`~lightning_kd.DistillationModule` with the same data
    order, initial weights and optimizer): the arms share no parameter, and one backward pass over the sum of
    their losses gives each arm exactly its own gradients (the sum passes a gradient of 1 to each loss), which
    also keeps DDP's single gradient reduction per step.

    An arm that diverges (a NaN or Inf in its loss or logits, found by the same guard as the module's, without a
    host synchronisation per step: it reads its buffer every ``log_every_n_steps`` steps and at the end of every
    epoch) or raises is **stopped**: a warning names it, the step and what went wrong, its weights stay as they
    were when it was found (they may already hold the NaN), it takes no more optimizer steps (its parameters get zero
    gradients, so DDP still reduces every parameter) and it is left out of validation (``<arm>/val/*`` is no
    longer logged). The other arms go on; when none is left the run stops with an error. Stopped arms are
    recorded in checkpoints (``ablation_stopped``).

    Metrics: ``<arm>/train/loss``, ``<arm>/train/loss_kd``, ``<arm>/train/loss_ce`` (epoch means; step values on
    logging steps), the diagnostics of :mod:`lightning_kd._diagnostics` under ``<arm>/train/``,
    ``<arm>/train/acc1``, ``<arm>/val/acc1``, ``<arm>/val/acc5``, ``<arm>/val/acc1_best``, the teacher's
    ``val/teacher_acc1``, and ``val/acc1``, the mean over the arms (what the command line's best-epoch checkpoint
    monitors). :meth:`export_arm` writes one arm's student as a plain ``state_dict``.

    Args:
        teacher: An ``nn.Module`` (copied) or the path of a checkpoint (see :func:`lightning_kd.load_teacher`).
        arms: The arms (:class:`~lightning_kd.Arm`), with distinct names.
        num_classes: Class count (needed for students built by name).
        in_chans: Input channels, for students and teachers built by name.
        teacher_arch: The teacher's architecture when ``teacher`` is a weights-only file.
        teacher_kwargs: More arguments for ``create_model`` when building ``teacher_arch``.
        teacher_weights_only: Load the teacher file with ``torch.load(weights_only=True)``.
        teacher_input: Re-normalize/resize the students' input for the teacher.
        teacher_sha256: The expected identity of the teacher's weights (as for ``DistillationModule``).
        teacher_cache: A :class:`~lightning_kd.TeacherLogitCache` (or its folder), serving every arm (as for
            ``DistillationModule``).
        paired_init: Arms with the same architecture start from the same initial weights.
        logits_key: Where the logits are in the models' outputs.
        compile: ``torch.compile`` the students and the teacher (``True`` or a ``torch.compile`` mode).
        channels_last: Use the channels-last memory format for models and image batches.
        check_finite_steps: During the first this-many steps, check logits and targets at once.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_kd import Arm
        >>> module = AblationModule(nn.Linear(16, 4), [Arm("kd", nn.Linear(16, 4), "kd"),
        ...                                           Arm("kd_z", nn.Linear(16, 4), "kd_z")])
        >>> torch.equal(module.arms["kd"].weight, module.arms["kd_z"].weight)  # paired initial weights
        True
    """

    def __init__(
        self,
        teacher: str | nn.Module,
        arms: list[Arm],
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        teacher_arch: str | None = None,
        teacher_kwargs: dict[str, Any] | None = None,
        teacher_weights_only: bool = True,
        teacher_input: TeacherInputAdapter | None = None,
        teacher_sha256: str | None = None,
        teacher_cache: str | TeacherLogitCache | None = None,
        paired_init: bool = True,
        logits_key: str | int | None = None,
        compile: bool | str = False,
        channels_last: bool = False,
        check_finite_steps: int = 1,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.check_finite_steps = check_non_negative_int("check_finite_steps", check_finite_steps)
        built = build_arms(list(arms), num_classes=num_classes, in_chans=in_chans, paired_init=paired_init)
        teacher_module = load_teacher(
            teacher,
            arch=teacher_arch,
            num_classes=num_classes if teacher_arch else None,
            in_chans=in_chans,
            arch_kwargs=teacher_kwargs,
            weights_only=teacher_weights_only,
        )
        identity = state_dict_sha256(teacher_module)
        warn_if_teacher_changed(teacher_sha256, identity, teacher, what="`teacher_sha256` (e.g. a checkpoint's)")
        ignored = [k for k, v in {"teacher": teacher, "teacher_cache": teacher_cache}.items() if not isinstance(v, str)]
        self.save_hyperparameters(ignore=["arms", "teacher_input", *ignored])
        # Recorded whatever was given (see DistillationModule): the teacher in use, and the arms' names.
        self.save_hyperparameters({"teacher_sha256": identity, "arm_names": [arm.name for arm in built]})
        self._built = built
        self.arms = nn.ModuleDict({arm.name: arm.student for arm in built})
        self.losses = nn.ModuleDict({arm.name: arm.loss for arm in built if arm.loss is not None})
        self.teacher_input = teacher_input
        self._teacher = FrozenTeacher(teacher_module, input_adapter=teacher_input, logits_key=logits_key)
        self.logits_key = logits_key
        self.compile_mode = compile_mode(compile)
        self.channels_last = channels_last
        self.num_classes = num_classes or self._infer_classes()
        # Per arm; registered through the ModuleDicts (device moves, checkpoints), used through the typed dicts.
        self._train_acc = {a.name: _accuracy(self.num_classes, f"{a.name}/train/", per_step=True) for a in built}
        self._val_acc = {a.name: _accuracy(self.num_classes, f"{a.name}/val/") for a in built}
        self._val_best = {a.name: MaxMetric() for a in built}
        for best in self._val_best.values():
            best.persistent(True)
        self.train_metrics = nn.ModuleDict(self._train_acc)
        self.val_metrics = nn.ModuleDict(self._val_acc)
        self.val_best = nn.ModuleDict(self._val_best)
        self._loss_of: dict[str, DistillationLoss] = {a.name: a.loss for a in built if a.loss is not None}
        self.teacher_val_metrics: MetricCollection = _accuracy(self.num_classes, "val/teacher_")
        self._teacher_val_acc: dict[str, Tensor] | None = None
        self._loggers = {a.name: StepLogger(f"{a.name}/train/", total_through_lightning=False) for a in built}
        self._guards = {
            a.name: NonFiniteGuard((f"{a.name}: loss", f"{a.name}: student_logits"), window=50) for a in built
        }
        self._teacher_guard = NonFiniteGuard(("teacher_logits",), window=50)
        self.stopped: dict[str, str] = {}
        self._compiled: dict[str, Callable[[Tensor], Any]] = {}
        self._batches = 0
        self.teacher_cache = as_cache(teacher_cache)

    # ----------------------------------------------------------------------------------------------------
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher network."""
        return self._teacher.module

    def teacher_logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for the students' input ``x`` (adapted by ``teacher_input``), no gradient."""
        return self._teacher.logits(x)

    @property
    def arm_names(self) -> list[str]:
        """The arms' names, in order."""
        return [arm.name for arm in self._built]

    @property
    def active_arms(self) -> list[BuiltArm]:
        """The arms still training (not stopped)."""
        return [arm for arm in self._built if arm.name not in self.stopped]

    def _infer_classes(self) -> int:
        linears = [m for m in self._built[0].student.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("Could not infer the number of classes from the students: pass `num_classes`.")
        return linears[-1].out_features

    @override
    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> AblationModule:
        # As in DistillationModule: the teacher, outside the module tree, follows device and dtype moves here.
        super()._apply(fn, *args, **kwargs)
        self._teacher.apply(fn)
        return self

    def _student(self, name: str) -> Callable[[Tensor], Any]:
        compiled = self._compiled.get(name)  # not `or`: bool() of a module can call its __len__
        return compiled if compiled is not None else self.arms[name]

    def _logits(self, name: str, x: Tensor) -> Tensor:
        from lightning_kd._batch import extract_logits

        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return extract_logits(self._student(name)(x), self.logits_key)

    @override
    def setup(self, stage: str) -> None:
        if self.channels_last:
            for student in self.arms.values():
                student.to(memory_format=torch.channels_last)
            self._teacher.use_channels_last()
        if self.compile_mode is not None:
            self._teacher.compile(self.compile_mode)
            for name, student in self.arms.items():
                self._compiled.setdefault(name, torch.compile(student, mode=self.compile_mode))

    # ----------------------------------------------------------------------------------------------------
    # training
    @override
    def on_fit_start(self) -> None:
        self._teacher_val_acc = None
        self._batches = 0
        window = max(1, getattr(self.trainer, "log_every_n_steps", 0) or 50)
        for guard in (*self._guards.values(), self._teacher_guard):
            guard.window = window
            guard.reset()
        for logger in self._loggers.values():
            logger.reset()
        if self.teacher_cache is not None:
            bind_for_fit(
                self.teacher_cache,
                self.trainer,
                teacher_sha256=str(self.hparams["teacher_sha256"]),
                teacher_input=self.teacher_input,
                channels_last=self.channels_last,
                num_classes=self.num_classes,
            )

    @override
    def on_train_epoch_start(self) -> None:
        for loss in self._loss_of.values():
            loss.set_epoch(self.current_epoch + 1)

    def _arm_output(
        self,
        arm: BuiltArm,
        x: Tensor,
        x_strong: Tensor | None,
        teacher: Tensor,
        teacher_strong: Tensor | None,
        target: Tensor,
        check: bool,
    ) -> tuple[DistillationOutput, Tensor]:
        student_logits = self._logits(arm.name, x)
        if arm.loss is None:
            return _no_distillation(student_logits, target, arm.weights.ce_weight), student_logits
        strong: dict[str, Tensor] = {}
        if arm.loss.needs_views:
            if x_strong is None or teacher_strong is None:
                raise ValueError(
                    f"Expected batches of ((x_weak, x_strong), y) for arm {arm.name!r}"
                    f" ({type(arm.loss.divergence).__name__}), but got a single view. Use a DataModule with"
                    " `strong_aug=True`."
                )
            strong = {
                "student_logits_strong": self._logits(arm.name, x_strong),
                "teacher_logits_strong": teacher_strong,
            }
        out = arm.loss(
            student_logits,
            teacher,
            target,
            weights=arm.weights,
            kd_scale=arm.weights.kd_scale(self.current_epoch + 1),
            check_finite=check,
            **strong,
        )
        return out, student_logits

    @override
    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, target = split_batch(batch)
        if target is None:
            raise ValueError(
                "Expected (inputs, targets) batches for the ablation's arms, but the batch has no targets."
            )
        x_strong: Tensor | None = None
        if isinstance(x, tuple):  # arms with a single-view divergence train on the weak view (documented)
            x, x_strong = x
        if self.teacher_cache is not None and self.teacher_cache.is_bound:
            weak = x
            teacher = self.teacher_cache.teacher_logits(batch_views(batch), lambda: self._teacher.logits(weak))
        else:
            teacher = self._teacher.logits(x)
        needs_strong = any(a.loss is not None and a.loss.needs_views for a in self.active_arms)
        teacher_strong = self._teacher.logits(x_strong) if needs_strong and x_strong is not None else None
        # Steps of this module count batches: Lightning's global_step counts optimizer steps (one per arm).
        step, check = self._batches, self._batches < self.check_finite_steps
        self._batches += 1
        where = {"step": step, "batch_idx": batch_idx, "epoch": self.current_epoch}
        self._teacher_guard.record([teacher.sum()], **where)
        total: Tensor | None = None
        outputs: dict[str, DistillationOutput] = {}
        logging = False
        for arm in self._built:
            term: Tensor | None = None
            if arm.name not in self.stopped:
                try:
                    out, student_logits = self._arm_output(arm, x, x_strong, teacher, teacher_strong, target, check)
                except Exception as error:  # one arm's error stops that arm, not the run (see the class docstring)
                    self._stop(arm.name, f"{type(error).__name__}: {error}")
                else:
                    term = out.loss
                    try:  # the guard reads its buffer back when it is full
                        self._guards[arm.name].record([out.loss, student_logits.detach().sum()], **where)
                    except NonFiniteError as error:
                        self._stop(arm.name, str(error))
                    else:
                        outputs[arm.name] = out
                        logging = self._loggers[arm.name].log_step(self, out, student_logits, teacher) or logging
                        self._train_acc[arm.name].update(student_logits.detach(), target)
            if term is None:  # a stopped arm: zero gradients for its parameters, so DDP reduces every parameter
                term = torch.stack([(p * 0).sum() for p in self._arm_parameters(arm)]).sum()
            total = term if total is None else total + term
        if not outputs:
            raise NonFiniteError(f"Every arm of the ablation stopped: {self.stopped}.")
        optimizers = self._arm_optimizers()
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        assert total is not None
        self.manual_backward(total)
        for name in outputs:
            optimizers[name].step()
        if logging:
            self._check_guards()
            for name, out in outputs.items():
                if name in self._loss_of:
                    self._loss_of[name].observe(out)

    def _arm_parameters(self, arm: BuiltArm) -> list[nn.Parameter]:
        params = list(arm.student.parameters())
        if arm.loss is not None:
            params += list(arm.loss.parameters())
        return [p for p in params if p.requires_grad]

    def _stop(self, name: str, reason: str) -> None:
        if name in self.stopped:
            return
        self.stopped[name] = reason
        rank_zero_warn(
            f"Ablation arm {name!r} stopped at step {self._batches - 1}: {reason.rstrip('.')}. It takes no more"
            f" steps; the other arms ({', '.join(a.name for a in self.active_arms) or 'none'}) go on."
        )

    def _check_guards(self) -> None:
        self._teacher_guard.check()  # a non-finite teacher is everyone's problem: it stops the run
        for name, guard in self._guards.items():
            if name in self.stopped:
                continue
            try:
                guard.check()
            except NonFiniteError as error:
                self._stop(name, str(error))

    @override
    def on_train_epoch_end(self) -> None:
        self._check_guards()
        if self.teacher_cache is not None:
            self.teacher_cache.flush()
        for name, logger in self._loggers.items():
            if name not in self.stopped:
                logger.log_epoch(self)
                self.log_dict(self._train_acc[name].compute())
            self._train_acc[name].reset()
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()  # type: ignore[call-arg]

    @override
    def on_fit_end(self) -> None:
        self._check_guards()
        if self.stopped:
            rank_zero_warn(f"Stopped ablation arms: {self.stopped}")

    # ----------------------------------------------------------------------------------------------------
    # evaluation
    @override
    def on_validation_start(self) -> None:
        if self.trainer.state.fn != "fit":
            self._teacher_val_acc = None

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, target = split_batch(batch)
        if isinstance(x, tuple):
            x = x[0]
        if target is None:
            return
        for arm in self.active_arms:
            logits = self._logits(arm.name, x)
            self.log(f"{arm.name}/val/loss", F.cross_entropy(logits.float(), target), batch_size=x.shape[0])
            self._val_acc[arm.name].update(logits, target)
        if self._teacher_val_acc is None:
            self.teacher_val_metrics.update(self._teacher.logits(x), target)

    @override
    def on_validation_epoch_end(self) -> None:
        arm_acc1 = []
        for arm in self.active_arms:
            values = self._val_acc[arm.name].compute()
            self._val_acc[arm.name].reset()
            self.log_dict(values)
            arm_acc1.append(values[f"{arm.name}/val/acc1"])
            if not self.trainer.sanity_checking:
                best = self._val_best[arm.name]
                best.update(values[f"{arm.name}/val/acc1"])
                self.log(f"{arm.name}/val/acc1_best", best.compute())
        if arm_acc1:  # the arms' mean, for checkpoint selection (the command line's default monitor)
            self.log("val/acc1", torch.stack(arm_acc1).mean())
        teacher_values, self._teacher_val_acc = teacher_accuracy(
            self.teacher_val_metrics, self._teacher_val_acc, sanity_checking=self.trainer.sanity_checking
        )
        self.log_dict(teacher_values)

    # ----------------------------------------------------------------------------------------------------
    # optimizers
    @override
    def configure_optimizers(self) -> Any:
        configs = []
        for arm in self._built:
            params = self._arm_parameters(arm)
            if arm.optimizer is None:
                optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
            else:
                optimizer = arm.optimizer(params)
            config: dict[str, Any] = {"optimizer": optimizer}
            if arm.lr_scheduler is not None:  # stepped once per epoch in on_train_epoch_end (manual optimization)
                config["lr_scheduler"] = arm.lr_scheduler(optimizer)
            configs.append(config)
        return configs

    def _arm_optimizers(self) -> dict[str, Any]:
        optimizers = self.optimizers()
        listed = optimizers if isinstance(optimizers, list) else [optimizers]
        return dict(zip(self.arm_names, listed, strict=True))

    # ----------------------------------------------------------------------------------------------------
    # checkpoints and export
    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ablation_stopped"] = dict(self.stopped)

    @override
    def on_load_checkpoint(self, checkpoint: Mapping[str, Any]) -> None:
        self.stopped = dict(checkpoint.get("ablation_stopped", {}))

    def export_arm(self, name: str, path: str | Path) -> Path:
        """Write arm ``name``'s student as a plain ``state_dict`` (loads into the bare architecture with
        ``strict=True``), atomically; weights with a NaN or Inf are refused.

        Returns:
            The path written.
        """
        if name not in self.arms:
            from lightning_kd._validation import unknown_name_error

            raise unknown_name_error("name", name, self.arms.keys())
        state = {k: v.detach().cpu().contiguous() for k, v in self.arms[name].state_dict().items()}
        check_finite(state, path)
        return save_atomically(state, path)

    def export(self, path: str | Path) -> Path:
        """Write every arm's student next to ``path`` as ``<stem>-<arm><suffix>`` (``student.pt`` gives
        ``student-kd_z.pt``, ...); the CLI's export callback calls this at the end of fit. Stopped arms are not
        written.

        Returns:
            The folder written into.
        """
        path = Path(path)
        for arm in self.active_arms:
            self.export_arm(arm.name, path.with_name(f"{path.stem}-{arm.name}{path.suffix}"))
        return path.parent
