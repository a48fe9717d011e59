"""Layer responses on disk: run a model over a stimulus set once, analyse the file many times.

A features file holds, for each chosen layer, every unit's response to every stimulus
(``responses``, ``(S, N)`` float32, units in the order of the layer's position file) and the
units' positions (``coordinates``, ``(N, 2)`` mm), with the stimuli's labels, label names and
parameters (a grating's orientation, spatial frequency, phase and colour) and what made it
(model, checkpoint, positions, stimuli).  Two formats:

* HDF5 (``.h5``, h5py): ``/layers/<layer>/responses``, ``/layers/<layer>/coordinates`` (with a
  ``dims`` attribute), ``/labels``, ``/label_names``, ``/stimulus/<parameter>``; the file's
  attributes hold the record (``info``, JSON) and ``complete``;
* NumPy (``.npz``): the same arrays, named ``responses/<layer>``, ``coordinates/<layer>``,
  ``dims/<layer>``, ``labels``, ``label_names``, ``stimulus/<parameter>`` and ``info``.

:func:`write_features` fills an HDF5 file ``<path>.partial.h5`` batch by batch, noting after
each how many stimuli are done, so that the same call after an interruption goes on from
there; the complete file then takes its final name in one step.  :meth:`Features.load` reads
either format and refuses an unfinished file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "Features", "FeaturesError", "partial_path", "write_features"]

#: the version of the file layout, in every file
FORMAT_VERSION = 1
_SUFFIXES = (".h5", ".npz")


class FeaturesError(ValueError):
    """A features file that is missing, unfinished, malformed, or lacks what was asked of it."""


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`write_features` builds ``path`` until it is complete."""
    path = Path(path)
    return path.with_name(path.name + ".partial.h5")


@dataclass
class Features:
    """The responses of some layers to a stimulus set.

    Attributes:
        responses: layer -> ``(S, N)`` float32 responses.
        coordinates: layer -> ``(N, 2)`` unit positions, mm.
        dims: layer -> the layer's ``(C, H, W)``.
        labels: ``(S,)`` int label of each stimulus.
        label_names: the name of each label value.
        stimulus: parameter -> ``(S,)`` values (e.g. ``orientation`` of gratings).
        info: what made the file (model, checkpoint, positions, stimuli, image size ...).
        source: the file it was read from, if any.
    """

    responses: dict[str, np.ndarray]
    coordinates: dict[str, np.ndarray]
    dims: dict[str, tuple[int, int, int]]
    labels: np.ndarray
    label_names: list[str]
    stimulus: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def layers(self) -> list[str]:
        return list(self.responses)

    def layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(responses (S, N), coordinates (N, 2))`` of one layer.

        Raises:
            FeaturesError: the file has no such layer (naming the file and its layers).
        """
        if name not in self.responses:
            where = f"{self.source}" if self.source else "these features"
            raise FeaturesError(f"{where} has no layer {name!r}; it has {self.layers}")
        return self.responses[name], self.coordinates[name]

    def check_model(self, arch: str) -> None:
        """Refuse features of another model than ``arch`` (when the file names its model)."""
        made_by = self.info.get("arch")
        if made_by is not None and made_by != arch:
            raise FeaturesError(f"{self.source}: features of model {made_by!r}, not {arch!r}")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Features:
        """Read a ``.h5`` or ``.npz`` features file.

        Raises:
            FeaturesError: missing, unfinished, of another layout, or its arrays disagree.
        """
        path = Path(path)
        if path.suffix not in _SUFFIXES:
            raise FeaturesError(f"{path}: a features file ends in .h5 or .npz")
        if not path.is_file():
            hint = f" (an unfinished one is at {partial_path(path)})" if partial_path(path).exists() else ""
            raise FeaturesError(f"{path}: no such features file{hint}")
        try:
            features = _load_h5(path) if path.suffix == ".h5" else _load_npz(path)
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            if isinstance(err, FeaturesError):
                raise
            raise FeaturesError(f"{path}: not a spacetorch features file ({type(err).__name__}: {err})") from None
        features.source = path
        features.validate()
        return features

    def validate(self) -> Features:
        """Check that every array agrees with the others; return ``self``."""
        where = self.source or "features"
        count = len(self.labels)
        if set(self.responses) != set(self.coordinates) or set(self.responses) != set(self.dims):
            raise FeaturesError(f"{where}: responses, coordinates and dims name different layers")
        for name, r in self.responses.items():
            c, h, w = self.dims[name]
            if r.shape != (count, c * h * w) or self.coordinates[name].shape != (c * h * w, 2):
                raise FeaturesError(
                    f"{where}: layer {name!r} has responses {r.shape} and coordinates {self.coordinates[name].shape}; "
                    f"expected ({count}, {c * h * w}) and ({c * h * w}, 2) for dims {self.dims[name]}"
                )
        for name, values in self.stimulus.items():
            if len(values) != count:
                raise FeaturesError(f"{where}: stimulus parameter {name!r} has {len(values)} values for {count} stimuli")
        if count and (self.labels.min() < 0 or self.labels.max() >= max(len(self.label_names), 1)):
            raise FeaturesError(f"{where}: labels outside 0..{len(self.label_names) - 1}")
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write these features to ``path`` (``.h5`` or ``.npz``) all or nothing."""
        path = Path(path)
        if path.suffix not in _SUFFIXES:
            raise FeaturesError(f"{path}: a features file ends in .h5 or .npz")
        from spacetorch._files import atomic_write, publish

        if path.suffix == ".npz":
            arrays = _npz_arrays(self)
            return atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
        partial = partial_path(path)
        partial.unlink(missing_ok=True)
        with _h5py().File(partial, "w") as h5:
            _h5_header(h5, self.labels, self.label_names, self.stimulus, self.info)
            for name in self.layers:
                group = _h5_layer(h5, name, self.dims[name], self.coordinates[name], len(self.labels))
                group["responses"][...] = self.responses[name]
            h5.attrs["done"] = len(self.labels)
            h5.attrs["complete"] = True
        publish(partial, path)
        return path


