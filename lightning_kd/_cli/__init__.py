"""Pieces of the ``lightning-kd`` command line (:mod:`lightning_kd.cli`), one concern per module.

Private: the public entry points are :func:`lightning_kd.cli.main` and :class:`lightning_kd.cli.KDLightningCLI`.
"""
