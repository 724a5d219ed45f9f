"""The shipped YAML recipes: find them, list them, and resolve a recipe id to its file.

A recipe is a LightningCLI config, ``<dataset>/<method>/<name>.yaml`` under this package (package data, so
a wheel install has them all), run with ``lightning-kd fit --config <id or path>``. Its **id** is its path
under the recipe folder without ``.yaml``, e.g. ``cifar100/kd_z/resnet32x4_resnet8x4``; the old spelling
``<dataset>/maxlogit/<name>`` is accepted for ``<dataset>/maxlogit_z/<name>``. Its comment header names the
experiment: the first comment line is the one-line description shown by :func:`list_recipes`, and a line
``# Teacher top-1: <float> (<source>)`` gives the accuracy of the teacher checkpoint the recipe expects
(:func:`teacher_top1`, read by ``lightning-kd check-teacher``).

Set the ``LIGHTNING_KD_RECIPES`` environment variable to use another recipe folder.

Example:
    >>> find_recipe("digits/kd_z/resnet20_resnet8").name
    'resnet20_resnet8.yaml'
    >>> recipe_id(find_recipe("digits/kd_z/resnet20_resnet8.yaml"))
    'digits/kd_z/resnet20_resnet8'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from lightning_kd._validation import close_matches

__all__ = [
    "ALIASES",
    "ENV_VAR",
    "Recipe",
    "describe",
    "find_recipe",
    "find_recipe_dir",
    "format_recipes",
    "list_recipes",
    "recipe_id",
    "teacher_top1",
]

#: Environment variable naming the recipe folder.
ENV_VAR = "LIGHTNING_KD_RECIPES"

#: Old method folder names, accepted in recipe ids: ``<dataset>/<old>/<name>`` means ``<dataset>/<new>/<name>``.
ALIASES: dict[str, str] = {"maxlogit": "maxlogit_z"}

_TEACHER_TOP1 = re.compile(r"^#\s*Teacher top-1:\s*([-+]?\d+(?:\.\d*)?)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class Recipe:
    """A recipe file and its one-line description.

    Attributes:
        path: The YAML file.
        name: Its id: the path relative to the recipe folder, without ``.yaml``
            (``cifar100/kd_z/resnet32x4_resnet8x4``).
        description: The first line of its comment header.
    """

    path: Path
    name: str
    description: str


def find_recipe_dir() -> Path | None:
    """The recipe folder: ``$LIGHTNING_KD_RECIPES`` if set, else the recipes shipped in this package.

    Returns:
        That folder, or ``None`` if it is not a directory.
    """
    # A regular package installed as files (pip, editable or not) is a real directory; zip imports are not
    # supported (recipes are handed to LightningCLI as paths).
    folder = Path(os.environ[ENV_VAR]).expanduser() if os.environ.get(ENV_VAR) else Path(str(files(__name__)))
    return folder if folder.is_dir() else None


def describe(path: str | Path) -> str:
    """The one-line description of a recipe: the text of its first comment line (``""`` if none).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "r.yaml"
        >>> _ = path.write_text("# KD+Z, resnet32x4 -> resnet8x4.\\n#\\n# More.\\ntrainer: {}\\n")
        >>> describe(path)
        'KD+Z, resnet32x4 -> resnet8x4.'
    """
    for line in _header(path):
        text = line.lstrip("#").strip()
        if text:
            return text
    return ""


def teacher_top1(path: str | Path) -> tuple[float, str] | None:
    """The teacher accuracy a recipe's header expects: its ``# Teacher top-1: <float> (<source>)`` line.

    Returns:
        ``(top-1 in percent, source)``, or ``None`` when the header has no such line.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "r.yaml"
        >>> _ = path.write_text("# KD.\\n# Teacher top-1: 79.42 (CRD's shared checkpoints)\\ntrainer: {}\\n")
        >>> teacher_top1(path)
        (79.42, "CRD's shared checkpoints")
    """
    for line in _header(path):
        match = _TEACHER_TOP1.match(line)
        if match:
            return float(match.group(1)), match.group(2).strip()
    return None


def _header(path: str | Path) -> list[str]:
    """The comment lines before the first YAML line (blank lines skipped), stripped."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if not stripped:
                continue
            if not stripped.startswith("#"):
                break
            lines.append(stripped)
    return lines


def list_recipes(root: str | Path | None = None, filters: Sequence[str] = ()) -> list[Recipe]:
    """All recipes under ``root`` (default :func:`find_recipe_dir`), sorted by id.

    Args:
        root: The recipe folder.
        filters: Keep only recipes whose id contains every one of these substrings (case-insensitive).

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


def format_recipes(recipes: Iterable[Recipe]) -> str:
    """One line per recipe: its id, padded to a column, two spaces, and its description."""
    recipes = list(recipes)
    width = max((len(r.name) for r in recipes), default=0)
    return "\n".join(f"{r.name:<{width}}  {r.description}".rstrip() for r in recipes)


def _candidate_ids(recipe: str) -> list[str]:
    """The ids ``recipe`` may mean: as written (without ``.yaml`` and a source-tree prefix), then with an alias."""
    name = recipe.strip().replace("\\", "/").removesuffix(".yaml")
    for prefix in ("lightning_kd/recipes/", "recipes/"):  # a path of the source tree, old or new layout
        name = name.removeprefix(prefix)
    parts = name.split("/")
    if len(parts) == 3 and parts[1] in ALIASES:
        return [name, "/".join([parts[0], ALIASES[parts[1]], parts[2]])]
    return [name]


def find_recipe(recipe: str, root: str | Path | None = None) -> Path:
    """The file of a recipe id (``cifar100/kd_z/resnet32x4_resnet8x4``; ``.yaml`` and a leading ``recipes/``
    are accepted, and the old method names of :data:`ALIASES`).

    Args:
        recipe: The recipe id.
        root: The recipe folder (default :func:`find_recipe_dir`).

    Raises:
        ValueError: If no recipe has this id; the message lists the closest ids.
    """
    folder = Path(root) if root is not None else find_recipe_dir()
    names = _candidate_ids(recipe)
    for name in names:
        path = folder / f"{name}.yaml" if folder is not None and name and ".." not in name.split("/") else None
        if path is not None and path.is_file():
            return path
    ids = [r.name for r in list_recipes(folder)] if folder is not None else []
    name = names[-1]
    close = close_matches(name, ids, n=5, cutoff=0.6) or [i for i in ids if name and name.split("/")[-1] in i][:5]
    hint = f" Closest: {', '.join(close)}." if close else ""
    where = f"the recipe folder {folder}" if folder is not None else "no recipe folder"
    raise ValueError(
        f"Expected a recipe id (see `lightning-kd recipes`) or an existing file, but got {recipe!r}: no such recipe"
        f" in {where}.{hint}"
    )


def recipe_id(path: str | Path, root: str | Path | None = None) -> str | None:
    """The id of a recipe file under ``root`` (default :func:`find_recipe_dir`), or ``None`` if it is elsewhere."""
    folder = Path(root) if root is not None else find_recipe_dir()
    if folder is None:
        return None
    try:
        return Path(path).resolve().relative_to(folder.resolve()).with_suffix("").as_posix()
    except ValueError:
        return None
