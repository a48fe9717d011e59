"""A restricted unpickler for position files.

Unpickling runs code: a ``.pkl`` file can name any importable callable.  A position file
only ever holds a ``LayerPositions`` object made of numpy arrays, numpy scalars and builtin
values, so only the globals needed to rebuild those are admitted; anything else is refused
with :class:`UnsafePickleError` before it is imported.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from spacetorch._pickle import numpy_globals

__all__ = ["UnsafePickleError", "safe_load_pickle"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that position files never contain."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: Path, classes: Mapping[tuple[str, str], type]) -> None:
        super().__init__(file)
        self._source = source
        self._allowed: dict[tuple[str, str], Callable[[], Any]] = numpy_globals()
        self._classes = dict(classes)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._classes:
            return self._classes[module, name]
        resolve = self._allowed.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"{self._source}: refusing to unpickle global '{module}.{name}'; a position file "
                "holds only a LayerPositions object with numpy arrays. If you trust this file, "
                "load it with trust_pickle=True."
            )
        return resolve()


def safe_load_pickle(path: Path, classes: Mapping[tuple[str, str], type]) -> Any:
    """Unpickle ``path`` admitting only what a position file contains: numpy arrays and the
    ``classes`` given as ``{(module, name): class}`` (the caller's own, so that this module
    imports none of them).

    Raises:
        UnsafePickleError: if the pickle names any other global (nothing of it is imported).
    """
    with open(path, "rb") as file:
        return _RestrictedUnpickler(file, path, classes).load()
