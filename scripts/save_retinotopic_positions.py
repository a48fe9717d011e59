#!/usr/bin/env python
"""Write a retinotopic position set, as the original TDANN script did: the same program as
``spacetorch positions`` (``python scripts/save_retinotopic_positions.py --help``)."""

import sys

from spacetorch.cli.main import run

if __name__ == "__main__":
    sys.exit(run("positions", sys.argv[1:], prog="save_retinotopic_positions.py"))
