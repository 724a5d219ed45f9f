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

from lightning_kd._batch import extract_logits, split_batch

__all__ = ["ClassifierModule", "OptimizerFactory", "SchedulerFactory"]

#: ``params -> optimizer``; in YAML ``{class_path: torch.optim.SGD, init_args: {lr: 0.05}}``.
OptimizerFactory = Callable[[Iterable], torch.optim.Optimizer]
#: ``optimizer -> scheduler``; in YAML ``{class_path: torch.optim.lr_scheduler.MultiStepLR, init_args: ...}``.
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def _infer_num_classes(model: nn.Module) -> int | None:
    value = getattr(model, "num_classes", None)
    if isinstance(value, int):
        return value
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _accuracy(num_classes: int, prefix: str) -> MetricCollection:
    metrics: dict[str, Any] = {"acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
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
        compile: ``torch.compile`` the model's forward.
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
        compile: bool = False,
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
        self.compile_models = compile
        self.channels_last = channels_last
        self._compiled: Callable[[Tensor], Any] | None = None
        self.train_metrics = _accuracy(num_classes, "train/")
        self.val_metrics = _accuracy(num_classes, "val/")
        self.test_metrics = _accuracy(num_classes, "test/")
        self.val_acc1_best = MaxMetric()
        self.val_acc1_best.persistent(True)  # in checkpoints, so "best" survives a resume

    def forward(self, x: Tensor) -> Tensor:
        """The model's logits."""
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        # not `or`: bool() of a compiled module raises
        network = self._compiled if self._compiled is not None else self.model
        return extract_logits(network(x), self.logits_key)

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if self.compile_models and self._compiled is None:
            # Kept out of the module tree (not registered as a submodule): registered, the compiled wrapper
            # would put a second copy of the weights ("_compiled._orig_mod.*") into state_dict and checkpoints,
            # which then would not load into a module that is not compiled (yet), e.g. in load_from_checkpoint.
            self.__dict__["_compiled"] = torch.compile(self.model)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, target = split_batch(batch)
        views = x if isinstance(x, tuple) else (x,)
        if target is None:
            raise ValueError(
                "Expected (inputs, targets) batches for supervised training, but the batch has no targets."
            )
        logits = [self(v) for v in views]
        loss = torch.stack([F.cross_entropy(lg.float(), target) for lg in logits]).sum()
        self.log_dict(
            {"train/loss": loss, "train/loss_ce": loss}, on_step=True, on_epoch=True, batch_size=target.shape[0]
        )
        self.train_metrics.update(logits[0].detach(), target)
        return loss

    def on_train_epoch_end(self) -> None:
        # Accuracy is accumulated by torchmetrics every step and logged once per epoch (DDP-synced in compute).
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

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, _ = split_batch(batch)
        return self(x[0] if isinstance(x, tuple) else x)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        if not self.trainer.sanity_checking:
            self.val_acc1_best.update(values["val/acc1"])
            self.log("val/acc1_best", self.val_acc1_best.compute())

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer updates."""
        return [p for p in self.model.parameters() if p.requires_grad]

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

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}, path)
        return path
