"""Checks that need a GPU: mixed precision ("16-mixed", "bf16-mixed"), torch.compile and channels-last on CUDA.

For each setting it distills a CIFAR-sized student from a BatchNorm teacher for a few steps and checks that
the loss parts are float32 and finite, the student changed, and the teacher's weights and BatchNorm buffers
are bitwise unchanged. Exits non-zero on the first failure::

    python benchmarks/gpu_smoke.py
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_kd import CurriculumTemperature, DistillationLoss, DistillationModule
from lightning_kd.models import create_model

SETTINGS = [
    {"precision": "16-mixed", "compile": False, "channels_last": False},
    {"precision": "bf16-mixed", "compile": False, "channels_last": True},
    {"precision": "bf16-mixed", "compile": True, "channels_last": True},
]


class PartDtypes(pl.Callback):
    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        assert isinstance(pl_module, DistillationModule)
        batch = args[1]
        with torch.no_grad(), trainer.precision_plugin.forward_context():  # the autocast of the training step
            out, *_ = pl_module.compute_loss(batch)
        self.dtypes |= {v.dtype for v in out.parts.values()}
        if not all(bool(torch.isfinite(v)) for v in out.parts.values()):
            raise RuntimeError(f"non-finite loss parts: {out.parts}")


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    x = torch.randn(256, 3, 32, 32)
    y = torch.randint(0, 100, (256,))
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    for setting in SETTINGS:
        teacher = create_model("resnet32x4", num_classes=100)
        before = {k: v.clone() for k, v in teacher.state_dict().items()}
        loss = DistillationLoss("dkd", preprocess="zscore", temperature=CurriculumTemperature(), kd_weight=9.0)
        module = DistillationModule(
            "resnet8x4",
            teacher,
            loss,
            num_classes=100,
            compile=setting["compile"],
            channels_last=setting["channels_last"],
        )
        student_before = {k: v.clone() for k, v in module.student.state_dict().items()}
        probe = PartDtypes()
        trainer = pl.Trainer(
            accelerator="gpu",
            devices=1,
            precision=setting["precision"],  # type: ignore[arg-type]
            max_epochs=2,
            callbacks=[probe],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module, loader, loader)
        teacher_same = all(torch.equal(before[k], v.cpu()) for k, v in teacher.state_dict().items())
        student_moved = any(not torch.equal(student_before[k], v.cpu()) for k, v in module.student.state_dict().items())
        ok = teacher_same and student_moved and probe.dtypes == {torch.float32} and not teacher.training
        print(
            f"{setting}: part dtypes {sorted(map(str, probe.dtypes))}, teacher unchanged {teacher_same},"
            f" student updated {student_moved}, val/acc1 {float(trainer.callback_metrics['val/acc1']):.3f},"
            f" T {float(trainer.callback_metrics['train/temperature']):.2f} -> {'OK' if ok else 'FAIL'}"
        )
        if not ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
