"""What a distillation step logs, and when: one implementation for the module, the callback and the arms.

Every step logs the losses (``on_step`` and ``on_epoch``, see :class:`StepLogger`). On Lightning's logging
steps only (``Trainer(log_every_n_steps)``, with its meaning of 0: never) the step also logs the diagnostics of
:func:`diagnostics`: the divergence's parts, logit statistics, the temperature, the agreement with the teacher.
Other steps compute none of them, so a step that does not log reads nothing back from the device (no host
synchronisation). The keys are listed in the docs' "Logged metrics" page, which a
test compares with what the code logs.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor

from lightning_kd.objective import DistillationOutput

__all__ = ["EpochMeans", "StepLogger", "diagnostics", "is_logging_step"]


def is_logging_step(trainer: pl.Trainer | None) -> bool:
    """Whether this training step's values reach the loggers, as Lightning decides it.

    Lightning keeps that decision private (``trainer._logger_connector.should_update_logs``); there is no public
    route, and re-deriving it from ``log_every_n_steps`` and ``global_step`` drifts from it (several optimizers,
    gradient accumulation, ``fast_dev_run``). ``tests/test_diagnostics.py`` fails loudly if an upgrade of
    Lightning removes it.
    """
    if trainer is None:
        return True
    return bool(trainer._logger_connector.should_update_logs or getattr(trainer, "fast_dev_run", False))


def diagnostics(
    out: DistillationOutput, student_logits: Tensor, teacher_logits: Tensor, *, prefix: str = "train/"
) -> dict[str, Tensor | float]:
    """The diagnostics of a logging step.

    Keys (after ``prefix``): ``loss_<part>`` for each part of a divergence with several parts (DKD's ``tckd``
    and ``nckd``, ...), ``student_logit_std``/``_mean`` and ``teacher_logit_std``/``_mean`` (the per-sample
    standard deviation over classes, batch mean; the mean logit), ``agreement`` (top-1 agreement of student and
    teacher), ``kd_scale`` (the warm-up factor), ``temperature`` (its batch mean) with ``temperature_min`` and
    ``temperature_max`` for per-sample temperatures, and the temperature policy's own values (CTKD's
    ``lambda``).

    Example:
        >>> import torch
        >>> from lightning_kd import DistillationLoss
        >>> s, t = torch.randn(4, 5), torch.randn(4, 5)
        >>> out = DistillationLoss("dkd", temperature=4.0)(s, t, torch.tensor([0, 1, 2, 3]))
        >>> sorted(diagnostics(out, s, t))  # doctest: +NORMALIZE_WHITESPACE
        ['train/agreement', 'train/kd_scale', 'train/loss_nckd', 'train/loss_tckd', 'train/student_logit_mean',
         'train/student_logit_std', 'train/teacher_logit_mean', 'train/teacher_logit_std', 'train/temperature']
    """
    s, t = student_logits.detach().float(), teacher_logits.detach().float()
    values: dict[str, Tensor | float] = {}
    divergence_parts = [name for name in out.parts if name != "ce"]
    if len(divergence_parts) > 1:
        values.update({f"{prefix}loss_{name}": out.parts[name].detach() for name in divergence_parts})
    values[f"{prefix}student_logit_std"] = s.std(dim=1).mean()
    values[f"{prefix}student_logit_mean"] = s.mean()
    values[f"{prefix}teacher_logit_std"] = t.std(dim=1).mean()
    values[f"{prefix}teacher_logit_mean"] = t.mean()
    values[f"{prefix}agreement"] = (s.argmax(1) == t.argmax(1)).float().mean()
    values[f"{prefix}kd_scale"] = float(out.kd_scale)
    temperature = out.temperature
    if isinstance(temperature, Tensor):
        temperature = temperature.float()
        values[f"{prefix}temperature"] = temperature.mean()
        if temperature.numel() > 1:
            values[f"{prefix}temperature_min"] = temperature.min()
            values[f"{prefix}temperature_max"] = temperature.max()
    elif temperature is not None:
        values[f"{prefix}temperature"] = float(temperature)
    values.update({f"{prefix}{name}": float(value) for name, value in out.extra.items()})
    return values


class EpochMeans:
    """Per-step scalars summed on the device; their step values logged on logging steps, their epoch means at the
    end of the epoch, in the layout of Lightning's ``on_step=True, on_epoch=True`` (``<key>_step`` and
    ``<key>_epoch`` for the loggers, ``<key>`` in ``trainer.callback_metrics``).

    Why not ``self.log`` for each of them every step: one ``self.log`` call costs more host time than the whole
    distillation math of a small model (Lightning moves its result object to the device on every call), and the
    step's overhead is what small-batch runs pay for.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._names: tuple[str, ...] = ()
        self._sums: Tensor | None = None
        self._count = 0

    def update(self, pl_module: pl.LightningModule, values: dict[str, Tensor], batch_size: int, logging: bool) -> None:
        """Add a step's values (weighted by the batch size); on a logging step, log them as ``<key>_step``."""
        names = tuple(values)
        row = torch.stack([v.detach().float() for v in values.values()])
        if self._sums is None or names != self._names:
            self._names, self._sums, self._count = names, torch.zeros_like(row), 0
        self._sums = self._sums + row * batch_size
        self._count += batch_size
        if logging:
            steps = {f"{self.prefix}{k}_step": v for k, v in values.items()}
            pl_module.log_dict(steps, on_step=True, on_epoch=False, batch_size=batch_size)

    def log_epoch(self, pl_module: pl.LightningModule) -> None:
        """Log the epoch means, and start the next epoch's sums."""
        if self._sums is None or self._count == 0:
            return
        means = self._sums / self._count
        for index, name in enumerate(self._names):
            key = f"{self.prefix}{name}"
            pl_module.log(f"{key}_epoch", means[index], on_step=False, on_epoch=True)
            pl_module.log(key, means[index], on_step=False, on_epoch=True, logger=False)
        self.reset()

    def reset(self) -> None:
        """Forget the sums (at the start of a fit and of every epoch)."""
        self._sums, self._count = None, 0


