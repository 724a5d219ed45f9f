"""Multi-process DDP on CPU (2 processes, gloo, ddp_spawn) against single-process runs on the same global batches."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed

from lightning_kd import (
    AblationModule,
    Arm,
    CurriculumTemperature,
    DistillationLoss,
    DistillationModule,
    KnowledgeDistillation,
)
from tests.helpers import (
    LitClassifier,
    RankReport,
    ShardedData,
    bn_teacher,
    clone_state,
    make_trainer,
    mlp,
    random_dataset,
    read_rank_reports,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available"),
]

DDP: dict[str, Any] = {"strategy": "ddp_spawn", "accelerator": "cpu", "devices": 2}


def _distillation_module() -> DistillationModule:
    return DistillationModule(
        mlp(seed=0),
        bn_teacher(seed=1),
        DistillationLoss("kd", temperature=4.0),
        optimizer=partial(torch.optim.SGD, lr=0.5),  # no momentum
    )


def test_ddp_step_equals_single_process_on_the_global_batch(tmp_path: Path) -> None:
    data = ShardedData(random_dataset(16, seed=21), random_dataset(16, seed=37), global_batch=16)

    single = _distillation_module()
    single_report = RankReport(str(tmp_path))
    single_trainer = make_trainer(max_epochs=1, callbacks=[single_report], use_distributed_sampler=False)
    single_trainer.fit(single, datamodule=data)
    (tmp_path / "rank0.json").rename(tmp_path / "single.json")

    # precondition: one rank's half of the validation set alone gives another accuracy than all of it
    x, y = data.val.tensors
    with torch.no_grad():
        for logits in (single(x), single.teacher(x)):
            correct = logits.argmax(1) == y
            assert correct[0::2].float().mean() != correct.float().mean()

    teacher_state = clone_state(bn_teacher(seed=1))
    module = _distillation_module()
    initial = clone_state(module.student)
    trainer = make_trainer(max_epochs=1, callbacks=[RankReport(str(tmp_path))], use_distributed_sampler=False, **DDP)
    trainer.fit(module, datamodule=data)  # 8 samples per rank: the same 16

    reports = read_rank_reports(tmp_path, 2)
    (info0, saved0), (info1, saved1) = reports
    assert info0["world_size"] == info1["world_size"] == 2 and len(info0["losses"]) == len(info1["losses"]) == 1
    # one SGD step: the same weights on both ranks and as a single process on the global batch
    for key, value in single.state_dict().items():
        torch.testing.assert_close(saved0["module"][key], value, rtol=0, atol=1e-6)
        torch.testing.assert_close(saved1["module"][key], value, rtol=0, atol=1e-6)
        torch.testing.assert_close(module.state_dict()[key], value, rtol=0, atol=1e-6)  # returned to this process
    assert any(not torch.equal(initial[k], module.student.state_dict()[k]) for k in initial)
    # the step's loss averaged over the ranks is the single-process loss; the ranks' halves differ
    single_loss = single_report.losses[0]
    assert (info0["losses"][0] + info1["losses"][0]) / 2 == pytest.approx(single_loss, abs=1e-6)
    assert info0["losses"][0] != pytest.approx(info1["losses"][0])
    # the teacher stays bitwise frozen on every rank
    for info, saved in reports:
        assert not info["teacher_training"] and not info["teacher_requires_grad"] and not info["teacher_in_optimizer"]
        assert saved["teacher"].keys() == teacher_state.keys()
        assert all(torch.equal(saved["teacher"][k], v) for k, v in teacher_state.items())
    # validation metrics are synced over the ranks
    for key in ("val/acc1", "val/acc5", "val/teacher_acc1"):
        assert float(trainer.callback_metrics[key]) == pytest.approx(float(single_trainer.callback_metrics[key]))


def test_callback_ctkd_theta_identical_on_all_ranks(tmp_path: Path) -> None:
    data = ShardedData(random_dataset(32, seed=23), global_batch=16)

    def callback() -> KnowledgeDistillation:
        loss = DistillationLoss("kd", temperature=CurriculumTemperature(decay_epochs=1))  # full reversal at once
        return KnowledgeDistillation(bn_teacher(seed=1), loss)

    (tmp_path / "single").mkdir()
    single_callback, single_report = callback(), RankReport(str(tmp_path / "single"))
    single = LitClassifier()
    trainer = make_trainer(max_epochs=1, callbacks=[single_callback, single_report], use_distributed_sampler=False)
    trainer.fit(single, datamodule=data)
    single_theta = single_callback.loss.temperature.theta.detach()

    spawned = callback()
    trainer = make_trainer(
        max_epochs=1,
        callbacks=[spawned, RankReport(str(tmp_path))],
        use_distributed_sampler=False,
        log_every_n_steps=1,
        **DDP,
    )
    trainer.fit(LitClassifier(), datamodule=data)
    (info0, saved0), (info1, saved1) = read_rank_reports(tmp_path, 2)
    assert len(info0["thetas"]) == len(info1["thetas"]) == 2  # two steps
    assert info0["thetas"] == info1["thetas"]  # bitwise the same on both ranks after every step
    assert torch.equal(saved0["theta"], saved1["theta"])
    assert info0["thetas"][0] != 1.0 and info0["thetas"][1] != info0["thetas"][0]  # it trains
    # and it trains as in a single process on the same global batches: the first step's gradient is the mean of
    # the ranks' (each rank alone would move theta about 7e-6 off); later steps see student weights that differ
    # by the rounding of DDP's gradient averaging (~1e-7), which CTKD's T^2-scaled loss magnifies in theta's
    # small gradient
    assert info0["thetas"][0] == pytest.approx(single_report.thetas[0], abs=1e-8)
    torch.testing.assert_close(saved0["theta"], single_theta, rtol=0, atol=2e-6)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(saved0["module"][key], value, rtol=0, atol=1e-6)
        assert torch.equal(saved0["module"][key], saved1["module"][key])
    assert not info0["teacher_training"] and not info0["teacher_in_optimizer"]
    # ddp_spawn sends back the module, not callbacks: this process's callback keeps theta's initial value, as its
    # docstring says, and the learned temperature is in trainer.callback_metrics, as it says too
    assert float(spawned.loss.temperature.theta) == 1.0
    learned = 1 + 20 * torch.sigmoid(saved0["theta"])
    assert float(trainer.callback_metrics["train/temperature"]) == pytest.approx(float(learned), abs=1e-3)
    assert "ddp_spawn" in (KnowledgeDistillation.__doc__ or "")


def _ablation_module() -> AblationModule:
    sgd = partial(torch.optim.SGD, lr=0.5)  # no momentum
    arms = [Arm("kd", mlp(seed=0), "kd", optimizer=sgd), Arm("dkd", mlp(seed=0), "dkd", optimizer=sgd)]
    return AblationModule(bn_teacher(seed=1), arms)


def test_ablation_ddp_steps_equal_single_process_on_the_global_batches() -> None:
    """Every arm of a 2-process run takes the steps a single process takes on the same global batches."""
    data = ShardedData(random_dataset(32, seed=41), random_dataset(16, seed=43), global_batch=16)
    single = _ablation_module()
    single_trainer = make_trainer(max_epochs=1, use_distributed_sampler=False)
    single_trainer.fit(single, datamodule=data)

    module = _ablation_module()
    initial = clone_state(module)
    trainer = make_trainer(max_epochs=1, use_distributed_sampler=False, **DDP)
    trainer.fit(module, datamodule=data)  # two steps of 8 samples per rank

    reference = single.state_dict()
    assert module.state_dict().keys() == reference.keys()
    for key, value in reference.items():  # the weights ddp_spawn returns from rank 0
        torch.testing.assert_close(module.state_dict()[key], value, rtol=0, atol=1e-6)
    assert all(
        not torch.equal(initial[f"arms.{arm}.1.weight"], reference[f"arms.{arm}.1.weight"]) for arm in ("kd", "dkd")
    )
    for key in ("kd/val/acc1", "dkd/val/acc1", "val/acc1", "val/teacher_acc1"):
        assert float(trainer.callback_metrics[key]) == pytest.approx(float(single_trainer.callback_metrics[key]))
