"""Write ``docs/recipes.md``: one table row per shipped recipe, with the paper's reported accuracy.

A recipe is ``lightning_kd/recipes/<dataset>/<method>/<teacher>_<student>.yaml`` (package data), named on the
command line by its id, the path without ``.yaml`` (``cifar100/kd_z/resnet32x4_resnet8x4``): a LightningCLI
config whose leading ``#`` comment lines (its header) describe the experiment. The row shows:

* the method (the ``<method>`` folder, a preset name, shown by the preset's display name) and the dataset;
* teacher and student, read from the YAML (``model.init_args.teacher_arch`` / ``student``), else from the
  file name;
* the paper's reported top-1 accuracy, read from the header's ``Reported top-1:`` line: its first number
  (``77.11`` or ``77.11%``) and the parenthesis after it as the source; ``—`` when the header has no such
  line or it names no number ("not reported");
* the teacher's published top-1, from the header's machine-readable ``Teacher top-1: <float> (<source>)`` line;
* the recipe's id.

One table per dataset folder.

Run it from anywhere (``python docs/gen_recipes_table.py``); ``nox -s docs`` runs it before ``mkdocs build``,
and the MkDocs hook ``docs/hooks.py`` runs it on every build. The file is rewritten only when its content
changes. ``--recipes`` and ``--output`` choose other paths (the tests use them).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPES = ROOT / "lightning_kd" / "recipes"
DEFAULT_OUTPUT = ROOT / "docs" / "recipes.md"
MISSING = "—"

#: Display names of the folders that are not methods, in table order (first); methods follow in preset order.
NON_METHODS = {
    "teachers": "Teacher (CE)",
    "teacher": "Teacher (CE)",
    "scratch": "Student alone (CE)",
    "baseline": "Student alone (CE)",
}
#: The file-name suffix of the MLKD variants trained on the other methods' schedule.
SAME_SCHEDULE = "_same_schedule"


def _method_names() -> dict[str, str]:
    """Folder name -> display name: the non-method folders, then every preset (``lightning_kd.presets``)."""
    names = dict(NON_METHODS)
    try:
        from lightning_kd.presets import ALIASES, PRESETS
    except ImportError:  # the package is not importable: folders are shown as named
        return names
    names.update({name: preset.display_name for name, preset in PRESETS.items()})
    names.update({alias: PRESETS[name].display_name for alias, name in ALIASES.items() if alias not in names})
    return names


METHODS = _method_names()

#: Section titles of the dataset folders, in page order; other folders follow, titled by their name.
DATASETS = {
    "cifar100": "CIFAR-100",
    "imagenet": "ImageNet",
    "vit": "Vision transformers (CIFAR-100)",
    "digits": "scikit-learn digits (offline)",
    "fashion_mnist": "Fashion-MNIST",
}

_REPORTED_LINE = re.compile(r"^reported\b", re.IGNORECASE)
_NO_NUMBER = re.compile(r"not reported|no published|unpublished", re.IGNORECASE)
_TEACHER_LINE = re.compile(r"^Teacher top-1: (\d+(?:\.\d+)?) \(([^()]*)\)$")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}\.\d{1,3})\s*%?")
_SOURCE = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class Row:
    """One recipe's row of the table."""

    path: str
    dataset: str
    method_dir: str
    method: str
    teacher: str
    student: str
    reported: str
    source: str
    teacher_top1: str
    description: str


