"""``lightning-kd check-teacher``: a real teacher trained on digits, checked against a recipe header's accuracy."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml

from lightning_kd import ClassifierModule
from lightning_kd.check_teacher import main
from lightning_kd.cli import main as cli_main
from lightning_kd.data import DigitsDataModule
from lightning_kd.models import create_model

ARCH = "demo_cnn"


@pytest.fixture(autouse=True)
def _bare_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["lightning-kd"])


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo_cnn trained for two epochs on 8x8 digits, saved in the shared teacher format (under "model")."""
    pl.seed_everything(0)
    module = ClassifierModule(ARCH, num_classes=10, in_chans=1)
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=64))
    path = tmp_path_factory.mktemp("teacher") / "demo_cnn.pth"
    torch.save({"model": module.model.state_dict(), "epoch": 2}, path)
    return path


def _reference(path: Path) -> tuple[float, float]:
    """Top-1/top-5 in percent by a plain loop over the validation tensors (no Lightning, no teacher loader)."""
    model = create_model(ARCH, num_classes=10, in_chans=1)
    model.load_state_dict(torch.load(path, weights_only=True)["model"])
    model.eval()
    data = DigitsDataModule()
    data.setup("validate")
    assert data.val_set is not None
    x, y = data.val_set.tensors
    with torch.no_grad():
        logits = model(x)
    top1 = (logits.argmax(1) == y).float().mean().item()
    top5 = (logits.topk(5, dim=1).indices == y[:, None]).any(1).float().mean().item()
    return 100 * top1, 100 * top5


def _recipe(tmp_path: Path, teacher: Path, header: str) -> Path:
    """A digits distillation recipe for this teacher, with ``header`` in its comment block."""
    config = {
        "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path / "runs")},
        "model": {
            "class_path": "lightning_kd.DistillationModule",
            "init_args": {
                "student": "demo_mlp",
                "teacher": str(teacher),
                "teacher_arch": ARCH,
                "num_classes": 10,
                "in_chans": 1,
                "loss": {"class_path": "lightning_kd.DistillationLoss", "init_args": {"divergence": "kd"}},
            },
        },
        "data": {"class_path": "lightning_kd.data.DigitsDataModule", "init_args": {"batch_size": 100}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(f"# KD on digits: {ARCH} -> demo_mlp.\n#\n{header}\n#\n" + yaml.safe_dump(config))
    return path


def test_trained_teacher_matches_its_recipe(teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top1, top5 = _reference(teacher)
    assert top1 > 50  # a trained teacher, not chance (10 %)
    recipe = _recipe(tmp_path, teacher, f"# Teacher top-1: {top1 + 0.5:.2f} (measured by the test)")
    assert main(["--config", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert f"top-1: {top1:.2f} %" in out and f"top-5: {top5:.2f} %" in out
    assert "360 images" in out and f"expected top-1: {top1 + 0.5:.2f} % (measured by the test)" in out
    assert "OK: within 1 point" in out


def test_mismatch_warns_and_exits_1(teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top1, _ = _reference(teacher)
    recipe = _recipe(tmp_path, teacher, f"# Teacher top-1: {top1 - 1.5:.2f} (a paper)")
    assert main(["--config", str(recipe)]) == 1
    captured = capsys.readouterr()
    assert f"top-1: {top1:.2f} %" in captured.out
    assert captured.err.startswith("WARNING: the teacher's top-1") and "by 1.50 points, more than 1" in captured.err


def test_override_checks_another_file(teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--model.init_args.teacher=... replaces the recipe's file, as in `lightning-kd fit`."""
    top1, _ = _reference(teacher)
    untrained = tmp_path / "untrained.pth"
    torch.manual_seed(1)
    torch.save({"model": create_model(ARCH, num_classes=10, in_chans=1).state_dict()}, untrained)
    untrained_top1, _ = _reference(untrained)
    recipe = _recipe(tmp_path, teacher, f"# Teacher top-1: {top1:.2f} (the trained one)")
    assert cli_main(["check-teacher", "--config", str(recipe), f"--model.init_args.teacher={untrained}"]) == 1
    captured = capsys.readouterr()
    assert f"from {untrained}" in captured.out and f"top-1: {untrained_top1:.2f} %" in captured.out
    assert "WARNING" in captured.err


def test_teacher_and_data_without_a_recipe(teacher: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top1, top5 = _reference(teacher)
    args = ["--teacher", str(teacher), "--teacher-arch", ARCH, "--data", "digits"]
    assert main(args) == 0  # no shipped digits recipe has a demo_cnn teacher: nothing to compare with
    out = capsys.readouterr().out
    assert f"top-1: {top1:.2f} %" in out and f"top-5: {top5:.2f} %" in out and "expected top-1: unknown" in out
    assert main([*args, "--expected", f"{top1 + 3:.2f}"]) == 1
    assert main([*args, "--expected", f"{top1 + 3:.2f}", "--tolerance", "5"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass --config RECIPE, or all of --teacher"),
        (["--config", "digits/kd_z/resnet20_resnet8", "--data", "digits"], "pass either --config"),
        (["--config", "digits/kd_z/resnet20_resnet9"], "Closest: digits/kd_z/resnet20_resnet8"),
        (["--config", "digits/teachers/resnet20"], "expected a distillation config"),
        (["--config", "digits/kd_z/resnet20_resnet8", "--model.init_args.teacher=no/such.pt"], "no/such.pt"),
        (["--teacher", "t.pt", "--teacher-arch", ARCH, "--data", "digits", "--data-root", "d"], "need no folder"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_an_ablation_recipe_checks_its_one_teacher(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top1, top5 = _reference(teacher)
    config = yaml.safe_load(_recipe(tmp_path, teacher, "#").read_text())
    init_args = config["model"]["init_args"]
    arms = [{"name": "kd", "student": init_args.pop("student"), "loss": init_args.pop("loss")}]
    config["model"] = {"class_path": "lightning_kd.AblationModule", "init_args": {**init_args, "arms": arms}}
    path = tmp_path / "ablation.yaml"
    path.write_text(f"# Teacher top-1: {top1:.2f} (measured by the test)\n" + yaml.safe_dump(config))
    assert main(["--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"top-1: {top1:.2f} %" in out and f"top-5: {top5:.2f} %" in out and "OK: within 1 point" in out
