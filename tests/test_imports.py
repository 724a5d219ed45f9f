"""The package's import surface: lazy top-level exports, and a functional core that loads no framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lightning_kd

HEAVY = ("lightning", "torchmetrics", "matplotlib", "timm", "sklearn")


CORE = ("lightning_kd", "lightning_kd.losses.functional", "lightning_kd.logits", "lightning_kd.temperature",
        "lightning_kd.objective", "lightning_kd.presets")  # fmt: skip


def test_the_functional_core_imports_without_the_frameworks() -> None:
    code = f"import sys; import {', '.join(CORE)}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"importing the core loaded {result.stdout.strip()}"


def test_every_exported_name_resolves() -> None:
    for name in lightning_kd.__all__:
        assert getattr(lightning_kd, name) is not None, name
    assert set(lightning_kd.__all__) <= set(dir(lightning_kd))
    with pytest.raises(AttributeError, match=r"has no attribute 'DistilationModule'"):
        _ = lightning_kd.DistilationModule  # type: ignore[attr-defined]


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(lightning_kd.__all__) == {"__version__", *lightning_kd._EXPORTS}
