"""``python -m lightning_kd``: the ``lightning-kd`` command line (see :mod:`lightning_kd.cli`)."""

import sys

from lightning_kd.cli import main

if __name__ == "__main__":
    sys.exit(main())
