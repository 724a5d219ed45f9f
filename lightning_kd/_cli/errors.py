"""One-line errors for configs that fail to instantiate.

jsonargparse reports a constructor's exception wrapped in one "Does not validate against any of the Union
subtypes" error per nesting level, with the whole config repeated in each: 80-115 lines with the library's own
message somewhere in the middle. :class:`ConfigError` keeps that message (the innermost exception of the
``__cause__`` chain) and the config key it came from, for ``lightning-kd`` to print as one line.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from jsonargparse import Namespace

__all__ = ["ConfigError", "config_key", "innermost_error", "one_line"]

_ARGUMENT = re.compile(r"argument `([A-Za-z_][A-Za-z0-9_]*)`")


class ConfigError(Exception):
    """A config that could not be turned into objects: the library's message and the config key it concerns.

    Args:
        message: The message, on one line.
        key: The dotted config key (``model.init_args.loss.init_args.kd_weight``), or ``None`` if unknown.

    Example:
        >>> str(ConfigError("Expected argument `kd_weight` to be ...", "model.init_args.loss.init_args.kd_weight"))
        'Expected argument `kd_weight` to be ... (config key: model.init_args.loss.init_args.kd_weight)'
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message if key is None else f"{message} (config key: {key})")
        self.message = message
        self.key = key


def innermost_error(error: BaseException) -> BaseException:
    """The last exception of the ``raise ... from`` (``__cause__``) chain: the one first raised.

    Example:
        >>> try:
        ...     try:
        ...         raise ValueError("inner")
        ...     except ValueError as e:
        ...         raise RuntimeError("outer") from e
        ... except RuntimeError as outer:
        ...     innermost_error(outer)
        ValueError('inner')
    """
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


def one_line(error: BaseException) -> str:
    """The error's message with its whitespace (newlines included) collapsed; its type name when empty."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _raising_objects(error: BaseException) -> Iterator[object]:
    """The ``self`` of each ``__init__`` on the error's traceback, innermost first."""
    tb: TracebackType | None = error.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        if frame.f_code.co_name == "__init__" and "self" in frame.f_locals:
            yield frame.f_locals["self"]


def _import(class_path: str) -> object:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _class_keys(config: Any, prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(key, class)`` for every ``class_path`` entry of a config, nested ones and those in lists included."""
    if isinstance(config, Namespace):
        config = vars(config)
    if isinstance(config, Mapping):
        class_path = config.get("class_path")
        if isinstance(class_path, str):
            yield prefix, _import(class_path)
        for name, value in config.items():
            yield from _class_keys(value, f"{prefix}.{name}" if prefix else str(name))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            yield from _class_keys(value, f"{prefix}.{i}")


def _has_key(config: Any, key: str) -> bool:
    node = config
    for part in key.split("."):
        if isinstance(node, Namespace):
            node = vars(node)
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def config_key(error: BaseException, config: Any, groups: Mapping[str, type] | None = None) -> str | None:
    """The config key an instantiation error comes from.

    The object is found on the traceback: the innermost ``__init__`` whose class is the ``class_path`` of a
    config entry (or the class of one of ``groups``, the top-level keys without a ``class_path`` such as
    ``trainer`` and ``checkpoint``). When the message names an argument (`` argument `kd_weight` ``) that this
    entry has, the key goes down to it.

    Args:
        error: The innermost error (:func:`innermost_error`).
        config: The parsed config (a jsonargparse ``Namespace``).
        groups: Top-level keys and the class each one builds.

    Returns:
        A dotted key, or ``None`` when the error cannot be traced to a config entry.
    """
    entries = [(key, cls) for key, cls in _class_keys(config) if cls is not None]
    entries += list((groups or {}).items())
    prefix: str | None = None
    for obj in _raising_objects(error):
        prefix = next((key for key, cls in entries if type(obj) is cls), None)
        if prefix is not None:
            break
    match = _ARGUMENT.search(str(error))
    if prefix is None or match is None:
        return prefix
    argument = match.group(1)
    for candidate in (f"{prefix}.init_args.{argument}", f"{prefix}.{argument}"):
        if _has_key(config, candidate):
            return candidate
    return prefix
