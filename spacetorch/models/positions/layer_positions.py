"""Unit positions of one layer (:class:`LayerPositions`) and of a network (:class:`NetworkPositions`).

File formats (compatible with the original TDANN code):

* ``<layer name>.pkl``: a pickled :class:`LayerPositions` (class path
  ``spacetorch.models.positions.LayerPositions``);
* ``<layer name>.npz``: arrays ``coordinates``, ``neighborhood_indices`` and ``dims`` and
  scalars ``name`` and ``neighborhood_width``;
* an optional ``version.txt`` holding one integer, per directory;
* ``manifest.json``, written by :meth:`NetworkPositions.save`: every layer's file and size, so
  that a directory that lost a layer, or holds a truncated file, is refused instead of loading
  as a smaller set.  Directories without one (the original's) load as before.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch

from spacetorch._files import atomic_directory, atomic_write, is_temporary
from spacetorch.models.positions._safe_pickle import UnsafePickleError, safe_load_pickle

__all__ = ["FlatIndices", "LayerPositions", "NetworkPositions", "PositionsError", "check_output_dir", "position_files"]

Array = np.ndarray | torch.Tensor
PathLike = str | os.PathLike[str]
_SUFFIXES = (".pkl", ".npz")
MANIFEST = "manifest.json"
VERSION_FILE = "version.txt"


class PositionsError(ValueError):
    """A position file or directory is malformed or does not match what was expected."""


@dataclass(frozen=True)
class FlatIndices:
    """The channel, row (``x_flat``) and column (``y_flat``) of every unit, in unit order (the
    original's names: its ``x`` is the feature map's second axis)."""

    chan_flat: np.ndarray
    x_flat: np.ndarray
    y_flat: np.ndarray


@dataclass
class LayerPositions:
    """Positions of every unit of one layer on the simulated cortical sheet.

    Attributes:
        name: the layer's module name, e.g. ``"layer2.0"``.
        dims: the layer's output dims ``(C, H, W)``; it has ``N = C * H * W`` units.
        coordinates: ``(N, 2)`` float positions in mm, ``x`` (column) then ``y`` (row). Unit
            ``i`` is element ``i`` of ``features.flatten(1)`` for ``(B, C, H, W)`` features
            (channel-major order).
        neighborhood_indices: ``(P, Q)`` integer unit indices: ``P`` precomputed
            neighborhoods of exactly ``Q`` units each. Stored as int32 (4 bytes an entry:
            20,000 x 500 neighborhoods take 40 MB).
        neighborhood_width: side of the square windows the neighborhoods were drawn from, mm.

    Example:
        >>> import numpy as np
        >>> lp = LayerPositions(name="toy", dims=(1, 2, 2),
        ...                     coordinates=np.array([[0., 0], [1, 0], [0, 1], [1, 1]]),
        ...                     neighborhood_indices=np.array([[0, 1, 2]]),
        ...                     neighborhood_width=1.5)
        >>> lp.num_units, lp.neighborhood_size
        (4, 3)
    """

    name: str
    dims: tuple[int, int, int]
    coordinates: Array
    neighborhood_indices: Array
    neighborhood_width: float

    def __post_init__(self) -> None:
        self.validate()

    # -- properties ---------------------------------------------------------------------
    @property
    def num_units(self) -> int:
        return int(np.prod(self.dims))

    @property
    def num_neighborhoods(self) -> int:
        return int(self.neighborhood_indices.shape[0])

    @property
    def neighborhood_size(self) -> int:
        return int(self.neighborhood_indices.shape[1])

    # -- checks -------------------------------------------------------------------------
    def validate(self, source: PathLike | None = None) -> LayerPositions:
        """Normalise field types and check consistency; return ``self``.

        Raises:
            PositionsError: naming the layer (and ``source`` file) and what is wrong.
        """
        where = f"{source}: layer {self.name!r}" if source else f"layer {self.name!r}"
        if not isinstance(self.name, str):
            self.name = str(self.name)
        dims = tuple(int(d) for d in np.asarray(self.dims).reshape(-1))
        if len(dims) != 3 or min(dims) < 1:
            raise PositionsError(f"{where}: dims must be three positive ints (C, H, W), got {self.dims!r}")
        self.dims = dims
        n = self.num_units
        coords = self.coordinates
        if tuple(coords.shape) != (n, 2):
            raise PositionsError(
                f"{where}: dims {dims} give {n} units, so coordinates must have shape ({n}, 2), "
                f"got {tuple(coords.shape)}"
            )
        finite = torch.isfinite(coords).all() if isinstance(coords, torch.Tensor) else np.isfinite(coords).all()
        if not bool(finite):
            raise PositionsError(f"{where}: coordinates contain NaN or inf")
        idx = self.neighborhood_indices
        if idx.ndim != 2 or idx.shape[0] < 1 or idx.shape[1] < 2:
            raise PositionsError(
                f"{where}: neighborhood_indices must have shape (P, Q) with P >= 1, Q >= 2, "
                f"got {tuple(idx.shape)}"
            )
        is_int = (not idx.dtype.is_floating_point) if isinstance(idx, torch.Tensor) else np.issubdtype(idx.dtype, np.integer)
        if not is_int:
            raise PositionsError(f"{where}: neighborhood_indices must be integers, got {idx.dtype}")
        low, high = int(idx.min()), int(idx.max())
        if low < 0 or high >= n:
            raise PositionsError(
                f"{where}: neighborhood_indices must lie in [0, {n - 1}], found values in [{low}, {high}]"
            )
        repeated = _first_repeated_row(idx)
        if repeated is not None:
            raise PositionsError(
                f"{where}: neighborhood {repeated} lists a unit more than once; each neighborhood "
                "must hold Q distinct units"
            )
        width = float(self.neighborhood_width)
        if not np.isfinite(width) or width <= 0:
            raise PositionsError(f"{where}: neighborhood_width must be a positive number (mm), got {width}")
        self.neighborhood_width = width
        return self

    def check_features(self, features: torch.Tensor, input_shape: Sequence[int] | None = None) -> None:
        """Check that a ``(B, C, H, W)`` output of this layer matches :attr:`dims`.

        The one check of features against positions, for every consumer (trunks, responses).

        Args:
            features: the layer's output.
            input_shape: the input images' ``(H, W)``, named in the message.

        Raises:
            PositionsError: naming the layer, both shapes and the input size.
        """
        shape = tuple(features.shape[1:])
        if shape != tuple(self.dims):
            size = f" for {tuple(input_shape)} px input" if input_shape is not None else ""
            raise PositionsError(
                f"layer {self.name!r} outputs features of shape (C, H, W) = {shape}{size}, but its positions "
                f"have dims {tuple(self.dims)}; use the model and image size the positions were made for"
            )

    # -- conversion ---------------------------------------------------------------------
    def to_torch(self, device: str | torch.device | None = None, index_dtype: torch.dtype = torch.int64) -> LayerPositions:
        """Turn the arrays into tensors in place: float32 mm coordinates and ``index_dtype``
        neighborhood indices (int64, as the original gave; the spatial trunk keeps int32, half
        the memory).

        Returns ``self``, as the original API used it in place.
        """
        self.coordinates = torch.as_tensor(self.coordinates, dtype=torch.float32, device=device)
        self.neighborhood_indices = torch.as_tensor(self.neighborhood_indices, device=device).to(index_dtype)
        return self

    def __len__(self) -> int:
        """The number of units (as the original's ``len(positions)``)."""
        return self.num_units

    @property
    def flat_indices(self) -> FlatIndices:
        """Each unit's channel, row and column, in the order of ``features.flatten(1)`` (as the original's)."""
        channel, row, column = np.unravel_index(np.arange(self.num_units), tuple(self.dims))
        return FlatIndices(chan_flat=channel, x_flat=row, y_flat=column)

    # -- files --------------------------------------------------------------------------
    def save(self, save_dir: PathLike) -> Path:
        """Pickle to ``save_dir/<name>.pkl``; returns the path.

        The file is written atomically; a ``manifest.json`` in ``save_dir`` is updated to it.
        """
        return _update_manifest(self._write(Path(save_dir), "pkl"))

    def save_np(self, save_dir: PathLike) -> Path:
        """Write ``save_dir/<name>.npz``; returns the path (atomically, as :meth:`save`)."""
        return _update_manifest(self._write(Path(save_dir), "npz"))

    def _write(self, save_dir: Path, fmt: str) -> Path:
        arrays = self._numpy_fields()
        if fmt == "pkl":
            copy = LayerPositions.__new__(LayerPositions)
            copy.__dict__.update(self.__dict__, **arrays)
            return atomic_write(save_dir / f"{self.name}.pkl", lambda f: pickle.dump(copy, f, protocol=4))
        return atomic_write(
            save_dir / f"{self.name}.npz",
            lambda f: np.savez(
                f,
                name=np.array(self.name),
                dims=np.array(self.dims, dtype=np.int64),
                coordinates=arrays["coordinates"],
                neighborhood_indices=arrays["neighborhood_indices"],
                neighborhood_width=np.array(self.neighborhood_width, dtype=np.float64),
            ),
        )

    @classmethod
    def load(cls, path: PathLike, *, trust_pickle: bool = False) -> LayerPositions:
        """Load a ``.pkl`` or ``.npz`` position file.

        ``.pkl`` files go through a restricted unpickler that admits only numpy arrays and
        this class; ``trust_pickle=True`` uses plain :func:`pickle.load` (runs any code the
        file names: only for files you trust).

        Raises:
            PositionsError: the file is missing, has another suffix, or is malformed.
            UnsafePickleError: the pickle names a global a position file never contains.
        """
        path = Path(path)
        if path.suffix not in _SUFFIXES:
            raise PositionsError(f"{path}: position files end in .pkl or .npz")
        if not path.is_file():
            raise PositionsError(f"{path}: no such position file")
        if path.stat().st_size == 0:
            raise PositionsError(f"{path}: the file is empty (0 bytes); regenerate the position set")
        if path.suffix == ".npz":
            return cls._load_npz(path)
        try:
            if trust_pickle:
                with open(path, "rb") as f:
                    obj = pickle.load(f)  # noqa: S301 - explicit opt-in
            else:
                obj = safe_load_pickle(path, {("spacetorch.models.positions", "LayerPositions"): LayerPositions})
        except UnsafePickleError:
            raise
        except Exception as err:  # a damaged pickle can raise almost anything
            raise PositionsError(
                f"{path}: not a readable position pickle, the file is truncated or corrupt "
                f"({type(err).__name__}: {err}); regenerate the position set"
            ) from None
        if not isinstance(obj, LayerPositions):
            raise PositionsError(f"{path}: expected a LayerPositions object, found {type(obj).__name__}")
        return obj.validate(source=path)

    @classmethod
    def _load_npz(cls, path: Path) -> LayerPositions:
        required = ("name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [key for key in required if key not in data.files]
                if missing:
                    raise PositionsError(f"{path}: missing array(s) {missing}; expected {list(required)}")
                fields = {key: data[key] for key in required}
        except PositionsError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise PositionsError(
                f"{path}: not a readable npz position file, the file is truncated or corrupt "
                f"({type(err).__name__}: {err}); regenerate the position set"
            ) from None
        obj = cls.__new__(cls)
        obj.name = str(fields["name"])
        obj.dims = tuple(fields["dims"].tolist())
        obj.coordinates = fields["coordinates"]
        obj.neighborhood_indices = fields["neighborhood_indices"]
        obj.neighborhood_width = float(fields["neighborhood_width"])
        return obj.validate(source=path)

    def _numpy_fields(self) -> dict[str, np.ndarray]:
        def as_np(a: Array) -> np.ndarray:
            return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

        return {
            "coordinates": as_np(self.coordinates),
            "neighborhood_indices": as_np(self.neighborhood_indices),
        }


# pickles must name the class by the original's public path
LayerPositions.__module__ = "spacetorch.models.positions"


@dataclass
class NetworkPositions:
    """The :class:`LayerPositions` of every spatial layer of a network.

    Attributes:
        layer_positions: layer name (e.g. ``"layer2.0"``) -> positions.
        version: the integer in the directory's ``version.txt``, if any.
    """

    layer_positions: dict[str, LayerPositions]
    version: int | None = None

    # -- mapping access -----------------------------------------------------------------
    def __getitem__(self, name: str) -> LayerPositions:
        try:
            return self.layer_positions[name]
        except KeyError:
            raise KeyError(f"no positions for layer {name!r}; layers: {list(self.layer_positions)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.layer_positions)

    def __len__(self) -> int:
        return len(self.layer_positions)

    def keys(self):  # type: ignore[no-untyped-def]
        return self.layer_positions.keys()

    # -- checks and conversion ------------------------------------------------------------
    def check_layers(
        self, expected: Mapping[str, tuple[int, int, int]], source: PathLike | None = None
    ) -> NetworkPositions:
        """Check that every expected layer is present with the expected dims.

        Raises:
            PositionsError: naming the missing layers or the layer whose dims differ.
        """
        where = f"{source}: " if source else ""
        missing = [name for name in expected if name not in self.layer_positions]
        if missing:
            raise PositionsError(
                f"{where}no positions for layer(s) {missing}; found {sorted(self.layer_positions)}"
            )
        for name, dims in expected.items():
            found = tuple(self.layer_positions[name].dims)
            if found != tuple(dims):
                raise PositionsError(
                    f"{where}layer {name!r} has dims {found} but the model's output is {tuple(dims)}"
                )
        return self

    def to_torch(self, device: str | torch.device | None = None, index_dtype: torch.dtype = torch.int64) -> NetworkPositions:
        """Turn every layer's arrays into tensors in place (see :meth:`LayerPositions.to_torch`); returns ``self``."""
        for layer in self.layer_positions.values():
            layer.to_torch(device, index_dtype)
        return self

    # -- files --------------------------------------------------------------------------
    @classmethod
    def load_from_dir(cls, load_dir: PathLike, *, trust_pickle: bool = False) -> NetworkPositions:
        """Load every ``*.pkl`` / ``*.npz`` position file (and ``version.txt``) of a directory.

        A directory written by :meth:`save` has a ``manifest.json``: the set loads only if
        every layer it lists is there at the size it was written with, and nothing else is.

        Raises:
            PositionsError: the directory is missing or holds no position file, a layer has
                both a ``.pkl`` and an ``.npz`` file, a file's stem differs from its layer
                name, ``version.txt`` is not an integer, a file is malformed (naming it), or
                the set differs from its manifest (naming the missing or damaged files).
        """
        load_dir = Path(load_dir)
        if not load_dir.is_dir():
            what = "is not a directory" if load_dir.exists() else "does not exist"
            raise PositionsError(f"{load_dir}: positions directory {what}")
        files = position_files(load_dir)
        _check_manifest(load_dir, files)
        if not files:
            raise PositionsError(f"{load_dir}: no *.pkl or *.npz position files in this directory")
        layers: dict[str, LayerPositions] = {}
        origin: dict[str, Path] = {}
        for path in files:
            layer = LayerPositions.load(path, trust_pickle=trust_pickle)
            if layer.name != path.stem:
                raise PositionsError(f"{path}: file holds layer {layer.name!r}; expected {path.stem!r}")
            if layer.name in layers:
                raise PositionsError(
                    f"{load_dir}: layer {layer.name!r} is in both {origin[layer.name].name} and {path.name}"
                )
            layers[layer.name] = layer
            origin[layer.name] = path
        return cls(layer_positions=layers, version=_read_version(load_dir))

    def save(
        self,
        save_dir: PathLike,
        fmt: str = "pkl",
        *,
        overwrite: bool = False,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """Write every layer, ``version.txt`` and ``manifest.json`` into ``save_dir``, all or nothing.

        The set is written to a temporary directory beside ``save_dir`` that then takes its
        place in one step, so ``save_dir`` is at every moment the previous set or the complete
        new one (or, on systems without an atomic exchange, briefly absent).  Files get the
        permissions the umask gives.

        Args:
            overwrite: replace an existing position set.  Only a position set is ever
                replaced (see :func:`check_output_dir`).
            extra_files: ``{name: content}`` of ``.json`` files written with the set (e.g. the
                record of how it was made), listed in its manifest.

        Raises:
            ValueError: ``fmt`` is not ``"pkl"`` or ``"npz"``.
            FileExistsError: ``save_dir`` exists and is not empty (unless ``overwrite``), or
                it holds anything but a position set, or it holds the current directory.
        """
        if fmt not in ("pkl", "npz"):
            raise ValueError(f"fmt must be 'pkl' or 'npz', got {fmt!r}")
        extra_files = dict(extra_files or {})
        bad = [name for name in extra_files if Path(name).name != name or not name.endswith(".json") or name == MANIFEST]
        if bad:
            raise ValueError(f"extra_files must be plain '<name>.json' file names other than {MANIFEST}, got {bad}")
        save_dir = Path(save_dir)
        check_output_dir(save_dir, overwrite=overwrite)
        with atomic_directory(save_dir) as tmp:
            written = [layer._write(tmp, fmt) for layer in self.layer_positions.values()]
            if self.version is not None:
                atomic_write(tmp / VERSION_FILE, functools.partial(_write_bytes, f"{int(self.version)}\n".encode()))
            for name, content in extra_files.items():
                atomic_write(tmp / name, functools.partial(_write_bytes, content))
            _write_manifest(tmp, {path.stem: path for path in written}, [tmp / name for name in extra_files])
        return save_dir


def position_files(directory: PathLike) -> list[Path]:
    """The ``*.pkl`` / ``*.npz`` files of a positions directory, sorted by name (not loaded)."""
    return sorted(
        p for p in Path(directory).iterdir() if p.suffix in _SUFFIXES and p.is_file() and not is_temporary(p)
    )


def check_output_dir(save_dir: PathLike, *, overwrite: bool = False) -> None:
    """Check that a position set may be written to ``save_dir`` (before any work is done).

    ``save_dir`` may be missing or empty.  With ``overwrite``, it may also hold a position set:
    the files its ``manifest.json`` lists (or, without one, files that load as positions),
    ``version.txt``, the manifest, and temporaries of an interrupted save; nothing else, so
    that replacing it never deletes a file spacetorch did not write.

    Raises:
        FileExistsError: naming the directory and what in it may not be replaced.
    """
    save_dir = Path(save_dir)
    if not save_dir.exists():
        return
    if not save_dir.is_dir():
        raise FileExistsError(f"{save_dir}: exists and is not a directory")
    entries = sorted(save_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(
            f"{save_dir}: directory exists and is not empty; choose another output directory, or "
            "pass overwrite=True (--overwrite) to replace the position set in it"
        )
    resolved = save_dir.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):
        raise FileExistsError(
            f"{save_dir}: refusing to replace the directory you are working in ({resolved}); "
            "write the position set to a subdirectory, e.g. positions/<name>"
        )
    manifest = _read_manifest(save_dir)
    foreign = [p.name for p in entries if not _belongs_to_set(p, manifest)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FileExistsError(
            f"{save_dir}: holds {shown}, which {'is' if len(foreign) == 1 else 'are'} not part of a position set; overwrite only "
            "replaces a position set (layer files, version.txt, manifest.json), so nothing was "
            "written. Choose another output directory"
        )


def _belongs_to_set(path: Path, manifest: _Manifest | None) -> bool:
    if is_temporary(path):
        return True
    if not path.is_file() or path.is_symlink():
        return False
    if path.name in (VERSION_FILE, MANIFEST):
        return True
    if manifest is not None:
        return path.name in manifest.files()
    if path.suffix not in _SUFFIXES:
        return False
    try:  # a set of the original code (no manifest): its files load as positions
        LayerPositions.load(path)
    except (PositionsError, UnsafePickleError):
        return False
    return True


# -- manifest -------------------------------------------------------------------------------
@dataclass
class _Manifest:
    """``manifest.json``: each layer's ``{"file": name, "bytes": size}``, and the sizes of the
    extra files written with the set."""

    layers: dict[str, dict[str, object]]
    extra: dict[str, int]

    def files(self) -> set[str]:
        """Every file the set was written with, besides the manifest and ``version.txt``."""
        return {str(entry["file"]) for entry in self.layers.values()} | set(self.extra)


def _read_manifest(directory: Path) -> _Manifest | None:
    """The directory's ``manifest.json``, or None without one."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        layers, extra = data["layers"], data.get("extra", {})
        if not isinstance(layers, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("bytes"), int)
            for e in layers.values()
        ):
            raise ValueError("'layers' must map each layer to {'file': name, 'bytes': size}")
        if not isinstance(extra, dict) or not all(isinstance(v, int) for v in extra.values()):
            raise ValueError("'extra' must map each file name to its size")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise PositionsError(
            f"{path}: not a readable position-set manifest ({type(err).__name__}: {err}); "
            "regenerate the set, or delete manifest.json to load the files without checking them"
        ) from None
    return _Manifest(layers, {str(k): int(v) for k, v in extra.items()})


def _write_bytes(content: bytes, file: IO[bytes]) -> None:
    file.write(content)


def _write_manifest(directory: Path, files: Mapping[str, Path], extra: Sequence[Path] = ()) -> None:
    layers = {name: {"file": path.name, "bytes": path.stat().st_size} for name, path in sorted(files.items())}
    content: dict[str, object] = {"format": "spacetorch position set", "format_version": 1, "layers": layers}
    if extra:
        content["extra"] = {path.name: path.stat().st_size for path in extra}
    text = json.dumps(content, indent=1) + "\n"
    atomic_write(directory / MANIFEST, functools.partial(_write_bytes, text.encode()))


def _update_manifest(written: Path) -> Path:
    """Record a layer file saved on its own in its directory's manifest, if there is one."""
    manifest = _read_manifest(written.parent)
    if manifest is not None:
        files = {name: written.parent / str(entry["file"]) for name, entry in manifest.layers.items()}
        files[written.stem] = written
        _write_manifest(written.parent, files, [written.parent / name for name in manifest.extra])
    return written


def _check_manifest(load_dir: Path, files: Sequence[Path]) -> None:
    manifest = _read_manifest(load_dir)
    if manifest is None:
        return
    layers = manifest.layers
    remedy = "regenerate the set (or delete manifest.json to load the files that are there without this check)"
    missing = [str(e["file"]) for e in layers.values() if not (load_dir / str(e["file"])).is_file()]
    if missing:
        raise PositionsError(
            f"{load_dir}: incomplete position set: manifest.json lists {len(layers)} layers, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; {remedy}"
        )
    for entry in layers.values():
        path = load_dir / str(entry["file"])
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise PositionsError(
                f"{path}: {size} bytes, but manifest.json records {entry['bytes']}: the file is truncated "
                f"or was changed after the set was written; {remedy}"
            )
    listed = {str(e["file"]) for e in layers.values()}
    extra = [p.name for p in files if p.name not in listed]
    if extra:
        raise PositionsError(f"{load_dir}: {', '.join(extra)} not listed in manifest.json; {remedy}")


def _first_repeated_row(indices: Array) -> int | None:
    """The first row of a ``(P, Q)`` index table that holds a unit twice, or None."""
    rows = indices.detach().cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
    ordered = np.sort(rows, axis=1)
    bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    return int(bad[0]) if bad.size else None


def _read_version(load_dir: Path) -> int | None:
    path = load_dir / VERSION_FILE
    if not path.exists():
        return None
    text = path.read_text().strip()
    try:
        return int(text)
    except ValueError:
        raise PositionsError(f"{path}: expected one integer, found {text!r}") from None
