"""What a reader finds after a writer was stopped: the old result, the new one, or a refusal.

Every writer of spacetorch promises that a reader never takes a partial result for a complete
one.  :func:`outcome` checks that promise for any writer and reader, so each test states it in
one line: ``assert outcome(load, old, new, refused=(PositionsError,)) in {"old", "new"}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np

from spacetorch.models.positions import NetworkPositions


def outcome(load: Callable[[], Hashable], old: Hashable, new: Hashable, *, refused: tuple[type[BaseException], ...]) -> str:
    """``"old"``, ``"new"`` or ``"refused"``: what ``load()`` gives; fails on anything else.

    ``load`` returns a digest of what it read (compared with ``old`` and ``new``) or raises one
    of ``refused``.
    """
    try:
        found = load()
    except refused:
        return "refused"
    if found == old:
        return "old"
    if found == new:
        return "new"
    raise AssertionError(f"the reader got neither the old nor the new complete result: {found!r}")


def positions_digest(positions: NetworkPositions) -> tuple[Any, ...]:
    """A hashable summary of a position set: every layer's name, dims and arrays."""
    def array_bytes(a: Any) -> bytes:
        return np.ascontiguousarray(np.asarray(a)).tobytes()

    return tuple(
        (name, tuple(layer.dims), array_bytes(layer.coordinates), array_bytes(layer.neighborhood_indices))
        for name, layer in sorted(positions.layer_positions.items())
    )


def load_positions_digest(directory: Path) -> Callable[[], tuple[Any, ...]]:
    return lambda: positions_digest(NetworkPositions.load_from_dir(directory))


def hidden_leftovers(directory: Path) -> list[str]:
    """Names of hidden entries (temporaries) in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    """A process id no process can have (above the system's maximum)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1 if os.path.exists("/proc/sys/kernel/pid_max") else 2**22 + 1


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: relative path -> sha256 of a file's bytes, or ``"dir"``."""
    import hashlib

    return {
        str(path.relative_to(root)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
    }
