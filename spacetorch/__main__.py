"""``python -m spacetorch <command> ...``: the ``spacetorch`` command (see :mod:`spacetorch.cli.main`)."""

import sys

from spacetorch.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
