#!/usr/bin/env python
"""Training curves of run folders, overlaid: ``python scripts/training_curves.py --help``."""

from spacetorch.cli.training_curves import main

if __name__ == "__main__":
    raise SystemExit(main())
