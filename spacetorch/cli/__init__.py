"""Command-line entry points (the scripts in ``scripts/`` are thin wrappers around these)."""
