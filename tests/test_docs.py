"""The documentation site: the generated recipes table and the API reference's coverage of the public names.

The site itself is built with warnings as errors by ``nox -s docs`` (``mkdocs build --strict``); the build test
here runs only where MkDocs and its plugins are installed (not in ``nox -s tests``, which installs ``.[test]``).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import lightning_kd

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RECIPES = ROOT / "lightning_kd" / "recipes"
GENERATOR = DOCS / "gen_recipes_table.py"
REFERENCE = DOCS / "reference"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass in it looks its module up while the class is created
    spec.loader.exec_module(module)
    return module


def _table_rows(markdown: str) -> list[list[str]]:
    """The body rows of every Markdown table of a page, as lists of cells."""
    rows = []
    for line in markdown.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "Method":  # a header row
            continue
        rows.append(cells)
    return rows


def _recipe_files(folder: Path) -> list[Path]:
    return sorted({*folder.rglob("*.yaml"), *folder.rglob("*.yml")})


def _run_generator(recipes: Path, output: Path) -> str:
    """``python docs/gen_recipes_table.py --recipes ... --output ...``, in this process (it imports the presets,
    hence torch, which a fresh interpreter would import again)."""
    assert _load(GENERATOR).main(["--recipes", str(recipes), "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8")


def test_recipes_table_has_one_row_per_recipe(tmp_path: Path) -> None:
    page = _run_generator(RECIPES, tmp_path / "recipes.md")
    files = _recipe_files(RECIPES)
    rows = _table_rows(page)
    assert files, "expected recipe files under lightning_kd/recipes/"
    assert len(rows) == len(files)
    shown = [row[-1].strip("`") for row in rows]
    assert sorted(shown) == sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in files)  # recipe ids
    # every row has the paper's number or the explicit dash, never an empty cell; the same for the teacher's
    assert all(
        re.fullmatch(r"\d{1,3}\.\d{1,3}|—", row[3]) and re.fullmatch(r"\d{1,3}\.\d{1,3}|—", row[5]) for row in rows
    )
    by_id = {row[-1].strip("`"): row for row in rows}
    assert by_id["cifar100/kd_z/resnet32x4_resnet8x4"][3:6] == [
        "76.62",
        "[LS] Table 2; teacher 79.42, student alone 72.50",
        "79.42",
    ]
    assert by_id["cifar100/wttm/wrn_40_2_MobileNetV2"][3] == "—"  # "not reported", whatever numbers follow
    assert by_id["cifar100/mlkd/vgg13_vgg8_same_schedule"][0] == "MLKD (same schedule)"


def test_recipes_table_reads_reported_accuracy_and_tolerates_missing_numbers(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    (recipes / "cifar100" / "kd_z").mkdir(parents=True)
    (recipes / "cifar100" / "kd_z" / "resnet32x4_resnet8x4.yaml").write_text(
        "# KD+Z on CIFAR-100: resnet32x4 -> resnet8x4 (reported top-1 76.62).\n"
        "#\n"
        "# Reported top-1: 76.62 ([LS] Table 2; teacher 79.42, student alone 72.50).\n"
        "# Teacher top-1: 79.42 (the shared checkpoint)\n"
        "model:\n  class_path: lightning_kd.DistillationModule\n"
        "  init_args: {student: resnet8x4, teacher: t.pth, teacher_arch: resnet32x4}\n"
    )
    (recipes / "cifar100" / "ttm").mkdir()
    (recipes / "cifar100" / "ttm" / "resnet32x4_wrn_16_2.yaml").write_text(
        "# TTM on CIFAR-100: resnet32x4 -> wrn_16_2.\n# Reported top-1: not reported for this pair.\n"
        "# gamma 0.2, the paper's value\ntrainer: {}\n"
    )
    (recipes / "digits" / "kd").mkdir(parents=True)
    (recipes / "digits" / "kd" / "resnet20_resnet8.yaml").write_text("trainer: [unbalanced\n")  # no header, bad YAML

    rows = _table_rows(_run_generator(recipes, tmp_path / "out.md"))

    assert len(rows) == 3
    by_id = {row[-1].strip("`"): row for row in rows}
    reported = by_id["cifar100/kd_z/resnet32x4_resnet8x4"]
    assert reported[1:6] == [
        "`resnet32x4`",
        "`resnet8x4`",
        "76.62",
        "[LS] Table 2; teacher 79.42, student alone 72.50",
        "79.42",
    ]
    assert by_id["cifar100/ttm/resnet32x4_wrn_16_2"][3] == "—"
    unreadable = by_id["digits/kd/resnet20_resnet8"]
    assert unreadable[1:4] == ["`resnet20`", "`resnet8`", "—"] and unreadable[5] == "—"


def test_recipes_page_is_up_to_date() -> None:
    generator = _load(GENERATOR)
    expected = generator.render(generator.collect(RECIPES))
    committed = (DOCS / "recipes.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/recipes.md is stale: run `python docs/gen_recipes_table.py`"


def _documented_modules() -> set[str]:
    directives = set()
    for page in REFERENCE.glob("*.md"):
        directives.update(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(encoding="utf-8"), flags=re.MULTILINE))
    return directives


@pytest.mark.parametrize("name", sorted(set(lightning_kd.__all__) - {"__version__"}))
def test_every_public_name_is_in_the_api_reference(name: str) -> None:
    obj = getattr(lightning_kd, name)
    assert inspect.isclass(obj) or inspect.isfunction(obj)
    module, qualname = obj.__module__, obj.__qualname__
    # The reference's index links the name to its documentation (a link that the strict build checks) ...
    index = (REFERENCE / "index.md").read_text(encoding="utf-8")
    assert f"[`{name}`][{module}.{qualname}]" in index
    # ... which exists because the defining module is rendered by a `::: module` directive, with the name public.
    assert module in _documented_modules()
    assert name in getattr(sys.modules[module], "__all__", [name])
    assert not any(part.startswith("_") for part in module.split("."))


def test_version_is_named_in_the_api_reference() -> None:
    assert "__version__" in lightning_kd.__all__
    assert "lightning_kd.__version__" in (REFERENCE / "index.md").read_text(encoding="utf-8")


def test_api_reference_pages_are_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in config, f"{page} is not in mkdocs.yml's nav"


def test_rest_markup_is_converted_for_the_site() -> None:
    pytest.importorskip("griffe")
    rst = _load(DOCS / "griffe_rst.py")
    table = ["==  ======", "a   b", "==  ======", "x   ``y``", "    more", "==  ======"]
    assert rst._tables(table) == ["| a | b |", "|---|---|", "| x | ``y`` more |", ""]
    assert rst._math_blocks(["Text:", "", ".. math:: a =", "    b", "", "after"]) == [
        "Text:",
        "",
        "$$",
        "a = b",
        "$$",
        "",
        "after",
    ]
    literal = rst._literal_blocks(["Call it::", "", "    f(x)", "", "Done."])
    assert literal == ["Call it:", "", "```python", "f(x)", "```", "", "Done."]


def test_figure_gallery_shows_the_figures_that_exist() -> None:
    hooks = _load(DOCS / "hooks.py")
    gallery = hooks.figure_gallery(["img/zz_extra.png", "img/figure5_mean_std.png", "img/accuracy.png"])
    order = [gallery.index(f"(img/{name})") for name in ("accuracy.png", "figure5_mean_std.png", "zz_extra.png")]
    assert order == sorted(order)
    assert "zz extra" in gallery  # an unknown figure gets its file name as caption
    assert "![" not in hooks.figure_gallery([])  # nothing there: a note, no broken image link


@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    """The whole site (also built by ``nox -s docs``); skipped where MkDocs is not installed."""
    for plugin in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(plugin)
    test_recipes_page_is_up_to_date()  # the build's hook would otherwise rewrite docs/recipes.md in the tree
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "concepts" / "index.html").is_file()
    assert (tmp_path / "reference" / "index.html").is_file()
