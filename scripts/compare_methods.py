#!/usr/bin/env python
"""Several ways to make a topographic network, on one bench: ``python scripts/compare_methods.py --help``."""

from spacetorch.cli.compare_methods import main

if __name__ == "__main__":
    raise SystemExit(main())
