"""The CIFAR-100 recipes ([LS] Tables 1-2 and the shared teachers) and the ImageNet ones ([LS] Table 3)."""

from __future__ import annotations

from typing import Any

from _methods import cifar_preset, cls, fmt, imagenet_preset, loss_and_warmup, multistep, sgd
from _render import Recipe, cpu_time_lines, teacher_lines
from _tables import (
    AT,
    AT_REPORTED,
    DIST_PAPER,
    DIST_README,
    IMAGENET_PAIRS,
    LS,
    LS_REPORTED,
    METHOD_TITLES,
    MLKD_SCHEDULES,
    MOBILE,
    PAIRS,
    SGD_CIFAR,
    STUDENT_ACC,
    TABLE1,
    TEACHER_ACC,
    TEACHER_SOURCE,
    TTM_PAPER,
    TTM_README,
)

#: Suffix of the 240-epoch MLKD variants' file names (the "same-schedule" comparison).
SAME_SCHEDULE = "same_schedule"


def _short(method: str) -> str:
    return METHOD_TITLES[method].split(" (")[0]


def cifar_data(*, batch_size: int = 64, strong_aug: bool = False, strong_view: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"root": "data", "batch_size": batch_size, "num_workers": 4}
    if strong_aug:
        args["strong_aug"] = True
    if strong_view is not None:
        args["strong_view"] = strong_view
    return cls("lightning_kd.data.CIFAR100DataModule", **args)


def _schedule(method: str, teacher: str, student: str, *, same_schedule: bool = False) -> tuple[float, int, str]:
    """(learning rate, epochs, description) of a CIFAR-100 run."""
    if method.startswith("mlkd") and not same_schedule:
        if (teacher, student) == ("wrn_40_2", "MobileNetV2"):
            lr = 0.005
        elif student in MOBILE or student == "vgg8":
            lr = 0.01
        else:
            lr = 0.025
        epochs = 960 if (teacher, student) == ("resnet32x4", "ShuffleV2") else 480
        return lr, epochs, f"{SGD_CIFAR}, base LR {fmt(lr)}, {epochs} epochs (MLKD's schedule, [LS]/[ML] configs)."
    lr = 0.01 if student in MOBILE else 0.05
    return lr, 240, f"{SGD_CIFAR}, base LR {fmt(lr)}, 240 epochs."


def _reported(method: str, teacher: str, student: str) -> str:
    pair = (teacher, student)
    table = "Table 1" if pair in TABLE1 else "Table 2"
    if method in LS_REPORTED:
        value = LS_REPORTED[method][PAIRS.index(pair)]
        return (
            f"Reported top-1: {value:.2f} ([LS] {table}; teacher {TEACHER_ACC[teacher]:.2f},"
            f" student alone {STUDENT_ACC[student]:.2f})."
        )
    if method == "maxlogit_z":
        number, where = AT_REPORTED[pair].removesuffix(")").split(" (", 1)
        return f"Reported top-1: {number} ([AT] {where}; zKD+Ours, one run)."
    if method == "dist" and pair in DIST_README:
        return f"Reported top-1: {DIST_README[pair]} ([DIST] README, CIFAR-100 table)."
    if method in ("dist", "ttm", "wttm") and pair in TTM_README:
        value = TTM_README[pair][{"dist": 0, "ttm": 1, "wttm": 2}[method]]
        note = "; DIST partly re-implemented there" if method == "dist" else ""
        return f"Reported top-1: {value:.2f} ([TTM] README table, mean of 5 runs{note})."
    return "Reported top-1: not reported for this pair."


def _description(title: str, teacher: str, student: str, reported: str) -> str:
    description = f"{title} on CIFAR-100: {teacher} -> {student}"
    short = reported.removeprefix("Reported top-1: ").split(" (")[0]
    return description + (f" (reported top-1 {short})" if short[0].isdigit() else "")


