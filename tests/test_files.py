"""spacetorch._files: the checks every command makes on its outputs before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spacetorch._files import RESULTS_RECORD, check_apart, check_results, record_results


def test_a_result_file_is_replaced_only_once_spacetorch_recorded_writing_it(tmp_path: Path) -> None:
    check_results(tmp_path / "missing", ["results.json"])  # nothing there yet
    (tmp_path / "notes.txt").write_text("the user's")
    check_results(tmp_path, ["results.json"])  # other files stay beside the results
    (tmp_path / "results.json").write_text("the user's")
    with pytest.raises(FileExistsError, match="already holds results.json, which spacetorch did not write there"):
        check_results(tmp_path, ["results.json", "results.csv"])
    record_results(tmp_path, ["results.json"])
    record_results(tmp_path, ["cams"])  # records add up
    check_results(tmp_path, ["results.json", "cams"])
    (tmp_path / RESULTS_RECORD).write_text("{not json")  # a damaged record vouches for nothing
    with pytest.raises(FileExistsError, match="results.json"):
        check_results(tmp_path, ["results.json"])


@pytest.mark.parametrize(("out", "inputs", "message"), [
    ("data/results", {"--data": "data"}, "--out data/results lies inside --data data"),
    ("data", {"--data": "data"}, "--out data lies inside --data data"),
    ("all", {"--data": "all/data"}, "--data all/data lies inside --out all"),
])
def test_an_output_and_an_input_must_lie_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str,
                                               inputs: dict[str, str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        check_apart(out, "--out", inputs)
    check_apart("elsewhere", "--out", inputs)  # beside it is fine


def test_working_folders_are_removed_only_when_marked_as_spacetorchs(tmp_path: Path) -> None:
    from spacetorch._files import OWN_MARKER, own_folder, remove_own_folder

    ours = own_folder(tmp_path / "run.resume", "resume folder")
    (ours / "state.npz").write_bytes(b"x")
    assert own_folder(ours, "resume folder") == ours, "taken again as it is"
    remove_own_folder(ours)
    assert not ours.exists()
    users = tmp_path / "users.resume"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not a resume folder spacetorch made"):
        own_folder(users, "resume folder")
    with pytest.raises(FileExistsError, match=f"no {OWN_MARKER} in it"):
        remove_own_folder(users)
    assert (users / "notes.txt").read_text() == "mine"
    remove_own_folder(tmp_path / "missing")  # nothing to do


def test_a_moved_file_never_lands_on_another(tmp_path: Path) -> None:
    from spacetorch._files import move_file

    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "x.jpg").write_text("bad image")
    (tmp_path / "root" / "a" / "y.jpg").write_text("bad image 2")
    (tmp_path / "aside" / "a").mkdir(parents=True)
    (tmp_path / "aside" / "a" / "y.jpg").write_text("the user's")
    assert move_file(tmp_path / "root" / "a" / "x.jpg", tmp_path / "root", tmp_path / "aside") == tmp_path / "aside" / "a" / "x.jpg"
    with pytest.raises(FileExistsError):
        move_file(tmp_path / "root" / "a" / "y.jpg", tmp_path / "root", tmp_path / "aside")
    assert (tmp_path / "aside" / "a" / "y.jpg").read_text() == "the user's"
    assert (tmp_path / "root" / "a" / "y.jpg").exists()
    with pytest.raises(ValueError, match="is not under"):
        move_file(tmp_path / "elsewhere.jpg", tmp_path / "root", tmp_path / "aside")


def test_an_output_is_locked_while_a_command_writes_it(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from spacetorch._files import OutputBusy, lock_output, release_locks

    out = tmp_path / "out"
    lock = lock_output(out)
    assert lock == tmp_path / ".out.lock" and lock.read_text() == f"{os.getpid()}@{socket.gethostname()}"
    assert lock_output(out) == lock, "taken again by the same process"
    release_locks()
    assert not lock.exists()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{other.pid}@{socket.gethostname()}")  # held by another running process
        with pytest.raises(OutputBusy, match=rf"is being written by another spacetorch command \(process {other.pid} on"):
            lock_output(out)
        assert lock.read_text() == f"{other.pid}@{socket.gethostname()}", "left as it was"
    finally:
        other.kill()
        other.wait()
    assert lock_output(out) == lock, "a lock of a process that no longer runs is taken over"
    release_locks()
    assert not lock.exists()
    assert lock_output(tmp_path / "missing" / "out") is None, "no folder to hold a lock yet"


def test_a_second_command_on_the_same_output_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    """The lock through a whole command (check-images --move-to): refused while another process
    holds it, and gone once the command that took it returns."""
    import socket
    import subprocess
    import sys

    from PIL import Image

    from spacetorch.cli.main import main

    (tmp_path / "images" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a" / "x.png")
    aside, lock = tmp_path / "aside", tmp_path / ".aside.lock"
    argv = ["check-images", str(tmp_path / "images"), "--move-to", str(aside), "--quiet", "--workers", "1"]
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{other.pid}@{socket.gethostname()}")
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err == (f"spacetorch check-images: error: --move-to {aside} is being written by another spacetorch command "
                       f"(process {other.pid} on {socket.gethostname()}); wait for it to finish, or delete {lock} if that "
                       "process no longer runs\n")
    finally:
        other.kill()
        other.wait()
    assert main(argv) == 0, "the dead process's lock is taken over"
    assert not lock.exists(), "released when the command returned"


def test_the_lock_of_a_folder_named_dot_is_beside_it_and_released_by_the_command(tmp_path: Path, monkeypatch) -> None:
    from spacetorch._files import _LOCKS, lock_output, release_locks

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    lock = lock_output(".")
    assert lock == tmp_path / ".work.lock" and lock.is_file()
    release_locks()
    assert not lock.exists() and not _LOCKS


def test_a_command_called_from_python_releases_its_locks_when_it_returns(tmp_path: Path) -> None:
    from spacetorch.cli.make_demo_dataset import main

    assert main(["--out", str(tmp_path / "images"), "--n-train", "12", "--n-val", "0", "--size", "16", "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"], "no .images.lock left beside it"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_entries_output_writes_only_its_entries_inside_itself_and_records_them_with_their_settings(tmp_path: Path) -> None:
    import json

    from spacetorch._files import Output, OutputError, release_locks

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    try:
        output = Output(out, entries=["results.json", "cams"], settings={"command": "x", "seed": 3}).open()
        output.write_text("results.json", "{}")
        output.write_text("cams/a.png", "png")
        for escape in ("../elsewhere.txt", "/etc/passwd", "cams/../../x"):
            with pytest.raises(ValueError, match="relative path inside the output"):
                output.path(escape)
        with pytest.raises(ValueError, match="not one of the entries"):
            output.path("notes.txt")
        record = json.loads((out / RESULTS_RECORD).read_text())
        assert record["written"] == ["cams", "results.json"]
        assert record["settings"]["results.json"] == {"command": "x", "seed": 3}
        assert (out / "notes.txt").read_text() == "the user's"
        release_locks()
        Output(out, entries=["results.json", "cams"]).open()  # its own entries: replaced by a rerun
        release_locks()
        (out / "results.csv").write_text("the user's")
        before = _snapshot(out)
        with pytest.raises(OutputError, match=r"^--out .* already holds results.csv, which spacetorch did not write"):
            Output(out, entries=["results.json", "results.csv"]).open()
        assert _snapshot(out) == before
    finally:
        release_locks()


def test_a_whole_output_replaces_only_a_folder_it_wrote_and_only_when_asked(tmp_path: Path) -> None:
    from spacetorch._files import Output, OutputError, release_locks

    def whole(overwrite: bool) -> Output:
        return Output(tmp_path / "panels", what="panels folder", manifest="panels.json", overwrite=overwrite,
                      ours=lambda name: name.endswith(".png"))

    try:
        with whole(False).open().build() as partial:
            assert partial.parent == tmp_path and partial.name.startswith(".panels.")
            (partial / "panels.json").write_text("{}")
            (partial / "a.png").write_text("png")
        assert sorted(p.name for p in (tmp_path / "panels").iterdir()) == ["a.png", "panels.json"]
        release_locks()
        with pytest.raises(OutputError, match="exists; choose another folder or pass --overwrite"):
            whole(False).open()
        output = whole(True).open()
        with pytest.raises(RuntimeError, match="stopped"), output.build() as partial:
            (partial / "b.png").write_text("png")
            raise RuntimeError("stopped")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".panels.lock", "panels"], "the partial is gone"
        assert sorted(p.name for p in (tmp_path / "panels").iterdir()) == ["a.png", "panels.json"]
        release_locks()
        (tmp_path / "panels" / "mine.txt").write_text("the user's")
        before = _snapshot(tmp_path / "panels")
        with pytest.raises(OutputError, match=r"^--out .*panels holds files that are not part of a panels folder \(mine.txt\)"):
            whole(True).open()
        assert _snapshot(tmp_path / "panels") == before
    finally:
        release_locks()


def test_a_file_output_is_one_file_apart_from_the_inputs(tmp_path: Path) -> None:
    from spacetorch._files import Output, OutputError, release_locks

    (tmp_path / "set").mkdir()
    try:
        with pytest.raises(OutputError, match="is a folder; name a file"):
            Output(tmp_path / "set", "--figure", file=True).open()
        with pytest.raises(OutputError, match="--figure .* lies inside --positions"):
            Output(tmp_path / "set" / "a.png", "--figure", file=True, inputs={"--positions": tmp_path / "set"}).open()
        output = Output(tmp_path / "a.json", "--json", file=True, inputs={"--positions": None}).open()
        output.write_text("", "{}")
        assert (tmp_path / "a.json").read_text() == "{}"
        with pytest.raises(ValueError, match="is one file"):
            output.path("b.json")
    finally:
        release_locks()


def test_a_file_output_never_lands_in_a_folder_spacetorch_writes_whole_nor_on_a_run_or_result_file(tmp_path: Path) -> None:
    from spacetorch._files import (
        OWN_MARKER,
        RUN_MARK,
        WHOLE_FOLDER_MARKS,
        Output,
        OutputError,
        record_results,
        release_locks,
    )

    for mark, what in WHOLE_FOLDER_MARKS.items():
        folder = tmp_path / mark.strip(".")
        folder.mkdir()
        (folder / mark).write_text("{}")
        with pytest.raises(OutputError, match=f"^--figure {folder / 'a.png'} lies in a {what} spacetorch wrote"):
            Output(folder / "a.png", "--figure", file=True).open()
        assert sorted(p.name for p in folder.iterdir()) == [mark]
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_MARK).write_text("config: {}")
    (run / "metrics.json").write_text("{}")
    with pytest.raises(OutputError, match="is a file of the training run"):
        Output(run / "metrics.json", "--json", file=True).open()
    Output(run / "curves.json", "--json", file=True).open()  # a new file beside the run's is fine
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("{}")
    record_results(results, ["results.json"])
    with pytest.raises(OutputError, match="is a result another spacetorch command wrote there"):
        Output(results / "results.json", "--json", file=True).open()
    release_locks()
    assert OWN_MARKER in WHOLE_FOLDER_MARKS


def test_the_folder_marks_are_the_writers_own() -> None:
    from spacetorch import panels
    from spacetorch._files import WHOLE_FOLDER_MARKS
    from spacetorch.data import corruptions
    from spacetorch.models.positions import layer_positions

    assert {layer_positions.MANIFEST, panels.MANIFEST, corruptions.MANIFEST} <= WHOLE_FOLDER_MARKS.keys()
