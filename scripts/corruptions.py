#!/usr/bin/env python
"""Make a corrupted image set or evaluate a classifier on one: ``python scripts/corruptions.py --help``."""

from spacetorch.cli.corruptions import main

if __name__ == "__main__":
    raise SystemExit(main())
