"""The ``lightning-kd`` command line (also ``python -m lightning_kd``).

Subcommands:

* ``fit``, ``validate``, ``test``, ``predict``: a :class:`~lightning.pytorch.cli.LightningCLI` whose model is
  any :class:`~lightning_kd.ClassifierModule` subclass (:class:`~lightning_kd.DistillationModule` to distill,
  ``ClassifierModule`` itself to train a teacher) and whose data is any ``LightningDataModule``, both given
  in ``class_path``/``init_args`` form. ``--config``, ``--print_config`` and ``--help`` work as in every
  LightningCLI, and an unknown or misspelt key is an error, never a silent default.
* ``recipes [FILTER ...]``: list the shipped recipes (path and one-line description).
* ``demo ...`` and ``analyze ...``: hand over to :func:`lightning_kd.demo.main` and
  :func:`lightning_kd.analyze.main`.

Every run gets, without repeating them in each config:

* a :class:`~lightning.pytorch.loggers.CSVLogger` in ``trainer.default_root_dir`` when ``trainer.logger`` is
  left unset (``null`` or ``true``), so each run's directory ``<default_root_dir>/version_<n>/`` holds
  ``metrics.csv``, ``hparams.yaml`` and LightningCLI's resolved ``config.yaml``;
* ``checkpoint``: a :class:`~lightning.pytorch.callbacks.ModelCheckpoint` keeping the best epoch by
  ``val/acc1`` (``checkpoints/best-epoch=NNN.ckpt``) and the last one (``checkpoints/last.ckpt``);
* ``export``: an :class:`~lightning_kd.export.ExportStudent` writing the trained (student) network's plain
  ``state_dict`` to ``student.pt`` at the end of fit, and when fit fails.

Both callbacks are configurable (``--checkpoint.monitor``, ``--export.filename``, ...). After ``fit`` the
best and last validation top-1 (``val/acc1_best``, ``val/acc1``) are printed with the output directory.

Example:
    A recipe, with its teacher checkpoint and dataset somewhere else than the recipe assumes::

        lightning-kd fit --config recipes/cifar100/kd_z/resnet32x4_resnet8x4.yaml \\
            --model.init_args.teacher=/ckpts/resnet32x4.pth --data.init_args.root=/datasets
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from lightning_kd.classifier import ClassifierModule
from lightning_kd.export import ExportStudent
from lightning_kd.recipes import find_recipe_dir, format_recipes, list_recipes

__all__ = ["CHECKPOINT_DEFAULTS", "DESCRIPTION", "KDLightningCLI", "main"]

#: Defaults of the ``checkpoint`` callback: keep the best epoch by validation top-1, and the last one.
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "monitor": "val/acc1",
    "mode": "max",
    "save_last": True,
    "filename": "best-{epoch:03d}",
}

_CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"

#: The description of ``lightning-kd --help``.
DESCRIPTION = (
    "Logit-based knowledge distillation with PyTorch Lightning. Run a recipe with"
    " `lightning-kd fit --config recipes/<dataset>/<method>/<teacher>_<student>.yaml`. More commands:"
    " `lightning-kd recipes [FILTER ...]` lists the shipped recipes, `lightning-kd demo --help` and"
    " `lightning-kd analyze --help`."
)


class KDLightningCLI(LightningCLI):
    """LightningCLI over :class:`~lightning_kd.ClassifierModule` subclasses and any LightningDataModule.

    Adds the ``checkpoint`` and ``export`` callbacks and the default CSV logger (see the module docstring),
    and prints the best and last validation top-1 after ``fit``. ``auto_configure_optimizers`` is off: the
    optimizer and the scheduler are the model's ``optimizer``/``lr_scheduler`` arguments, so each has one
    place in a config.

    Args:
        args: Command-line arguments (``None``: ``sys.argv[1:]``), a list, or a dict/Namespace config.
        run: Run the subcommand (``fit``, ...); with ``False`` only parse and instantiate.
        **kwargs: More arguments for :class:`~lightning.pytorch.cli.LightningCLI`.
    """

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", ClassifierModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("datamodule_class", LightningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        parser_kwargs = dict(kwargs.pop("parser_kwargs", None) or {})
        parser_kwargs.setdefault("prog", "lightning-kd")
        parser_kwargs.setdefault("description", DESCRIPTION)
        super().__init__(args=args, run=run, parser_kwargs=parser_kwargs, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the ``checkpoint`` and ``export`` callbacks, with their defaults."""
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{key}": value for key, value in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(ExportStudent, "export")

    def before_instantiate_classes(self) -> None:
        """Give runs whose ``trainer.logger`` is unset a CSVLogger in ``trainer.default_root_dir``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.get("trainer")
        if trainer is None or trainer.get("logger") not in (None, True):
            return
        root = trainer.get("default_root_dir")
        # In a recipe's own output folder, runs are <root>/version_<n>; else Lightning's usual lightning_logs/.
        init_args = {"save_dir": str(root), "name": ""} if root else {"save_dir": ".", "name": "lightning_logs"}
        trainer.logger = Namespace(class_path=_CSV_LOGGER, init_args=Namespace(**init_args))

    def after_fit(self) -> None:
        """Print the best and last validation top-1 and where the run's files are."""
        trainer = self.trainer
        metrics = trainer.callback_metrics
        lines = ["lightning-kd: fit finished."]
        for label, key in (("best", "val/acc1_best"), ("last", "val/acc1")):
            if key in metrics:
                lines.append(f"  {label} validation top-1 ({key}): {float(metrics[key]):.4f}")
        checkpoint = trainer.checkpoint_callback
        if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
            lines.append(f"  best checkpoint: {checkpoint.best_model_path}")
        if trainer.log_dir is not None:
            lines.append(f"  output directory: {trainer.log_dir}")
        rank_zero_info("\n".join(lines))


def _recipes_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lightning-kd recipes",
        description="List the shipped recipes (run one with `lightning-kd fit --config <path>`).",
    )
    parser.add_argument("filters", nargs="*", help="Keep recipes whose path contains all of these substrings.")
    parser.add_argument("--root", default=None, help="The recipe folder (default: the shipped recipes/).")
    args = parser.parse_args(list(argv))
    root = Path(args.root) if args.root else find_recipe_dir()
    if root is None:
        print(
            "lightning-kd: no recipe folder found; pass --root or set LIGHTNING_KD_RECIPES (recipes ship in the"
            " source tree's recipes/ folder).",
            file=sys.stderr,
        )
        return 1
    recipes = list_recipes(root, args.filters)
    if not recipes:
        print(f"lightning-kd: no recipe in {root} matches {args.filters}.", file=sys.stderr)
        return 1
    print(format_recipes(recipes, relative_to=Path.cwd()))
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the ``lightning-kd`` command line.

    ``recipes``, ``demo`` and ``analyze`` are dispatched on the first word; everything else goes to
    :class:`KDLightningCLI`.

    Args:
        argv: The arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns:
        The exit status (0 on success; 2 for a bad command line, as argparse).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if command == "recipes":
            return _recipes_main(rest)
        if command == "demo":
            from lightning_kd import demo  # imported only when asked for (matplotlib, sklearn)

            return _exit_code(demo.main(rest))
        if command == "analyze":
            from lightning_kd import analyze

            return _exit_code(analyze.main(rest))
        # With argv=None LightningCLI reads sys.argv itself (it warns when given both).
        KDLightningCLI(args=None if argv is None else args)
    except SystemExit as exit_:
        return _exit_code(exit_.code)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
