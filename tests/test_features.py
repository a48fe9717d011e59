"""Features on disk: the file holds what the model computes, in both formats, and survives an interruption."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from spacetorch.features import Features, FeaturesError, partial_path, write_features
from spacetorch.models.positions import NetworkPositions
from spacetorch.models.topographic import TopographicModel
from spacetorch.stimuli import SineGratings

LAYERS = ["layer1.0", "layer2.0"]


@pytest.fixture(scope="module")
def setting(small_model_files: tuple[Path, Path]) -> tuple[TopographicModel, SineGratings]:
    checkpoint, positions = small_model_files
    model = TopographicModel.from_checkpoint(checkpoint, positions, "resnet18")
    return model, SineGratings(64, spatial_frequencies=[2.0, 4.0], phases=[0.0, 180.0], colors=["bw"])


def _write(setting: tuple[TopographicModel, SineGratings], path: Path, **kwargs: object) -> Path:
    model, gratings = setting
    return write_features(model, gratings, path, LAYERS, labels=np.arange(len(gratings)) % 8,
                          label_names=[f"o{i}" for i in range(8)], stimulus={"orientation": gratings.orientation},
                          info={"arch": "resnet18"}, batch_size=7, **kwargs)  # fmt: skip


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_the_file_holds_the_models_responses_and_positions(setting, tmp_path: Path, suffix: str) -> None:
    model, gratings = setting
    path = _write(setting, tmp_path / f"f{suffix}")
    assert not partial_path(path).exists()
    features = Features.load(path)
    expected = model.responses(gratings.images(), LAYERS, progress=False)
    assert features.layers == LAYERS and features.info["arch"] == "resnet18"
    for name in LAYERS:
        responses, coordinates = features.layer(name)
        np.testing.assert_allclose(responses, expected[name][0].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(coordinates, expected[name][1].numpy())
        assert features.dims[name] == model.layer_positions(name).dims
    np.testing.assert_array_equal(features.stimulus["orientation"], gratings.orientation)
    assert features.label_names[3] == "o3" and features.labels.shape == (len(gratings),)


def test_an_interrupted_write_goes_on_where_it_stopped(setting, tmp_path: Path) -> None:
    calls = []

    def stop_after_two_batches(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    path = tmp_path / "f.h5"
    with pytest.raises(KeyboardInterrupt):
        _write(setting, path, progress=stop_after_two_batches)
    assert not path.exists() and partial_path(path).exists()
    with pytest.raises(FeaturesError, match="no such features file.*an unfinished one"):
        Features.load(path)
    with h5py.File(partial_path(path)) as h5:
        assert int(h5.attrs["done"]) == 14
    resumed: list[int] = []
    _write(setting, path, progress=lambda done, total: resumed.append(done))
    assert resumed[0] == 14, "it went on from the 14 stimuli already written"
    whole = _write(setting, tmp_path / "whole.h5")
    for name in LAYERS:
        np.testing.assert_array_equal(Features.load(path).responses[name], Features.load(whole).responses[name])


def test_an_unfinished_file_of_other_settings_is_refused(setting, tmp_path: Path) -> None:
    path = tmp_path / "f.h5"

    def stop(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _write(setting, path, progress=stop)
    model, gratings = setting
    with pytest.raises(FeaturesError, match="made with other settings"):
        write_features(model, gratings, path, ["layer1.0"], labels=np.zeros(len(gratings), int), label_names=["g"])


def test_bad_files_are_named(tmp_path: Path, setting) -> None:
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(FeaturesError, match="ends in .h5 or .npz"):
        Features.load(tmp_path / "x.txt")
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(FeaturesError, match="not a spacetorch features file"):
        Features.load(tmp_path / "other.npz")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(FeaturesError, match="junk.h5: not a spacetorch features file"):
        Features.load(tmp_path / "junk.h5")
    features = Features.load(_write(setting, tmp_path / "f.npz"))
    with pytest.raises(FeaturesError, match=r"f.npz has no layer 'layer9.0'; it has \['layer1.0', 'layer2.0'\]"):
        features.layer("layer9.0")
    with pytest.raises(FeaturesError, match="features of model 'resnet18', not 'resnet50'"):
        features.check_model("resnet50")


def test_the_command_writes_a_file_the_analyses_read_and_keeps_what_is_not_its_own(small_model_files, tmp_path: Path, capsys) -> None:
    from spacetorch.cli.main import main

    checkpoint, positions = small_model_files
    argv = ["features", "--checkpoint", str(checkpoint), "--positions", str(positions), "--image-size", "64",
            "--spatial-frequencies", "2", "4", "--gratings", "--layers", "layer2.0", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "g.npz")]) == 0
    features = Features.load(tmp_path / "g.npz")
    assert features.layers == ["layer2.0"] and features.responses["layer2.0"].shape[0] == 160
    assert set(features.stimulus) == {"orientation", "spatial_frequency", "phase", "color"}
    assert features.label_names[:2] == ["0 deg", "22.5 deg"]
    for bad, message in [
        ([*argv, "--out", str(tmp_path / "g.npz")], "exists; choose another file or pass --overwrite"),
        ([*argv, "--layers", "layer9", "--out", str(tmp_path / "x.h5")], "--layers: ['layer9'] have no positions"),
        ([*argv, "--out", str(positions / "inside.h5")], "lies inside --positions"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(bad)
        assert exited.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / "notes.h5").write_text("the user's")
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "notes.h5"), "--overwrite"])
    assert "is not a features file spacetorch wrote" in capsys.readouterr().err
    assert (tmp_path / "notes.h5").read_text() == "the user's"


def test_a_disk_without_room_for_the_responses_is_refused_before_the_first_image(
    small_model_files, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    from spacetorch.cli.main import main

    checkpoint, positions = small_model_files
    argv = ["features", "--checkpoint", str(checkpoint), "--positions", str(positions), "--image-size", "64",
            "--spatial-frequencies", "2", "4", "--gratings", "--layers", "layer2.0", "--quiet", "--out", str(tmp_path / "g.h5")]
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(SystemExit) as exited:
        main(argv)
    units = NetworkPositions.load_from_dir(positions)["layer2.0"].num_units
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"spacetorch features: error: --out {tmp_path / 'g.h5'}: 160 stimuli x {units:,} units of float32 responses "
        f"needs about {160 * units * 4 / 1e6:.1f} MB, and {tmp_path} has 1.0 KB free\n")
    assert list(tmp_path.iterdir()) == []
