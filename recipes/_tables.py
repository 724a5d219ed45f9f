"""The published numbers and per-pair settings the recipes are generated from (data only, no logic).

The methods' own settings live in :mod:`lightning_kd.presets`; this file holds what changes per teacher-student
pair or per paper table, and where each number comes from (the ``[XX]`` tags are listed in :data:`SOURCES`).
"""

from __future__ import annotations

LS = 'Sun et al., "Logit Standardization in Knowledge Distillation", CVPR 2024'
AT = 'Matsuyama et al., "Adaptive Temperature Based on Logits Correlation in Knowledge Distillation"'
TTM_PAPER = 'Zheng & Yang, "Knowledge Distillation Based on Transformed Teacher Matching", ICLR 2024'
DIST_PAPER = 'Huang et al., "Knowledge Distillation from A Stronger Teacher" (DIST), NeurIPS 2022'

#: The sources a header may cite, by tag; a header lists those it mentions.
SOURCES = {
    "[LS]": f"{LS}; github.com/sunshangquan/logit-standardization-KD (configs, scripts, logs).",
    "[MD]": "mdistiller, github.com/megvii-research/mdistiller (configs).",
    "[ML]": "MLKD's code, github.com/Jin-Ying/Multi-Level-Logit-Distillation (mdistiller/engine/cfg.py, configs).",
    "[CT]": "CTKD (Li et al., AAAI 2023) as run by [LS]'s CTKD/scripts/run_cifar_distill.sh.",
    "[AT]": f"{AT}.",
    "[TTM]": f"{TTM_PAPER}; github.com/zkxufo/TTM.",
    "[DIST]": f"{DIST_PAPER}; github.com/hunto/DIST_KD (README: CIFAR-100 code, logs and table of 27 Dec 2022).",
}

# --------------------------------------------------------------------------------------------------------
# CIFAR-100: the teacher/student pairs of [LS] Tables 1 and 2, in the tables' column order.
# --------------------------------------------------------------------------------------------------------
#: Top-1 of the widely shared CIFAR-100 teacher checkpoints (mdistiller's cifar_teachers.tar), as [LS] prints them.
TEACHER_ACC = {"resnet32x4": 79.42, "wrn_40_2": 75.61, "vgg13": 74.64, "ResNet50": 79.34, "resnet56": 72.34,
               "resnet110": 74.31}  # fmt: skip
TEACHER_SOURCE = "[LS] Tables 1-2, the shared CIFAR-100 teacher checkpoint"
STUDENT_ACC = {"ShuffleV2": 71.82, "wrn_16_2": 73.26, "wrn_40_2": 75.61, "resnet8x4": 72.50, "MobileNetV2": 64.60,
               "vgg8": 70.36, "wrn_40_1": 71.98, "resnet20": 69.06, "resnet32": 71.14}  # fmt: skip

TABLE1 = [
    ("resnet32x4", "ShuffleV2"),
    ("resnet32x4", "wrn_16_2"),
    ("resnet32x4", "wrn_40_2"),
    ("wrn_40_2", "resnet8x4"),
    ("wrn_40_2", "MobileNetV2"),
    ("vgg13", "MobileNetV2"),
    ("ResNet50", "MobileNetV2"),
]
TABLE2 = [
    ("resnet32x4", "resnet8x4"),
    ("vgg13", "vgg8"),
    ("wrn_40_2", "wrn_40_1"),
    ("wrn_40_2", "wrn_16_2"),
    ("resnet56", "resnet20"),
    ("resnet110", "resnet32"),
    ("resnet110", "resnet20"),
]
PAIRS = TABLE1 + TABLE2

