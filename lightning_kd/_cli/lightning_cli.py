"""KDLightningCLI: the LightningCLI of ``lightning-kd fit/validate/test/predict`` (see :mod:`lightning_kd.cli`)."""

from __future__ import annotations

import copy
import sys
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from typing_extensions import override

from lightning_kd._cli.argv import resolve_config_args
from lightning_kd._cli.config_checks import check_checkpoint_settings, warn_unsafe_teacher_loads
from lightning_kd._cli.errors import ConfigError, config_key, innermost_error, one_line
from lightning_kd._cli.last_checkpoint import LastEpochCheckpoint
from lightning_kd._cli.loggers import add_csv_logger, log_root
from lightning_kd._cli.resume import (
    MetricsRows,
    find_last_checkpoint,
    plan_resume,
    restore_unsaved_model_args,
    write_back_rows,
)
from lightning_kd._cli.text import DESCRIPTION
from lightning_kd.export import ExportStudent

__all__ = ["CHECKPOINT_DEFAULTS", "KDLightningCLI"]

#: Defaults of the ``checkpoint`` callback: keep the best epoch by validation top-1 (``last.ckpt`` is written
#: by the ``last_checkpoint`` callback).
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "monitor": "val/acc1",
    "mode": "max",
    "save_last": False,
    "filename": "best-{epoch:03d}",
}


