"""ExportStudent: write the trained network's plain ``state_dict`` when fitting ends, never over good weights.

:meth:`lightning_kd.ClassifierModule.export` writes the classifier's weights (for a
:class:`~lightning_kd.DistillationModule`, the student's) as a plain ``state_dict`` that loads into the bare
architecture with ``strict=True``: the artifact to deploy, or to use as the teacher of a next distillation.
The ``lightning-kd`` command line adds this callback to every run.

Every write goes through :func:`save_atomically` (a temporary file in the same folder, flushed and fsynced,
then ``os.replace``): a full disk, an error or a killed process leave the previous file as it was, never a
truncated one. Weights with a NaN or Inf are never written (:func:`non_finite_keys`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor
from typing_extensions import override

from lightning_kd.guard import NonFiniteError

__all__ = ["ExportStudent", "check_finite", "failed_path", "non_finite_keys", "save_atomically"]


def save_atomically(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the complete new one.

    The object is written to a temporary file in the same folder (``.<name>.<random>.tmp``), flushed and
    fsynced, then moved over ``path`` with ``os.replace`` (atomic on POSIX and Windows) and the folder is
    fsynced. On any error the temporary file is removed and the error is raised (an operating-system error,
    e.g. a full disk, as an ``OSError`` with its ``errno`` that names ``path``); ``path`` is untouched. Only a
    hard kill during the write can leave the temporary file behind (never a broken ``path``). The parent folder
    is created if needed; the new file gets the usual permissions (``0o666`` less the umask).

    Written here rather than with Lightning's ``_atomic_save`` (private): that one stages the file through
    fsspec in the system's temporary folder, without fsync, with ``0o600`` permissions, and its final move is a
    copy when that folder is on another filesystem.

    Args:
        obj: What ``torch.save`` writes.
        path: The final file.

    Returns:
        ``path``, as a ``Path``.

    Example:
        >>> import tempfile
        >>> import torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_atomically({"w": torch.ones(2)}, Path(folder) / "weights.pt")
        ...     torch.load(path, weights_only=True), sorted(p.name for p in path.parent.iterdir())
        ({'w': tensor([1., 1.])}, ['weights.pt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as file:  # "x": a new file, permissions from the umask
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        cause = _os_error(error)
        if cause is None:
            raise
        # e.g. a full disk: torch.save reports it as its zip writer's "unexpected pos", the OSError only chained
        message = f"{cause.strerror or cause}; {path} was not written (a file there is unchanged)"
        raise OSError(cause.errno, message) from error
    _fsync_folder(path.parent)
    return path


def _os_error(error: BaseException) -> OSError | None:
    """The first ``OSError`` in ``error``'s chain of causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); folders cannot be opened for fsync on Windows."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def non_finite_keys(state_dict: Mapping[str, Tensor]) -> list[str]:
    """The names of the floating-point (and complex) tensors of ``state_dict`` that hold a NaN or an Inf.

    Example:
        >>> import torch
        >>> non_finite_keys({"w": torch.tensor([1.0, float("nan")]), "b": torch.zeros(2), "n": torch.tensor(3)})
        ['w']
    """
    return [
        name
        for name, tensor in state_dict.items()
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all())
    ]


def check_finite(state_dict: Mapping[str, Tensor], path: str | Path) -> None:
    """Raise ``NonFiniteError`` (a ``FloatingPointError``) if a tensor of ``state_dict`` is not finite.

    Example:
        >>> import torch
        >>> try:
        ...     check_finite({"fc.weight": torch.tensor([float("inf")])}, "student.pt")
        ... except FloatingPointError as error:  # NonFiniteError
        ...     print(error)
        Refusing to export weights with NaN or Inf to student.pt (not written): non-finite tensors: fc.weight.
    """
    bad = non_finite_keys(state_dict)
    if bad:
        names = ", ".join(bad[:8]) + (f" ... ({len(bad)} in all)" if len(bad) > 8 else "")
        raise NonFiniteError(
            f"Refusing to export weights with NaN or Inf to {path} (not written): non-finite tensors: {names}."
        )


