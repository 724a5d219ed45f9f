"""``lightning-kd recipes``: list the shipped recipes, print one (``show``), copy one out for editing (``cp``)."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from lightning_kd.recipes import find_recipe, find_recipe_dir, format_recipes, list_recipes

__all__ = ["recipes_main"]

_USAGE = """\
lightning-kd recipes [FILTER ...] [--root DIR]   list the recipes whose id contains every FILTER
lightning-kd recipes show ID [--root DIR]        print a recipe, its comment header included
lightning-kd recipes cp ID [DEST] [--force]      copy a recipe to DEST (default: ./<name>.yaml) to edit it"""


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--root", default=None, help="The recipe folder (default: the recipes shipped in the package).")
    return parser


def _root(arg: str | None) -> Path | None:
    return Path(arg) if arg else find_recipe_dir()


def _find(recipe: str, root: Path | None) -> Path | None:
    try:
        return find_recipe(recipe, root)
    except ValueError as error:
        print(f"lightning-kd recipes: error: {error}", file=sys.stderr)
        return None


def _list(argv: Sequence[str]) -> int:
    parser = _parser("lightning-kd recipes", "List the shipped recipes (run one with `lightning-kd fit --config ID`).")
    parser.usage = _USAGE
    parser.add_argument("filters", nargs="*", help="Keep recipes whose id contains all of these substrings.")
    args = parser.parse_args(list(argv))
    root = _root(args.root)
    if root is None:
        print("lightning-kd recipes: error: no recipe folder found (check LIGHTNING_KD_RECIPES).", file=sys.stderr)
        return 1
    recipes = list_recipes(root, args.filters)
    if not recipes:
        print(f"lightning-kd recipes: no recipe in {root} matches {args.filters}.", file=sys.stderr)
        return 1
    print(format_recipes(recipes))
    return 0


def _show(argv: Sequence[str]) -> int:
    parser = _parser("lightning-kd recipes show", "Print a recipe, its comment header included.")
    parser.add_argument("id", help="The recipe id, e.g. cifar100/kd_z/resnet32x4_resnet8x4.")
    args = parser.parse_args(list(argv))
    path = _find(args.id, _root(args.root))
    if path is None:
        return 2
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


def _cp(argv: Sequence[str]) -> int:
    parser = _parser("lightning-kd recipes cp", "Copy a recipe out of the package, to edit it.")
    parser.add_argument("id", help="The recipe id, e.g. cifar100/kd_z/resnet32x4_resnet8x4.")
    parser.add_argument("dest", nargs="?", default=None, help="A file or an existing folder (default: ./<name>.yaml).")
    parser.add_argument("--force", action="store_true", help="Overwrite DEST if it exists.")
    args = parser.parse_args(list(argv))
    path = _find(args.id, _root(args.root))
    if path is None:
        return 2
    dest = Path(args.dest) if args.dest else Path(path.name)
    if dest.is_dir():
        dest = dest / path.name
    if dest.exists() and not args.force:
        print(f"lightning-kd recipes cp: error: {dest} exists; pass --force to overwrite it.", file=sys.stderr)
        return 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest)
    print(f"Copied {args.id} to {dest}. Run it with: lightning-kd fit --config {dest}")
    return 0


def recipes_main(argv: Sequence[str]) -> int:
    """Run ``lightning-kd recipes [show|cp] ...``; return the exit status."""
    argv = list(argv)
    if argv[:1] == ["show"]:
        return _show(argv[1:])
    if argv[:1] == ["cp"]:
        return _cp(argv[1:])
    return _list(argv)
