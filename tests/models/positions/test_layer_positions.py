import os
import pickle
import pickletools

import numpy as np
import pytest
import torch

from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError, UnsafePickleError


def _assert_same(a: LayerPositions, b: LayerPositions) -> None:
    assert a.name == b.name and tuple(a.dims) == tuple(b.dims)
    np.testing.assert_array_equal(np.asarray(a.coordinates), np.asarray(b.coordinates))
    np.testing.assert_array_equal(np.asarray(a.neighborhood_indices), np.asarray(b.neighborhood_indices))
    assert a.neighborhood_width == b.neighborhood_width


@pytest.mark.parametrize("fmt", ["pkl", "npz"])
def test_layer_round_trip(tmp_path, toy_layer, fmt):
    path = toy_layer.save(tmp_path) if fmt == "pkl" else toy_layer.save_np(tmp_path)
    assert path == tmp_path / f"layer1.0.{fmt}"
    _assert_same(LayerPositions.load(path), toy_layer)


def test_tensors_are_saved_as_arrays(tmp_path, toy_layer):
    toy_layer.to_torch()
    assert isinstance(toy_layer.coordinates, torch.Tensor)
    assert toy_layer.neighborhood_indices.dtype == torch.int64  # as the original's to_torch gave
    loaded = LayerPositions.load(toy_layer.save(tmp_path))
    assert isinstance(loaded.coordinates, np.ndarray)
    np.testing.assert_allclose(loaded.coordinates, toy_layer.coordinates.numpy(), rtol=1e-6)


def test_pickle_names_the_original_class_path(tmp_path, toy_layer):
    data = (toy_layer.save(tmp_path)).read_bytes()
    strings = [arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    assert "spacetorch.models.positions" in strings and "LayerPositions" in strings


@pytest.mark.parametrize("protocol", [0, 2])
def test_pickles_in_the_original_numpy_1_layout_load(tmp_path, toy_layer, protocol):
    # files published with the original models were written by numpy 1.x (numpy.core.*)
    data = pickle.dumps(toy_layer, protocol=protocol).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray" in data
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(data)
    _assert_same(LayerPositions.load(path), toy_layer)


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pickle_is_refused(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(pickle.dumps(_Exploit(target)))
    with pytest.raises(UnsafePickleError, match="refusing to unpickle global '(posix|os).system'"):
        LayerPositions.load(path)
    assert not target.exists()
    with pytest.raises(UnsafePickleError):
        NetworkPositions.load_from_dir(tmp_path)
    assert not target.exists()


def test_trusted_pickle_is_an_explicit_opt_in(tmp_path, toy_layer):
    path = toy_layer.save(tmp_path)
    _assert_same(LayerPositions.load(path, trust_pickle=True), toy_layer)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(dims=(3, 3, 4)), r"dims \(3, 3, 4\) give 36 units, so coordinates must have shape \(36, 2\)"),
        (dict(neighborhood_indices=np.array([[0, 24]])), r"must lie in \[0, 23\], found values in \[0, 24\]"),
        (dict(neighborhood_indices=np.array([[0.0, 1.0]])), "must be integers"),
        (dict(neighborhood_width=-1.0), "neighborhood_width must be a positive number"),
    ],
)
def test_inconsistent_fields_are_rejected(toy_layer, change, message):
    fields = dict(name=toy_layer.name, dims=toy_layer.dims, coordinates=toy_layer.coordinates,
                  neighborhood_indices=toy_layer.neighborhood_indices, neighborhood_width=2.0)
    fields.update(change)
    with pytest.raises(PositionsError, match=message):
        LayerPositions(**fields)


def test_nan_coordinates_in_a_file_name_the_file(tmp_path, toy_layer):
    toy_layer.coordinates[3, 0] = np.nan
    path = tmp_path / "layer1.0.npz"
    np.savez(path, name="layer1.0", dims=np.array(toy_layer.dims), coordinates=toy_layer.coordinates,
             neighborhood_indices=toy_layer.neighborhood_indices, neighborhood_width=2.0)
    with pytest.raises(PositionsError, match=r"layer1\.0\.npz: layer 'layer1\.0': coordinates contain NaN"):
        LayerPositions.load(path)


def test_npz_missing_an_array_is_named(tmp_path):
    path = tmp_path / "layer1.0.npz"
    np.savez(path, name="layer1.0", dims=np.array([1, 1, 2]))
    with pytest.raises(PositionsError, match=r"missing array\(s\) \['coordinates'"):
        LayerPositions.load(path)


