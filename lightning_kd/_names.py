"""Lookup of a name in a registry, with an error that lists the valid names and the closest match."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["unknown_name_error"]


def unknown_name_error(argument: str, received: str, valid: Iterable[str]) -> ValueError:
    """Build the ValueError for an unknown registry name (the caller raises it)."""
    names = sorted(valid)
    close = difflib.get_close_matches(received, names, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Expected argument `{argument}` to be one of {', '.join(repr(n) for n in names)}, but got {received!r}." + hint
    )
