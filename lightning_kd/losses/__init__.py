"""Logit distillation losses: pure functions in :mod:`.functional`, thin modules in :mod:`.modules`, and
the contract between them and the objective in :mod:`.base`."""

from lightning_kd.losses.base import (
    DIVERGENCES,
    RESERVED_PART_NAMES,
    Divergence,
    DivergenceInputs,
    create_divergence,
    register_divergence,
)
from lightning_kd.losses.functional import dist, dkd, kd_kl, mlkd, ttm
from lightning_kd.losses.modules import DIST, DKD, KD, MLKD, TTM

__all__ = [
    "DIST",
    "DIVERGENCES",
    "DKD",
    "KD",
    "MLKD",
    "RESERVED_PART_NAMES",
    "TTM",
    "Divergence",
    "DivergenceInputs",
    "create_divergence",
    "dist",
    "dkd",
    "kd_kl",
    "mlkd",
    "register_divergence",
    "ttm",
]