def _needs_and_run(recipe_id: str, teacher: str) -> list[str]:
    return [
        f"Needs CIFAR-100 in data/cifar-100-python/ and the teacher at checkpoints/cifar100/{teacher}.pth (the",
        'shared CIFAR-100 teacher format, weights under "model"; or train it with the recipe',
        f"cifar100/teachers/{teacher}). Run from the directory holding data/ and checkpoints/:",
        f"  lightning-kd fit --config {recipe_id}",
        "Elsewhere: add --model.init_args.teacher=PATH/TO/TEACHER.pth --data.init_args.root=DATA_DIR.",
        *cpu_time_lines(None),
    ]


def _distillation_config(
    method: str, teacher: str, student: str, recipe_id: str, *, same_schedule: bool
) -> tuple[dict[str, Any], list[str], str]:
    preset, method_lines = cifar_preset(method, teacher, student)
    loss, extra = loss_and_warmup(preset)
    lr, epochs, schedule = _schedule(method, teacher, student, same_schedule=same_schedule)
    mlkd = method.startswith("mlkd")
    model_args: dict[str, Any] = {
        "student": student,
        "teacher": f"checkpoints/cifar100/{teacher}.pth",
        "teacher_arch": teacher,
        "num_classes": 100,
        "loss": loss,
        **extra,
        "optimizer": sgd(lr),
        "lr_scheduler": multistep([150, 180, 210]),
    }
    data = cifar_data(strong_aug=mlkd, strong_view="standard" if same_schedule else None)
    config = {
        "trainer": {"max_epochs": epochs, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls("lightning_kd.DistillationModule", **model_args),
        "data": data,
    }
    return config, method_lines, schedule


def cifar_recipe(method: str, teacher: str, student: str) -> Recipe:
    path = f"cifar100/{method}/{teacher}_{student}.yaml"
    recipe_id = path.removesuffix(".yaml")
    config, method_lines, schedule = _distillation_config(method, teacher, student, recipe_id, same_schedule=False)
    reported = _reported(method, teacher, student)
    paper = {"maxlogit_z": AT, "dist": DIST_PAPER, "ttm": TTM_PAPER, "wttm": TTM_PAPER}.get(method, LS)
    header = [
        f"Paper: {paper}.",
        reported,
        f"Schedule: {schedule}",
        *(MLKD_SCHEDULES if method.startswith("mlkd") else []),
        *method_lines,
        "",
        *teacher_lines(recipe_id, TEACHER_ACC[teacher], TEACHER_SOURCE),
        *_needs_and_run(recipe_id, teacher),
    ]
    description = _description(_short(method), teacher, student, reported)
    return Recipe(path=path, description=description, header=header, config=config)


def mlkd_same_schedule_recipe(method: str, teacher: str, student: str) -> Recipe:
    """The 240-epoch MLKD(+Z) variant: the other methods' schedule and only standard crop/flip views."""
    path = f"cifar100/{method}/{teacher}_{student}_{SAME_SCHEDULE}.yaml"
    recipe_id = path.removesuffix(".yaml")
    config, method_lines, schedule = _distillation_config(method, teacher, student, recipe_id, same_schedule=True)
    header = [
        f"Paper: {LS}.",
        "Reported top-1: not reported for this setting (the published MLKD numbers use the 480-epoch recipe",
        f"  cifar100/{method}/{teacher}_{student} with strong augmentation).",
        "The same-schedule comparison: the schedule and augmentation of this pair's KD, DKD and CTKD recipes, so",
        "  MLKD is compared with them on equal terms. Both views are standard crop/flip views (strong_view:",
        "  standard), no RandAugment or Cutout; the loss is that of the 480-epoch recipe.",
        f"Schedule: {schedule}",
        *MLKD_SCHEDULES,
        *(
            line.replace("weak + strong views (strong_aug: true)", "two views (strong_aug: true)")
            for line in method_lines
        ),
        "",
        *teacher_lines(recipe_id, TEACHER_ACC[teacher], TEACHER_SOURCE),
        *_needs_and_run(recipe_id, teacher),
    ]
    description = f"{_short(method)}, same-schedule comparison (240 epochs, standard augmentation)"
    description = f"{description} on CIFAR-100: {teacher} -> {student}"
    return Recipe(path=path, description=description, header=header, config=config)


def cifar_teacher_recipe(arch: str) -> Recipe:
    lr = 0.01 if arch in MOBILE else 0.05
    path = f"cifar100/teachers/{arch}.yaml"
    recipe_id = path.removesuffix(".yaml")
    config = {
        "trainer": {"max_epochs": 240, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls(
            "lightning_kd.ClassifierModule",
            model=arch,
            num_classes=100,
            optimizer=sgd(lr),
            lr_scheduler=multistep([150, 180, 210]),
        ),
        "data": cifar_data(),
        "export": {"filename": f"{arch}.pth"},
    }
    header = [
        f"The teacher accuracy reported with the shared CIFAR-100 teachers used by [LS]: {TEACHER_ACC[arch]:.2f}.",
        f"Schedule: {SGD_CIFAR}, base LR {fmt(lr)}, 240 epochs; cross-entropy only.",
        "",
        "Step 1 of 2 when you train your own teacher instead of downloading the shared checkpoints:",
        f"  lightning-kd fit --config {recipe_id}",
        f"writes runs/cifar100/teachers/{arch}/version_<n>/{arch}.pth (a plain state_dict, which the",
        f"distillation recipes load as well). Step 2: copy it to checkpoints/cifar100/{arch}.pth, or pass",
        f"--model.init_args.teacher=runs/cifar100/teachers/{arch}/version_<n>/{arch}.pth to a recipe whose teacher",
        f"is {arch}.",
        *cpu_time_lines(None),
    ]
    description = f"Teacher on CIFAR-100: {arch} (reported top-1 {TEACHER_ACC[arch]:.2f})"
    return Recipe(path=path, description=description, header=header, config=config)


def imagenet_recipe(method: str, name: str) -> Recipe:
    teacher, student, stem, beta, reported, (t_acc, s_acc) = IMAGENET_PAIRS[name]
    preset, lines = imagenet_preset(method, beta)
    loss, extra = loss_and_warmup(preset)
    path = f"imagenet/{method}/{name}.yaml"
    recipe_id = path.removesuffix(".yaml")
    model_args: dict[str, Any] = {
        "student": student,
        "teacher": f"checkpoints/imagenet/{stem}.pth",
        "teacher_arch": teacher,
        "num_classes": 1000,
        "loss": loss,
        **extra,
        "optimizer": sgd(0.2, weight_decay=1e-4),
        "lr_scheduler": multistep([30, 60, 90]),
    }
    config = {
        "trainer": {"max_epochs": 100, "default_root_dir": f"runs/{recipe_id}"},
        "model": cls("lightning_kd.DistillationModule", **model_args),
        "data": cls(
            "lightning_kd.data.ImageNetDataModule",
            root="data/imagenet",
            batch_size=512,
            num_workers=8,
            num_classes=1000,
        ),
    }
    header = [
        f"Paper: {LS}.",
        f"Reported top-1: {reported[method]:.2f} ([LS] Table 3; teacher {t_acc:.2f}, student alone {s_acc:.2f}).",
        "Schedule: SGD (momentum 0.9, weight decay 1e-4), batch 512, LR 0.2 x0.1 at epochs 30/60/90, 100 epochs.",
        *lines,
        "",
        *teacher_lines(recipe_id, t_acc, "[LS] Table 3, torchvision's IMAGENET1K_V1 weights"),
        "Needs ImageNet-1k as data/imagenet/{train,val}/<class>/<image> and the teacher's torchvision weights as a",
        f"state_dict at checkpoints/imagenet/{stem}.pth, e.g.",
        f"  python -c \"import torch, torchvision; torch.save(torchvision.models.{stem}(weights='IMAGENET1K_V1')"
        f".state_dict(), 'checkpoints/imagenet/{stem}.pth')\"",
        "Run (batch 512 is the total over all devices: add --trainer.devices=N --data.init_args.batch_size=512/N):",
        f"  lightning-kd fit --config {recipe_id}",
        "Elsewhere: add --model.init_args.teacher=PATH --data.init_args.root=IMAGENET_DIR.",
        *cpu_time_lines(None),
    ]
    description = f"{_short(method)} on ImageNet: {teacher} -> {student} (reported top-1 {reported[method]:.2f})"
    return Recipe(path=path, description=description, header=header, config=config)
