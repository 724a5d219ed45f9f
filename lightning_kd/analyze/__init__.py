r"""``lightning-kd analyze``: the diagnostic figures of "Logit Standardization in Knowledge Distillation".

Given a teacher, a student and data, :func:`analyze` writes, as PNG, the figures Sun et al. (CVPR 2024) use
to show what distillation does to a student's logits, and the numbers behind each as CSV/JSON:

==========================  ===============================================================================
file                        content
==========================  ===============================================================================
``mean_std_hist.png``       bivariate histogram of per-sample logit mean vs. standard deviation, teacher and
                            student overlaid (the paper's Fig. 5); numbers in ``per_sample.csv``
``logit_bars.png``          one sample's logits as bars, raw and Z-score standardized, teacher beside
                            student (Fig. 3, 1st row); numbers in ``sample_logits.csv``
``logit_diff_heatmap.png``  class × class heatmaps of the mean absolute teacher–student logit difference,
                            raw and standardized (Fig. 3, 2nd row); ``logit_diff_raw.csv``,
                            ``logit_diff_zscore.csv``
``temperature_hist.png``    distribution of the per-sample max-logit temperature computed from the logits;
                            numbers in ``per_sample.csv``
``temperature_trajectory``  ``.png``/``.csv``: ``train/temperature`` and ``train/lambda`` over training
                            (CTKD), when a Lightning ``CSVLogger`` metrics file is given
``summary.json``            accuracies, teacher–student top-1 agreement, the heatmaps' mean and max, the
                            temperatures' statistics, the file list
==========================  ===============================================================================

The heatmap entry for true class :math:`i` and logit index :math:`j` is

.. math:: D_{ij} = \frac{1}{|\{n: y_n = i\}|} \sum_{n: y_n = i} \big|v_n^{(j)} - z_n^{(j)}\big|

with teacher logits :math:`v` and student logits :math:`z` (raw), or their Z-scores
(:func:`~lightning_kd.logits.standardize`, the pre-process of the loss). Per-sample standard deviations
use the sample (K - 1) estimator, as ``train/student_logit_std`` does.

From Python, :func:`analyze` takes ``nn.Module`` s and a DataLoader; :func:`analyze_logits` takes logits
already computed. From the shell::

    lightning-kd analyze --teacher teacher.pth --teacher-arch resnet32x4 \
        --student student.ckpt --student-arch resnet8x4 --data cifar100 --data-root data/ --out analysis/
    lightning-kd analyze --run lightning-kd-demo/          # every student of a demo run
    lightning-kd analyze --run runs/digits/kd_z/resnet20_resnet8/version_0   # a recipe's run

``--run`` on a ``lightning-kd fit`` run folder rebuilds the run's model (student and teacher) and DataModule with
:class:`~lightning_kd.cli.KDLightningCLI` from the run's own ``config.yaml``, exactly as the run built them, and
loads the trained student from ``student.pt`` (else the run's checkpoints). The teacher is the file the config
names, as it is today: its identity (:func:`~lightning_kd.teacher.state_dict_sha256`) is compared with the
``teacher_sha256`` the run recorded, and a teacher that changed is a warning naming both digests and the file,
with ``"teacher_changed": true`` in ``summary.json`` (``null`` for runs that recorded no identity). Images have the
size the models were trained at: the run's (``run.json`` of a demo, the data config of a fit run), or for
checkpoint files what they say (a Lightning checkpoint's DataModule hyperparameters, the ``hparams.yaml`` of the
run folder they are in); an ``--image-size`` that contradicts it, or data of another size, is warned about.
"""

from lightning_kd.analyze._command import build_parser, main
from lightning_kd.analyze._report import FIGURES, analyze, analyze_logits
from lightning_kd.analyze._stats import (
    collect_logits,
    logit_difference,
    logit_moments,
    read_temperature_trajectory,
)

__all__ = [
    "FIGURES",
    "analyze",
    "analyze_logits",
    "build_parser",
    "collect_logits",
    "logit_difference",
    "logit_moments",
    "main",
    "read_temperature_trajectory",
]
