"""A 4-arm AblationModule run against 4 single runs of the same arms: throughput per arm and wall time.

One invocation, one device, the runs interleaved (single runs and the ablation alternate, ``--repeats`` times;
the medians are reported). The arms are KD, KD+Z, DKD and CTKD+Z with one student architecture; the single runs
are :class:`~lightning_kd.DistillationModule` fits of the same arms. "Combined throughput" is images/s summed
over the arms: for the single runs, 4 x batch x steps over the four runs' summed time.

    python benchmarks/ablation.py --tiny                      # CPU: digits-sized models and data, one thread
    python benchmarks/ablation.py --batch-size 64 --steps 200 # GPU: resnet32x4 -> resnet8x4, CIFAR-100-shaped

The GPU preset uses random CIFAR-100-shaped data on the device (the data path is not what is compared here:
both sides load each batch once per run), bf16-mixed and channels-last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import StepTimer, environment, quiet_trainer, write_json

from lightning_kd import AblationModule, Arm, DistillationModule
from lightning_kd.models import create_model
from lightning_kd.presets import create_loss

ARMS = ("kd", "kd_z", "dkd", "ctkd_z")


def _setting(args: argparse.Namespace) -> dict[str, Any]:
    if args.tiny:
        return {
            "teacher": "demo_cnn",
            "student": "demo_mlp",
            "classes": 10,
            "shape": (1, 8, 8),
            "in_chans": 1,
            "student_kwargs": {"image_size": 8},
            "precision": "32-true",
            "channels_last": False,
        }
    return {
        "teacher": "resnet32x4",
        "student": "resnet8x4",
        "classes": 100,
        "shape": (3, 32, 32),
        "in_chans": 3,
        "student_kwargs": {},
        "precision": "bf16-mixed",
        "channels_last": True,
    }


def _data(args: argparse.Namespace, setting: dict[str, Any], device: str) -> DataLoader:
    steps = args.steps + args.warmup
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * args.batch_size, *setting["shape"], generator=g)
    y = torch.randint(0, setting["classes"], (steps * args.batch_size,), generator=g)
    return DataLoader(TensorDataset(x.to(device), y.to(device)), batch_size=args.batch_size)


def _time(module: Any, args: argparse.Namespace, setting: dict[str, Any], device: str) -> StepTimer:
    timer = StepTimer(args.warmup)
    trainer = quiet_trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        precision=setting["precision"],
        max_epochs=1,
        callbacks=[timer],
    )
    trainer.fit(module, _data(args, setting, device))
    return timer


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU preset: digits-sized models, one thread")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.steps = args.steps or (60 if args.tiny else 200)
    args.warmup = args.warmup or (10 if args.tiny else 30)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if args.tiny:
        torch.set_num_threads(1)
    setting = _setting(args)
    common = {"num_classes": setting["classes"], "in_chans": setting["in_chans"]}

    def teacher() -> torch.nn.Module:
        torch.manual_seed(1)
        return create_model(setting["teacher"], **common)

    def student() -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model(setting["student"], **common, **setting["student_kwargs"])

    single, ablation = [], []
    for _ in range(args.repeats):
        times = []
        for name in ARMS:
            module = DistillationModule(
                student(), teacher(), create_loss(name), channels_last=setting["channels_last"], check_finite_steps=0
            )
            times.append(_time(module, args, setting, device))
        single.append((sum(t.wall for t in times), sum(t.cpu for t in times)))
        arms = [Arm(name, student(), name) for name in ARMS]
        module = AblationModule(teacher(), arms, channels_last=setting["channels_last"], check_finite_steps=0, **common)
        timer = _time(module, args, setting, device)
        ablation.append((timer.wall, timer.cpu))
    images = args.steps * args.batch_size
    single_wall = statistics.median(w for w, _ in single)
    single_cpu = statistics.median(c for _, c in single)
    abl_wall = statistics.median(w for w, _ in ablation)
    abl_cpu = statistics.median(c for _, c in ablation)
    result = {
        "environment": environment(),
        "setting": {
            **{k: v for k, v in setting.items() if k != "shape"},
            "batch_size": args.batch_size,
            "timed_batches": args.steps,
            "arms": list(ARMS),
            "repeats": args.repeats,
        },
        "single_runs": {"wall_s": single_wall, "cpu_s": single_cpu, "images_per_s": len(ARMS) * images / single_wall},
        "ablation": {"wall_s": abl_wall, "cpu_s": abl_cpu, "images_per_s": len(ARMS) * images / abl_wall},
        "speedup_wall": single_wall / abl_wall,
        "speedup_cpu": single_cpu / abl_cpu,
    }
    env = result["environment"]
    print(
        f"{setting['teacher']} -> {setting['student']}, {len(ARMS)} arms, batch {args.batch_size}, {args.steps}"
        f" timed batches, {args.repeats} interleaved repeats (medians) on {env['device']}, torch {env['torch']},"
        f" Lightning {env['lightning']}"
    )
    print("| setting | wall (s) | CPU (s) | combined images/s | images/s per arm |")
    print("|---|---:|---:|---:|---:|")
    for label, key in ((f"{len(ARMS)} single runs", "single_runs"), (f"one {len(ARMS)}-arm run", "ablation")):
        r = result[key]
        print(
            f"| {label} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['images_per_s']:.0f} |"
            f" {r['images_per_s'] / len(ARMS):.0f} |"
        )
    print(f"ablation / single runs: {result['speedup_wall']:.2f}x (wall), {result['speedup_cpu']:.2f}x (CPU time)")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
