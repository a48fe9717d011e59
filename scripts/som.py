#!/usr/bin/env python
"""The paper's SOM baselines: ``python scripts/som.py --help``."""

from spacetorch.cli.som import main

if __name__ == "__main__":
    raise SystemExit(main())
