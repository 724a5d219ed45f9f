"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``).

* Before every build, regenerate ``docs/recipes.md`` from the recipes in ``lightning_kd/recipes/`` with
  ``docs/gen_recipes_table.py``, so a plain ``mkdocs build`` or ``mkdocs serve`` never shows a stale table.
  The file is rewritten only when its content changes, so ``mkdocs serve`` does not rebuild in a loop.
* On a page holding the marker ``<!-- DEMO-FIGURES ... -->``, show the demo's figures that exist in
  ``docs/img/`` (known ones first, with captions, then any other ``.png`` there). A figure that is not there is
  simply not shown, so the strict build never fails on a missing image.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

_log = logging.getLogger("mkdocs.hooks.docs")
_SCRIPT = Path(__file__).resolve().parent / "gen_recipes_table.py"
_MARKER = "<!-- DEMO-FIGURES"

#: Captions of the figures ``lightning-kd demo`` and ``lightning-kd analyze`` write, in page order.
FIGURES = {
    "accuracy.png": "Best and last test accuracy per method (lightning-kd demo).",
    "logit_std.png": "Mean per-sample logit standard deviation per model; the dashed line is the teacher's.",
    "figure5_mean_std.png": "Per-sample logit mean vs. standard deviation: teacher, KD and KD + Z-score students"
    " (cf. the paper's Fig. 5).",
    "figure3_logits.png": "One test sample's logits (top) and the class-wise mean absolute teacher–student logit"
    " difference (bottom): KD raw, KD + Z-score raw and standardized (cf. the paper's Fig. 3).",
    "ctkd_temperature.png": "CTKD + Z-score: the learned temperature and the gradient-reversal strength λ per epoch.",
    "mean_std_hist.png": "lightning-kd analyze: per-sample logit mean vs. standard deviation.",
    "logit_bars.png": "lightning-kd analyze: one sample's logits, raw and standardized.",
    "logit_diff_heatmap.png": "lightning-kd analyze: class-wise logit-difference heatmaps, raw and standardized.",
    "temperature_hist.png": "lightning-kd analyze: per-sample max-logit temperatures.",
    "temperature_trajectory.png": "lightning-kd analyze: temperature and λ during training.",
}


def on_pre_build(config: Any, **kwargs: Any) -> None:
    spec = importlib.util.spec_from_file_location("gen_recipes_table", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while the class is created
    spec.loader.exec_module(module)
    if module.write():
        _log.info("regenerated docs/recipes.md from lightning_kd/recipes/")


def figure_gallery(available: list[str]) -> str:
    """Markdown figures for the image paths (``img/<name>.png``, relative to ``docs/``) that exist."""
    names = {Path(path).name: path for path in available}
    ordered = [name for name in FIGURES if name in names] + sorted(set(names) - set(FIGURES))
    blocks = []
    for name in ordered:
        caption = FIGURES.get(name, Path(name).stem.replace("_", " "))
        blocks.append(
            f'<figure markdown="span">\n  ![{caption}]({names[name]})\n  <figcaption>{caption}</figcaption>\n</figure>'
        )
    if not blocks:
        return "*The demo's figures are not in `docs/img/` yet: run `lightning-kd demo` to draw them.*"
    return "\n\n".join(blocks)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    if _MARKER not in markdown:
        return markdown
    start = markdown.index(_MARKER)
    end = markdown.index("-->", start) + len("-->")
    page_dir = os.path.dirname(page.file.src_uri) or "."
    available = [
        Path(os.path.relpath(f.src_uri, page_dir)).as_posix()
        for f in files
        if f.src_uri.startswith("img/") and f.src_uri.endswith(".png")
    ]
    return markdown[:start] + figure_gallery(available) + markdown[end:]