class KDLightningCLI(LightningCLI):
    """LightningCLI over any LightningModule (the package's modules) and any LightningDataModule.

    Adds the ``checkpoint``, ``last_checkpoint`` and ``export`` callbacks and the default CSV logger (see the
    module docstring), accepts recipe ids as ``--config``, resolves ``--ckpt_path last`` to the newest
    ``last.ckpt`` under ``trainer.default_root_dir`` (and resumes in that run's folder), warns for teacher files
    loaded with ``teacher_weights_only: false``, raises a ``ConfigError`` (the
    library's message and the config key) when the config cannot be instantiated, and prints the best and last
    validation top-1 after ``fit``. ``auto_configure_optimizers`` is off: the optimizer and the scheduler are the
    model's ``optimizer``/``lr_scheduler`` arguments, so each has one place in a config.

    Args:
        args: Command-line arguments (``None``: ``sys.argv[1:]``), a list, or a dict/Namespace config.
        run: Run the subcommand (``fit``, ...); with ``False`` only parse and instantiate.
        **kwargs: More arguments for :class:`~lightning.pytorch.cli.LightningCLI`.
    """

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("model_class", LightningModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("datamodule_class", LightningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        parser_kwargs = dict(kwargs.pop("parser_kwargs", None) or {})
        parser_kwargs.setdefault("prog", "lightning-kd")
        parser_kwargs.setdefault("description", DESCRIPTION)
        self._metrics_rows: MetricsRows | None = None
        super().__init__(args=args, run=run, parser_kwargs=parser_kwargs, **kwargs)

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the ``checkpoint``, ``last_checkpoint`` and ``export`` callbacks, with their defaults."""
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{key}": value for key, value in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(LastEpochCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(ExportStudent, "export")

    @override
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse (recipe ids in ``--config`` resolved first), then add the CSV logger and resolve ``last``."""
        if isinstance(args, (dict, Namespace)):
            super().parse_arguments(parser, args)
        else:
            # Not LightningCLI's own parse_arguments for lists: it warns when sys.argv holds arguments too, which
            # is always the case for `main`, which hands over sys.argv[1:] itself.
            try:
                resolved = resolve_config_args(sys.argv[1:] if args is None else args)
            except ValueError as error:
                raise ConfigError(one_line(error)) from error
            self.config = parser.parse_args(resolved)
        config = self._subcommand_config()
        trainer = config.get("trainer")
        if trainer is not None:
            add_csv_logger(trainer)
            if config.get("ckpt_path") == "last":
                self._resolve_last_checkpoint(config, trainer)

    def _subcommand_config(self) -> Namespace:
        subcommand = self.config.get("subcommand")
        return self.config[subcommand] if subcommand else self.config

    def _resolve_last_checkpoint(self, config: Namespace, trainer: Namespace) -> None:
        """``--ckpt_path last``: the newest last.ckpt of the run's log folder; a resumed fit logs into its folder."""
        try:
            checkpoint = find_last_checkpoint(log_root(trainer))
        except FileNotFoundError as error:
            raise ConfigError(one_line(error), "ckpt_path") from error
        config.ckpt_path = str(checkpoint)
        rank_zero_info(f"lightning-kd: --ckpt_path last is {checkpoint}")
        if self.config.get("subcommand") != "fit":
            return
        plan = plan_resume(trainer, checkpoint)
        if plan is None:
            rank_zero_warn(
                f"lightning-kd: resuming {checkpoint} in a new log folder: it is not in a version_<n> folder of the"
                " first configured logger."
            )
            return
        config_filename, self._metrics_rows = plan
        self.save_config_kwargs = {**self.save_config_kwargs, "config_filename": config_filename}

    def _parse_ckpt_path(self) -> None:
        """Lightning 2.6+: apply a checkpoint's hyperparameters, but keep the model arguments it does not hold.

        LightningCLI rebuilds the model config from the checkpoint's hyperparameters, which leaves out what the
        module does not save (``optimizer``, ``lr_scheduler``, ``teacher_input``: objects): without this, a
        resumed run would silently train with the default optimizer and no schedule.
        """
        subcommand = self.config.get("subcommand")
        before = copy.deepcopy(self.config[subcommand].get("model")) if subcommand else None
        super()._parse_ckpt_path()
        if subcommand and isinstance(before, Namespace):
            restore_unsaved_model_args(self.config[subcommand], before)

    @override
    def before_instantiate_classes(self) -> None:
        """Refuse ``checkpoint.save_last``; warn for teacher files loaded with ``teacher_weights_only: false``."""
        config = self._subcommand_config()
        try:
            check_checkpoint_settings(config)
        except ValueError as error:
            raise ConfigError(one_line(error), "checkpoint.save_last") from error
        warn_unsafe_teacher_loads(config)

    @override
    def instantiate_classes(self) -> None:
        """Instantiate; a failure becomes a ``ConfigError`` (see :meth:`config_error`)."""
        try:
            super().instantiate_classes()
        except Exception as error:
            raise self.config_error(error) from error

    def config_error(self, error: BaseException) -> ConfigError:
        """The ``ConfigError`` of an instantiation failure: its innermost message and the config key."""
        inner = innermost_error(error)
        parser_groups = self._parser(self.subcommand).groups or {}
        groups: dict[str, type] = {
            key: group_class
            for key, group in parser_groups.items()
            if isinstance(group_class := getattr(group, "group_class", None), type)
        }
        if isinstance(self.trainer_class, type):
            groups["trainer"] = self.trainer_class
        return ConfigError(one_line(inner), config_key(inner, self._subcommand_config(), groups))

    def before_fit(self) -> None:
        """Write a resumed run's earlier ``metrics.csv`` rows back (Lightning's CSV writer drops them)."""
        logger = self.trainer.logger
        on_rank_zero = getattr(rank_zero_only, "rank", 0) == 0
        if self._metrics_rows is not None and isinstance(logger, CSVLogger) and on_rank_zero:
            write_back_rows(logger, self._metrics_rows)

    def after_fit(self) -> None:
        """Print the best and last validation top-1 and where the run's files are."""
        trainer = self.trainer
        metrics = trainer.callback_metrics
        lines = ["lightning-kd: fit finished."]
        for label, key in (("best", "val/acc1_best"), ("last", "val/acc1")):
            if key in metrics:
                lines.append(f"  {label} validation top-1 ({key}): {float(metrics[key]):.4f}")
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
                label = "last" if isinstance(callback, LastEpochCheckpoint) else "best"
                lines.append(f"  {label} checkpoint: {callback.best_model_path}")
        if trainer.log_dir is not None:
            lines.append(f"  output directory: {trainer.log_dir}")
        rank_zero_info("\n".join(lines))
