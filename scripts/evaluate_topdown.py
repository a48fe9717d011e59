#!/usr/bin/env python
"""Evaluate coarse-to-fine and bottom-up classifiers: ``python scripts/evaluate_topdown.py --help``."""

from spacetorch.cli.evaluate_topdown import main

if __name__ == "__main__":
    raise SystemExit(main())
