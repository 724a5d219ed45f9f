"""The ``lightning-kd`` command line: dispatch, recipes listing, config errors, outputs of a run, export."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_kd
from lightning_kd import ClassifierModule
from lightning_kd.cli import KDLightningCLI, main
from lightning_kd.export import ExportStudent
from lightning_kd.models import create_model
from lightning_kd.recipes import describe, list_recipes

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "recipes"
DIGITS_KD_Z = RECIPE_DIR / "digits" / "kd_z" / "resnet20_resnet8.yaml"
DIGITS_TEACHER = RECIPE_DIR / "digits" / "teachers" / "resnet20.yaml"
QUICK = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=3",
    "--trainer.limit_val_batches=2",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--data.init_args.batch_size=16",
]


@pytest.fixture(autouse=True)
def _bare_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI warns when it is given ``args`` while ``sys.argv`` holds pytest's own arguments."""
    monkeypatch.setattr(sys, "argv", ["lightning-kd"])


# --------------------------------------------------------------------------------------------------------
# Dispatch and recipes.
# --------------------------------------------------------------------------------------------------------
def test_recipes_command_lists_every_recipe(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    yamls = sorted(RECIPE_DIR.rglob("*.yaml"))
    assert len(lines) == len(yamls) > 150
    path, description = lines[0].split("  ", 1)
    assert (REPO / path).is_file() and path.startswith("recipes/") and description
    assert "recipes/cifar100/kd_z/resnet32x4_resnet8x4.yaml  KD+Z on CIFAR-100: resnet32x4 -> resnet8x4" in "\n".join(
        lines
    )


def test_recipes_command_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "kd_z", "resnet8x4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("kd_z" in line and "resnet8x4" in line for line in lines)
    assert main(["recipes", "no-such-recipe"]) == 1
    assert "no recipe" in capsys.readouterr().err


def test_list_recipes_and_describe(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("\n# First line.\n#\n# More.\ntrainer: {}\n")
    (tmp_path / "b.yaml").write_text("trainer: {}\n# late comment\n")
    recipes = list_recipes(tmp_path)
    assert [(r.name, r.description) for r in recipes] == [("a/x", "First line."), ("b", "")]
    assert describe(DIGITS_KD_Z).startswith("KD+Z on scikit-learn digits")
    assert list_recipes(tmp_path / "missing") == []


def test_demo_and_analyze_are_dispatched(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    for name, code in (("demo", 0), ("analyze", 3)):

        def fake_main(argv: list[str] | None = None, _name: str = name, _code: int = code) -> int:
            calls.append((_name, list(argv or [])))
            return _code

        module = types.ModuleType(f"lightning_kd.{name}")
        module.main = fake_main  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"lightning_kd.{name}", module)
        monkeypatch.setattr(lightning_kd, name, module, raising=False)
    assert main(["demo", "--epochs", "1"]) == 0
    assert main(["analyze", "run/"]) == 3
    assert calls == [("demo", ["--epochs", "1"]), ("analyze", ["run/"])]


def test_python_m_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_kd", "--help"], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert "lightning-kd" in result.stdout
    assert all(command in result.stdout for command in ("fit", "validate", "test", "predict", "recipes", "demo"))


def test_console_script_lists_recipes() -> None:
    script = shutil.which("lightning-kd") or str(Path(sys.executable).parent / "lightning-kd")
    if not Path(script).is_file():
        pytest.skip("the lightning-kd console script is not installed (pip install -e .)")
    result = subprocess.run([script, "recipes", "digits"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "recipes/digits/kd_z/resnet20_resnet8.yaml" in result.stdout


# --------------------------------------------------------------------------------------------------------
# Parsing: --print_config, and typos are errors.
# --------------------------------------------------------------------------------------------------------
def test_print_config_prints_the_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(DIGITS_KD_Z), "--print_config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    model = config["model"]
    assert model["class_path"] == "lightning_kd.DistillationModule"
    assert model["init_args"]["student"] == "resnet8"
    assert model["init_args"]["teacher_weights_only"] is True  # a default, filled in
    assert model["init_args"]["loss"]["init_args"]["kd_weight"] == 9.0
    assert model["init_args"]["optimizer"]["init_args"]["dampening"] == 0.0  # the optimizer's defaults too
    assert config["trainer"]["max_epochs"] == 40
    assert config["checkpoint"]["monitor"] == "val/acc1" and config["checkpoint"]["save_last"] is True
    assert config["export"]["filename"] == "student.pt"


@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV1", "resnet8"])
def test_model_names_stay_names(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A zoo name that is also the name of an ``nn.Module`` class (torchvision's ``MobileNetV2``, the zoo's own
    ``MobileNetV1``) must reach ``create_model`` as a string, not become that class with its default arguments.

    jsonargparse tries the members of a union in order, and resolves a string as a class name for a class type:
    this needs ``str`` first in the annotations of ``ClassifierModule(model=...)`` and
    ``DistillationModule(student=..., teacher=...)`` (``str | nn.Module``).
    """
    assert main(["fit", "--config", str(DIGITS_KD_Z), f"--model.init_args.student={name}", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["student"] == name
    teacher = RECIPE_DIR / "cifar100" / "teachers" / "resnet56.yaml"
    assert main(["fit", "--config", str(teacher), f"--model.init_args.model={name}", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["model"] == name


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("kd_weight: 9.0", "kd_wieght: 9.0", "kd_wieght"),  # inside the loss's init_args
        ("    student: resnet8", "    studnet: resnet8", "studnet"),  # inside the model's init_args
        ("  max_epochs: 40", "  max_epoch: 40", "max_epoch"),  # a trainer argument
    ],
)
def test_unknown_key_is_an_error(
    old: str, new: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DIGITS_KD_Z.read_text()
    assert old in text
    bad = tmp_path / "typo.yaml"
    bad.write_text(text.replace(old, new))
    assert main(["fit", "--config", str(bad), "--print_config"]) == 2
    err = capsys.readouterr().err
    assert key in err and ("not accepted" in err or "does not accept" in err)


def test_logger_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset logger becomes a CSVLogger writing <default_root_dir>/version_<n>; `false` is kept."""
    monkeypatch.chdir(tmp_path)
    teacher = tmp_path / "checkpoints" / "digits" / "resnet20.pt"
    _save_teacher(teacher)
    cli = KDLightningCLI(args=["--config", str(DIGITS_KD_Z), "--trainer.default_root_dir=out"], run=False)
    assert isinstance(cli.trainer.logger, CSVLogger)
    assert Path(cli.trainer.logger.log_dir) == Path("out") / "version_0"
    cli = KDLightningCLI(args=["--config", str(DIGITS_KD_Z), "--trainer.logger=false"], run=False)
    assert cli.trainer.logger is None
    # Without a default_root_dir: Lightning's usual ./lightning_logs/version_<n>.
    cli = KDLightningCLI(args=["--config", str(DIGITS_KD_Z), "--trainer.default_root_dir=null"], run=False)
    assert isinstance(cli.trainer.logger, CSVLogger)
    assert Path(cli.trainer.logger.log_dir) == Path("lightning_logs") / "version_0"


# --------------------------------------------------------------------------------------------------------
# End to end: the digits recipes' two steps, one epoch each.
# --------------------------------------------------------------------------------------------------------
def _save_teacher(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save({"model": create_model("resnet20", num_classes=10, in_chans=1).state_dict()}, path)


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_digits_recipes_end_to_end(tmp_path: Path) -> None:
    """Step 1 trains and exports the teacher; step 2 distills it; each run's folder holds every output."""
    teachers = tmp_path / "checkpoints"
    assert main(["fit", "--config", str(DIGITS_TEACHER), f"--trainer.default_root_dir={tmp_path / 'teacher'}",
                 f"--export.dirpath={teachers}", *QUICK]) == 0  # fmt: skip
    teacher_file = teachers / "resnet20.pt"
    assert teacher_file.is_file()

    root = tmp_path / "student"
    args = ["fit", "--config", str(DIGITS_KD_Z), f"--trainer.default_root_dir={root}"]
    assert main([*args, f"--model.init_args.teacher={teacher_file}", *QUICK]) == 0
    run_dir = root / "version_0"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "hparams.yaml",
        "metrics.csv",
        "student.pt",
    ]
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["best-epoch=000.ckpt", "last.ckpt"]

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["init_args"]["teacher"] == str(teacher_file)
    assert config["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.CSVLogger"
    rows = _metrics(run_dir)
    validation = [row for row in rows if row.get("val/acc1")]
    assert validation and validation[-1]["val/acc1_best"] != ""
    assert float(validation[-1]["val/acc1_best"]) >= float(validation[-1]["val/acc1"])

    student = create_model("resnet8", num_classes=10, in_chans=1)
    student.load_state_dict(torch.load(run_dir / "student.pt", weights_only=True), strict=True)

    # A second run of the same recipe goes to the next version folder (nothing is overwritten).
    assert main([*args, f"--model.init_args.teacher={teacher_file}", *QUICK, "--trainer.limit_train_batches=1"]) == 0
    assert (root / "version_1" / "student.pt").is_file()


# --------------------------------------------------------------------------------------------------------
# ExportStudent.
# --------------------------------------------------------------------------------------------------------
def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 8, generator=g), torch.randint(0, 4, (16,), generator=g)), 4)


def _trainer(root: Path, callbacks: list[pl.Callback], **kwargs: Any) -> pl.Trainer:
    defaults: dict[str, Any] = {
        "default_root_dir": str(root),
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return pl.Trainer(callbacks=callbacks, **{**defaults, **kwargs})


class _FailAt(pl.Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if args[-1] == self.batch:
            raise RuntimeError("boom")


def test_export_at_fit_end(tmp_path: Path) -> None:
    module = ClassifierModule(nn.Linear(8, 4))
    export = ExportStudent("model.pt", dirpath=str(tmp_path / "out"))
    _trainer(tmp_path, [export]).fit(module, _loader())
    assert export.last_path == tmp_path / "out" / "model.pt"
    state = torch.load(export.last_path, weights_only=True)
    assert torch.equal(state["weight"], module.model.weight.detach())


def test_export_on_exception_leaves_the_last_weights(tmp_path: Path) -> None:
    module = ClassifierModule(nn.Linear(8, 4))
    with pytest.raises(RuntimeError, match="boom"):
        _trainer(tmp_path, [ExportStudent(), _FailAt(batch=1)]).fit(module, _loader())
    state = torch.load(tmp_path / "student.pt", weights_only=True)  # no logger: default_root_dir
    assert torch.equal(state["weight"], module.model.weight.detach())


def test_export_skipped_under_fast_dev_run_and_without_export_method(tmp_path: Path) -> None:
    _trainer(tmp_path, [ExportStudent()], fast_dev_run=1).fit(ClassifierModule(nn.Linear(8, 4)), _loader())
    assert not (tmp_path / "student.pt").exists()

    class Plain(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(8, 4)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.warns(UserWarning, match="no `export"):
        _trainer(tmp_path, [ExportStudent()]).fit(Plain(), _loader())
    assert not (tmp_path / "student.pt").exists()


def test_export_rejects_a_path_as_filename() -> None:
    with pytest.raises(ValueError, match="file name"):
        ExportStudent("runs/student.pt")
