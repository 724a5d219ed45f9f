"""Nox sessions: ``tests``, ``lint``, ``typecheck`` and ``docs``.

Run ``nox -s tests`` for the test suite. PyTorch is pinned in the same pip resolve as the project, so
a CPU-only machine gets exactly the torch and torchvision that its local package index serves.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, integration, doctests of the package) on the CPU."""
    session.install(*TORCH, "-e", ".[test,docs]")  # docs: the suite also builds the site once
    # Two pytest-xdist workers of one thread each: the tests are small and mostly single-threaded work (model
    # building, parsing), so two processes use a 2-core machine about twice as well as one. Work stealing
    # balances the long tests. `nox -s tests -- -n 0` runs in one process.
    args = ["-n", "2", "--dist", "worksteal", *session.posargs]
    session.run("pytest", "-q", *args, env={"OMP_NUM_THREADS": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """Check style: ``ruff check`` and ``ruff format --check``."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "lightning_kd", "tests", "noxfile.py", "benchmarks")
    session.run("ruff", "format", "--check", "lightning_kd", "tests", "noxfile.py", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy."""
    session.install(*TORCH, "-e", ".[dev]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (no GPU, no downloads)."""
    session.install(*TORCH, "-e", ".[docs]")
    session.run("python", "docs/gen_recipes_table.py")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
