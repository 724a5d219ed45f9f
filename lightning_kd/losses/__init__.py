"""Logit distillation losses: pure functions in :mod:`.functional`, thin modules in :mod:`.modules`."""

from lightning_kd.losses.functional import dist, dkd, kd_kl, mlkd, ttm
from lightning_kd.losses.modules import DIST, DIVERGENCES, DKD, KD, MLKD, TTM, Divergence, create_divergence

__all__ = [
    "DIST",
    "DIVERGENCES",
    "DKD",
    "KD",
    "MLKD",
    "TTM",
    "Divergence",
    "create_divergence",
    "dist",
    "dkd",
    "kd_kl",
    "mlkd",
    "ttm",
]
