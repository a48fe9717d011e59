#!/usr/bin/env python
"""Write a retinotopic position set: ``python scripts/save_retinotopic_positions.py --help``."""

from spacetorch.cli.save_retinotopic_positions import main

if __name__ == "__main__":
    raise SystemExit(main())