def failed_path(path: str | Path) -> Path:
    """Where the weights of a failed fit go: ``<stem>.failed<suffix>`` next to ``path``.

    Example:
        >>> failed_path("checkpoints/digits/resnet20.pt").as_posix()
        'checkpoints/digits/resnet20.failed.pt'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.failed{path.suffix}")


def _writable_folder_error(folder: Path, target: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created if missing), or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{target.name}.{uuid.uuid4().hex[:12]}.probe"
        with open(probe, "xb") as file:
            file.write(b"probe")
        probe.unlink()
    except OSError as error:
        return (
            f"Expected the export folder to be writable, but could not write a file into {folder}: {error}. Set"
            " `dirpath` (`--export.dirpath` on the command line) to a writable folder."
        )
    if target.is_dir():
        return f"Expected the export path {target} to be a file, but it is a directory. Set another `filename`."
    return None


class ExportStudent(Callback):
    """Export the trained network with ``pl_module.export(path)`` when ``fit`` ends; never over good weights.

    The file is written on global rank zero, into ``dirpath`` or else the trainer's log directory (next to
    the logger's metrics and the checkpoints). What happens at the end of ``fit``:

    * it finished with at least one training step: the trained weights are written to ``path``, atomically;
    * it trained 0 steps (e.g. ``max_epochs=0``): nothing is written, and an existing file is left as it was
      (its weights would be the untrained initial ones, which the model's own constructor already gives);
    * it failed (an exception, a NaN stop, ``Ctrl-C``) after some training steps: the weights of that moment are
      written next to ``path`` as ``<stem>.failed<suffix>`` (e.g. ``student.failed.pt``), and ``path`` is not
      touched; before any training step, nothing is written;
    * the weights hold a NaN or Inf: nothing is written (after a finished fit this raises
      ``NonFiniteError``, a ``FloatingPointError``).

    Each case is said in one rank-zero message. The folder is checked at ``setup``, before training: one that
    cannot be created or written into is an ``OSError`` naming it. Nothing is written or checked under
    ``fast_dev_run`` (which writes no checkpoints either) or outside ``fit``.

    The module must have an ``export(path)`` method, as :class:`~lightning_kd.ClassifierModule` and
    :class:`~lightning_kd.DistillationModule` do (the latter exports the student; both write with
    :func:`save_atomically` and refuse non-finite weights); for other modules a warning is given and nothing is
    written.

    Args:
        filename: Name of the file written.
        dirpath: Directory of the file; ``None`` means the trainer's ``log_dir`` (else ``default_root_dir``).

    Attributes:
        last_path: The file the latest ``fit`` wrote (``path``, or the ``.failed`` file), or None.

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
        self._target: Path | None = None
        self._settled = False  # this fit's outcome was handled (exported, skipped or refused)

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

    def _active(self, trainer: pl.Trainer) -> bool:
        return not getattr(trainer, "fast_dev_run", False) and trainer.state.fn == TrainerFn.FITTING

    def _export_fn(self, pl_module: pl.LightningModule) -> Any:
        export = getattr(pl_module, "export", None)
        if not callable(export):
            rank_zero_warn(
                f"ExportStudent: {type(pl_module).__name__} has no `export(path)` method; nothing is exported."
            )
            return None
        return export

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not self._active(trainer):
            return
        self.last_path = None
        self._settled = False
        self._target = self.path(trainer)
        problem = _writable_folder_error(self._target.parent, self._target) if trainer.is_global_zero else None
        problem = trainer.strategy.broadcast(problem, src=0)  # every rank stops, not only rank zero
        if problem is not None:
            self._settled = True  # the error says it all: no second message from on_exception
            raise OSError(f"ExportStudent: {problem}")

    def _kept(self, target: Path) -> str:
        return f"{target} keeps its previous weights" if target.exists() else f"{target} was not written"

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active(trainer) or self._settled:
            return
        self._settled = True
        export = self._export_fn(pl_module)
        if export is None:
            return
        target = self._target or self.path(trainer)
        if trainer.global_step == 0:
            rank_zero_warn(
                "ExportStudent: the fit ran 0 training steps (e.g. max_epochs=0), so there are no trained weights:"
                f" nothing exported; {self._kept(target)}."
            )
            return
        if trainer.is_global_zero:
            self.last_path = Path(export(target))  # raises NonFiniteError, writing nothing, for NaN/Inf weights
            rank_zero_info(
                f"ExportStudent: wrote the trained weights ({trainer.global_step} steps) to {self.last_path}"
            )

    @override
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not self._active(trainer) or self._settled:
            return
        self._settled = True
        export = self._export_fn(pl_module)
        if export is None:
            return
        target = self._target or self.path(trainer)
        reason = f"the fit stopped with {type(exception).__name__}"
        if trainer.global_step == 0:
            rank_zero_warn(f"ExportStudent: {reason} before any training step: nothing exported; {self._kept(target)}.")
            return
        if not trainer.is_global_zero:
            return
        failed = failed_path(target)
        try:
            self.last_path = Path(export(failed))
        except Exception as error:  # never hide the exception that stopped the run
            rank_zero_warn(
                f"ExportStudent: {reason}; its weights could not be exported ({error}); {self._kept(target)}."
            )
            return
        rank_zero_warn(
            f"ExportStudent: {reason} after {trainer.global_step} training steps: the weights of that moment (not a"
            f" finished training) were written to {failed}; {self._kept(target)}."
        )
