"""``python -m spacetorch <command> ...`` and the installed ``spacetorch``: the ``spacetorch``
command (see :mod:`spacetorch.cli.main`), entered here so that Ctrl-C while it loads is one line."""

import sys
from typing import NoReturn


def main() -> int:
    try:
        from spacetorch.cli.main import main as run
    except KeyboardInterrupt:  # Ctrl-C while it starts: one line, as during a command's own loading
        print("spacetorch: interrupted by SIGINT", file=sys.stderr)
        return 130
    return run()


def entry() -> NoReturn:
    """The installed ``spacetorch`` (and ``python -m spacetorch``): :func:`main`, then an exit
    without the interpreter's teardown (:mod:`spacetorch.cli._exit`)."""
    from spacetorch.cli._exit import finish

    finish(main)


if __name__ == "__main__":
    entry()
