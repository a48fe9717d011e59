#!/usr/bin/env python
"""Does the spatial loss make maps? ``python scripts/compare_alpha.py --help``."""

from spacetorch.cli.compare_alpha import main

if __name__ == "__main__":
    raise SystemExit(main())
