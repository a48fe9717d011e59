"""The ``spacetorch`` command: :mod:`spacetorch.cli.main` dispatches to one module per job, each
with ``build_parser()`` and ``main(argv)``."""
