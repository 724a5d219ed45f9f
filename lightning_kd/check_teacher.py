"""``lightning-kd check-teacher``: is this the teacher checkpoint the recipe was written for?

A distillation recipe reproduces its paper's numbers only with the teacher the paper used. A checkpoint from
another training run, with another class order or expecting other inputs still loads, and the difference shows
after days of training. This command builds the recipe's model and data exactly as ``lightning-kd fit`` would
(the same LightningCLI parsing, overrides included), evaluates the teacher on the validation data, and prints
its top-1/top-5 next to the accuracy in the recipe header's ``# Teacher top-1: <float> (<source>)`` line::

    lightning-kd check-teacher --config cifar100/kd_z/resnet32x4_resnet8x4 \\
        --model.init_args.teacher=/ckpts/resnet32x4.pth --data.init_args.root=/datasets
    lightning-kd check-teacher --teacher /ckpts/resnet32x4.pth --teacher-arch resnet32x4 --data cifar100

With ``--teacher``, the model and data come from the first shipped recipe of that dataset whose teacher has
that architecture (and its expected accuracy with them), else from the DataModule's defaults.

Exit status: 0 when the top-1 is within ``--tolerance`` points (default 1) of the expected one, or when no
expected accuracy is known; 1 when it differs by more; 2 for a usage error or a config that cannot be built.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from jsonargparse import Namespace
from torchmetrics import SumMetric
from torchmetrics.classification import MulticlassAccuracy
from typing_extensions import override

from lightning_kd._batch import split_batch
from lightning_kd._cli.argv import resolve_config_value
from lightning_kd._cli.errors import ConfigError
from lightning_kd.ablation import AblationModule
from lightning_kd.cli import KDLightningCLI
from lightning_kd.module import DistillationModule
from lightning_kd.recipes import list_recipes, recipe_id, teacher_top1

__all__ = ["DATASETS", "TeacherAccuracy", "evaluate_teacher", "main"]

#: ``--data`` choices: DataModule class path, class count and input channels.
DATASETS: dict[str, tuple[str, int, int]] = {
    "digits": ("lightning_kd.data.DigitsDataModule", 10, 1),
    "fashion_mnist": ("lightning_kd.data.FashionMNISTDataModule", 10, 1),
    "cifar100": ("lightning_kd.data.CIFAR100DataModule", 100, 3),
}


@dataclass(frozen=True)
class TeacherAccuracy:
    """A teacher's accuracy on a validation set.

    Attributes:
        top1: Top-1 accuracy in percent.
        top5: Top-5 accuracy in percent (top-k with k = the class count when there are fewer than 5 classes).
        images: The number of validation images.
    """

    top1: float
    top5: float
    images: int


class _TeacherEvaluation(pl.LightningModule):
    """Validation of a module's teacher alone, on the inputs the module would give it."""

    def __init__(self, module: DistillationModule | AblationModule) -> None:
        super().__init__()
        self.module = module
        classes = module.num_classes
        self.top1 = MulticlassAccuracy(classes, top_k=1, average="micro")
        self.top5 = MulticlassAccuracy(classes, top_k=min(5, classes), average="micro")
        self.images = SumMetric()

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, target = split_batch(batch)
        if isinstance(x, tuple):
            x = x[0]
        if target is None:
            raise ValueError("Expected validation batches of (inputs, targets), but the batch has no targets.")
        logits = self.module.teacher_logits(x)  # its input adapter, memory format and logits key included
        self.top1.update(logits, target)
        self.top5.update(logits, target)
        self.images.update(torch.tensor(float(target.shape[0])))


def evaluate_teacher(
    module: DistillationModule | AblationModule,
    data: pl.LightningDataModule,
    *,
    accelerator: str = "auto",
    precision: Any = None,
) -> TeacherAccuracy:
    """The top-1/top-5 accuracy of ``module``'s teacher on ``data``'s validation set, with a progress bar.

    Args:
        module: The module holding the teacher (its students are not run).
        data: The DataModule; its ``val_dataloader`` is used.
        accelerator: Lightning's accelerator (``"auto"``: a GPU when there is one).
        precision: Lightning's precision (``None``: its default).
    """
    evaluation = _TeacherEvaluation(module)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.validate(evaluation, datamodule=data, verbose=False)
    return TeacherAccuracy(
        top1=100.0 * float(evaluation.top1.compute()),
        top5=100.0 * float(evaluation.top5.compute()),
        images=int(evaluation.images.compute()),
    )