def header_lines(text: str) -> list[str]:
    """The leading comment lines of a YAML file, without their ``#`` (blank lines skipped)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        lines.append(stripped.lstrip("#").strip())
    return lines


def reported_accuracy(header: list[str]) -> tuple[str, str]:
    """The paper's reported top-1 in a recipe header, and where it comes from; ``("—", "")`` if none.

    Only the ``Reported ...:`` line counts (other lines hold hyperparameters, not accuracies); the number is its
    first decimal, the source the parenthesis after it.

    Example:
        >>> reported_accuracy(["KD+Z: resnet32x4 -> resnet8x4.", "Reported top-1: 76.62 ([LS] Table 2)."])
        ('76.62', '[LS] Table 2')
        >>> reported_accuracy(["TTM: resnet32x4 -> wrn_16_2.", "Reported top-1: not reported for this pair.",
        ...                    "gamma 0.2, as in the paper's appendix"])
        ('—', '')
        >>> reported_accuracy(["No number here"])
        ('—', '')
    """
    for line in header:
        if not _REPORTED_LINE.match(line):
            continue
        if _NO_NUMBER.search(line):
            return MISSING, ""
        match = _NUMBER.search(line)
        if match:
            source = _SOURCE.search(line, match.end())
            return match.group(1), source.group(1).strip() if source else ""
    return MISSING, ""


def teacher_accuracy(header: list[str]) -> str:
    """The teacher's published top-1 of a header's ``Teacher top-1: <float> (<source>)`` line, else ``"—"``.

    Example:
        >>> teacher_accuracy(["Teacher top-1: 79.42 ([LS] Tables 1-2)"]), teacher_accuracy(["Teacher: none"])
        ('79.42', '—')
    """
    for line in header:
        match = _TEACHER_LINE.match(line)
        if match:
            return match.group(1)
    return MISSING


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _models(config: Any, stem: str) -> tuple[str, str]:
    """Teacher and student architecture names: from the YAML when it names them, else from the file name."""
    init = _get(config, "model", "init_args") or {}
    student = init.get("student") if isinstance(init.get("student"), str) else None
    teacher = init.get("teacher_arch") if isinstance(init.get("teacher_arch"), str) else None
    if student is None and isinstance(init.get("model"), str):  # a ClassifierModule recipe: no teacher
        return MISSING, init["model"]
    if teacher is None or student is None:
        guess_teacher, _, guess_student = stem.partition("_")
        teacher = teacher or guess_teacher or MISSING
        student = student or guess_student or MISSING
    return teacher, student


def read_recipe(path: Path, recipes: Path) -> Row:
    """The table row of one recipe file."""
    text = path.read_text(encoding="utf-8")
    header = header_lines(text)
    try:
        import yaml

        config = yaml.safe_load(text)
    except Exception:  # a YAML that does not parse still gets its row, from its path and header
        config = None
    relative = path.relative_to(recipes)
    parts = relative.parts
    dataset = parts[0] if len(parts) >= 3 else MISSING
    method_dir = parts[-2] if len(parts) >= 2 else MISSING
    stem = path.stem.removesuffix(SAME_SCHEDULE)
    teacher, student = _models(config, stem)
    reported, source = reported_accuracy(header)
    method = METHODS.get(method_dir, method_dir)
    if path.stem.endswith(SAME_SCHEDULE):
        method += " (same schedule)"
    return Row(
        path=relative.with_suffix("").as_posix(),
        dataset=dataset,
        method_dir=method_dir,
        method=method,
        teacher=teacher,
        student=student,
        reported=reported,
        source=source,
        teacher_top1=teacher_accuracy(header),
        description=header[0] if header else "",
    )


def collect(recipes: Path) -> list[Row]:
    """Rows of every ``*.yaml`` / ``*.yml`` under ``recipes``, sorted by path."""
    if not recipes.is_dir():
        return []
    files = sorted({*recipes.rglob("*.yaml"), *recipes.rglob("*.yml")})
    return [read_recipe(path, recipes) for path in files]


def _method_order(row: Row) -> tuple[int, bool, str]:
    order = list(METHODS)
    rank = order.index(row.method_dir) if row.method_dir in order else len(order)
    return (rank, row.path.endswith(SAME_SCHEDULE), row.path)


def _cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ").strip() or MISSING


def _code(text: str) -> str:
    return MISSING if text == MISSING else f"`{_cell(text)}`"


def _dataset_order(name: str) -> tuple[int, str]:
    order = list(DATASETS)
    return (order.index(name) if name in order else len(order), name)


def render(rows: list[Row]) -> str:
    """The Markdown page: an introduction, then one table per dataset (one row per recipe)."""
    out = [
        "---",
        "hide:",
        "  - navigation  # the tables need the width",
        "---",
        "",
        "# Recipes",
        "",
        "<!-- Generated by docs/gen_recipes_table.py from the YAML files in lightning_kd/recipes/. Do not edit by",
        "     hand: run `python docs/gen_recipes_table.py` (nox -s docs and every mkdocs build do it). -->",
        "",
        "A recipe is a LightningCLI config, one YAML per experiment, installed with the package. It is named by its "
        "id, `<dataset>/<method>/<teacher>_<student>` (the YAML's path under `lightning_kd/recipes/`, without "
        "`.yaml`), wherever a config path is accepted:",
        "",
        "```bash",
        "lightning-kd recipes                 # all of them: id and one-line description",
        "lightning-kd recipes kd_z resnet8x4  # those whose id contains every word",
        "lightning-kd recipes show cifar100/kd_z/resnet32x4_resnet8x4      # the YAML with its comment header",
        "lightning-kd recipes cp cifar100/kd_z/resnet32x4_resnet8x4 my.yaml  # a copy to edit",
        "lightning-kd check-teacher --config cifar100/kd_z/resnet32x4_resnet8x4  # the teacher's accuracy first",
        "lightning-kd fit --config cifar100/kd_z/resnet32x4_resnet8x4",
        "```",
        "",
        "and override any key on the command line (`--model.init_args.teacher=/ckpts/resnet32x4.pth`, "
        "`--data.init_args.root=/datasets`, `--trainer.devices=4`): see [CLI and recipes](user-guide/cli.md). "
        "Each YAML's comment header gives the paper, the schedule, the files it needs and the commands; a GPU is "
        "used automatically when one is present.",
        "",
        "**Paper top-1** is the top-1 accuracy (%) that the paper reports for that teacher and student, as the "
        "recipe's comment header names it, with the header's source in the next column (`—`: the header names "
        "no number, e.g. a pair the paper did not run, or an offline dataset without a published result). It is "
        "the paper's number, not a result of this library: measured results go on the [Results](results.md) page. "
        "**Teacher top-1** is the published accuracy of the teacher checkpoint the recipe expects, which "
        "`lightning-kd check-teacher` compares with yours. The MLKD rows marked *same schedule* train for 240 "
        "epochs with standard augmentation, the schedule of the other methods, next to MLKD's own 480-epoch recipe.",
        "",
    ]
    if not rows:
        out += ["!!! note", "    No recipe files were found when this page was generated.", ""]
        return "\n".join(out)
    out += [f"{len(rows)} recipes.", ""]
    datasets = sorted({r.dataset for r in rows}, key=_dataset_order)
    for dataset in datasets:
        group = sorted((r for r in rows if r.dataset == dataset), key=_method_order)
        out += [
            f"## {DATASETS.get(dataset, dataset)}",
            "",
            "| Method | Teacher | Student (trained network) | Paper top-1 (%) | Source | Teacher top-1 (%) | Recipe |",
            "|---|---|---|---:|---|---:|---|",
        ]
        out += [
            f"| {_cell(r.method)} | {_code(r.teacher)} | {_code(r.student)} | {_cell(r.reported)} | {_cell(r.source)}"
            f" | {_cell(r.teacher_top1)} | `{_cell(r.path)}` |"
            for r in group
        ]
        out.append("")
    return "\n".join(out)


def write(recipes: Path = DEFAULT_RECIPES, output: Path = DEFAULT_OUTPUT) -> bool:
    """Write the page if its content changed; return whether the file was written."""
    content = render(collect(recipes))
    if output.is_file() and output.read_text(encoding="utf-8") == content:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(content, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=Path, default=DEFAULT_RECIPES, help="the recipe folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file to write")
    args = parser.parse_args(argv)
    rows = collect(args.recipes)
    written = write(args.recipes, args.output)
    print(f"{args.output}: {len(rows)} recipes ({'written' if written else 'unchanged'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