class StepLogger:
    """Logs one distillation objective's values: the losses of every step, the diagnostics of logging steps.

    ``loss`` goes through Lightning's ``self.log`` every step (``on_step`` and ``on_epoch``). The other losses
    (``loss_kd``, ``loss_ce``) are :class:`EpochMeans`: summed on the device every step, logged on logging steps
    and at the end of the epoch.

    Args:
        prefix: The key prefix (``"train/"``; an ablation arm's ``"<arm>/train/"``).
        with_total: Log ``loss`` (the callback does not: the module's own loss is the module's to log).
        total_through_lightning: Log ``loss`` with ``self.log`` every step; ``False`` sums it on the device like
            the others (for several objectives in one step, e.g. an ablation's arms).
    """

    def __init__(
        self, prefix: str = "train/", *, with_total: bool = True, total_through_lightning: bool = True
    ) -> None:
        self.prefix = prefix
        self.with_total = with_total
        self.total_through_lightning = total_through_lightning
        self._means = EpochMeans(prefix)

    def _accumulated(self, out: DistillationOutput) -> dict[str, Tensor]:
        values = {}
        if self.with_total and not self.total_through_lightning:
            values["loss"] = out.loss
        if any(name != "ce" for name in out.parts):  # (an ablation's baseline arm distills nothing)
            values["loss_kd"] = out.kd
        if self.with_total and "ce" in out.parts:
            values["loss_ce"] = out.parts["ce"]
        return values

    def log_step(
        self, pl_module: pl.LightningModule, out: DistillationOutput, student_logits: Tensor, teacher_logits: Tensor
    ) -> bool:
        """Log a step: ``loss`` every step, the sums on the device, and the rest on logging steps.

        Returns:
            Whether this was a logging step.
        """
        batch_size = student_logits.shape[0]
        if self.with_total and self.total_through_lightning:
            pl_module.log(f"{self.prefix}loss", out.loss, on_step=True, on_epoch=True, batch_size=batch_size)
        logging = is_logging_step(pl_module._trainer)
        self._means.update(pl_module, self._accumulated(out), batch_size, logging)
        if logging:
            values = diagnostics(out, student_logits, teacher_logits, prefix=self.prefix)
            pl_module.log_dict(values, on_step=True, on_epoch=False, batch_size=batch_size)
        return logging

    def log_epoch(self, pl_module: pl.LightningModule) -> None:
        """Log the epoch means of the summed losses, and start the next epoch's sums."""
        self._means.log_epoch(pl_module)

    def reset(self) -> None:
        """Forget the sums (at the start of a fit)."""
        self._means.reset()