# [LS] Tables 1 and 2, one value per pair of PAIRS (Table 1 columns, then Table 2 columns).
LS_REPORTED = {
    "kd": [74.45, 74.90, 77.70, 73.97, 68.36, 67.37, 67.35, 73.33, 72.98, 73.54, 74.92, 70.66, 73.08, 70.67],
    "kd_z": [75.56, 75.26, 77.92, 77.11, 69.23, 68.61, 69.02, 76.62, 74.36, 74.37, 76.11, 71.43, 74.17, 71.48],
    "ctkd": [75.37, 74.57, 77.66, 74.61, 68.34, 68.50, 68.67, 73.39, 73.52, 73.93, 75.45, 71.19, 73.52, 70.99],
    "ctkd_z": [76.18, 75.16, 77.99, 77.03, 69.53, 68.98, 69.36, 76.67, 74.47, 74.58, 76.08, 71.34, 74.01, 71.39],
    "dkd": [77.07, 75.70, 78.46, 75.56, 69.28, 69.71, 70.35, 76.32, 74.68, 74.81, 76.24, 71.97, 74.11, 71.06],
    "dkd_z": [77.37, 76.19, 78.95, 76.75, 70.01, 69.98, 70.45, 77.01, 74.81, 74.89, 76.39, 72.32, 74.29, 71.85],
    "mlkd": [78.44, 76.52, 79.26, 77.33, 70.78, 70.57, 71.04, 77.08, 75.18, 75.35, 76.63, 72.19, 74.11, 71.89],
    "mlkd_z": [78.76, 77.53, 79.66, 77.68, 71.61, 70.94, 71.19, 78.28, 75.22, 75.56, 76.95, 72.33, 74.32, 72.27],
}

# [AT] Tables 1-2, "zKD+Ours" (the authors' own runs, one trial each). In [AT] Table 2 the student labels of
# two columns look swapped ("ResNet110 / ResNet8x4 (71.69)" and "ResNet32x4 / ResNet32 (72.42)"): by the
# student accuracies they are resnet110 -> resnet32 and resnet32x4 -> resnet8x4, which is how they are used here.
AT_REPORTED = {
    ("resnet32x4", "ShuffleV2"): "76.52 (Table 1)",
    ("resnet32x4", "wrn_16_2"): "75.56 (Table 1)",
    ("resnet32x4", "wrn_40_2"): "78.41 (Table 1)",
    ("wrn_40_2", "resnet8x4"): "75.02 (Table 1)",
    ("wrn_40_2", "MobileNetV2"): "69.89 (Table 1)",
    ("vgg13", "MobileNetV2"): "69.47 (Table 1)",
    ("ResNet50", "MobileNetV2"): "70.11 (Table 1)",
    ("wrn_40_2", "wrn_16_2"): "76.03 (Table 2)",
    ("wrn_40_2", "wrn_40_1"): "74.45 (Table 2)",
    ("resnet56", "resnet20"): "70.87 (Table 2)",
    ("resnet110", "resnet20"): "70.57 (Table 2)",
    ("resnet110", "resnet32"): "73.17 (Table 2, column labelled 'ResNet110 / ResNet8x4')",
    ("resnet32x4", "resnet8x4"): "76.11 (Table 2, column labelled 'ResNet32x4 / ResNet32')",
    ("vgg13", "vgg8"): "74.54 (Table 2)",
}

# [TTM] README benchmark tables (average of 5 runs): (DIST, TTM, WTTM); DIST partly re-implemented there.
TTM_README = {
    ("wrn_40_2", "wrn_16_2"): (75.51, 76.23, 76.37),
    ("wrn_40_2", "wrn_40_1"): (74.73, 74.32, 74.58),
    ("resnet56", "resnet20"): (71.75, 71.83, 71.92),
    ("resnet110", "resnet20"): (71.65, 71.46, 71.67),
    ("resnet110", "resnet32"): (73.69, 73.97, 74.13),
    ("resnet32x4", "resnet8x4"): (76.31, 76.17, 76.06),
    ("vgg13", "vgg8"): (73.89, 74.33, 74.44),
    ("vgg13", "MobileNetV2"): (68.50, 68.98, 69.16),
    ("ResNet50", "MobileNetV2"): (68.66, 69.24, 69.59),
    ("resnet32x4", "ShuffleV2"): (77.35, 76.57, 76.55),
}