def _h5py() -> Any:
    import h5py

    return h5py


def _h5_header(h5: Any, labels: np.ndarray, label_names: Sequence[str], stimulus: Mapping[str, np.ndarray],
               info: Mapping[str, Any]) -> None:  # fmt: skip
    h5.attrs["spacetorch_features"] = FORMAT_VERSION
    h5.attrs["info"] = json.dumps(dict(info), sort_keys=True)
    h5.attrs["complete"] = False
    h5.attrs["done"] = 0
    h5["labels"] = np.asarray(labels, dtype=np.int64)
    h5["label_names"] = np.array([str(n) for n in label_names], dtype=object)
    for name, values in stimulus.items():
        values = np.asarray(values)
        h5[f"stimulus/{name}"] = values.astype(object) if values.dtype.kind in "UO" else values


def _h5_layer(h5: Any, name: str, dims: tuple[int, int, int], coordinates: np.ndarray, count: int) -> Any:
    group = h5.create_group(f"layers/{name}")
    group.attrs["dims"] = np.asarray(dims, dtype=np.int64)
    group["coordinates"] = np.asarray(coordinates, dtype=np.float32)
    units = int(np.prod(dims))
    group.create_dataset("responses", shape=(count, units), dtype=np.float32, chunks=(min(count, 64), units) if count else None)
    return group


def _strings(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _load_h5(path: Path) -> Features:
    with _h5py().File(path, "r") as h5:
        if h5.attrs.get("spacetorch_features") is None:
            raise FeaturesError(f"{path}: not a spacetorch features file (no spacetorch_features attribute)")
        if not bool(h5.attrs.get("complete", False)):
            raise FeaturesError(f"{path}: unfinished ({int(h5.attrs.get('done', 0))} of {len(h5['labels'])} stimuli)")
        stimulus = {}
        for name, data in h5.get("stimulus", {}).items():
            values = data[()]
            stimulus[name] = np.array(_strings(values)) if values.dtype.kind in "OS" else values
        layers = h5["layers"]
        return Features(
            responses={name: layers[name]["responses"][()] for name in layers},
            coordinates={name: layers[name]["coordinates"][()] for name in layers},
            dims={name: tuple(int(d) for d in layers[name].attrs["dims"]) for name in layers},  # type: ignore[misc]
            labels=h5["labels"][()],
            label_names=_strings(h5["label_names"][()]),
            stimulus=stimulus,
            info=json.loads(h5.attrs["info"]),
        )


def _npz_arrays(features: Features) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "spacetorch_features": np.array(FORMAT_VERSION),
        "labels": np.asarray(features.labels, dtype=np.int64),
        "label_names": np.array(features.label_names, dtype=str),
        "info": np.array(json.dumps(features.info, sort_keys=True)),
    }
    for name in features.layers:
        arrays[f"responses/{name}"] = features.responses[name]
        arrays[f"coordinates/{name}"] = features.coordinates[name]
        arrays[f"dims/{name}"] = np.asarray(features.dims[name], dtype=np.int64)
    for name, values in features.stimulus.items():
        arrays[f"stimulus/{name}"] = np.asarray(values)
    return arrays


