"""Discover and list the shipped YAML recipes (``lightning-kd recipes``).

A recipe is a LightningCLI config (``recipes/<dataset>/<method>/<teacher>_<student>.yaml``) run with
``lightning-kd fit --config <recipe>``. Its comment header names the experiment; its first comment line is
the one-line description shown by :func:`list_recipes`.

Recipes live in the ``recipes/`` folder of the source tree (next to the ``lightning_kd`` package in a
checkout or an editable install). Set the ``LIGHTNING_KD_RECIPES`` environment variable to use another
folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_VAR", "Recipe", "describe", "find_recipe_dir", "format_recipes", "list_recipes"]

#: Environment variable naming the recipe folder.
ENV_VAR = "LIGHTNING_KD_RECIPES"


@dataclass(frozen=True)
class Recipe:
    """A recipe file and its one-line description.

    Attributes:
        path: The YAML file.
        name: Its path relative to the recipe folder, without ``.yaml`` (``cifar100/kd_z/resnet32x4_resnet8x4``).
        description: The first line of its comment header.
    """

    path: Path
    name: str
    description: str


def find_recipe_dir() -> Path | None:
    """The recipe folder: ``$LIGHTNING_KD_RECIPES``, else ``recipes/`` beside the package, else ``./recipes``.

    Returns:
        The first of these that is a directory, or ``None``.
    """
    candidates: list[Path] = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]).expanduser())
    candidates += [Path(__file__).resolve().parent.parent / "recipes", Path.cwd() / "recipes"]
    return next((c for c in candidates if c.is_dir()), None)


def describe(path: str | Path) -> str:
    """The one-line description of a recipe: the text of its first comment line (``""`` if none).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "r.yaml"
        >>> _ = path.write_text("# KD+Z, resnet32x4 -> resnet8x4.\\n#\\n# More.\\ntrainer: {}\\n")
        >>> describe(path)
        'KD+Z, resnet32x4 -> resnet8x4.'
    """
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("#"):
                return ""
            text = stripped.lstrip("#").strip()
            if text:
                return text
    return ""


def list_recipes(root: str | Path | None = None, filters: Sequence[str] = ()) -> list[Recipe]:
    """All recipes under ``root`` (default :func:`find_recipe_dir`), sorted by name.

    Args:
        root: The recipe folder.
        filters: Keep only recipes whose name contains every one of these substrings (case-insensitive).

    Returns:
        The recipes; empty when there is no recipe folder.
    """
    folder = Path(root) if root is not None else find_recipe_dir()
    if folder is None or not folder.is_dir():
        return []
    wanted = [f.lower() for f in filters]
    recipes = []
    for path in sorted(folder.rglob("*.yaml")):
        name = path.relative_to(folder).with_suffix("").as_posix()
        if all(w in name.lower() for w in wanted):
            recipes.append(Recipe(path=path, name=name, description=describe(path)))
    return recipes


def format_recipes(recipes: Iterable[Recipe], relative_to: str | Path | None = None) -> str:
    """One line per recipe: its path (relative to ``relative_to`` when inside it) and its description."""
    base = Path(relative_to).resolve() if relative_to is not None else None
    lines = []
    for recipe in recipes:
        path = recipe.path
        if base is not None:
            with contextlib.suppress(ValueError):  # outside `relative_to`: keep the path as it is
                path = path.resolve().relative_to(base)
        lines.append(f"{path.as_posix()}  {recipe.description}".rstrip())
    return "\n".join(lines)
