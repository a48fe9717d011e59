#!/usr/bin/env python
"""The standard V1 figure of a checkpoint: ``python scripts/v1_figure.py --help``."""

from spacetorch.cli.v1_figure import main

if __name__ == "__main__":
    raise SystemExit(main())
