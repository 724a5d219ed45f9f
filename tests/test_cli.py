"""The ``lightning-kd`` command line: dispatch, recipes and recipe ids, config errors, outputs of a run, last.ckpt
and ``--ckpt_path last``, loggers, export."""

from __future__ import annotations

import csv
import re
import shutil
import struct
import subprocess
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger

import lightning_kd
from lightning_kd._cli.errors import ConfigError, innermost_error
from lightning_kd.cli import TRACEBACK_ENV, KDLightningCLI, main
from lightning_kd.models import create_model
from lightning_kd.recipes import describe, find_recipe, find_recipe_dir, list_recipes

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "lightning_kd" / "recipes"
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
def test_recipes_command_lists_every_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert find_recipe_dir() == RECIPE_DIR  # the package's own recipes (package data)
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    yamls = sorted(RECIPE_DIR.rglob("*.yaml"))
    assert len(lines) == len(yamls) > 150
    ids = [line.split("  ", 1)[0].strip() for line in lines]
    assert sorted(ids) == sorted(p.relative_to(RECIPE_DIR).with_suffix("").as_posix() for p in yamls)
    line = next(line for line in lines if line.startswith("cifar100/kd_z/resnet32x4_resnet8x4 "))
    assert line.split("  ", 1)[1].strip().startswith("KD+Z on CIFAR-100: resnet32x4 -> resnet8x4")


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
    result = subprocess.run([script, "recipes", "digits"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "digits/kd_z/resnet20_resnet8 " in result.stdout


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
    assert config["checkpoint"]["monitor"] == "val/acc1" and config["checkpoint"]["save_last"] is False
    assert config["last_checkpoint"] == {"dirpath": None, "every_n_epochs": 1, "save_weights_only": False}
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
    assert (
        main(["fit", "--config", "cifar100/teachers/resnet56", f"--model.init_args.model={name}", "--print_config"])
        == 0
    )
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
# Recipe ids: `--config ID`, `recipes show`, `recipes cp`.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        ["--config", "digits/kd_z/resnet20_resnet8"],
        ["--config=digits/kd_z/resnet20_resnet8"],
        ["-c", "digits/kd_z/resnet20_resnet8.yaml"],
        ["--config", "recipes/digits/kd_z/resnet20_resnet8.yaml"],  # the source tree's former path
    ],
)
def test_recipe_id_as_config(
    config: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *config, "--print_config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    expected = yaml.safe_load(DIGITS_KD_Z.read_text())
    assert resolved["trainer"]["default_root_dir"] == expected["trainer"]["default_root_dir"]
    assert resolved["model"]["init_args"]["teacher"] == expected["model"]["init_args"]["teacher"]


def test_a_file_wins_over_a_recipe_id_and_yaml_strings_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "digits" / "kd_z" / "resnet20_resnet8"  # a file named like the id, without .yaml
    local.parent.mkdir(parents=True)
    local.write_text(DIGITS_KD_Z.read_text().replace("  max_epochs: 40", "  max_epochs: 7"))
    assert main(["fit", "--config", "digits/kd_z/resnet20_resnet8", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["max_epochs"] == 7
    yaml_string = "{trainer: {max_epochs: 3}}"  # jsonargparse's config-as-a-string, after a recipe id
    assert main(["fit", "-c", "digits/teachers/resnet20", "-c", yaml_string, "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["trainer"]["max_epochs"] == 3


def test_unknown_recipe_id_lists_the_closest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", "digits/kd_z/resnet20_resnet9", "--print_config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'digits/kd_z/resnet20_resnet9'" in err
    assert "Closest: digits/kd_z/resnet20_resnet8" in err


def test_old_method_names_are_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "digits" / "maxlogit_z").mkdir(parents=True)
    recipe = tmp_path / "digits" / "maxlogit_z" / "resnet20_resnet8.yaml"
    recipe.write_text("# Max-logit.\ntrainer: {}\n")
    assert find_recipe("digits/maxlogit/resnet20_resnet8", tmp_path) == recipe
    assert find_recipe("digits/maxlogit_z/resnet20_resnet8", tmp_path) == recipe
    # The shipped recipe, by its old id (before and after the folder's rename).
    assert main(["fit", "--config", "digits/maxlogit/resnet20_resnet8", "--print_config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["student"] == "resnet8"


def test_recipes_show_prints_the_whole_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "show", "digits/kd_z/resnet20_resnet8"]) == 0
    out = capsys.readouterr().out
    assert out == DIGITS_KD_Z.read_text()
    assert out.startswith("# KD+Z on scikit-learn digits")  # the header included
    assert main(["recipes", "show", "digits/kd_z/nothing"]) == 2
    assert "no such recipe" in capsys.readouterr().err


def test_recipes_cp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["recipes", "cp", "digits/kd_z/resnet20_resnet8"]) == 0
    copy = tmp_path / "resnet20_resnet8.yaml"
    assert copy.read_bytes() == DIGITS_KD_Z.read_bytes()
    copy.write_text("# edited\n")
    assert main(["recipes", "cp", "digits/kd_z/resnet20_resnet8"]) == 1  # never overwrites silently
    assert "--force" in capsys.readouterr().err and copy.read_text() == "# edited\n"
    assert main(["recipes", "cp", "digits/kd_z/resnet20_resnet8", "--force"]) == 0
    assert copy.read_bytes() == DIGITS_KD_Z.read_bytes()
    (tmp_path / "mine").mkdir()
    assert main(["recipes", "cp", "digits/teachers/resnet20", "mine"]) == 0  # into a folder
    assert (tmp_path / "mine" / "resnet20.yaml").read_bytes() == DIGITS_TEACHER.read_bytes()
    assert main(["recipes", "cp", "digits/teachers/resnet20", "mine/t.yaml"]) == 0
    capsys.readouterr()
    assert main(["fit", "--config", "mine/t.yaml", "--print_config"]) == 0  # the copy runs as a config
    assert yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["model"] == "resnet20"


# --------------------------------------------------------------------------------------------------------
# Errors: one line with the config key; the traceback on request; unsafe teacher loading.
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message", "key"),
    [
        ("loss.init_args.kd_weight=-1", "Expected argument `kd_weight` to be", "loss.init_args.kd_weight"),
        ("loss.init_args.divergence=kdd", "Expected argument `divergence` to be one of", "loss.init_args.divergence"),
        ("teacher=no/such/teacher.pt", "no/such/teacher.pt", "teacher"),
    ],
)
def test_constructor_error_is_one_line(
    override: str, message: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", "--config", "digits/kd_z/resnet20_resnet8", f"--model.init_args.{override}"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and message in lines[0]
    assert lines[0].endswith(f" (config key: model.init_args.{key})")
    assert "Traceback" not in err and "Does not validate" not in err and "Namespace(" not in err
    if "divergence" in override:
        assert "Did you mean 'kd'" in lines[0]


def test_traceback_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = ["fit", "--config", "digits/kd_z/resnet20_resnet8", "--model.init_args.loss.init_args.kd_weight=-1"]
    with pytest.raises(ConfigError) as raised:
        main([*bad, "--traceback"])
    inner = innermost_error(raised.value)
    assert isinstance(inner, ValueError) and "kd_weight" in str(inner) and inner is not raised.value
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(ConfigError):
        main(bad)


def test_teacher_weights_only_false_warns(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher.pt"
    _save_teacher(teacher)
    args = [
        "--config",
        str(DIGITS_KD_Z),
        f"--model.init_args.teacher={teacher}",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    with pytest.warns(
        UserWarning, match=rf"teacher_weights_only` is false: the teacher file {re.escape(str(teacher))}"
    ):
        KDLightningCLI(args=[*args, "--model.init_args.teacher_weights_only=false"], run=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KDLightningCLI(args=args, run=False)
    assert not [w for w in caught if "teacher_weights_only" in str(w.message)]


# --------------------------------------------------------------------------------------------------------
# last.ckpt is the last epoch; --ckpt_path last resumes the run in its folder.
# --------------------------------------------------------------------------------------------------------
STEPS_PER_EPOCH = 23  # ceil(1437 training digits / 64)


def _falling_config(tmp_path: Path, max_epochs: int = 3) -> Path:
    """A digits run whose validation top-1 falls after epoch 0: from epoch 1 on the learning rate is negative
    (gradient ascent), so the best epoch is the first and never the last."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": max_epochs,
            "default_root_dir": str(tmp_path / "runs"),
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 5,
        },
        "model": {
            "class_path": "lightning_kd.ClassifierModule",
            "init_args": {
                "model": "demo_mlp",
                "num_classes": 10,
                "in_chans": 1,
                "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
                "lr_scheduler": {
                    "class_path": "torch.optim.lr_scheduler.MultiStepLR",
                    "init_args": {"milestones": [1], "gamma": -0.2},
                },
            },
        },
        "data": {"class_path": "lightning_kd.data.DigitsDataModule", "init_args": {"batch_size": 64}},
        "export": {"dirpath": str(tmp_path / "export")},
    }
    path = tmp_path / "falling.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _validation(run_dir: Path) -> list[tuple[int, float, float]]:
    """``(epoch, val/acc1, val/acc1_best)`` of each validation row of a run's metrics.csv."""
    return [
        (int(row["epoch"]), float(row["val/acc1"]), float(row["val/acc1_best"]))
        for row in _metrics(run_dir)
        if row.get("val/acc1")
    ]


def test_last_ckpt_is_the_last_epoch(tmp_path: Path) -> None:
    assert main(["fit", "--config", str(_falling_config(tmp_path))]) == 0
    run_dir = tmp_path / "runs" / "version_0"
    validation = _validation(run_dir)
    assert [epoch for epoch, _, _ in validation] == [0, 1, 2]
    assert validation[0][1] > max(acc for _, acc, _ in validation[1:])  # the best epoch is the first
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best-epoch=000.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS_PER_EPOCH)
    assert torch.load(checkpoints / "best-epoch=000.ckpt", weights_only=True)["epoch"] == 0


def test_ckpt_path_last_resumes_in_the_run_folder(tmp_path: Path) -> None:
    config = str(_falling_config(tmp_path, max_epochs=2))
    assert main(["fit", "--config", config]) == 0
    assert main(["fit", "--config", config, "--trainer.max_epochs=3", "--ckpt_path", "last"]) == 0
    root = tmp_path / "runs"
    assert [p.name for p in root.iterdir()] == ["version_0"]  # no new version folder
    run_dir = root / "version_0"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "config-resume-1.yaml").is_file()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS_PER_EPOCH)
    # The configured scheduler and optimizer went on (a checkpoint's hyperparameters do not hold them).
    (scheduler,) = last["lr_schedulers"]
    assert scheduler["milestones"] == {1: 1} and scheduler["last_epoch"] == 3
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.1 * -0.2)
    validation = _validation(run_dir)
    assert [epoch for epoch, _, _ in validation] == [0, 1, 2]  # the rows before the resume are kept, once each
    steps = [int(row["step"]) for row in _metrics(run_dir) if row.get("train/loss_step")]
    assert steps == sorted(set(steps)) and steps[-1] >= 2 * STEPS_PER_EPOCH
    # val/acc1_best is persisted in the checkpoint: after the resume it is still epoch 0's top-1.
    assert validation[2][2] == pytest.approx(validation[0][1]) and validation[2][1] < validation[0][1]


def test_ckpt_path_last_without_a_run_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--config", str(_falling_config(tmp_path)), "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err
    assert "last.ckpt" in err and str(tmp_path / "runs") in err and "(config key: ckpt_path)" in err
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------------------------------------
# Loggers: another logger is added next to the run's CSV logger.
# --------------------------------------------------------------------------------------------------------
def _tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    """The scalars of the TensorBoard event files under ``folder``, read from the TFRecord format by hand."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[float]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            record = data[offset + 12 : offset + 12 + length]  # after the length and its CRC
            offset += 12 + length + 4  # the record and its CRC
            for value in Event.FromString(record).summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def test_tensorboard_logger_next_to_the_csv_logger(tmp_path: Path) -> None:
    tensorboard = tmp_path / "tb"
    args = ["fit", "--config", str(_falling_config(tmp_path, max_epochs=1))]
    logger = [
        "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger",
        f"--trainer.logger.save_dir={tensorboard}",
    ]
    assert main([*args, *logger]) == 0
    run_dir = tmp_path / "runs" / "version_0"  # the CSV logger's folder: metrics, checkpoints, config
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "config.yaml").is_file()
    scalars = _tensorboard_scalars(tensorboard / "lightning_logs" / "version_0")
    (csv_acc,) = [acc for _, acc, _ in _validation(run_dir)]
    assert scalars["val/acc1"] == [pytest.approx(csv_acc, abs=1e-6)]  # the same value, through two loggers
    assert len(scalars["train/loss_step"]) == len([r for r in _metrics(run_dir) if r.get("train/loss_step")]) > 0
