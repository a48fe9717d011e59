#!/usr/bin/env python
"""A checkpoint's layer responses to gratings or images, to one file: ``python scripts/features.py --help``."""

from spacetorch.cli.features import main

if __name__ == "__main__":
    raise SystemExit(main())
