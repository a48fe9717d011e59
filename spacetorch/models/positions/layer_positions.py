"""Unit positions of one layer (:class:`LayerPositions`) and of a network (:class:`NetworkPositions`).

File formats (compatible with the original TDANN code):

* ``<layer name>.pkl``: a pickled :class:`LayerPositions` (class path
  ``spacetorch.models.positions.LayerPositions``);
* ``<layer name>.npz``: arrays ``coordinates``, ``neighborhood_indices`` and ``dims`` and
  scalars ``name`` and ``neighborhood_width``;
* an optional ``version.txt`` holding one integer, per directory.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spacetorch.models.positions._safe_pickle import safe_load_pickle

__all__ = ["LayerPositions", "NetworkPositions", "PositionsError"]

Array = np.ndarray | torch.Tensor
PathLike = str | os.PathLike[str]
_SUFFIXES = (".pkl", ".npz")


class PositionsError(ValueError):
    """A position file or directory is malformed or does not match what was expected."""


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
    def to_torch(self, device: str | torch.device | None = None) -> LayerPositions:
        """Turn the arrays into tensors in place (float32 mm coordinates, int32 indices).

        Returns ``self``, as the original API used it in place.
        """
        self.coordinates = torch.as_tensor(self.coordinates, dtype=torch.float32, device=device)
        self.neighborhood_indices = torch.as_tensor(
            self.neighborhood_indices, device=device
        ).to(torch.int32)
        return self

    # -- files --------------------------------------------------------------------------
    def save(self, save_dir: PathLike) -> Path:
        """Pickle to ``save_dir/<name>.pkl`` (written atomically); returns the path."""
        arrays = self._numpy_fields()
        copy = LayerPositions.__new__(LayerPositions)
        copy.__dict__.update(self.__dict__, **arrays)
        return _atomic_write(Path(save_dir) / f"{self.name}.pkl", lambda f: pickle.dump(copy, f, protocol=4))

    def save_np(self, save_dir: PathLike) -> Path:
        """Write ``save_dir/<name>.npz`` (written atomically); returns the path."""
        arrays = self._numpy_fields()
        return _atomic_write(
            Path(save_dir) / f"{self.name}.npz",
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
        if path.suffix == ".npz":
            return cls._load_npz(path)
        if trust_pickle:
            with open(path, "rb") as f:
                obj = pickle.load(f)  # noqa: S301 - explicit opt-in
        else:
            obj = safe_load_pickle(path)
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
        except (OSError, ValueError) as err:
            if isinstance(err, PositionsError):
                raise
            raise PositionsError(f"{path}: not a readable npz position file ({err})") from err
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

    def to_torch(self, device: str | torch.device | None = None) -> NetworkPositions:
        """Turn every layer's arrays into tensors in place; returns ``self``."""
        for layer in self.layer_positions.values():
            layer.to_torch(device)
        return self

    # -- files --------------------------------------------------------------------------
    @classmethod
    def load_from_dir(cls, load_dir: PathLike, *, trust_pickle: bool = False) -> NetworkPositions:
        """Load every ``*.pkl`` / ``*.npz`` position file (and ``version.txt``) of a directory.

        Raises:
            PositionsError: the directory is missing or holds no position file, a layer has
                both a ``.pkl`` and an ``.npz`` file, a file's stem differs from its layer
                name, ``version.txt`` is not an integer, or a file is malformed.
        """
        load_dir = Path(load_dir)
        if not load_dir.is_dir():
            raise PositionsError(f"{load_dir}: positions directory does not exist")
        files = position_files(load_dir)
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

    def save(self, save_dir: PathLike, fmt: str = "pkl", *, overwrite: bool = False) -> Path:
        """Write every layer (and ``version.txt``) into ``save_dir``, all or nothing.

        The set is written to a temporary directory beside ``save_dir`` and renamed into
        place, so an interrupted save never leaves a partial set that loads as complete.

        Raises:
            ValueError: ``fmt`` is not ``"pkl"`` or ``"npz"``.
            FileExistsError: ``save_dir`` exists and is not empty (unless ``overwrite``).
        """
        if fmt not in ("pkl", "npz"):
            raise ValueError(f"fmt must be 'pkl' or 'npz', got {fmt!r}")
        save_dir = Path(save_dir)
        if save_dir.exists():
            if not save_dir.is_dir():
                raise FileExistsError(f"{save_dir}: exists and is not a directory")
            if any(save_dir.iterdir()) and not overwrite:
                raise FileExistsError(
                    f"{save_dir}: directory exists and is not empty; choose another output "
                    "directory or pass overwrite=True (--overwrite) to replace it"
                )
        save_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.", dir=save_dir.parent))
        try:
            for layer in self.layer_positions.values():
                layer.save(tmp) if fmt == "pkl" else layer.save_np(tmp)
            if self.version is not None:
                (tmp / "version.txt").write_text(f"{int(self.version)}\n")
            if save_dir.exists():
                shutil.rmtree(save_dir)
            os.replace(tmp, save_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return save_dir


def position_files(directory: PathLike) -> list[Path]:
    """The ``*.pkl`` / ``*.npz`` files of a positions directory, sorted by name (not loaded)."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix in _SUFFIXES and p.is_file())


def _read_version(load_dir: Path) -> int | None:
    path = load_dir / "version.txt"
    if not path.exists():
        return None
    text = path.read_text().strip()
    try:
        return int(text)
    except ValueError:
        raise PositionsError(f"{path}: expected one integer, found {text!r}") from None


def _atomic_write(path: Path, write) -> Path:  # type: ignore[no-untyped-def]
    """Write through ``write(file)`` to a temporary file, then rename onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
