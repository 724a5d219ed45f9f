"""Every snippet in the README runs.

Python blocks are executed as they are, in order, in a temporary directory. In the shell blocks, the two
commands at the top are checked against `.ci/run` and the project's entry points; the `lightning-kd fit`
lines are run with one epoch (`--trainer.max_epochs 1`) on the digits recipes, and the CIFAR-100 recipe line
(which needs the dataset and a teacher checkpoint) is resolved with `--print_config`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from lightning_kd.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_top_commands_are_the_ci_command_and_the_demo() -> None:
    shell = _blocks("bash")
    assert "lightning-kd demo" in shell[0]
    assert "torch==2.14.1 torchvision==0.29.1" in shell[0]
    test_command = shell[1].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()
    assert "nox -s tests" in test_command


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_snippet_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"readme_snippet_{index}"}
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), namespace)
    if index == 1:
        assert (tmp_path / "student.pt").is_file()


def test_cli_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    lines = [line.split("#")[0].strip() for line in _blocks("bash")[2].splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("lightning-kd")]
    assert len(commands) == 4
    for argv in commands:
        argv = [str(ROOT / a) if a.startswith("recipes/") else a for a in argv]
        if argv == ["recipes"]:
            assert cli_main(argv) == 0
            assert "kd_z/resnet32x4_resnet8x4" in capsys.readouterr().out
        elif "cifar100" in " ".join(argv):
            assert cli_main([*argv, "--print_config"]) == 0
            assert "resnet8x4" in capsys.readouterr().out
        else:
            assert cli_main([*argv, "--trainer.max_epochs", "1"]) == 0
    assert (tmp_path / "checkpoints" / "digits" / "resnet20.pt").is_file()  # the teacher, read by the second run
    assert list((tmp_path / "runs" / "digits" / "kd_z" / "resnet20_resnet8").rglob("student.pt"))
    # the ablation block, on the teacher the block above trained (two batches: the commands, not the numbers)
    lines = [line.split("#")[0].strip() for line in _blocks("bash")[3].splitlines()]
    fit, report = (shlex.split(line)[1:] for line in lines if line.startswith("lightning-kd"))
    assert cli_main([*fit, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"]) == 0
    capsys.readouterr()
    assert cli_main(report) == 0
    table = capsys.readouterr().out
    assert all(f"| {arm} | 1 |" in table for arm in ("baseline", "kd", "kd_z", "dkd_z", "maxlogit_z")), table
