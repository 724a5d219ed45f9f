"""lightning-kd's own evidence on real data: every method, paired over seeds, on Fashion-MNIST and digits.

Each experiment is an :class:`~lightning_kd.AblationModule` run per seed (the arms of a run see the same
batches from the same initial weights), run with ``lightning-kd fit`` on a config this script writes, then
summarised with ``lightning-kd report`` (mean ± std over seeds, paired differences to KD and to the baseline
with 95 % intervals). The teachers are trained first with the Fashion-MNIST teacher recipe and the digits one.

1. ``all_methods`` (Fashion-MNIST): the baseline (no teacher) and every preset but MLKD (the Fashion-MNIST
   DataModule has no strong view), the presets' defaults, no tuning; ``lightning-kd analyze`` then writes the
   logit diagnostics of the teacher against the KD and the KD+Z students of the first seed (``analysis/``);
2. ``gap`` (Fashion-MNIST): the same with a 10 % stratified transfer set and the largest capacity gap of the
   preset (a bigger teacher, the smallest student);
3. ``table4`` (Fashion-MNIST): base temperature 2, CE weight 0.1, the KD weight over {0.9, 3, 6, 9, 12, 15, 18}
   for raw logits, the Z-score and its two halves (centering only, scaling only) — the paper's Table 4;
4. ``digits``: the demo's setting (a quarter of the digits as transfer set) over seeds;
5. ``digits_mlkd``: MLKD and MLKD+Z against KD and KD+Z on the digits' weak and strong views (every arm of this
   run trains on the weak, shifted view).

Presets (``--scale``):

* ``smoke``: one seed, a few hundred steps on small subsets (the test suite runs it, real data);
* ``cpu``: sized to finish in under an hour on a 2-core CPU: one resnet8 teacher trained for 4 epochs (the gap
  experiment's gap is its smaller student: a bigger teacher does not fit the hour), MLP students (16 hidden
  units; 4 in the gap experiment) for 6 epochs, 5 seeds (3 for Table 4 on a 20 % subset);
* ``gpu``: the full Fashion-MNIST schedule (resnet32/resnet56 teachers for 20 epochs, resnet8 students for
  30 epochs with the crop augmentation, 5 seeds) — for a machine with an accelerator.

    python benchmarks/evidence.py --scale cpu --out runs/evidence
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lightning_kd.cli import main as lightning_kd
from lightning_kd.presets import get_preset

#: The methods of the all-methods experiments (MLKD needs a strong view, see ``digits_mlkd``).
METHODS = ("kd", "kd_z", "ctkd", "ctkd_z", "dkd", "dkd_z", "maxlogit_z", "dist", "dist_z", "ttm", "wttm")
TABLE4_WEIGHTS = (0.9, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0)
TABLE4_PREPROCESS = {"raw": "none", "z": "zscore", "center": "center", "scale": "scale"}


@dataclass
class Scale:
    """The sizes of one preset."""

    seeds: tuple[int, ...]
    fashion_teacher: str
    fashion_teacher_epochs: int
    gap_teacher: str
    gap_teacher_epochs: int
    student: str
    student_kwargs: dict[str, Any]
    gap_student_kwargs: dict[str, Any]
    epochs: int
    table4_epochs: int
    table4_seeds: tuple[int, ...]
    train_fraction: float
    table4_fraction: float
    gap_fraction: float
    batch_size: int
    augment: bool
    digits_epochs: int
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


SCALES = {
    "smoke": Scale(
        seeds=(0,),
        fashion_teacher="resnet8",
        fashion_teacher_epochs=1,
        gap_teacher="resnet8",
        gap_teacher_epochs=1,
        student="demo_mlp",
        student_kwargs={"image_size": 28, "hidden": 16},
        gap_student_kwargs={"image_size": 28, "hidden": 4},
        epochs=1,
        table4_epochs=1,
        table4_seeds=(0,),
        train_fraction=0.02,
        table4_fraction=0.02,
        gap_fraction=0.02,
        batch_size=64,
        augment=False,
        digits_epochs=2,
        limit_train_batches=12,
        limit_val_batches=8,
    ),
    "cpu": Scale(
        seeds=(0, 1, 2, 3, 4),
        fashion_teacher="resnet8",
        fashion_teacher_epochs=4,
        gap_teacher="resnet8",  # the same teacher (a bigger one does not fit the hour): the gap is the student's
        gap_teacher_epochs=4,
        student="demo_mlp",
        student_kwargs={"image_size": 28, "hidden": 16},
        gap_student_kwargs={"image_size": 28, "hidden": 4},
        epochs=6,
        table4_epochs=6,
        table4_seeds=(0, 1, 2),
        train_fraction=1.0,
        table4_fraction=0.2,
        gap_fraction=0.1,
        batch_size=128,
        augment=False,
        digits_epochs=30,
    ),
    "gpu": Scale(
        seeds=(0, 1, 2, 3, 4),
        fashion_teacher="resnet32",
        fashion_teacher_epochs=20,
        gap_teacher="resnet56",
        gap_teacher_epochs=20,
        student="resnet8",
        student_kwargs={},
        gap_student_kwargs={"image_size": 28, "hidden": 8},
        epochs=30,
        table4_epochs=30,
        table4_seeds=(0, 1, 2, 3, 4),
        train_fraction=1.0,
        table4_fraction=1.0,
        gap_fraction=0.1,
        batch_size=128,
        augment=True,
        digits_epochs=30,
    ),
}


def _run(argv: list[str]) -> float:
    """``lightning-kd <argv>`` in this process; its wall time in seconds (a failure raises)."""
    start = time.perf_counter()
    status = lightning_kd(argv)
    if status != 0:
        raise RuntimeError(f"`lightning-kd {' '.join(argv)}` exited with {status}")
    return time.perf_counter() - start


def _sgd(lr: float = 0.05) -> dict[str, Any]:
    return {"class_path": "torch.optim.SGD", "init_args": {"lr": lr, "momentum": 0.9, "weight_decay": 5e-4}}


def _cosine(epochs: int) -> dict[str, Any]:
    return {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR", "init_args": {"T_max": epochs}}


def _arm(name: str, student: str, kwargs: dict[str, Any], loss: Any, epochs: int, lr: float = 0.05) -> dict[str, Any]:
    arm: dict[str, Any] = {
        "name": name,
        "student": student,
        "loss": loss,
        "optimizer": _sgd(lr),
        "lr_scheduler": _cosine(epochs),
    }
    if kwargs:
        arm["student_kwargs"] = kwargs
    return arm


def _table4_arm(label: str, weight: float) -> str:
    """The arm name of a Table 4 cell: ``raw_w0p9``, ``z_w12``, ... (arm names take no '.')."""
    return f"{label}_w{weight:g}".replace(".", "p")


def _table4_loss(preprocess: str, weight: float) -> dict[str, Any]:
    return (
        get_preset("kd").replace(preprocess=preprocess, temperature=2.0, ce_weight=0.1, kd_weight=weight).loss_config()
    )


def _config(
    teacher: Path,
    arch: str,
    arms: list[dict[str, Any]],
    data: dict[str, Any],
    epochs: int,
    scale: Scale,
    in_chans: int = 1,
) -> dict[str, Any]:
    trainer: dict[str, Any] = {
        "max_epochs": epochs,
        "limit_train_batches": scale.limit_train_batches,
        "limit_val_batches": scale.limit_val_batches,
        "enable_progress_bar": False,
    }
    model = {"teacher": str(teacher), "teacher_arch": arch, "num_classes": 10, "in_chans": in_chans, "arms": arms}
    if data["class_path"].endswith("FashionMNISTDataModule") and not data["init_args"].get("augment"):
        model["teacher_cache"] = str(
            teacher.parent / f"cache-{teacher.stem}-{data['init_args'].get('train_fraction', 1.0)}"
        )
        data["init_args"]["return_views"] = True
    return {
        "trainer": trainer,
        "model": {"class_path": "lightning_kd.AblationModule", "init_args": model},
        "data": data,
        "checkpoint": {"monitor": None, "save_top_k": 0},
    }


def _fashion(fraction: float, scale: Scale) -> dict[str, Any]:
    args: dict[str, Any] = {"batch_size": scale.batch_size, "train_fraction": fraction}
    if scale.augment:
        args["augment"] = True
    return {"class_path": "lightning_kd.data.FashionMNISTDataModule", "init_args": args}


def _experiment(
    name: str, config: dict[str, Any], seeds: tuple[int, ...], out: Path, references: list[str]
) -> dict[str, Any]:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    times = {}
    for seed in seeds:
        times[seed] = _run(
            [
                "fit",
                "--config",
                str(path),
                "--seed_everything",
                str(seed),
                f"--trainer.default_root_dir={folder / f'seed_{seed}'}",
            ]
        )
    from lightning_kd.report import main as report

    report(
        [str(folder / f"seed_{s}") for s in seeds]
        + [a for r in references for a in ("--reference", r)]
        + ["--out", str(folder / "report")]
    )
    return {"config": str(path), "seconds_per_run": times, "report": str(folder / "report" / "report.md")}


def _teacher(recipe: str, arch: str, epochs: int, out: Path, data_args: list[str]) -> tuple[Path, dict[str, Any]]:
    """Train a teacher with ``recipe``; its export and ``{"seconds": wall time, "top1": last test top-1 (%)}``."""
    path = out / "teachers" / f"{arch}.pt"
    seconds = _run(
        [
            "fit",
            "--config",
            recipe,
            f"--model.init_args.model={arch}",
            f"--trainer.max_epochs={epochs}",
            f"--model.init_args.lr_scheduler.init_args.T_max={epochs}",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={out / 'teachers' / arch}",
            f"--export.dirpath={out / 'teachers'}",
            f"--export.filename={arch}.pt",
            "--seed_everything=0",
            *data_args,
        ]
    )
    (metrics,) = sorted((out / "teachers" / arch).glob("version_*/metrics.csv"))[-1:]
    with open(metrics, encoding="utf-8") as f:
        top1 = [float(row["val/acc1"]) for row in csv.DictReader(f) if row.get("val/acc1")]
    return path, {"seconds": seconds, "top1": 100.0 * top1[-1], "path": str(path), "epochs": epochs}


def _analysis(out: Path, teacher: Path, arch: str, scale: Scale, arms: tuple[str, ...]) -> dict[str, str]:
    """``lightning-kd analyze`` of the all-methods run's first seed: the teacher against each arm's student."""
    folders = {}
    (seed_folder,) = sorted((out / "all_methods").glob(f"seed_{scale.seeds[0]}/version_*"))[-1:]
    for arm in arms:
        folder = out / "analysis" / arm
        limit = ["--limit-batches", str(scale.limit_val_batches)] if scale.limit_val_batches != 1.0 else []
        _run(
            [
                "analyze",
                f"--teacher={teacher}",
                f"--teacher-arch={arch}",
                f"--student={seed_folder / f'student-{arm}.pt'}",
                f"--student-arch={scale.student}",
                f"--student-kwargs={json.dumps(scale.student_kwargs)}",
                "--data=fashion_mnist",
                "--num-classes=10",
                "--in-chans=1",
                *limit,
                f"--out={folder}",
            ]
        )
        folders[arm] = str(folder)
    return folders


def _table4_summary(folder: Path, seeds: tuple[int, ...]) -> dict[str, dict[str, list[float]]]:
    """Per pre-process and weight: the mean and std over seeds of the best top-1, and a plot."""
    from lightning_kd.report import _expand, read_run

    runs = [read_run(p) for p in _expand([str(folder / f"seed_{s}") for s in seeds])]
    summary: dict[str, dict[str, list[float]]] = {}
    for label in TABLE4_PREPROCESS:
        means, stds = [], []
        for weight in TABLE4_WEIGHTS:
            values = [r.best[_table4_arm(label, weight)] for r in runs if _table4_arm(label, weight) in r.best]
            means.append(statistics.fmean(values) if values else float("nan"))
            stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[label] = {"mean": means, "std": stds}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in summary.items():
        ax.errorbar(TABLE4_WEIGHTS, values["mean"], yerr=values["std"], marker="o", capsize=3, label=label)
    ax.set_xlabel("KD weight (base temperature 2, CE weight 0.1)")
    ax.set_ylabel("best test top-1 (%), mean ± std over seeds")
    ax.set_title("Table 4 sweep on Fashion-MNIST")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / "table4.png", dpi=120)
    plt.close(fig)
    return summary


def _summary_markdown(out: Path, result: dict[str, Any]) -> str:
    """The tables of every experiment of ``result`` (read back from ``out``), as Markdown for the results page."""
    env = result["environment"]
    lines = [
        f"Scale `{result['scale']}` on {env['device']} ({env['threads']} threads), torch {env['torch']},"
        f" Lightning {env['lightning']}: {result['seconds'] / 60:.1f} min in all.",
        "",
        "| Teacher | Epochs | Test top-1 (%) | Training wall time (min) |",
        "|---|---:|---:|---:|",
    ]
    for arch, teacher in result["teachers"].items():
        lines.append(f"| {arch} | {teacher['epochs']} | {teacher['top1']:.2f} | {teacher['seconds'] / 60:.1f} |")
    for name, entry in result["experiments"].items():
        seconds = list(entry["seconds_per_run"].values())
        lines += [
            "",
            f"### `{name}`",
            "",
            f"{len(seconds)} runs (seeds {', '.join(map(str, entry['seconds_per_run']))}), wall time per run"
            f" {statistics.fmean(seconds) / 60:.1f} min (all arms together), {env['device']}.",
            "",
            Path(entry["report"]).read_text(encoding="utf-8").strip(),
        ]
        if "summary" in entry:  # Table 4: mean ± std of the best top-1, one row per pre-process
            lines += ["", "| Pre-process | " + " | ".join(f"w {w:g}" for w in TABLE4_WEIGHTS) + " |"]
            lines.append("|---|" + "---:|" * len(TABLE4_WEIGHTS))
            for label, values in entry["summary"].items():
                cells = [f"{m:.2f} ± {sd:.2f}" for m, sd in zip(values["mean"], values["std"], strict=True)]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if result.get("analysis"):
        lines += [
            "",
            "### `lightning-kd analyze`: the teacher against the first seed's students",
            "",
            "| Student | Student top-1 (%) | Top-1 agreement (%) | Logit std (teacher / student) |"
            " Mean abs. logit difference, raw / standardized |",
            "|---|---:|---:|---:|---:|",
        ]
        for arm, folder in result["analysis"].items():
            a = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
            lines.append(
                f"| {arm} | {100 * a['student']['accuracy']:.2f} | {100 * a['agreement']:.2f}"
                f" | {a['teacher']['logit_std']:.2f} / {a['student']['logit_std']:.2f}"
                f" | {a['logit_difference']['raw']['mean']:.3f} / {a['logit_difference']['zscore']['mean']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=list(SCALES), default="cpu")
    parser.add_argument("--out", type=Path, default=Path("runs/evidence"))
    parser.add_argument("--experiments", nargs="+", default=["all_methods", "gap", "table4", "digits", "digits_mlkd"])
    parser.add_argument(
        "--summary-only", action="store_true", help="only rewrite summary.md from the --out folder's evidence.json"
    )
    args = parser.parse_args(argv)
    scale, out = SCALES[args.scale], args.out.resolve()
    if args.summary_only:
        saved = json.loads((out / "evidence.json").read_text(encoding="utf-8"))
        (out / "summary.md").write_text(_summary_markdown(out, saved), encoding="utf-8")
        return saved
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result: dict[str, Any] = {"scale": args.scale, "sizes": scale.__dict__, "experiments": {}, "teachers": {}}
    fashion_teacher_args = [
        f"--data.init_args.batch_size={scale.batch_size}",
        f"--trainer.limit_train_batches={scale.limit_train_batches}",
        f"--trainer.limit_val_batches={scale.limit_val_batches}",
    ]
    experiments = set(args.experiments)

    def arms_of(kwargs: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
        baseline = [_arm("baseline", scale.student, kwargs, None, epochs)]
        return baseline + [_arm(m, scale.student, kwargs, m, epochs) for m in METHODS]

    if experiments & {"all_methods", "table4"}:
        teacher, result["teachers"][scale.fashion_teacher] = _teacher(
            "fashion_mnist/teachers/resnet32",
            scale.fashion_teacher,
            scale.fashion_teacher_epochs,
            out,
            fashion_teacher_args,
        )
        if "all_methods" in experiments:
            config = _config(
                teacher,
                scale.fashion_teacher,
                arms_of(scale.student_kwargs, scale.epochs),
                _fashion(scale.train_fraction, scale),
                scale.epochs,
                scale,
            )
            result["experiments"]["all_methods"] = _experiment(
                "all_methods", config, scale.seeds, out, ["kd", "baseline"]
            )
            result["analysis"] = _analysis(out, teacher, scale.fashion_teacher, scale, ("kd", "kd_z"))
        if "table4" in experiments:
            arms = [
                _arm(
                    _table4_arm(label, w),
                    scale.student,
                    scale.student_kwargs,
                    _table4_loss(pre, w),
                    scale.table4_epochs,
                )
                for label, pre in TABLE4_PREPROCESS.items()
                for w in TABLE4_WEIGHTS
            ]
            config = _config(
                teacher, scale.fashion_teacher, arms, _fashion(scale.table4_fraction, scale), scale.table4_epochs, scale
            )
            entry = _experiment("table4", config, scale.table4_seeds, out, ["raw_w9"])
            entry["summary"] = _table4_summary(out / "table4", scale.table4_seeds)
            result["experiments"]["table4"] = entry
    if "gap" in experiments:
        trained = result["teachers"].get(scale.gap_teacher)
        if trained is not None and trained["epochs"] == scale.gap_teacher_epochs:  # the same teacher: reuse it
            teacher = Path(trained["path"])
        else:
            teacher, result["teachers"][scale.gap_teacher] = _teacher(
                "fashion_mnist/teachers/resnet32",
                scale.gap_teacher,
                scale.gap_teacher_epochs,
                out,
                fashion_teacher_args,
            )
        config = _config(
            teacher,
            scale.gap_teacher,
            arms_of(scale.gap_student_kwargs, scale.epochs),
            _fashion(scale.gap_fraction, scale),
            scale.epochs,
            scale,
        )
        result["experiments"]["gap"] = _experiment("gap", config, scale.seeds, out, ["kd", "baseline"])
    if experiments & {"digits", "digits_mlkd"}:
        digits_args = [f"--trainer.limit_val_batches={scale.limit_val_batches}", "--data.init_args.image_size=8"]
        epochs = max(scale.digits_epochs // 2, 1)
        teacher, result["teachers"]["demo_cnn"] = _teacher(
            "digits/teachers/resnet20", "demo_cnn", epochs, out, digits_args
        )
        kwargs = {"image_size": 8, "hidden": 8}
        data = {
            "class_path": "lightning_kd.data.DigitsDataModule",
            "init_args": {"batch_size": 64, "train_fraction": 0.25},
        }
        if "digits" in experiments:
            arms = [_arm("baseline", "demo_mlp", kwargs, None, scale.digits_epochs)] + [
                _arm(m, "demo_mlp", kwargs, m, scale.digits_epochs) for m in METHODS
            ]
            config = _config(teacher, "demo_cnn", arms, json.loads(json.dumps(data)), scale.digits_epochs, scale)
            result["experiments"]["digits"] = _experiment("digits", config, scale.seeds, out, ["kd", "baseline"])
        if "digits_mlkd" in experiments:
            views = json.loads(json.dumps(data))
            views["init_args"]["strong_aug"] = True
            arms = [_arm(m, "demo_mlp", kwargs, m, scale.digits_epochs) for m in ("kd", "kd_z", "mlkd", "mlkd_z")]
            config = _config(teacher, "demo_cnn", arms, views, scale.digits_epochs, scale)
            result["experiments"]["digits_mlkd"] = _experiment("digits_mlkd", config, scale.seeds, out, ["kd"])
    from _common import environment

    result["environment"] = environment()
    result["seconds"] = time.perf_counter() - started
    (out / "evidence.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(_summary_markdown(out, result), encoding="utf-8")
    print(
        f"evidence ({args.scale}) done in {result['seconds'] / 60:.1f} min on {result['environment']['device']}:"
        f" reports under {out}"
    )
    return result


sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    main()
