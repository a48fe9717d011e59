#!/usr/bin/env python
"""List the images of a folder that cannot be decoded: ``python scripts/check_images.py --help``."""

from spacetorch.cli.check_images import main

if __name__ == "__main__":
    raise SystemExit(main())
