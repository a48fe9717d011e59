"""The globals a pickle of numpy arrays names, for restricted unpicklers.

A pickle runs any callable it names when loaded.  Position files and CIFAR-10 batches hold only
numpy arrays, numpy scalars and builtin values; :func:`numpy_globals` lists the callables those
need (by the names numpy 1 and numpy 2 write), so that an unpickler can refuse every other.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["numpy_globals"]


def _numpy_core_attr(submodule: str, name: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; pickles written by either name must load
    try:
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


def numpy_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    """``{(module, name): resolve}`` of every global a pickle of numpy arrays may name."""
    allowed: dict[tuple[str, str], Callable[[], Any]] = {
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
        for submodule, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")):
            allowed[(f"{core}.{submodule}", name)] = functools.partial(_numpy_core_attr, submodule, name)
    return allowed
