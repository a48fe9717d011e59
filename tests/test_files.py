"""spacetorch._files: the checks every command makes on its outputs before any work."""

from __future__ import annotations

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
