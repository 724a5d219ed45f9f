"""ClassifierModule: supervised training of one classifier (teachers, and students without a teacher).

:class:`~lightning_kd.DistillationModule` extends it with a frozen teacher and a distillation loss, so both
share the metrics, evaluation, optimizer wiring and export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from typing_extensions import override

from lightning_kd._batch import extract_logits, split_batch
from lightning_kd._diagnostics import EpochMeans, is_logging_step
from lightning_kd._metrics import TopKAccuracy
from lightning_kd._validation import unknown_name_error
from lightning_kd.export import check_finite, save_atomically
from lightning_kd.guard import NonFiniteGuard

__all__ = ["COMPILE_MODES", "ClassifierModule", "OptimizerFactory", "SchedulerFactory", "compile_mode"]

#: ``params -> optimizer``; in YAML ``{class_path: torch.optim.SGD, init_args: {lr: 0.05}}``.
OptimizerFactory = Callable[[Iterable], torch.optim.Optimizer]
#: ``optimizer -> scheduler``; in YAML ``{class_path: torch.optim.lr_scheduler.MultiStepLR, init_args: ...}``.
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


#: The ``torch.compile`` modes ``compile=`` accepts (``True`` is ``"default"``).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile: bool | str) -> str | None:
    """The ``torch.compile`` mode of a ``compile=`` argument, or ``None`` for no compilation.

    Example:
        >>> compile_mode(True), compile_mode(False), compile_mode("reduce-overhead")
        ('default', None, 'reduce-overhead')
    """
    if isinstance(compile, bool):
        return "default" if compile else None
    if compile not in COMPILE_MODES:
        raise unknown_name_error("compile", compile, COMPILE_MODES)
    return compile


def _infer_num_classes(model: nn.Module) -> int | None:
    value = getattr(model, "num_classes", None)
    if isinstance(value, int):
        return value
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _accuracy(num_classes: int, prefix: str, *, per_step: bool = False) -> MetricCollection:
    """Top-1 (and top-5 for 5+ classes) accuracy. ``per_step``: the training metrics, updated in every step with
    :class:`~lightning_kd._metrics.TopKAccuracy`, which reads nothing back from the device (torchmetrics'
    top-k update one-hot encodes the targets and checks them on the host)."""
    metrics: dict[str, Any]
    if per_step:
        metrics = {"acc1": TopKAccuracy(1)}
        if num_classes >= 5:
            metrics["acc5"] = TopKAccuracy(5)
        return MetricCollection(metrics, prefix=prefix)
    metrics = {"acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes >= 5:
        metrics["acc5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


def build_model(
    model: nn.Module | str, num_classes: int | None, in_chans: int, kwargs: dict[str, Any] | None
) -> nn.Module:
    """A model from a module or a registry name (which needs ``num_classes``)."""
    if isinstance(model, str):
        if num_classes is None:
            raise ValueError(
                f"Expected argument `num_classes` to be given with a model built by name ({model!r}), but got None."
            )
        from lightning_kd.models import create_model

        model = create_model(model, num_classes=num_classes, in_chans=in_chans, **(kwargs or {}))
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected an nn.Module or a model name, but got {type(model).__name__}.")
    return model


class ClassifierModule(pl.LightningModule):
    """Train a classifier with cross-entropy; log top-1/top-5 accuracy, the best validation top-1, export.

    Args:
        model: An ``nn.Module`` classifier or a name for :func:`lightning_kd.models.create_model`.
        num_classes: Class count; inferred from the model's last linear layer when omitted.
        in_chans: Input channels, for models built by name.
        model_kwargs: More arguments for ``create_model``.
        optimizer: A factory ``params -> Optimizer``; default SGD (lr 0.05, momentum 0.9, weight decay 5e-4),
            the CIFAR recipe of the KD literature.
        lr_scheduler: A factory ``optimizer -> LRScheduler``, stepped every epoch.
        logits_key: Where the logits are in the model's output (default: a tensor as is, the first item of a
            tuple, the ``"logits"`` entry of a dict).
        compile: ``torch.compile`` the model's forward: ``True`` (``"default"``) or a ``torch.compile`` mode,
            ``"reduce-overhead"`` (CUDA graphs), ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``. Use fixed
            batch shapes (the DataModules' ``drop_last=True``) so no recompilation follows the epoch's last batch.
        channels_last: Use the channels-last memory format for the model and image batches.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> module = ClassifierModule(nn.Linear(16, 4))
        >>> module(torch.randn(8, 16)).shape
        torch.Size([8, 4])
    """

    def __init__(
        self,
        model: str | nn.Module,  # str first: jsonargparse tries a union in order, and would read a
        # model name such as "MobileNetV2" as the class path of an unrelated class
        *,
        num_classes: int | None = None,
        in_chans: int = 3,
        model_kwargs: dict[str, Any] | None = None,
        optimizer: OptimizerFactory | None = None,
        lr_scheduler: SchedulerFactory | None = None,
        logits_key: str | int | None = None,
        compile: bool | str = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if type(self) is ClassifierModule:
            ignored = [] if isinstance(model, str) else ["model"]
            self.save_hyperparameters(ignore=[*ignored, "optimizer", "lr_scheduler"])
        self.model = build_model(model, num_classes, in_chans, model_kwargs)
        num_classes = num_classes or _infer_num_classes(self.model)
        if num_classes is None:
            raise ValueError("Could not infer the number of classes from the model: pass `num_classes`.")
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.logits_key = logits_key
        self.compile_mode = compile_mode(compile)
        self.channels_last = channels_last
        self._compiled: Callable[[Tensor], Any] | None = None
        self.train_metrics = _accuracy(num_classes, "train/", per_step=True)
        self.val_metrics = _accuracy(num_classes, "val/")
        self.test_metrics = _accuracy(num_classes, "test/")
        self.val_acc1_best = MaxMetric()
        self.val_acc1_best.persistent(True)  # in checkpoints, so "best" survives a resume
        self._guard = NonFiniteGuard(("loss",))  # the same NaN/Inf guard as the distillation modules'
        self._ce_means = EpochMeans("train/")

    @override
    def forward(self, x: Tensor) -> Tensor:
        """The model's logits."""
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        # not `or`: bool() of a compiled module raises
        network = self._compiled if self._compiled is not None else self.model
        return extract_logits(network(x), self.logits_key)

    @override
    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.compile_mode is not None and self._compiled is None:
            # Kept out of the module tree (not registered as a submodule): registered, the compiled wrapper
            # would put a second copy of the weights ("_compiled._orig_mod.*") into state_dict and checkpoints,
            # which then would not load into a module that is not compiled (yet), e.g. in load_from_checkpoint.
            self.__dict__["_compiled"] = torch.compile(self.model, mode=self.compile_mode)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, target = split_batch(batch)
        views = x if isinstance(x, tuple) else (x,)
        if target is None:
            raise ValueError(
                "Expected (inputs, targets) batches for supervised training, but the batch has no targets."
            )
        logits = [self(v) for v in views]
        loss = torch.stack([F.cross_entropy(lg.float(), target) for lg in logits]).sum()
        batch_size = target.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=batch_size)
        # the same value under the distillation modules' name (summed on the device: one self.log per step)
        self._ce_means.update(self, {"loss_ce": loss}, batch_size, is_logging_step(self._trainer))
        self._guard.record([loss], step=self.global_step, batch_idx=batch_idx, epoch=self.current_epoch)
        self.train_metrics.update(logits[0].detach(), target)
        return loss

    @override
    def on_fit_start(self) -> None:
        self._guard.window = max(1, getattr(self.trainer, "log_every_n_steps", 0) or 50)
        self._guard.reset()
        self._ce_means.reset()

    @override
    def on_fit_end(self) -> None:
        self._guard.check()

    @override
    def on_train_epoch_end(self) -> None:
        # Accuracy is accumulated by torchmetrics every step and logged once per epoch (DDP-synced in compute).
        self._guard.check()
        self._ce_means.log_epoch(self)
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def _evaluate(self, batch: Any, metrics: MetricCollection, stage: str) -> Tensor | None:
        x, target = split_batch(batch)
        if isinstance(x, tuple):
            x = x[0]
        logits = self(x)
        if target is None:
            return None
        self.log(f"{stage}/loss", F.cross_entropy(logits.float(), target), batch_size=x.shape[0])
        metrics.update(logits, target)
        return x

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    @override
    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, _ = split_batch(batch)
        return self(x[0] if isinstance(x, tuple) else x)

    @override
    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        if not self.trainer.sanity_checking:
            self.val_acc1_best.update(values["val/acc1"])
            self.log("val/acc1_best", self.val_acc1_best.compute())

    @override
    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer updates."""
        return [p for p in self.model.parameters() if p.requires_grad]

    @override
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                self.trainable_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4
            )
        else:
            optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def export(self, path: str | Path) -> Path:
        """Write the model's plain ``state_dict`` (loadable into the bare architecture with ``strict=True``).

        The tensors are written detached, on the CPU and contiguous, atomically
        (:func:`~lightning_kd.export.save_atomically`: a full disk or a killed process leaves the previous file
        intact), creating the parent folder if needed. Weights with a NaN or Inf are refused before anything is
        written.

        Returns:
            The path written.

        Raises:
            NonFiniteError: If a floating-point tensor of the state_dict holds a NaN or Inf (nothing is written).

        Example:
            >>> import tempfile
            >>> from torch import nn
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     path = ClassifierModule(nn.Linear(4, 3)).export(Path(folder) / "model.pt")
            ...     sorted(torch.load(path, weights_only=True))
            ['bias', 'weight']
        """
        state_dict = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        check_finite(state_dict, path)
        return save_atomically(state_dict, path)
