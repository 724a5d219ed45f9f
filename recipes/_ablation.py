"""The paired-ablation recipes: several methods as arms of one AblationModule run, one teacher forward per batch."""

from __future__ import annotations

from typing import Any

from _cifar import cifar_data
from _methods import cifar_preset, cls, cosine, loss_and_warmup, multistep, offline_preset, sgd
from _offline import OFFLINE, OfflineSetting
from _render import GPU_LINE, Recipe, cpu_time_lines, teacher_lines
from _tables import LS, TEACHER_ACC, TEACHER_SOURCE

from lightning_kd.presets import get_preset

#: The CIFAR-100 ablation's arms: the methods whose single-method recipes it gathers.
CIFAR_ARMS = ("kd", "kd_z", "dkd", "dkd_z", "ctkd_z", "maxlogit_z")
#: The offline ablations' arms (no MLKD: its strong view would change every arm's inputs).
OFFLINE_ARMS = ("kd", "kd_z", "dkd_z", "maxlogit_z")


def _arm(
    name: str, student: str, loss: dict[str, Any] | None, extra: dict[str, Any], optimizer: Any, scheduler: Any
) -> dict[str, Any]:
    arm: dict[str, Any] = {"name": name, "student": student, "loss": loss, **extra}
    arm.update(optimizer=optimizer, lr_scheduler=scheduler)
    return arm


def _how(recipe_id: str, root: str) -> list[str]:
    return [
        "One run:",
        f"  lightning-kd fit --config {recipe_id}",
        "One run per seed, then the paired report over the seeds:",
        f"  for seed in 0 1 2 3 4; do lightning-kd fit --config {recipe_id} --seed_everything $seed; done",
        f"  lightning-kd report {root} --reference kd",
        "Each arm logs <arm>/train/..., <arm>/val/acc1 and <arm>/val/acc1_best; the export writes student-<arm>.pt.",
    ]


def cifar_ablation_recipe(teacher: str = "resnet32x4", student: str = "resnet8x4") -> Recipe:
    """KD, KD+Z, DKD, DKD+Z, CTKD+Z and max-logit+Z with the settings of their single-method recipes."""
    path = f"cifar100/ablation/{teacher}_{student}.yaml"
    recipe_id = path.removesuffix(".yaml")
    arms = []
    for method in CIFAR_ARMS:
        preset, _ = cifar_preset(method, teacher, student)
        loss, extra = loss_and_warmup(preset)
        arms.append(_arm(method, student, loss, extra, sgd(0.05), multistep([150, 180, 210])))
    config = {
        "trainer": {"max_epochs": 240, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls(
            "lightning_kd.AblationModule",
            teacher=f"checkpoints/cifar100/{teacher}.pth",
            teacher_arch=teacher,
            num_classes=100,
            arms=arms,
        ),
        "data": cifar_data(),
    }
    header = [
        f"Paper: {LS} (the arms' settings: those of this pair's single-method recipes).",
        "A paired ablation: every arm trains on the same batches from the same initial weights, against one teacher",
        f"  forward per batch; arms {', '.join(CIFAR_ARMS)}.",
        "Schedule (every arm): SGD (momentum 0.9, weight decay 5e-4), batch 64, base LR 0.05, x0.1 at epochs",
        "  150/180/210, 240 epochs; DKD and DKD+Z warm their distillation weight up over 20 epochs.",
        "",
        *teacher_lines(recipe_id, TEACHER_ACC[teacher], TEACHER_SOURCE),
        f"Needs CIFAR-100 in data/cifar-100-python/ and the teacher at checkpoints/cifar100/{teacher}.pth.",
        *_how(recipe_id, f"runs/{recipe_id}"),
        GPU_LINE,
    ]
    description = f"Paired ablation on CIFAR-100: {teacher} -> {student}, arms {', '.join(CIFAR_ARMS)}"
    return Recipe(path=path, description=description, header=header, config=config)


def offline_ablation_recipe(setting: OfflineSetting) -> Recipe:
    """The baseline (no teacher) and KD, KD+Z, DKD+Z, max-logit+Z on an offline dataset."""
    ds, teacher, student, epochs = setting.dataset, setting.teacher, setting.student, setting.epochs
    path = f"{ds}/ablation/{teacher}_{student}.yaml"
    recipe_id = path.removesuffix(".yaml")
    arms = [_arm("baseline", student, None, {}, sgd(0.05), cosine(epochs))]
    for method in OFFLINE_ARMS:
        preset, _ = offline_preset(method)
        loss, extra = loss_and_warmup(preset)
        arms.append(_arm(method, student, loss, extra, sgd(0.05), cosine(epochs)))
    config = {
        "trainer": {"max_epochs": epochs, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls(
            "lightning_kd.AblationModule",
            teacher=f"checkpoints/{ds}/{teacher}.pt",
            teacher_arch=teacher,
            num_classes=10,
            in_chans=1,
            arms=arms,
        ),
        "data": setting.data,
    }
    header = [
        f"No published number: a small offline setting for demos and CPU runs. {setting.data_note}",
        "A paired ablation: every arm trains on the same batches from the same initial weights, against one teacher",
        f"  forward per batch; arms baseline (no teacher, cross-entropy only), {', '.join(OFFLINE_ARMS)}, with the",
        f"  settings of the {ds} single-method recipes ({get_preset('kd_z').display_name}: base T 2, CE 0.1, KD 9).",
        f"Schedule (every arm): SGD (momentum 0.9, weight decay 5e-4), LR 0.05 cosine-annealed over {epochs} epochs.",
        "",
        f"Needs the teacher at checkpoints/{ds}/{teacher}.pt: lightning-kd fit --config {ds}/teachers/{teacher}",
        *teacher_lines(recipe_id, None, ""),
        *_how(recipe_id, f"runs/{recipe_id}"),
        *cpu_time_lines(setting.cpu_times.get("ablation"), cpu_sized=True),
    ]
    description = f"Paired ablation on {setting.title}: {teacher} -> {student}, baseline and {', '.join(OFFLINE_ARMS)}"
    return Recipe(path=path, description=description, header=header, config=config)


def ablation_recipes() -> list[Recipe]:
    """Every ablation recipe."""
    return [cifar_ablation_recipe(), *(offline_ablation_recipe(setting) for setting in OFFLINE)]
