"""Tiny models, data and Trainer settings shared by the Lightning-integration tests.

Everything here is importable at module level (``from tests.helpers import ...``), so it can also be
pickled into the worker processes of the ``ddp_spawn`` tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

NUM_CLASSES = 10
IMAGE = (1, 8, 8)  # the shape of a DigitsDataModule image


def mlp(seed: int = 0, num_classes: int = NUM_CLASSES, hidden: int = 32, in_features: int = 64) -> nn.Sequential:
    """A student without BatchNorm or dropout: Flatten -> Linear -> ReLU -> Linear."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def bn_teacher(seed: int = 1, num_classes: int = NUM_CLASSES, in_features: int = 64) -> nn.Sequential:
    """A teacher with BatchNorm whose running statistics are not the initial ones (so updates would show)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(in_features, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, num_classes)
    )
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, in_features) * 2 + 0.5)  # train mode: moves running_mean/var
    return model


def small_cnn(seed: int = 2, num_classes: int = NUM_CLASSES, in_chans: int = 1) -> nn.Sequential:
    """A two-convolution CNN with BatchNorm (no dropout)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_chans, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def random_dataset(n: int = 32, seed: int = 0, shape: tuple[int, ...] = IMAGE, classes: int = NUM_CLASSES) -> Any:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))


def loader(dataset: Any = None, batch_size: int = 16) -> DataLoader:
    """An unshuffled loader (deterministic order)."""
    return DataLoader(random_dataset() if dataset is None else dataset, batch_size=batch_size, shuffle=False)


def make_trainer(**kwargs: Any) -> pl.Trainer:
    """A quiet single-process CPU Trainer; keyword arguments override the defaults."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def clone_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def states_equal(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> bool:
    """Same keys and bitwise-equal tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def optimizer_param_ids(trainer: pl.Trainer) -> set[int]:
    return {id(p) for opt in trainer.optimizers for group in opt.param_groups for p in group["params"]}


def hand_kd(student_logits: Tensor, teacher_logits: Tensor, temperature: float | Tensor) -> Tensor:
    """Hinton KD written out: T^2 * mean_i sum_k p_t log(p_t / p_s), softened by T (float or (B, 1))."""
    p_t = torch.softmax(teacher_logits.double() / temperature, dim=1)
    log_p_s = torch.log_softmax(student_logits.double() / temperature, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(dim=1)
    t2 = torch.as_tensor(temperature, dtype=torch.float64).reshape(-1) ** 2
    return (t2 * kl).mean()


def hand_ce(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits.double(), target)


class LossRecorder(pl.Callback):
    """Records the loss training_step returned (after any callback changed it), per step."""

    def __init__(self) -> None:
        self.losses: list[Tensor] = []
        self.epochs: list[int] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self.losses.append(loss.detach().clone())
        self.epochs.append(trainer.current_epoch)


class RankReport(pl.Callback):
    """Writes, per rank, the step losses, the student's weights, the teacher's state and CTKD's theta.

    For multi-process runs: each process writes ``rank{r}.json`` and ``rank{r}.pt`` into ``out_dir``.
    """

    def __init__(self, out_dir: str, teacher_attr: str = "teacher") -> None:
        self.out_dir = out_dir
        self.teacher_attr = teacher_attr
        self.losses: list[float] = []
        self.thetas: list[float] = []

    def _theta(self, trainer: pl.Trainer, pl_module: Any) -> Tensor | None:
        owners = [pl_module, *trainer.callbacks]
        for owner in owners:
            loss = getattr(owner, "loss", None)
            if isinstance(loss, nn.Module) and hasattr(loss, "temperature") and hasattr(loss.temperature, "theta"):
                return loss.temperature.theta
        return None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        self.losses.append(float(loss.detach()))
        theta = self._theta(trainer, pl_module)
        if theta is not None:
            self.thetas.append(float(theta.detach()))

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        rank = trainer.global_rank
        holder = (
            pl_module
            if hasattr(pl_module, self.teacher_attr)
            else next(cb for cb in trainer.callbacks if hasattr(cb, self.teacher_attr))
        )
        teacher = getattr(holder, self.teacher_attr)
        theta = self._theta(trainer, pl_module)
        optimized = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
        info = {
            "rank": rank,
            "world_size": trainer.world_size,
            "losses": self.losses,
            "thetas": self.thetas,
            "teacher_training": teacher.training,
            "teacher_requires_grad": any(p.requires_grad for p in teacher.parameters()),
            "teacher_in_optimizer": any(id(p) in optimized for p in teacher.parameters()),
        }
        Path(self.out_dir, f"rank{rank}.json").write_text(json.dumps(info))
        torch.save(
            {
                "module": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()},
                "teacher": {k: v.detach().cpu() for k, v in teacher.state_dict().items()},
                "theta": None if theta is None else theta.detach().cpu().clone(),
            },
            Path(self.out_dir, f"rank{rank}.pt"),
        )


def read_rank_reports(out_dir: Path, world_size: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [
        (json.loads((out_dir / f"rank{r}.json").read_text()), torch.load(out_dir / f"rank{r}.pt"))
        for r in range(world_size)
    ]


def hand_dkd(
    student_logits: Tensor, teacher_logits: Tensor, target: Tensor, alpha: float, beta: float, temperature: float
) -> Tensor:
    """Decoupled KD written out: alpha * TCKD + beta * NCKD, each KL(teacher || student) * T^2, batch mean."""
    s, t = student_logits.double() / temperature, teacher_logits.double() / temperature
    gt = F.one_hot(target, s.shape[1]).bool()
    p_s, p_t = s.softmax(1), t.softmax(1)
    b_s = torch.stack([p_s[gt], p_s.masked_fill(gt, 0).sum(1)], dim=1)  # (target, all others) probabilities
    b_t = torch.stack([p_t[gt], p_t.masked_fill(gt, 0).sum(1)], dim=1)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1).mean()
    rows = s.shape[0]
    q_s = s[~gt].view(rows, -1).log_softmax(1)  # distributions over the non-target classes only
    q_t = t[~gt].view(rows, -1).log_softmax(1)
    nckd = (q_t.exp() * (q_t - q_s)).sum(1).mean()
    return (alpha * tckd + beta * nckd) * temperature**2


class LitClassifier(pl.LightningModule):
    """An ordinary LightningModule (cross-entropy, SGD without momentum) for the callback tests."""

    def __init__(self, seed: int = 0, lr: float = 0.5) -> None:
        super().__init__()
        self.net = mlp(seed)
        self.lr = lr

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class ShardedData(pl.LightningDataModule):
    """Loaders whose global batches are the same for any number of processes, in order (no shuffling).

    Rank ``r`` of ``w`` takes samples ``r, r + w, r + 2w, ...`` in batches of ``global_batch // w``, so step ``k``
    sees samples ``k * global_batch ... (k + 1) * global_batch - 1`` over all ranks, as one process does. Use it
    with ``Trainer(use_distributed_sampler=False)`` (Lightning's own sampler shuffles training data).
    """

    def __init__(self, train: Any, val: Any = None, global_batch: int = 16) -> None:
        super().__init__()
        self.train, self.val, self.global_batch = train, val, global_batch

    def _loader(self, dataset: Any) -> DataLoader:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
        return DataLoader(dataset, batch_size=self.global_batch // world, sampler=sampler, shuffle=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val)
