#!/usr/bin/env python
"""A dataset in another layout, as an ImageFolder: ``python scripts/convert_data.py --help``."""

from spacetorch.cli.convert_data import main

if __name__ == "__main__":
    raise SystemExit(main())
