"""``python -m lightning_kd.analyze``: the same as ``lightning-kd analyze``."""

import sys

from lightning_kd.analyze import main

if __name__ == "__main__":
    sys.exit(main())
