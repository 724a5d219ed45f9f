"""The ``lightning-kd`` command line (also ``python -m lightning_kd``).

Subcommands:

* ``fit``, ``validate``, ``test``, ``predict``: a :class:`~lightning.pytorch.cli.LightningCLI` whose model is
  any LightningModule (:class:`~lightning_kd.DistillationModule` to distill,
  :class:`~lightning_kd.ClassifierModule` to train a teacher, :class:`~lightning_kd.AblationModule` for paired
  arms) and whose data is any ``LightningDataModule``, both given in ``class_path``/``init_args`` form.
  ``--config`` takes a file or a shipped recipe's id (``cifar100/kd_z/resnet32x4_resnet8x4``);
  ``--print_config`` and ``--help`` work as in every LightningCLI, and an unknown or misspelt key is an error,
  never a silent default.
* ``recipes [FILTER ...]``, ``recipes show ID``, ``recipes cp ID [DEST]``: list, print, copy out the shipped
  recipes.
* ``check-teacher``: evaluate a recipe's teacher checkpoint and compare it with the accuracy the recipe
  expects (:mod:`lightning_kd.check_teacher`).
* ``demo ...``, ``analyze ...``, ``report ...`` and ``cache fill ...``: hand over to
  :func:`lightning_kd.demo.main`, :func:`lightning_kd.analyze.main`, :func:`lightning_kd.report.main` (ablation
  runs over seeds) and :func:`lightning_kd.cache.fill.main` (fill a teacher-logit cache).

Every run gets, without repeating them in each config:

* a :class:`~lightning.pytorch.loggers.CSVLogger` in ``trainer.default_root_dir``, first among the loggers
  (unless ``trainer.logger`` is false; loggers given with ``--trainer.logger`` come after it), so each run's
  directory ``<default_root_dir>/version_<n>/`` holds ``metrics.csv``, ``hparams.yaml`` and LightningCLI's
  resolved ``config.yaml``;
* ``checkpoint``: a :class:`~lightning.pytorch.callbacks.ModelCheckpoint` keeping the best epoch by
  ``val/acc1`` (``checkpoints/best-epoch=NNN.ckpt``);
* ``last_checkpoint``: ``checkpoints/last.ckpt``, rewritten at the end of every epoch;
* ``export``: an :class:`~lightning_kd.export.ExportStudent` writing the trained (student) network's plain
  ``state_dict`` to ``student.pt`` at the end of fit.

The callbacks are configurable (``--checkpoint.monitor``, ``--export.filename``, ...). ``--ckpt_path last``
resumes the newest ``last.ckpt`` under ``trainer.default_root_dir``, in that run's own folder. After ``fit`` the
best and last validation top-1 (``val/acc1_best``, ``val/acc1``) are printed with the output directory.

A config that cannot be built (a bad value, a missing file) is reported on one line,
``error: <message> (config key: <key>)``, with exit status 2; ``--traceback`` or ``LIGHTNING_KD_TRACEBACK=1``
shows the full traceback instead.

Example:
    A recipe, with its teacher checkpoint and dataset somewhere else than the recipe assumes::

        lightning-kd fit --config cifar100/kd_z/resnet32x4_resnet8x4 \\
            --model.init_args.teacher=/ckpts/resnet32x4.pth --data.init_args.root=/datasets
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from lightning_kd._cli.argv import pop_flag
from lightning_kd._cli.errors import ConfigError
from lightning_kd._cli.recipes_command import recipes_main
from lightning_kd._cli.text import DESCRIPTION, TRACEBACK_ENV

if TYPE_CHECKING:  # pragma: no cover
    from lightning_kd._cli.lightning_cli import CHECKPOINT_DEFAULTS, KDLightningCLI

__all__ = ["CHECKPOINT_DEFAULTS", "DESCRIPTION", "TRACEBACK_ENV", "KDLightningCLI", "main"]


def __getattr__(name: str) -> Any:
    # Lightning is imported only for the commands that need it: `lightning-kd recipes` answers in about a second.
    if name in ("KDLightningCLI", "CHECKPOINT_DEFAULTS"):
        from lightning_kd._cli import lightning_cli

        return getattr(lightning_cli, name)
    raise AttributeError(f"module 'lightning_kd.cli' has no attribute {name!r}")


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the ``lightning-kd`` command line.

    ``recipes``, ``check-teacher``, ``demo``, ``analyze``, ``report`` and ``cache`` are dispatched on the first
    word; everything else goes to :class:`KDLightningCLI`.

    Args:
        argv: The arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success; 2 for a bad command line (as argparse) or a config that cannot be built.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = pop_flag(args, "--traceback") or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    command, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if command == "recipes":
            return recipes_main(rest)
        if command == "check-teacher":
            from lightning_kd import check_teacher

            return _exit_code(check_teacher.main(rest))
        if command == "demo":
            from lightning_kd import demo  # imported only when asked for (matplotlib, sklearn)

            return _exit_code(demo.main(rest))
        if command == "analyze":
            from lightning_kd import analyze

            return _exit_code(analyze.main(rest))
        if command == "report":
            from lightning_kd import report

            return _exit_code(report.main(rest))
        if command == "cache":
            from lightning_kd.cache import fill

            return _exit_code(fill.main(rest))
        from lightning_kd._cli.lightning_cli import KDLightningCLI

        KDLightningCLI(args=args)
    except ConfigError as error:
        if show_traceback:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return _exit_code(exit_.code)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
