"""LastEpochCheckpoint: ``last.ckpt`` is always the end of the latest finished epoch."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["LastEpochCheckpoint"]


class LastEpochCheckpoint(ModelCheckpoint):
    """Write ``<dirpath>/last.ckpt`` at the end of every epoch, replacing the previous one.

    A ``ModelCheckpoint`` that monitors a metric with ``save_last=True`` does not do that on every Lightning
    version: from Lightning 2.6 on it rewrites ``last.ckpt`` only when it also saves a new top-k checkpoint, so
    after the best epoch ``last.ckpt`` stops moving and a killed run loses every epoch since. This one has no
    monitor and keeps one file named ``last``, which Lightning 2.2 to 2.6 all save at each epoch's end (after
    validation when there is one) and overwrite in place; ``--ckpt_path last`` and Lightning's own
    ``ckpt_path="last"`` find it by that name.

    Args:
        dirpath: The folder; ``None`` means ``<log_dir>/checkpoints``, where the best-epoch checkpoint goes.
        every_n_epochs: Save at the end of every this-many epochs.
        save_weights_only: Save the weights only (no optimizer, scheduler and loop state: no exact resume).

    Example:
        >>> checkpoint = LastEpochCheckpoint()
        >>> checkpoint.monitor, checkpoint.save_top_k, checkpoint.filename, checkpoint.save_last
        (None, 1, 'last', False)
    """

    def __init__(self, dirpath: str | None = None, every_n_epochs: int = 1, save_weights_only: bool = False) -> None:
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=every_n_epochs,
            save_weights_only=save_weights_only,
            enable_version_counter=False,  # always last.ckpt, also when resuming into the folder that holds it
        )
