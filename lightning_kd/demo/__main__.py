"""``python -m lightning_kd.demo``: the same as ``lightning-kd demo``."""

import sys

from lightning_kd.demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
