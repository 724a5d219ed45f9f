"""What the module and the callback log, and when: one implementation, the keys the docs list, Lightning's cadence."""

from __future__ import annotations

import csv
import re
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_kd import (
    CurriculumTemperature,
    DistillationLoss,
    DistillationModule,
    KnowledgeDistillation,
    MaxLogitTemperature,
)
from lightning_kd._diagnostics import is_logging_step
from lightning_kd.data import DigitsDataModule
from tests.helpers import LitClassifier, bn_teacher, loader, make_trainer, mlp, random_dataset

DOCS = Path(__file__).resolve().parent.parent / "docs" / "user-guide" / "metrics.md"


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    rest = markdown[start + len(heading) :]
    level = len(heading) - len(heading.lstrip("#"))
    end = re.search(rf"\n#{{1,{level}}} ", rest)
    return rest[: end.start()] if end else rest


def _keys(section: str) -> set[str]:
    """The backticked keys of the first column of a section's table rows."""
    keys: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            keys |= set(re.findall(r"`([a-z0-9_/<>]+)`", first))
    return keys


def _documented() -> dict[str, set[str]]:
    text = DOCS.read_text(encoding="utf-8")
    module = _section(text, "## `DistillationModule`")
    return {
        "every": _keys(_section(module, "### Every step")),
        "logging": _keys(_section(module, "### Logging steps")),
        "epoch": _keys(_section(module, "### Per epoch")),
        "callback": _keys(_section(text, "## `KnowledgeDistillation` callback")),
    }


def _logged(run_dir: Path, every_step: set[str]) -> set[str]:
    """The keys in a CSVLogger's metrics.csv, with Lightning's _step/_epoch suffixes of every-step keys removed."""
    with (run_dir / "metrics.csv").open() as handle:
        columns = next(csv.reader(handle))
    keys = set()
    for column in columns:
        if column in ("epoch", "step"):
            continue
        base = re.sub(r"_(step|epoch)$", "", column)
        keys.add(base if base in every_step else column)
    return keys


def _matches(key: str, documented: set[str]) -> bool:
    return any(re.fullmatch(doc.replace("<part>", "[a-z_]+"), key) for doc in documented)


def _fit_and_test(
    module: pl.LightningModule, tmp_path: Path, name: str, datamodule: object = None, **kw: object
) -> Path:
    logger = CSVLogger(tmp_path, name=name, version="")
    trainer = make_trainer(max_steps=2, logger=logger, log_every_n_steps=1, limit_val_batches=1, **kw)
    if datamodule is None:
        trainer.fit(module, loader(random_dataset(32)), loader(random_dataset(16, seed=3)))
        if isinstance(module, DistillationModule):
            trainer.test(module, loader(random_dataset(16, seed=4)))
    else:
        trainer.fit(module, datamodule=datamodule)
    return Path(logger.log_dir)


LOSSES = {
    "kd": lambda: DistillationLoss("kd", temperature=4.0, ce_weight=0.5),
    "dkd_warmup": lambda: DistillationLoss("dkd", temperature=4.0, kd_warmup_epochs=2),
    "maxlogit_z": lambda: DistillationLoss("kd", preprocess="zscore", temperature=MaxLogitTemperature()),
    "ctkd": lambda: DistillationLoss("kd", temperature=CurriculumTemperature()),
}


def test_the_docs_list_exactly_the_keys_the_module_and_the_callback_log(tmp_path: Path) -> None:
    docs = _documented()
    module_docs = docs["every"] | docs["logging"] | docs["epoch"]
    seen: set[str] = set()
    for name, make in LOSSES.items():
        module = DistillationModule(mlp(), bn_teacher(), make(), optimizer=partial(torch.optim.SGD, lr=0.1))
        logged = _logged(_fit_and_test(module, tmp_path, name), docs["every"])
        undocumented = {k for k in logged if not _matches(k, module_docs)}
        assert not undocumented, (name, undocumented)
        seen |= logged
    mlkd = DistillationModule(mlp(), bn_teacher(), "mlkd", loss_kwargs={"temperature": 4.0})
    seen |= _logged(
        _fit_and_test(mlkd, tmp_path, "mlkd", DigitsDataModule(batch_size=64, strong_aug=True)), docs["every"]
    )
    never = {doc for doc in module_docs if not any(_matches(k, {doc}) for k in seen)}
    assert not never, f"documented but never logged: {never}"

    callback_docs = {"train/loss_kd"} | docs["logging"]
    assert docs["callback"] == {"train/loss_kd"}  # the rest of its table refers to the module's logging-step keys
    callback_seen: set[str] = set()
    for name in ("dkd_warmup", "maxlogit_z", "ctkd"):
        callback = KnowledgeDistillation(bn_teacher(), LOSSES[name]())
        logged = _logged(_fit_and_test(LitClassifier(), tmp_path, f"cb_{name}", callbacks=[callback]), docs["every"])
        undocumented = {k for k in logged if not _matches(k, callback_docs)}
        assert not undocumented, (name, undocumented)
        callback_seen |= logged
    assert {k for k in docs["logging"] if "<part>" not in k} <= callback_seen  # the same diagnostics as the module


@pytest.mark.parametrize("every", [0, 1, 3])
def test_diagnostics_follow_lightnings_logging_cadence(tmp_path: Path, every: int) -> None:
    """Diagnostics are computed on exactly the steps Lightning writes to its loggers (``log_every_n_steps``, with
    0 meaning never) — through Lightning's own decision, a private attribute: this fails loudly if it goes."""
    decisions: list[bool] = []

    class Spy(pl.Callback):
        def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
            decisions.append(is_logging_step(trainer))

    module = DistillationModule(mlp(), bn_teacher(), LOSSES["kd"]())
    logger = CSVLogger(tmp_path, name=str(every), version="")
    trainer = make_trainer(max_steps=7, logger=logger, log_every_n_steps=every, callbacks=[Spy()])
    trainer.fit(module, loader(random_dataset(64), batch_size=8))
    assert hasattr(trainer._logger_connector, "should_update_logs")
    expected = [every > 0 and (step + 1) % every == 0 for step in range(7)]
    assert decisions == expected
    metrics = Path(logger.log_dir) / "metrics.csv"
    rows = list(csv.DictReader(metrics.open())) if metrics.exists() else []
    logged_steps = sorted({int(r["step"]) for r in rows if r.get("train/agreement")})
    assert logged_steps == [step for step, logs in enumerate(expected) if logs]
