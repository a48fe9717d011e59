#!/usr/bin/env python
"""The TDANN paper's panels for a checkpoint: ``python scripts/paper_panels.py --help``."""

from spacetorch.cli.paper_panels import main

if __name__ == "__main__":
    raise SystemExit(main())