def _network(toy_layer, names=("layer1.0", "layer1.1")) -> NetworkPositions:
    layers = {}
    for name in names:
        layers[name] = LayerPositions(name=name, dims=toy_layer.dims, coordinates=toy_layer.coordinates,
                                      neighborhood_indices=toy_layer.neighborhood_indices, neighborhood_width=2.0)
    return NetworkPositions(layers, version=2)


@pytest.mark.parametrize("fmt", ["pkl", "npz"])
def test_network_round_trip_with_version(tmp_path, toy_layer, fmt):
    out = _network(toy_layer).save(tmp_path / "set", fmt=fmt)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["version.txt", "manifest.json", f"layer1.0.{fmt}", f"layer1.1.{fmt}"]
    )
    loaded = NetworkPositions.load_from_dir(out)
    assert loaded.version == 2 and list(loaded) == ["layer1.0", "layer1.1"]
    _assert_same(loaded["layer1.1"], toy_layer.__class__(**{**toy_layer.__dict__, "name": "layer1.1"}))
    assert isinstance(loaded.to_torch()["layer1.0"].coordinates, torch.Tensor)


def test_missing_layer_and_wrong_dims_are_named(tmp_path, toy_layer):
    loaded = NetworkPositions.load_from_dir(_network(toy_layer).save(tmp_path / "set"))
    with pytest.raises(PositionsError, match=r"no positions for layer\(s\) \['layer2.0'\]"):
        loaded.check_layers({"layer1.0": (2, 3, 4), "layer2.0": (2, 3, 4)}, source=tmp_path / "set")
    with pytest.raises(PositionsError, match=r"layer 'layer1.0' has dims \(2, 3, 4\) but the model's output is \(2, 4, 3\)"):
        loaded.check_layers({"layer1.0": (2, 4, 3)})
    with pytest.raises(KeyError, match="layer9.9"):
        loaded["layer9.9"]


def test_directory_errors(tmp_path, toy_layer):
    with pytest.raises(PositionsError, match="does not exist"):
        NetworkPositions.load_from_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PositionsError, match=r"no \*.pkl or \*.npz"):
        NetworkPositions.load_from_dir(tmp_path / "empty")
    both = tmp_path / "both"
    toy_layer.save(both), toy_layer.save_np(both)
    with pytest.raises(PositionsError, match="in both layer1.0.npz and layer1.0.pkl"):
        NetworkPositions.load_from_dir(both)
    renamed = tmp_path / "renamed"
    toy_layer.save(renamed).rename(renamed / "layer2.0.pkl")
    with pytest.raises(PositionsError, match="holds layer 'layer1.0'; expected 'layer2.0'"):
        NetworkPositions.load_from_dir(renamed)
    (renamed / "layer2.0.pkl").unlink()
    toy_layer.save(renamed)
    (renamed / "version.txt").write_text("two\n")
    with pytest.raises(PositionsError, match="version.txt: expected one integer"):
        NetworkPositions.load_from_dir(renamed)


def test_save_refuses_a_non_empty_directory(tmp_path, toy_layer):
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        _network(toy_layer).save(out)
    with pytest.raises(FileExistsError, match=r"holds notes.txt, which is not part of a position set"):
        _network(toy_layer).save(out, overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_failed_save_leaves_nothing_behind(tmp_path, toy_layer, monkeypatch):
    calls = []

    def failing_write(self, save_dir, fmt):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, save_dir, fmt)

    original = LayerPositions._write
    monkeypatch.setattr(LayerPositions, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        _network(toy_layer).save(tmp_path / "set")
    assert list(tmp_path.iterdir()) == []


def test_len_and_flat_indices_as_the_original_gave_them() -> None:
    import numpy as np

    from spacetorch.models.positions import LayerPositions

    dims = (3, 4, 5)
    layer = LayerPositions("l", dims, np.random.default_rng(0).uniform(0, 1, (60, 2)), np.arange(6).reshape(1, 6), 0.5)
    assert len(layer) == 60
    flat = layer.flat_indices
    features = np.arange(60).reshape(dims)  # unit i is element i of features.flatten()
    np.testing.assert_array_equal(features[flat.chan_flat, flat.x_flat, flat.y_flat], np.arange(60))
    assert flat.chan_flat[:21].tolist() == [0] * 20 + [1] and flat.y_flat[:6].tolist() == [0, 1, 2, 3, 4, 0]
