#!/usr/bin/env python
"""Swap-optimise a position set against a model's responses: ``python scripts/swapopt.py --help``."""

from spacetorch.cli.swapopt import main

if __name__ == "__main__":
    raise SystemExit(main())
