"""The built wheel holds the recipes: installed outside the checkout, ``lightning-kd`` lists, shows and runs them.

The test builds the wheel offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation``, so
nothing is downloaded and the checkout gets no ``build/`` folder), installs it with ``--no-deps`` into a fresh
virtual environment in a temporary folder and runs the installed ``lightning-kd`` from another temporary folder.

The new environment gets its dependencies (torch, Lightning, ...) from the running interpreter's site-packages
through a ``.pth`` file naming that folder: installing them would need the network and minutes. A ``.pth`` line
only appends the folder to ``sys.path`` (the ``.pth`` files inside it are not run), so the checkout's editable
install, whose hook lives there, stays inactive, and the environment's own site-packages, which holds the wheel's
``lightning_kd``, comes first. ``--system-site-packages`` would not do: the running interpreter is itself often a
virtual environment, whose packages are not the base interpreter's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "lightning_kd" / "recipes"
RECIPE = "cifar100/kd_z/resnet32x4_resnet8x4"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _environment(home: Path) -> dict[str, str]:
    """The current environment without what would point the installed package at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LIGHTNING_KD_RECIPES", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", HOME=str(home), PYTHONNOUSERSITE="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the venv's bin folder, a working folder outside the checkout, the environment to run in)."""
    root = tmp_path_factory.mktemp("wheel")
    env = _environment(root)
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "lightning_kd", source / "lightning_kd", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)], root, env)
    (wheel,) = wheels.glob("lightning_kd-*.whl")

    prefix = root / "venv"
    venv.create(prefix, with_pip=False)
    python = prefix / ("Scripts" if os.name == "nt" else "bin") / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env).strip()
    (Path(site) / "_lightning_kd_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], root, env)

    work = root / "work"
    work.mkdir()
    return python.parent, work, env


@pytest.mark.slow
def test_installed_package_is_the_wheel(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bin_dir, work, env = installed
    where = _run([str(bin_dir / "python"), "-c", "import lightning_kd; print(lightning_kd.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(bin_dir.parent), where
    shipped = _run(
        [str(bin_dir / "python"), "-c", "import importlib.resources as r; print(r.files('lightning_kd') / 'recipes')"],
        work,
        env,
    ).strip()
    in_wheel = sorted(p.relative_to(shipped).as_posix() for p in Path(shipped).rglob("*.yaml"))
    assert in_wheel == sorted(p.relative_to(RECIPE_DIR).as_posix() for p in RECIPE_DIR.rglob("*.yaml"))


@pytest.mark.slow
def test_installed_cli_lists_shows_and_resolves_recipe_ids(installed: tuple[Path, Path, dict[str, str]]) -> None:
    bin_dir, work, env = installed
    cli = str(bin_dir / "lightning-kd")

    listing = _run([cli, "recipes"], work, env)
    n_recipes = len(list(RECIPE_DIR.rglob("*.yaml")))
    assert len(listing.splitlines()) == n_recipes > 200
    assert any(line.split()[0].removesuffix(".yaml").endswith(RECIPE) for line in listing.splitlines())

    shown = _run([cli, "recipes", "show", RECIPE], work, env)
    assert shown.rstrip("\n") == (RECIPE_DIR / f"{RECIPE}.yaml").read_text(encoding="utf-8").rstrip("\n")

    printed = yaml.safe_load(_run([cli, "fit", "--config", RECIPE, "--print_config"], work, env))
    model = printed["model"]["init_args"]
    assert (model["student"], model["teacher_arch"], model["teacher"]) == (
        "resnet8x4",
        "resnet32x4",
        "checkpoints/cifar100/resnet32x4.pth",
    )
    assert model["loss"]["init_args"]["kd_weight"] == 9.0 and model["loss"]["init_args"]["preprocess"] == "zscore"
    assert printed["trainer"]["max_epochs"] == 240
    assert not any(work.iterdir()), "print_config should not write into the working folder"