class _ModelAndDataCLI(KDLightningCLI):
    """The fit command's parsing and instantiation of ``model`` and ``data``, without a Trainer."""

    @override
    def instantiate_classes(self) -> None:
        try:
            self.config_init = self.parser.instantiate_classes(self.config)
        except Exception as error:
            raise self.config_error(error) from error
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-kd check-teacher",
        description=(
            "Evaluate a recipe's teacher checkpoint on the validation data and compare its top-1 with the accuracy"
            " the recipe's header expects. Any further --model.*/--data.*/--trainer.* option overrides the recipe"
            " as in `lightning-kd fit`. Exit status: 0 match (or nothing to compare with), 1 mismatch, 2 usage error."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--config", help="A recipe id or a config file, as in `lightning-kd fit --config`.")
    parser.add_argument("--teacher", help="Without --config: the teacher checkpoint file.")
    parser.add_argument("--teacher-arch", help="With --teacher: its architecture (e.g. resnet32x4).")
    parser.add_argument("--data", choices=sorted(DATASETS), help="With --teacher: the dataset.")
    parser.add_argument("--data-root", help="With --teacher: the dataset folder (fashion_mnist, cifar100).")
    parser.add_argument("--expected", type=float, help="The expected top-1 in percent (default: the recipe's).")
    parser.add_argument("--tolerance", type=float, default=1.0, help="Allowed difference in points (default 1).")
    return parser


def _recipe_for(dataset: str, arch: str) -> Path | None:
    """The first shipped single-student recipe of ``dataset`` whose teacher is a ``arch`` (read only to pick it)."""
    for recipe in list_recipes(filters=[f"{dataset}/"]):
        if not recipe.name.startswith(f"{dataset}/"):
            continue
        with open(recipe.path, encoding="utf-8") as f:
            model = (yaml.safe_load(f) or {}).get("model") or {}
        init_args = model.get("init_args") or {}
        if model.get("class_path") == "lightning_kd.DistillationModule" and init_args.get("teacher_arch") == arch:
            return recipe.path
    return None


def _cli_args(args: argparse.Namespace, overrides: list[str]) -> tuple[list[str], Path | None] | str:
    """The LightningCLI arguments and the recipe file, or a usage error message."""
    if args.config:
        if args.teacher or args.teacher_arch or args.data or args.data_root:
            return "pass either --config (with --model.init_args.teacher=... to override), or --teacher/--data"
        path = Path(resolve_config_value(args.config))
        return ["--config", str(path), *overrides], path
    if not (args.teacher and args.teacher_arch and args.data):
        return "pass --config RECIPE, or all of --teacher PATH, --teacher-arch NAME and --data DATASET"
    data_class, num_classes, in_chans = DATASETS[args.data]
    root = [f"--data.init_args.root={args.data_root}"] if args.data_root else []
    if root and args.data == "digits":
        return "--data-root: the digits ship with scikit-learn and need no folder"
    teacher = [f"--model.init_args.teacher={args.teacher}", f"--model.init_args.teacher_arch={args.teacher_arch}"]
    recipe = _recipe_for(args.data, args.teacher_arch)
    if recipe is not None:
        return ["--config", str(recipe), *teacher, *root, *overrides], recipe
    model = [
        "--model=lightning_kd.DistillationModule",
        f"--model.init_args.student={args.teacher_arch}",  # built and never run
        f"--model.init_args.num_classes={num_classes}",
        f"--model.init_args.in_chans={in_chans}",
    ]
    return [*model, *teacher, f"--data={data_class}", *root, *overrides], None


def _report(result: TeacherAccuracy, config: Namespace, recipe: Path | None, data: pl.LightningDataModule) -> None:
    init_args = config.get("model.init_args") or Namespace()
    teacher = init_args.get("teacher")
    arch = init_args.get("teacher_arch")
    name = (recipe_id(recipe) or str(recipe)) if recipe is not None else None
    print(f"Teacher: {arch or 'module'} from {teacher}" + (f" (recipe {name})" if name else ""))
    print(f"Validation data: {type(data).__name__}, {result.images} images")
    print(f"  top-1: {result.top1:.2f} %")
    print(f"  top-5: {result.top5:.2f} %")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lightning-kd check-teacher``; return the exit status (0 match, 1 mismatch, 2 usage error)."""
    args, overrides = _parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    try:
        built = _cli_args(args, overrides)
        if isinstance(built, str):
            print(f"lightning-kd check-teacher: error: {built}.", file=sys.stderr)
            return 2
        cli_args, recipe = built
        cli = _ModelAndDataCLI(args=cli_args, run=False)
    except (ConfigError, ValueError) as error:
        print(f"lightning-kd check-teacher: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # jsonargparse's usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if not isinstance(cli.model, (DistillationModule, AblationModule)) or cli.datamodule is None:
        print(
            "lightning-kd check-teacher: error: expected a distillation config (model: lightning_kd.DistillationModule"
            f" or lightning_kd.AblationModule, and a data module), but got model {type(cli.model).__name__}.",
            file=sys.stderr,
        )
        return 2
    trainer_config = cli.config.get("trainer") or Namespace()
    result = evaluate_teacher(
        cli.model,
        cli.datamodule,
        accelerator=trainer_config.get("accelerator") or "auto",
        precision=trainer_config.get("precision"),
    )
    _report(result, cli.config, recipe, cli.datamodule)
    expected = (args.expected, "--expected") if args.expected is not None else None
    if expected is None and recipe is not None:
        expected = teacher_top1(recipe)
    if expected is None:
        print("  expected top-1: unknown (no `# Teacher top-1:` line in the recipe header, no --expected)")
        return 0
    value, source = expected
    difference = result.top1 - value
    print(f"  expected top-1: {value:.2f} % ({source}); difference {difference:+.2f} points")
    if abs(difference) <= args.tolerance:
        print(f"OK: within {args.tolerance:g} point(s) of the expected accuracy.")
        return 0
    print(
        f"WARNING: the teacher's top-1 ({result.top1:.2f} %) differs from the expected {value:.2f} %"
        f" ({source}) by {abs(difference):.2f} points, more than {args.tolerance:g}. It is probably not the checkpoint"
        " the recipe was written for (another training run, another class order, other input preprocessing):"
        " a distillation from it will not reproduce the recipe's numbers.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
