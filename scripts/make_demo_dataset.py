#!/usr/bin/env python
"""Write the demo image set: ``python scripts/make_demo_dataset.py --help``."""

from spacetorch.cli.make_demo_dataset import main

if __name__ == "__main__":
    raise SystemExit(main())
