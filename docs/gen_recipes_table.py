"""Write ``docs/recipes.md``: one table row per recipe YAML under ``recipes/``, with the paper's reported accuracy.

A recipe is ``recipes/<dataset>/<method>/<teacher>_<student>.yaml``, a LightningCLI config whose leading
``#`` comment lines (its header) describe the experiment. The row shows:

* the method (the ``<method>`` folder) and the dataset;
* teacher and student, read from the YAML (``model.init_args.teacher_arch`` / ``student``), else from the
  file name;
* the paper's reported top-1 accuracy, read from the header: the first number (``77.11`` or ``77.11%``) of
  its ``Reported ...:`` line (else of a line that mentions the paper or a reported/published result), and the
  parenthesis after it as the source; ``—`` when the header names none;
* the recipe's path.

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
DEFAULT_RECIPES = ROOT / "recipes"
DEFAULT_OUTPUT = ROOT / "docs" / "recipes.md"
MISSING = "—"

#: Display names of the method folders, in table order; a folder not listed here follows, shown as named.
METHODS = {
    "teachers": "Teacher (CE)",
    "teacher": "Teacher (CE)",
    "scratch": "Student alone (CE)",
    "baseline": "Student alone (CE)",
    "kd": "KD",
    "kd_z": "KD + Z-score",
    "ctkd": "CTKD",
    "ctkd_z": "CTKD + Z-score",
    "dkd": "DKD",
    "dkd_z": "DKD + Z-score",
    "mlkd": "MLKD",
    "mlkd_z": "MLKD + Z-score",
    "maxlogit": "KD + Z-score + max-logit temperature",
    "max_logit": "KD + Z-score + max-logit temperature",
    "dist": "DIST",
    "ttm": "TTM",
    "wttm": "WTTM",
}

#: Section titles of the dataset folders, in page order; other folders follow, titled by their name.
DATASETS = {
    "cifar100": "CIFAR-100",
    "imagenet": "ImageNet",
    "vit": "Vision transformers (CIFAR-100)",
    "digits": "scikit-learn digits (offline)",
    "fashion_mnist": "Fashion-MNIST",
}

_REPORTED_LINE = re.compile(r"^reported\b", re.IGNORECASE)
_ACCURACY_LINE = re.compile(r"paper|reported|published", re.IGNORECASE)
_NO_NUMBER = re.compile(r"not reported|no published|unpublished", re.IGNORECASE)
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

    A ``Reported ...:`` line is read first, else any line that mentions the paper or a reported/published
    result; the number is the first decimal on that line, the source the parenthesis after it.

    Example:
        >>> reported_accuracy(["KD+Z: resnet32x4 -> resnet8x4.", "Reported top-1: 76.62 ([LS] Table 2)."])
        ('76.62', '[LS] Table 2')
        >>> reported_accuracy(["TTM: resnet32x4 -> wrn_16_2.", "Reported top-1: not reported for this pair."])
        ('—', '')
        >>> reported_accuracy(["No number here"])
        ('—', '')
    """
    candidates = [line for line in header if _REPORTED_LINE.match(line)]
    candidates += [line for line in header if _ACCURACY_LINE.search(line) and line not in candidates]
    for line in candidates:
        if _NO_NUMBER.search(line):
            continue
        match = _NUMBER.search(line)
        if match:
            source = _SOURCE.search(line, match.end())
            return match.group(1), source.group(1).strip() if source else ""
    return MISSING, ""


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
    teacher, student = _models(config, path.stem)
    reported, source = reported_accuracy(header)
    return Row(
        path=(Path(recipes.name) / relative).as_posix(),
        dataset=dataset,
        method_dir=method_dir,
        method=METHODS.get(method_dir, method_dir),
        teacher=teacher,
        student=student,
        reported=reported,
        source=source,
        description=header[0] if header else "",
    )


def collect(recipes: Path) -> list[Row]:
    """Rows of every ``*.yaml`` / ``*.yml`` under ``recipes``, sorted by path."""
    if not recipes.is_dir():
        return []
    files = sorted({*recipes.rglob("*.yaml"), *recipes.rglob("*.yml")})
    return [read_recipe(path, recipes) for path in files]


def _method_order(row: Row) -> tuple[int, str]:
    order = list(METHODS)
    return (order.index(row.method_dir) if row.method_dir in order else len(order), row.path)


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
        "<!-- Generated by docs/gen_recipes_table.py from the YAML files in recipes/. Do not edit by hand:",
        "     run `python docs/gen_recipes_table.py` (nox -s docs and every mkdocs build do it). -->",
        "",
        "A recipe is a LightningCLI config, one YAML per experiment: "
        "`recipes/<dataset>/<method>/<teacher>_<student>.yaml`. List and run them with",
        "",
        "```bash",
        "lightning-kd recipes                 # all of them",
        "lightning-kd recipes kd_z resnet8x4  # those whose path contains every word",
        "lightning-kd fit --config recipes/cifar100/kd_z/resnet32x4_resnet8x4.yaml",
        "```",
        "",
        "and override any key on the command line (`--model.init_args.teacher=/ckpts/resnet32x4.pth`, "
        "`--data.init_args.root=/datasets`, `--trainer.devices=4`): see [CLI and recipes](user-guide/cli.md). "
        "Each YAML's comment header gives the paper, the schedule and the command.",
        "",
        "**Paper top-1** is the top-1 accuracy (%) that the paper reports for that teacher and student, as the "
        "recipe's comment header names it, with the header's source in the next column (`—`: the header names "
        "no number, e.g. a pair the paper did not run, or an offline dataset without a published result). It is "
        "the paper's number, not a result of this library: measured results go on the [Results](results.md) page.",
        "",
    ]
    if not rows:
        out += ["!!! note", "    No recipe files were found in `recipes/` when this page was generated.", ""]
        return "\n".join(out)
    out += [f"{len(rows)} recipes.", ""]
    datasets = sorted({r.dataset for r in rows}, key=_dataset_order)
    for dataset in datasets:
        group = sorted((r for r in rows if r.dataset == dataset), key=_method_order)
        out += [
            f"## {DATASETS.get(dataset, dataset)}",
            "",
            "| Method | Teacher | Student (trained network) | Paper top-1 (%) | Source | Recipe |",
            "|---|---|---|---:|---|---|",
        ]
        out += [
            f"| {_cell(r.method)} | {_code(r.teacher)} | {_code(r.student)} | {_cell(r.reported)} | {_cell(r.source)}"
            f" | `{_cell(r.path)}` |"
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
