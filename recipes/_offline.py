"""The small offline settings (Fashion-MNIST, scikit-learn's digits): no published numbers, CPU-sized runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from _methods import cls, cosine, loss_and_warmup, offline_preset, sgd
from _render import Recipe, cpu_time_lines, teacher_lines
from _tables import METHOD_TITLES


@dataclass(frozen=True)
class OfflineSetting:
    """One offline dataset: its DataModule, teacher, student, epochs and measured run times."""

    dataset: str
    title: str
    data: dict[str, Any]
    teacher: str
    student: str
    epochs: int
    data_note: str
    #: Run time on a 2-core CPU by recipe folder ("teachers" or a method), where it was measured.
    cpu_times: dict[str, str] = field(default_factory=dict)
    #: Methods without a recipe here (e.g. MLKD where the DataModule has no strong view).
    skip: tuple[str, ...] = ()


OFFLINE_METHODS = ["kd", "kd_z", "dkd_z", "maxlogit_z", "mlkd_z"]

# Measured on the project's 2-core CPU machine with one CPU thread (OMP_NUM_THREADS=1): the CPU time of epochs 2
# and 3 of a 3-epoch run of each recipe (`--trainer.max_epochs=3`), averaged; a run is that times its 40 epochs,
# plus a few seconds of start-up. The wall time of runs with two threads was not reproducible on that shared
# machine (12-68 s per epoch), so it is not used.
DIGITS_EPOCH_S = {
    "teachers": 14.5,
    "kd": 9.5,
    "kd_z": 9.0,
    "dkd_z": 10.1,
    "maxlogit_z": 10.7,
    "mlkd_z": 20.5,
    "ablation": 27.3,
}


def _minutes(seconds_per_epoch: float, epochs: int) -> str:
    total = seconds_per_epoch * epochs
    per_epoch = f"{seconds_per_epoch:.1f} s per epoch, measured with one thread, x {epochs} epochs"
    if total < 90:
        return f"about {round(total / 10) * 10:.0f} s ({per_epoch})"
    return f"about {total / 60:.0f} min ({per_epoch})"


OFFLINE = [
    OfflineSetting(
        dataset="fashion_mnist",
        title="Fashion-MNIST",
        data=cls("lightning_kd.data.FashionMNISTDataModule", batch_size=128),
        teacher="resnet32",
        student="resnet8",
        epochs=20,
        data_note=(
            "Data: the four Fashion-MNIST .gz files in /usr/share/datasets/fashion-mnist (Debian package"
            " dataset-fashion-mnist), or --data.init_args.root=DIR."
        ),
        skip=("mlkd_z",),  # FashionMNISTDataModule has no strong view
    ),
    OfflineSetting(
        dataset="digits",
        title="scikit-learn digits",
        data=cls("lightning_kd.data.DigitsDataModule", batch_size=64, image_size=32),
        teacher="resnet20",
        student="resnet8",
        epochs=40,
        data_note="Data: scikit-learn's bundled 8x8 digits, upsampled to 32x32 for the CIFAR networks (offline).",
        cpu_times={k: _minutes(v, 40) for k, v in DIGITS_EPOCH_S.items() if v},
    ),
]


def _order(setting: OfflineSetting) -> list[str]:
    ds, teacher, student = setting.dataset, setting.teacher, setting.student
    return [
        f"Two steps: (1) train the teacher, which writes checkpoints/{ds}/{teacher}.pt:",
        f"  lightning-kd fit --config {ds}/teachers/{teacher}",
        f"(2) distill it into the student with any recipe of {ds}/<method>/, e.g.",
        f"  lightning-kd fit --config {ds}/kd_z/{teacher}_{student}",
    ]


def _teacher_recipe(setting: OfflineSetting, schedule: str) -> Recipe:
    ds, teacher, epochs = setting.dataset, setting.teacher, setting.epochs
    teacher_file = f"checkpoints/{ds}/{teacher}.pt"
    path = f"{ds}/teachers/{teacher}.yaml"
    return Recipe(
        path=path,
        description=f"Teacher on {setting.title}: {teacher} (step 1 of the {ds} recipes)",
        header=[
            f"No published number: a small offline setting for demos and CPU runs. {setting.data_note}",
            f"Schedule: {schedule} Cross-entropy only, single-channel input (in_chans 1).",
            "",
            *_order(setting),
            f"The teacher is exported (plain state_dict) to {teacher_file}, replacing an earlier one.",
            *cpu_time_lines(setting.cpu_times.get("teachers"), cpu_sized=True),
        ],
        config={
            "trainer": {"max_epochs": epochs, "default_root_dir": f"runs/{path.removesuffix('.yaml')}"},
            "model": cls(
                "lightning_kd.ClassifierModule",
                model=teacher,
                num_classes=10,
                in_chans=1,
                optimizer=sgd(0.05),
                lr_scheduler=cosine(epochs),
            ),
            "data": setting.data,
            "export": {"filename": f"{teacher}.pt", "dirpath": f"checkpoints/{ds}"},
        },
    )


def _distillation_recipe(setting: OfflineSetting, method: str, schedule: str) -> Recipe:
    ds, teacher, student, epochs = setting.dataset, setting.teacher, setting.student, setting.epochs
    preset, line = offline_preset(method)
    loss, extra = loss_and_warmup(preset)
    data = setting.data
    if preset.needs_views:
        data = {"class_path": data["class_path"], "init_args": {**data["init_args"], "strong_aug": True}}
    path = f"{ds}/{method}/{teacher}_{student}.yaml"
    recipe_id = path.removesuffix(".yaml")
    return Recipe(
        path=path,
        description=f"{METHOD_TITLES[method].split(' (')[0]} on {setting.title}: {teacher} -> {student}",
        header=[
            f"No published number: a small offline setting for demos and CPU runs. {setting.data_note}",
            f"Schedule: {schedule}",
            line,
            "",
            "No published teacher accuracy: step (1) trains the teacher, and check-teacher shows what it reaches.",
            *teacher_lines(recipe_id, None, ""),
            *_order(setting),
            "This recipe (step 2, after step 1):",
            f"  lightning-kd fit --config {recipe_id}",
            *cpu_time_lines(setting.cpu_times.get(method), cpu_sized=True),
        ],
        config={
            "trainer": {"max_epochs": epochs, "default_root_dir": f"runs/{recipe_id}"},
            "model": cls(
                "lightning_kd.DistillationModule",
                student=student,
                teacher=f"checkpoints/{ds}/{teacher}.pt",
                teacher_arch=teacher,
                num_classes=10,
                in_chans=1,
                loss=loss,
                **extra,
                optimizer=sgd(0.05),
                lr_scheduler=cosine(epochs),
            ),
            "data": data,
        },
    )


def offline_recipes(setting: OfflineSetting) -> list[Recipe]:
    """The teacher recipe and the distillation recipes of one offline setting."""
    schedule = f"SGD (momentum 0.9, weight decay 5e-4), LR 0.05 cosine-annealed over {setting.epochs} epochs."
    recipes = [_teacher_recipe(setting, schedule)]
    recipes += [_distillation_recipe(setting, m, schedule) for m in OFFLINE_METHODS if m not in setting.skip]
    return recipes
