"""Vision-transformer students on CIFAR-100, as [LS]'s tiny-transformers code trains them (224 px, timm)."""

from __future__ import annotations

from typing import Any

from _methods import cls, fmt, loss_and_warmup
from _render import Recipe, cpu_time_lines, teacher_lines
from _tables import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LS,
    TEACHER_ACC,
    TEACHER_SOURCE,
    VIT_EPOCHS,
    VIT_NOT_IN_TIMM,
    VIT_STUDENTS,
    VIT_WARMUP_EPOCHS,
)

from lightning_kd.presets import get_preset

TEACHER = "resnet56"
VIT_BATCH = 128
DATA = "lightning_kd.data.cifar_vit.CIFAR100ViTDataModule"


def _optimizer() -> dict[str, Any]:
    return cls("torch.optim.AdamW", lr=5e-4, weight_decay=0.05)


def _scheduler() -> dict[str, Any]:
    return cls(
        "lightning_kd.schedulers.WarmupCosineLR",
        warmup_epochs=VIT_WARMUP_EPOCHS,
        max_epochs=VIT_EPOCHS,
        warmup_start_factor=0.001,
        eta_min=5e-6,
    )


def _common(display: str) -> list[str]:
    missing = ", ".join(
        f"{name} ({alone:.2f} alone, {kd_z:.2f} with KD+Z)" for name, (alone, kd_z) in VIT_NOT_IN_TIMM.items()
    )
    return [
        f"Student: timm's {display} at 224 px (16x16 patches), drop path 0.1, trained from scratch. Data: CIFAR-100",
        "  through timm's create_transform as in [LS]'s tiny-transformers/pycls/datasets/transforms.py:",
        "  RandomResizedCrop 224 (bicubic), flip, RandAugment rand-m9-mstd0.5-inc1, colour jitter 0.4 (inactive",
        "  with RandAugment, in timm as in the released code), random erasing 0.25 (pixel mode); the test images",
        "  resized to 224; both normalized with timm's ImageNet mean/std, as there.",
        f"Schedule: AdamW (LR 5e-4, weight decay 0.05), batch {VIT_BATCH}, {VIT_EPOCHS} epochs: a linear warm-up from",
        f"  0.001 x LR over {VIT_WARMUP_EPOCHS} epochs, then a cosine to 5e-6 over the remaining"
        f" {VIT_EPOCHS - VIT_WARMUP_EPOCHS} (WarmupCosineLR).",
        "  The released code uses timm's CosineLRScheduler, whose cosine counts from epoch 0 (at epoch 20 it is at",
        "  0.989 x LR, not 1), and no weight decay on biases, norms and position/class tokens; here AdamW decays",
        "  every parameter. Its models are pycls re-implementations with the architecture of timm's.",
        f"Not here: {missing} of [LS]'s table, as timm has no PVT v1 (only PVT v2) and no T2T-ViT.",
    ]


def _data() -> dict[str, Any]:
    return cls(DATA, root="data", batch_size=VIT_BATCH, num_workers=4)


def kd_z_recipe(name: str) -> Recipe:
    model, display, alone, reported, temperature, weight, where = VIT_STUDENTS[name]
    path = f"vit/kd_z/{TEACHER}_{name}.yaml"
    recipe_id = path.removesuffix(".yaml")
    preset = get_preset("kd_z").replace(temperature=temperature, ce_weight=0.5, kd_weight=weight)
    loss, extra = loss_and_warmup(preset)
    adapter = cls(
        "lightning_kd.TeacherInputAdapter",
        student_mean=list(IMAGENET_MEAN),
        student_std=list(IMAGENET_STD),
        teacher_mean=list(CIFAR100_MEAN),
        teacher_std=list(CIFAR100_STD),
        size=32,
    )
    header = [
        f"Paper: {LS} (supplement: vision transformers).",
        f"Reported top-1: {reported:.2f} ([LS] tiny-transformers README; {display} alone {alone:.2f}).",
        *_common(display),
        f"KD+Z: Z-score, base temperature {fmt(temperature)}, KD weight {fmt(weight)} ({where}), CE weight 0.5",
        "  (the latest released pycls/core/trainer.py halves the cross-entropy; an earlier one weighted it by",
        "  1 - LOGIT_WEIGHT = 0. The DeiT and PiT logs start at cls_loss 2.30 and 2.40, about ln(100) / 2).",
        "Teacher: the CIFAR-100 ResNet-56 at 32 px, fed the student's images re-normalized to CIFAR-100's statistics",
        "  and resized back to 32 px (bilinear: TeacherInputAdapter). The released code trains its own pycls ResNet-56",
        "  (configs/resnet/r-56_c100.yaml) with the ImageNet statistics; here it is the shared checkpoint.",
        "",
        *teacher_lines(recipe_id, TEACHER_ACC[TEACHER], TEACHER_SOURCE + ", at 32 px"),
        f"Needs CIFAR-100 in data/cifar-100-python/ and the ResNet-56 teacher at checkpoints/cifar100/{TEACHER}.pth",
        f"(or train it with the recipe cifar100/teachers/{TEACHER}). Run:",
        f"  lightning-kd fit --config {recipe_id}",
        *cpu_time_lines(None),
    ]
    config = {
        "trainer": {"max_epochs": VIT_EPOCHS, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls(
            "lightning_kd.DistillationModule",
            student=model,
            teacher=f"checkpoints/cifar100/{TEACHER}.pth",
            teacher_arch=TEACHER,
            num_classes=100,
            student_kwargs={"drop_path_rate": 0.1},
            teacher_input=adapter,
            loss=loss,
            **extra,
            optimizer=_optimizer(),
            lr_scheduler=_scheduler(),
        ),
        "data": _data(),
    }
    description = f"KD+Z on CIFAR-100: {TEACHER} -> {display} (timm, 224 px) (reported top-1 {reported:.2f})"
    return Recipe(path=path, description=description, header=header, config=config)


def scratch_recipe(name: str) -> Recipe:
    model, display, alone, _, _, _, _ = VIT_STUDENTS[name]
    path = f"vit/scratch/{name}.yaml"
    recipe_id = path.removesuffix(".yaml")
    header = [
        f"Paper: {LS} (supplement: vision transformers).",
        f"Reported top-1: {alone:.2f} for {display} trained alone ([LS] tiny-transformers README).",
        *_common(display),
        "Cross-entropy only: the no-teacher baseline of the KD+Z recipe.",
        "",
        f"Run: lightning-kd fit --config {recipe_id}",
        *cpu_time_lines(None),
    ]
    config = {
        "trainer": {"max_epochs": VIT_EPOCHS, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls(
            "lightning_kd.ClassifierModule",
            model=model,
            num_classes=100,
            model_kwargs={"drop_path_rate": 0.1},
            optimizer=_optimizer(),
            lr_scheduler=_scheduler(),
        ),
        "data": _data(),
    }
    description = f"{display} trained alone on CIFAR-100 (timm, 224 px): the baseline of KD+Z"
    return Recipe(path=path, description=description, header=header, config=config)


def vit_recipes() -> list[Recipe]:
    """A KD+Z recipe and its no-teacher baseline for each student of :data:`VIT_STUDENTS`."""
    return [recipe for name in VIT_STUDENTS for recipe in (kd_z_recipe(name), scratch_recipe(name))]
