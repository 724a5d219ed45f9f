"""Paired ablations: several students against one teacher forward, on the same batches, in one run.

:class:`AblationModule` trains the arms (:class:`Arm`) together; ``lightning-kd report`` summarises runs of it
over seeds with paired differences (:mod:`lightning_kd.report`).
"""

from lightning_kd.ablation.arm import Arm
from lightning_kd.ablation.module import AblationModule

__all__ = ["AblationModule", "Arm"]
