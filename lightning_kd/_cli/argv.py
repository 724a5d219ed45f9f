"""Command-line rewriting done before LightningCLI parses: recipe ids as ``--config``, the ``--traceback`` flag."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lightning_kd.recipes import find_recipe

__all__ = ["pop_flag", "resolve_config_args", "resolve_config_value"]

_CONFIG_OPTIONS = ("--config", "-c")
# What a recipe id can look like. Anything else (a YAML/JSON string such as "{trainer: {max_epochs: 1}}", which
# jsonargparse accepts as a config too) is left to jsonargparse.
_ID_LIKE = re.compile(r"^[\w.\-/\\]+$")


def resolve_config_value(value: str) -> str:
    """An existing file as it is; else a recipe id's file; else a YAML string as it is.

    Raises:
        ValueError: If ``value`` looks like a recipe id or a path but is neither (the message lists the closest
            recipe ids).

    Example:
        >>> resolve_config_value("digits/kd_z/resnet20_resnet8").endswith("resnet20_resnet8.yaml")
        True
        >>> resolve_config_value("{trainer: {max_epochs: 1}}")
        '{trainer: {max_epochs: 1}}'
    """
    if Path(value).expanduser().is_file() or not _ID_LIKE.match(value):
        return value
    return str(find_recipe(value))


def resolve_config_args(args: Sequence[str]) -> list[str]:
    """``args`` with the value of every ``--config``/``-c`` (``--config X`` or ``--config=X``) resolved by
    :func:`resolve_config_value`, so a recipe id works wherever a config path does.

    Example:
        >>> args = resolve_config_args(["fit", "--config=digits/kd_z/resnet20_resnet8", "--trainer.max_epochs=1"])
        >>> args[1]  # doctest: +ELLIPSIS
        '--config=...resnet20_resnet8.yaml'
    """
    out = list(args)
    for i, arg in enumerate(out):
        if arg in _CONFIG_OPTIONS and i + 1 < len(out):
            out[i + 1] = resolve_config_value(out[i + 1])
        else:
            for option in _CONFIG_OPTIONS:
                if arg.startswith(option + "="):
                    out[i] = f"{option}={resolve_config_value(arg[len(option) + 1 :])}"
    return out


def pop_flag(args: list[str], flag: str) -> bool:
    """Remove every ``flag`` from ``args`` (in place); whether there was one.

    Example:
        >>> args = ["fit", "--traceback", "--config", "x.yaml"]
        >>> pop_flag(args, "--traceback"), args
        (True, ['fit', '--config', 'x.yaml'])
    """
    found = flag in args
    args[:] = [a for a in args if a != flag]
    return found
