"""ExportStudent: write the trained network's plain ``state_dict`` when fitting ends, or fails.

:meth:`lightning_kd.ClassifierModule.export` writes the classifier's weights (for a
:class:`~lightning_kd.DistillationModule`, the student's) as a plain ``state_dict`` that loads into the bare
architecture with ``strict=True``: the artifact to deploy, or to use as the teacher of a next distillation.
The ``lightning-kd`` command line adds this callback to every run.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

__all__ = ["ExportStudent"]


class ExportStudent(Callback):
    """Export the trained network with ``pl_module.export(path)`` at the end of ``fit``, and when it fails.

    The file is written on global rank zero, into ``dirpath`` or else the trainer's log directory (next to
    the logger's metrics and the checkpoints). It is written when fitting ends normally and also when it is
    interrupted by an exception (``on_exception``, e.g. a NaN check or ``Ctrl-C``), so a failed run still
    leaves its last weights; nothing is written under ``fast_dev_run`` (which writes no checkpoints either)
    or outside ``fit``.

    The module must have an ``export(path)`` method, as :class:`~lightning_kd.ClassifierModule` and
    :class:`~lightning_kd.DistillationModule` do (the latter exports the student); for other modules a
    warning is given and nothing is written.

    Args:
        filename: Name of the file written.
        dirpath: Directory of the file; ``None`` means the trainer's ``log_dir`` (else ``default_root_dir``).

    Example:
        >>> callback = ExportStudent("student.pt")
        >>> callback.filename
        'student.pt'
    """

    def __init__(self, filename: str = "student.pt", dirpath: str | None = None) -> None:
        super().__init__()
        if not isinstance(filename, str) or not filename or Path(filename).name != filename:
            raise ValueError(
                f"Expected argument `filename` to be a file name without directories, but got {filename!r}."
            )
        self.filename = filename
        self.dirpath = dirpath
        self.last_path: Path | None = None

    def path(self, trainer: pl.Trainer) -> Path:
        """Where the file goes for this ``trainer``.

        The log directory is resolved like ``Trainer.log_dir`` but without its broadcast, so that rank zero
        alone can call this (in ``on_exception`` the other ranks may not be there to answer).
        """
        if self.dirpath is not None:
            return Path(self.dirpath) / self.filename
        directory: str | None = None
        if trainer.loggers:
            logger = trainer.loggers[0]
            directory = getattr(logger, "log_dir", None) or logger.save_dir
        return Path(directory or trainer.default_root_dir) / self.filename

    def _export(self, trainer: pl.Trainer, pl_module: pl.LightningModule, reason: str) -> None:
        if getattr(trainer, "fast_dev_run", False) or trainer.state.fn != TrainerFn.FITTING:
            return
        export = getattr(pl_module, "export", None)
        if not callable(export):
            rank_zero_warn(
                f"ExportStudent: {type(pl_module).__name__} has no `export(path)` method; nothing is exported."
            )
            return
        if trainer.is_global_zero:
            self.last_path = Path(export(self.path(trainer)))
            rank_zero_info(f"ExportStudent: wrote the trained weights ({reason}) to {self.last_path}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._export(trainer, pl_module, "end of fit")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        try:
            self._export(trainer, pl_module, f"after {type(exception).__name__}")
        except Exception as error:  # never hide the exception that stopped the run
            rank_zero_warn(f"ExportStudent: could not export after {type(exception).__name__}: {error!r}")
