"""A restricted unpickler for position files.

Unpickling runs code: a ``.pkl`` file can name any importable callable.  A position file
only ever holds a ``LayerPositions`` object made of numpy arrays, numpy scalars and builtin
values, so only the globals needed to rebuild those are admitted; anything else is refused
with :class:`UnsafePickleError` before it is imported.
"""

from __future__ import annotations

import functools
import importlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "safe_load_pickle"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that position files never contain."""


def _numpy_core(submodule: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; pickles written by either name must load.
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        return importlib.import_module(f"numpy.core.{submodule}")


def _numpy_core_attr(submodule: str, name: str) -> Any:
    return getattr(_numpy_core(submodule), name)


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    from spacetorch.models.positions.layer_positions import LayerPositions

    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("spacetorch.models.positions", "LayerPositions"): lambda: LayerPositions,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        # protocols 0-2 under Python 3 store bytes (array buffers) as _codecs.encode(text, "latin1")
        ("_codecs", "encode"): lambda: importlib.import_module("_codecs").encode,
    }
    # object reconstruction for protocols 0 and 1 (written under Python 2 or 3 names)
    for copyreg_module, builtins_module in (("copyreg", "builtins"), ("copy_reg", "__builtin__")):
        allowed[(copyreg_module, "_reconstructor")] = lambda: importlib.import_module("copyreg")._reconstructor
        allowed[(builtins_module, "object")] = lambda: object
    for core in ("numpy.core", "numpy._core"):
        for submodule, name in (
            ("multiarray", "_reconstruct"),
            ("multiarray", "scalar"),
            ("numeric", "_frombuffer"),
        ):
            allowed[(f"{core}.{submodule}", name)] = functools.partial(_numpy_core_attr, submodule, name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: Path) -> None:
        super().__init__(file)
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        resolve = self._allowed.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"{self._source}: refusing to unpickle global '{module}.{name}'; a position file "
                "holds only a LayerPositions object with numpy arrays. If you trust this file, "
                "load it with trust_pickle=True."
            )
        return resolve()


def safe_load_pickle(path: Path) -> Any:
    """Unpickle ``path`` admitting only what a position file contains.

    Raises:
        UnsafePickleError: if the pickle names any other global (nothing of it is imported).
    """
    with open(path, "rb") as file:
        return _RestrictedUnpickler(file, path).load()
