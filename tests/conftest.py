"""Shared pytest configuration.

Puts the repository root on ``sys.path`` so test files can ``from tests.helpers import ...``; spawned worker
processes (the DDP tests) inherit the parent's ``sys.path`` and find the same module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture(autouse=True)
def _restore_deterministic_algorithms() -> Iterator[None]:
    """``Trainer(deterministic=True)`` switches torch's process-wide flag on: restore it after each test."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