# [DIST] README's CIFAR-100 table (mean ± std over runs with the released dist_cifar.yaml), where it has the pair.
DIST_README = {
    ("wrn_40_2", "wrn_40_1"): "74.43 ± 0.24",
    ("resnet56", "resnet20"): "71.75 ± 0.30",
    ("resnet32x4", "resnet8x4"): "76.31 ± 0.19",
    ("ResNet50", "MobileNetV2"): "68.66 ± 0.23",
    ("resnet32x4", "ShuffleV2"): "77.35 ± 0.25",
}

MOBILE = {"MobileNetV2", "ShuffleV1", "ShuffleV2"}

# KD+Z per-pair (base temperature, KD weight) where [LS] differs from (2, 9), from its log names.
KD_Z_OVERRIDES = {
    ("resnet110", "resnet20"): (4.0, 12.0),
    ("vgg13", "vgg8"): (3.0, 9.0),
    ("vgg13", "MobileNetV2"): (3.0, 9.0),
    ("wrn_40_2", "MobileNetV2"): (3.0, 9.0),
    ("resnet32x4", "wrn_16_2"): (3.0, 9.0),
    ("resnet32x4", "wrn_40_2"): (3.0, 9.0),
    ("ResNet50", "MobileNetV2"): (3.0, 1.0),
}

# DKD's beta per pair where it is not 8 ([MD] configs/cifar100/dkd/*.yaml).
DKD_BETA = {
    ("resnet56", "resnet20"): 2.0,
    ("resnet110", "resnet32"): 2.0,
    ("vgg13", "vgg8"): 6.0,
    ("vgg13", "MobileNetV2"): 6.0,
    ("wrn_40_2", "wrn_16_2"): 6.0,
    ("wrn_40_2", "wrn_40_1"): 6.0,
}

#: The CIFAR-100 methods, by preset name (the recipe folder is the preset name).
CIFAR_METHODS = ["kd", "kd_z", "ctkd", "ctkd_z", "dkd", "dkd_z", "mlkd", "mlkd_z", "maxlogit_z", "dist", "ttm", "wttm"]

#: Titles of the recipe descriptions; the part before " (" is the short name.
METHOD_TITLES = {
    "kd": "KD (Hinton et al.)",
    "kd_z": "KD+Z (KD with Z-score logit standardization)",
    "ctkd": "CTKD (KD with a curriculum temperature)",
    "ctkd_z": "CTKD+Z (curriculum temperature with Z-score logit standardization)",
    "dkd": "DKD (decoupled KD)",
    "dkd_z": "DKD+Z (decoupled KD with Z-score logit standardization)",
    "mlkd": "MLKD (multi-level logit distillation)",
    "mlkd_z": "MLKD+Z (multi-level logit distillation with Z-score logit standardization)",
    "maxlogit_z": "Max-logit temperature (Z-score KD with the adaptive max-logit temperature)",
    "dist": "DIST (relation-based distillation from a stronger teacher)",
    "ttm": "TTM (transformed teacher matching)",
    "wttm": "WTTM (weighted transformed teacher matching)",
    "teacher": "Teacher training (cross-entropy only)",
    "scratch": "Student trained from scratch (cross-entropy only)",
}

SGD_CIFAR = "SGD (momentum 0.9, weight decay 5e-4), batch 64, LR x0.1 at epochs 150/180/210"