def _load_npz(path: Path) -> Features:
    with np.load(path, allow_pickle=False) as data:
        if "spacetorch_features" not in data.files:
            raise FeaturesError(f"{path}: not a spacetorch features file (no spacetorch_features entry)")
        layers = [key.split("/", 1)[1] for key in data.files if key.startswith("responses/")]
        return Features(
            responses={name: data[f"responses/{name}"] for name in layers},
            coordinates={name: data[f"coordinates/{name}"] for name in layers},
            dims={name: tuple(int(d) for d in data[f"dims/{name}"]) for name in layers},  # type: ignore[misc]
            labels=data["labels"],
            label_names=[str(n) for n in data["label_names"]],
            stimulus={key.split("/", 1)[1]: data[key] for key in data.files if key.startswith("stimulus/")},
            info=json.loads(str(data["info"])),
        )


def write_features(
    model: Any,
    stimuli: Any,
    path: str | os.PathLike[str],
    layers: Sequence[str],
    *,
    labels: np.ndarray,
    label_names: Sequence[str],
    stimulus: Mapping[str, np.ndarray] | None = None,
    info: Mapping[str, Any] | None = None,
    batch_size: int = 64,
    workers: int = 0,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Run ``model`` (a :class:`~spacetorch.models.topographic.TopographicModel`) over ``stimuli``
    (a Dataset of ``(image, label)``) and write the responses of ``layers`` to ``path``.

    The same call after an interruption continues from the last finished batch (the settings,
    ``info`` and the stimulus count must be the same; otherwise the unfinished file is refused).

    Args:
        progress: called with ``(done, total)`` stimuli after each batch.

    Raises:
        FeaturesError: ``path`` has another suffix, or an unfinished file of other settings is there.
    """
    import torch

    from spacetorch._workers import data_loader

    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise FeaturesError(f"{path}: a features file ends in .h5 or .npz")
    names = list(layers)
    total = len(stimuli)
    record = dict(info or {}, layers=names, stimuli_count=total)
    partial = partial_path(path)
    partial.parent.mkdir(parents=True, exist_ok=True)
    h5py = _h5py()
    done = _resumable(partial, record)
    if done is None:
        partial.unlink(missing_ok=True)
        with h5py.File(partial, "w") as h5:
            _h5_header(h5, labels, label_names, stimulus or {}, record)
            for name in names:
                positions = model.layer_positions(name)
                _h5_layer(h5, name, tuple(positions.dims), np.asarray(positions.coordinates), total)
        done = 0
    if progress is not None:
        progress(done, total)
    if device is not None:
        model.to(device)
    subset = torch.utils.data.Subset(stimuli, range(done, total))
    was_training = model.training
    model.eval()
    try:
        with h5py.File(partial, "r+") as h5, torch.no_grad():
            for batch in data_loader(subset, batch_size=batch_size, workers=workers):
                images = batch[0] if isinstance(batch, (tuple, list)) else batch
                features = model(images.to(model.mean.device, torch.float32), names)
                stop = done + len(images)
                for name in names:
                    h5[f"layers/{name}/responses"][done:stop] = features[name].flatten(1).float().cpu().numpy()
                h5.attrs["done"] = done = stop
                h5.flush()
                if progress is not None:
                    progress(done, total)
            h5.attrs["complete"] = True
    finally:
        model.train(was_training)
    if path.suffix == ".npz":
        Features.load(partial).save(path)  # the .npz, written all or nothing from the complete HDF5 file
        partial.unlink()
    else:
        from spacetorch._files import publish

        publish(partial, path)
    return path


def _resumable(partial: Path, record: Mapping[str, Any]) -> int | None:
    """How many stimuli an unfinished file made with the same settings holds; None when there is none.

    Raises:
        FeaturesError: an unfinished file made with other settings is there.
    """
    if not partial.exists():
        return None
    try:
        with _h5py().File(partial, "r") as h5:
            same = json.loads(h5.attrs["info"]) == json.loads(json.dumps(dict(record), sort_keys=True))
            done = int(h5.attrs["done"])
    except (OSError, KeyError, ValueError):
        return None  # damaged by a kill mid-write: start again
    if not same:
        raise FeaturesError(f"{partial} is an unfinished features file made with other settings; delete it to start again")
    return done
