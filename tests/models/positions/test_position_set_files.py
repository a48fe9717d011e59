"""Writing and replacing position sets: all or nothing, never deleting a user's files, named
errors for damaged files, and the user's umask."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

import spacetorch._files as files
from spacetorch.cli._signals import Interrupted, interrupts_as_exceptions
from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError

from output_states import dead_pid, hidden_leftovers, load_positions_digest, outcome, positions_digest


def _set(seed: int, n_layers: int = 4) -> NetworkPositions:
    """A small set of ``n_layers`` layers, different for each seed."""
    rng = np.random.default_rng(seed)
    layers = {}
    for i in range(n_layers):
        n = 2 * 3 * 3
        hoods = np.stack([rng.choice(n, 5, replace=False) for _ in range(4)]).astype(np.int32)
        layers[f"layer{i}.0"] = LayerPositions(
            name=f"layer{i}.0", dims=(2, 3, 3), coordinates=rng.uniform(0, 3, (n, 2)),
            neighborhood_indices=hoods, neighborhood_width=1.5,
        )
    return NetworkPositions(layers, version=1)


# -- 1. --overwrite only ever replaces a position set ------------------------------------------
def test_overwrite_never_deletes_other_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "results.pkl").write_bytes(pickle.dumps({"accuracy": 0.7}))  # a pickle, but not positions
    (out / "runs").mkdir()
    with pytest.raises(FileExistsError, match=r"holds notes.txt, results.pkl, runs, which are not part of a position set"):
        _set(0).save(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.pkl", "runs"]
    assert hidden_leftovers(tmp_path) == []


def test_overwrite_refuses_the_working_directory(tmp_path, monkeypatch):
    out = tmp_path / "set"
    _set(0).save(out)
    monkeypatch.chdir(out)
    with pytest.raises(FileExistsError, match="refusing to replace the directory you are working in"):
        _set(1).save(".", overwrite=True)
    assert NetworkPositions.load_from_dir(out).layer_positions.keys() == _set(0).layer_positions.keys()


@pytest.mark.parametrize("with_manifest", [True, False], ids=["spacetorch set", "set of the original code"])
def test_overwrite_replaces_a_position_set(tmp_path, with_manifest):
    out = tmp_path / "set"
    _set(0).save(out)
    if not with_manifest:
        (out / "manifest.json").unlink()
    _set(1, n_layers=2).save(out, overwrite=True)
    assert positions_digest(NetworkPositions.load_from_dir(out)) == positions_digest(_set(1, n_layers=2))
    assert sorted(p.name for p in out.iterdir()) == ["layer0.0.pkl", "layer1.0.pkl", "manifest.json", "version.txt"]


def test_script_overwrite_in_a_users_directory_deletes_nothing(tmp_path, monkeypatch, capsys):
    from spacetorch.cli.save_retinotopic_positions import main

    (tmp_path / "thesis.tex").write_text("three years of work")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["--out", ".", "--overwrite", "--quiet", "--n-neighborhoods", "50"])
    assert stop.value.code == 2
    assert "--out ." in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


# -- 2. replacement is all or nothing, and the loader refuses incomplete sets -----------------
def _exchange_works(tmp_path: Path) -> bool:
    a, b = tmp_path / "probe_a", tmp_path / "probe_b"
    a.mkdir(), b.mkdir()
    try:
        return files._exchange(a, b)
    finally:
        shutil.rmtree(a), shutil.rmtree(b)


def _save_killed_at(step: int, new: NetworkPositions, out: Path, *, exchange: bool) -> bool:
    """Replace ``out`` by ``new`` in a forked process that SIGKILLs itself before its
    ``step``-th file-system step; True if it was killed (False: it finished first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a process with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            count = 0

            def die_before(fn):
                def step_then_call(*args, **kwargs):
                    nonlocal count
                    count += 1
                    if count == step:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return fn(*args, **kwargs)
                return step_then_call

            os.replace, os.rename, os.chmod = die_before(os.replace), die_before(os.rename), die_before(os.chmod)
            shutil.rmtree = die_before(shutil.rmtree)
            files._exchange = die_before(files._exchange if exchange else lambda a, b: False)
            new.save(out, overwrite=True)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.slow  # writers killed in forked processes, over and over
@pytest.mark.parametrize("exchange", [True, False], ids=["atomic exchange", "two renames"])
def test_killed_replacement_leaves_the_old_set_the_new_set_or_a_refusal(tmp_path, exchange):
    old, new = _set(0), _set(1)
    out = tmp_path / "set"
    seen = []
    for step in range(1, 100):
        shutil.rmtree(out, ignore_errors=True)
        old.save(out)
        killed = _save_killed_at(step, new, out, exchange=exchange)
        seen.append(outcome(load_positions_digest(out), positions_digest(old), positions_digest(new), refused=(PositionsError,)))
        # the next save removes what the killed writer left, and succeeds
        new.save(out, overwrite=True)
        assert hidden_leftovers(tmp_path) == [], f"killed at step {step}"
        if not killed:
            break
    else:
        pytest.fail("the writer never finished")
    assert seen[-1] == "new" and seen[0] == "old"
    assert seen == sorted(seen, key=["old", "refused", "new"].index), "the set went back to an older state"
    if exchange and _exchange_works(tmp_path):
        assert "refused" not in seen, "an atomic exchange never leaves the directory missing"


def test_sigterm_during_a_save_removes_the_temporary_and_keeps_the_old_set(tmp_path, monkeypatch):
    out = tmp_path / "set"
    old, new = _set(0), _set(1)
    old.save(out)
    original = LayerPositions._write

    def write_then_terminate(self, save_dir, fmt):
        if self.name == "layer2.0":
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, save_dir, fmt)

    monkeypatch.setattr(LayerPositions, "_write", write_then_terminate)
    with pytest.raises(Interrupted) as stop, interrupts_as_exceptions():
        new.save(out, overwrite=True)
    assert stop.value.exit_code == 143
    assert positions_digest(NetworkPositions.load_from_dir(out)) == positions_digest(old)
    assert hidden_leftovers(tmp_path) == []


