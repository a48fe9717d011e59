#!/usr/bin/env python
"""Evaluate a top-down attention classifier: ``python scripts/evaluate_td.py --help``."""

from spacetorch.cli.evaluate_td import main

if __name__ == "__main__":
    raise SystemExit(main())