# MLKD's released schedules, as far as they could be checked (the dates of the commits themselves could not):
# configs with 480 epochs and stronger augmentation were in the repository by July 2023 (its issue #2, 6 Jul
# 2023, asks why MLKD trains 480 epochs) and are the ones [LS] copied into configs/cifar100/mlkd/; commit
# 5ee473f changed the same-architecture pairs' configs (res32x4_res8x4, vgg13_vgg8, res56_res20, res110_res32,
# wrn40_2_*) to 240 epochs at LR 0.025, about September 2024 by [LS]'s maintainer's note of 27 Dec 2024 in [LS]
# issue #18. The heterogeneous pairs' configs (res32x4_shuv1/shuv2, res50_mv2, vgg13_mv2, ...) were still at
# 480 epochs in the latest version that could be read.
MLKD_SCHEDULES = [
    "[ML] published two schedules: 480 epochs with strong augmentation (in its configs by July 2023, its issue",
    "  #2; copied into [LS]'s configs and followed by the 480-epoch recipes here) and, for the same-architecture",
    "  pairs, 240 epochs at LR 0.025 (commit 5ee473f, about September 2024 by [LS]'s maintainer in [LS] issue #18;",
    "  the commit dates themselves were not verified). [LS]'s MLKD+Z logs run 480 epochs (its log",
    "  mlkd,resnet32x4,resnet8x4,2,9: 480 epochs, best 78.28, the number of its Table 2).",
]

# --------------------------------------------------------------------------------------------------------
# ImageNet: [LS] Table 3.
# --------------------------------------------------------------------------------------------------------
IMAGENET_PAIRS = {
    # name: (teacher arch, student arch, teacher file stem, DKD beta ([MD]), [LS] Table 3 top-1 per method,
    #        (teacher, student alone))
    "resnet34_resnet18": (
        "torchvision:resnet34",
        "torchvision:resnet18",
        "resnet34",
        0.5,
        {"kd": 71.03, "kd_z": 71.42, "dkd": 71.70, "dkd_z": 71.88},
        (73.31, 69.75),
    ),
    "resnet50_MobileNetV1": (
        "torchvision:resnet50",
        "MobileNetV1",
        "resnet50",
        2.0,
        {"kd": 70.50, "kd_z": 72.18, "dkd": 72.05, "dkd_z": 72.85},
        (76.16, 68.87),
    ),
}
IMAGENET_METHODS = ["kd", "kd_z", "dkd", "dkd_z"]

# --------------------------------------------------------------------------------------------------------
# Vision transformers on CIFAR-100: [LS]'s tiny-transformers folder (configs/*_KD_ours.yaml, its README, logs).
# --------------------------------------------------------------------------------------------------------
#: name: (timm model, display name, top-1 alone, top-1 with KD+Z, base temperature, KD weight, where T/weight are from)
VIT_STUDENTS = {
    "deit_tiny": (
        "timm:deit_tiny_patch16_224",
        "DeiT-Tiny",
        65.08,
        78.55,
        3.0,
        10.0,
        "its log deit-ti_c100_KD_ours_3_10; the config deit-ti_c100_KD_ours.yaml has LOGIT_TEMP 3, EXTRA_WEIGHT_IN 9",
    ),
    "pit_tiny": (
        "timm:pit_ti_224",
        "PiT-Tiny",
        73.58,
        78.76,
        2.0,
        9.0,
        "pit-ti_c100_KD_ours.yaml: LOGIT_TEMP 2, EXTRA_WEIGHT_IN left at its default 9 (pycls/core/config.py)",
    ),
}
#: Students of [LS]'s table that timm (1.0) does not have: PVT v1 (timm has only PVT v2 b0-b5) and T2T-ViT.
VIT_NOT_IN_TIMM = {"PVT-Tiny": (69.22, 78.43), "T2T-ViT-7": (69.37, 78.43)}
VIT_EPOCHS = 300
VIT_WARMUP_EPOCHS = 20
#: timm's ImageNet statistics, which [LS]'s tiny-transformers pipeline normalizes with (pycls/datasets/transforms.py).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The statistics the shared CIFAR-100 teachers were trained with (lightning_kd.data.CIFAR100DataModule's).
CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
