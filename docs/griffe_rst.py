"""A Griffe extension: read the package's reStructuredText markup as Markdown for the API reference.

The docstrings of ``lightning_kd`` use Google-style sections (``Args:``, ``Returns:``, ...) with Sphinx
markup inside them: ``:func:`~lightning_kd.logits.standardize```, ``:math:`\\tau```, ``.. math::`` blocks,
``::`` literal blocks and simple ``====`` tables. mkdocstrings renders docstrings as Markdown, so this
extension rewrites that markup before the docstrings are parsed:

* ``:func:``/``:class:``/``:meth:``/``:mod:``/``:attr:``/``:data:``/``:obj:``/``:exc:`` roles become code,
  linked to the object's page when the target is found in the loaded package (an *optional* autoref: an
  object that is not rendered on the site stays plain code instead of failing the strict build);
* ``:math:`x``` becomes inline math ``\\(x\\)`` and ``.. math::`` a display block ``$$ ... $$`` (rendered
  by ``pymdownx.arithmatex`` and MathJax);
* a paragraph ending in ``::`` followed by an indented block becomes a fenced Python code block;
* simple reST tables (rows between ``===  ===`` rules) become Markdown tables;
* an ``Example:`` section is read as ``Examples:`` (as Napoleon does), so its doctest renders as code.

It changes nothing in the package: it edits Griffe's in-memory copy of each docstring. It is enabled in
``mkdocs.yml`` under ``plugins.mkdocstrings.handlers.python.options.extensions``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")
_TABLE_RULE = re.compile(r"^\s*=+(?: +=+)+\s*$")
#: Napoleon reads "Example:" as "Examples:"; Griffe would make it an admonition and lose the doctest code.
_EXAMPLE_HEADER = re.compile(r"^Example:[ \t]*$", re.MULTILINE)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _math_blocks(lines: list[str]) -> list[str]:
    """``.. math:: expr`` (continued on more-indented lines) -> a ``$$`` display block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        pad, first = match.group(1), match.group(2).strip()
        parts = [first] if first else []
        i += 1
        if not parts and i + 1 < len(lines) and not lines[i].strip():
            i += 1  # reST style: the directive, a blank line, then the indented formula
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > len(pad):
            parts.append(lines[i].strip())
            i += 1
        if out and out[-1].strip():
            out.append("")
        out.extend([f"{pad}$$", f"{pad}{' '.join(parts)}", f"{pad}$$"])
        if i < len(lines) and lines[i].strip():
            out.append("")
    return out


def _literal_blocks(lines: list[str]) -> list[str]:
    """A line ending in ``::`` + blank line + indented block -> ``:`` + a fenced code block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        nxt = i + 2
        if (
            stripped.endswith("::")
            and not stripped.lstrip().startswith("..")
            and i + 1 < len(lines)
            and not lines[i + 1].strip()
            and nxt < len(lines)
            and _indent(lines[nxt]) > _indent(line)
        ):
            base = _indent(line)
            text = stripped[:-2].rstrip()
            out.append(text + ":" if text.strip() else "")
            out.append("")
            block: list[str] = []
            j = nxt
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            cut = min(_indent(b) for b in block if b.strip())
            pad = " " * base
            out.append(f"{pad}```python")
            out.extend(pad + b[cut:] if b.strip() else "" for b in block)
            out.append(f"{pad}```")
            out.append("")
            i = j
            continue
        out.append(line)
        i += 1
    return out


def _tables(lines: list[str]) -> list[str]:
    """Simple reST tables (rule, header, rule, rows, rule) -> Markdown tables."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _TABLE_RULE.match(line):
            out.append(line)
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", line)]
        rows: list[list[str]] = []
        rules = 1
        j = i + 1
        header_rows = 0
        while j < len(lines) and rules < 3:
            if _TABLE_RULE.match(lines[j]):
                rules += 1
                if rules == 2:
                    header_rows = len(rows)
            elif lines[j].strip():
                bounds = [*starts[1:], None]
                cells = [lines[j][start:stop].strip() for start, stop in zip(starts, bounds, strict=True)]
                if not cells[0] and len(rows) > (header_rows if rules >= 2 else 0):
                    # a blank first column continues the row above (a cell's text on several lines)
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
                else:
                    rows.append(cells)
            j += 1
        if rules < 3 or header_rows == 0:  # not a table after all: keep the text
            out.append(line)
            i += 1
            continue
        indent = _indent(line)
        pad = " " * (4 if 0 < indent < 4 else indent)  # inside a list item, Markdown needs 4 spaces
        header, body = rows[:header_rows], rows[header_rows:]
        head = [" ".join(c for c in column if c) for column in zip(*header, strict=True)]
        if out and out[-1].strip():
            out.append("")
        out.append(pad + "| " + " | ".join(head) + " |")
        out.append(pad + "|" + "|".join("---" for _ in head) + "|")
        out.extend(pad + "| " + " | ".join(cells) + " |" for cells in body)
        out.append("")
        i = j
    return out


def _private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


class RestToMarkdown(griffe.Extension):
    """Rewrite the reST markup of every docstring of the loaded package as Markdown (see the module)."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = self.convert(obj.docstring.value, obj, loader)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        # Griffe fires on_object for the members of a package, not for the package itself.
        self.on_object(obj=pkg, loader=loader)

    # ------------------------------------------------------------------------------------------------
    def convert(self, text: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
        lines = text.splitlines()
        lines = _math_blocks(lines)
        lines = _literal_blocks(lines)
        lines = _tables(lines)
        text = _EXAMPLE_HEADER.sub("Examples:", "\n".join(lines))
        text = _MATH_ROLE.sub(lambda m: r"\(" + m.group(1) + r"\)", text)
        return _ROLE.sub(lambda m: self._reference(m.group(1), m.group(2), m.group(3), obj, loader), text)

    def _reference(self, role: str, tilde: str, target: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
        target = target.strip()
        if "<" in target and target.endswith(">"):  # :func:`title <target>`
            title, target = target[:-1].split("<", 1)
            title = title.strip()
        else:
            title = target.rsplit(".", 1)[-1] if tilde else target
        if role in ("func", "meth") and not title.endswith(")"):
            title += "()"
        code = f"<code>{title}</code>"
        path = self._resolve(target.lstrip("."), obj, loader)
        if path is None:
            return code
        return f'<autoref identifier="{path}" optional>{code}</autoref>'

    @staticmethod
    def _resolve(target: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str | None:
        """The canonical path of ``target`` as seen from ``obj``, or None when it is not in the package."""
        scopes = []
        scope: Any = obj
        while scope is not None:
            scopes.append(scope.path)
            scope = scope.parent
        candidates = [target] + [f"{s}.{target}" for s in scopes]
        for candidate in candidates:
            try:
                found = loader.modules_collection[candidate]
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            try:
                path = found.final_target.path if found.is_alias else found.path
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
            if _private(path) and found.is_alias:
                path = found.path  # a public re-export of a private module's object is rendered where exported
            return None if _private(path) else str(path)
        return None