def test_script_interrupted_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from spacetorch.cli import save_retinotopic_positions as script

    def interrupted_save(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(NetworkPositions, "save", interrupted_save)
    with pytest.raises(SystemExit) as stop:
        script.main(["--out", str(tmp_path / "set"), "--quiet", "--n-neighborhoods", "50"])
    assert stop.value.code == 130
    assert "interrupted by SIGINT; nothing was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_running_writers_are_kept(tmp_path):
    out = tmp_path / "set"
    _set(0).save(out)
    mine = tmp_path / f".set.{os.getpid()}.abcdefgh.tmp"  # a writer that still runs (this one)
    dead = tmp_path / f".set.{dead_pid()}.abcdefgh.tmp"
    other = tmp_path / ".set.backup"  # not a name spacetorch makes
    for path in (mine, dead, other):
        path.mkdir()
    _set(1).save(out, overwrite=True)
    assert hidden_leftovers(tmp_path) == sorted([mine.name, other.name])


def test_loader_refuses_a_set_that_lost_a_layer(tmp_path):
    out = _set(0).save(tmp_path / "set")
    (out / "layer2.0.pkl").unlink()
    with pytest.raises(PositionsError, match=r"incomplete position set: manifest.json lists 4 layers, but layer2.0.pkl is missing"):
        NetworkPositions.load_from_dir(out)


def test_loader_names_a_truncated_layer_file(tmp_path):
    out = _set(0).save(tmp_path / "set")
    path = out / "layer1.0.pkl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PositionsError, match=rf"layer1.0.pkl: {len(data) // 2} bytes, but manifest.json records {len(data)}"):
        NetworkPositions.load_from_dir(out)


def test_loader_refuses_a_layer_the_manifest_does_not_list(tmp_path):
    out = _set(0).save(tmp_path / "set")
    _set(5, n_layers=6)["layer5.0"].save(tmp_path)  # outside the set, then copied in by hand
    shutil.copy(tmp_path / "layer5.0.pkl", out / "layer5.0.pkl")
    with pytest.raises(PositionsError, match="layer5.0.pkl not listed in manifest.json"):
        NetworkPositions.load_from_dir(out)


def test_saving_one_layer_into_a_set_updates_its_manifest(tmp_path):
    out = _set(0).save(tmp_path / "set")
    replacement = _set(9)["layer1.0"]
    replacement.save(out)
    loaded = NetworkPositions.load_from_dir(out)
    np.testing.assert_array_equal(loaded["layer1.0"].coordinates, replacement.coordinates)


def test_an_unreadable_manifest_is_named(tmp_path):
    out = _set(0).save(tmp_path / "set")
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(PositionsError, match=r"manifest.json: not a readable position-set manifest"):
        NetworkPositions.load_from_dir(out)


# -- 3. damaged files are named -----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["pkl", "npz"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_layer_file_is_named(tmp_path, fmt, damage):
    layer = _set(0)["layer0.0"]
    path = layer.save(tmp_path) if fmt == "pkl" else layer.save_np(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x80\x04not a pickle"}[damage])
    expected = "the file is empty" if damage == "empty" else "the file is truncated or corrupt"
    with pytest.raises(PositionsError, match=rf"{path}: .*{expected}"):
        LayerPositions.load(path)
    with pytest.raises(PositionsError, match=str(path)):  # and in a set without manifest
        NetworkPositions.load_from_dir(tmp_path)


# -- 5. outputs get the permissions the umask gives ---------------------------------------------
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_position_sets_follow_the_umask(tmp_path, mask):
    previous = os.umask(mask)
    try:
        out = _set(0).save(tmp_path / "set")
        _set(1).save(out, overwrite=True)
        _set(2)["layer0.0"].save(tmp_path / "single")
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask
    for path in [*out.iterdir(), tmp_path / "single" / "layer0.0.pkl"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path.name


# -- 6. neighborhoods of repeated units ----------------------------------------------------------
def test_a_neighborhood_with_a_repeated_unit_is_refused(tmp_path):
    layer = _set(0)["layer0.0"]
    hoods = np.asarray(layer.neighborhood_indices).copy()
    hoods[2, 3] = hoods[2, 0]
    with pytest.raises(PositionsError, match="neighborhood 2 lists a unit more than once"):
        LayerPositions(layer.name, layer.dims, layer.coordinates, hoods, layer.neighborhood_width)
    path = layer.save(tmp_path)  # a file written with such a table (e.g. by other code) is refused too
    data = pickle.loads(path.read_bytes())
    data.neighborhood_indices = hoods
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(PositionsError, match=rf"{path}: layer 'layer0.0': neighborhood 2 lists a unit more than once"):
        LayerPositions.load(path)


def test_jitter_must_be_a_finite_non_negative_number():
    from spacetorch.models import retinotopic_positions

    for jitter in (float("nan"), -0.1, float("inf")):
        with pytest.raises(ValueError, match=f"jitter is the std of the position noise in mm, a finite number >= 0; got {jitter}"):
            retinotopic_positions("resnet18", 50, jitter=jitter)
