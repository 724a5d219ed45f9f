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


#: Where Debian's ``dataset-fashion-mnist`` installs the real files (``.ci/run`` installs the package).
REAL_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def real_fashion_mnist() -> Path:
    """The real Fashion-MNIST files. Missing, the test fails and says how to get them, unless
    ``LIGHTNING_KD_SKIP_REAL_DATA=1`` says to skip (what ``.ci/run`` sets where apt itself is unavailable)."""
    import os

    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")  # fmt: skip
    if all((REAL_FASHION_MNIST / name).is_file() for name in names):
        return REAL_FASHION_MNIST
    message = (
        f"the real Fashion-MNIST files are not in {REAL_FASHION_MNIST}: install Debian's dataset-fashion-mnist"
        " (`apt-get install dataset-fashion-mnist`, as .ci/run does), or set LIGHTNING_KD_SKIP_REAL_DATA=1"
    )
    if os.environ.get("LIGHTNING_KD_SKIP_REAL_DATA") == "1":
        pytest.skip(message)
    pytest.fail(message)
