"""Checks of a parsed config before its classes are built: unsafe teacher loading, checkpoint settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["check_checkpoint_settings", "unsafe_teacher_loads", "warn_unsafe_teacher_loads"]


def _entries(config: Any, prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping of a config (``init_args`` of nested classes, list items included), with its dotted key."""
    if isinstance(config, Namespace):
        config = vars(config)
    if isinstance(config, Mapping):
        yield prefix, config
        for name, value in config.items():
            yield from _entries(value, f"{prefix}.{name}" if prefix else str(name))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            yield from _entries(value, f"{prefix}.{i}")


def unsafe_teacher_loads(config: Any) -> list[tuple[str, object]]:
    """``(config key, teacher)`` for every ``teacher_weights_only`` set to false in ``config``.

    Example:
        >>> config = {"model": {"init_args": {"teacher": "t.pth", "teacher_weights_only": False}}}
        >>> unsafe_teacher_loads(config)
        [('model.init_args.teacher_weights_only', 't.pth')]
    """
    found = []
    for key, entry in _entries(config):
        if entry.get("teacher_weights_only") is False:
            found.append((f"{key}.teacher_weights_only" if key else "teacher_weights_only", entry.get("teacher")))
    return found


def warn_unsafe_teacher_loads(config: Any) -> None:
    """Warn (on rank zero) for each teacher file a config loads with ``torch.load(weights_only=False)``."""
    for key, teacher in unsafe_teacher_loads(config):
        what = f"the teacher file {teacher}" if isinstance(teacher, str) else "the teacher file"
        rank_zero_warn(
            f"`{key}` is false: {what} is loaded with torch.load(weights_only=False), which unpickles it and can"
            " run any code stored in it. Use this only for a file you trust."
        )


def check_checkpoint_settings(config: Any) -> None:
    """Refuse ``checkpoint.save_last``: ``last.ckpt`` belongs to the ``last_checkpoint`` callback.

    Raises:
        ValueError: If ``checkpoint.save_last`` is set.
    """
    checkpoint = config.get("checkpoint") if isinstance(config, Namespace) else None
    save_last = checkpoint.get("save_last") if isinstance(checkpoint, Namespace) else None
    if save_last:
        raise ValueError(
            f"Expected `checkpoint.save_last` to be unset or false, but got {save_last!r}: lightning-kd writes"
            " last.ckpt at the end of every epoch with its `last_checkpoint` callback (the best-epoch `checkpoint`"
            " would write it only on a new best). Remove `checkpoint.save_last` from the config."
        )
