"""Training curves from a run folder's TensorBoard events and stdout.json, and the command over them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from spacetorch.runs import read_curves


def _run(folder: Path, steps: range, *, start_file: int = 0) -> None:
    writer = SummaryWriter(str(folder / "tb_logs" / f"part{start_file}"))
    for step in steps:
        writer.add_scalar("Task_Loss", 10.0 / (step + 1), global_step=step)
        writer.add_scalar("Spatial_Loss/layer2_0", 0.5 - step / 1000, global_step=step)
        writer.add_scalar("Learning_Rate", 0.1, global_step=step)  # not a curve of ours
    writer.close()


def test_the_curves_are_the_logged_values_also_across_a_resume(tmp_path: Path) -> None:
    _run(tmp_path, range(0, 50, 5))
    _run(tmp_path, range(50, 80, 5), start_file=1)  # resumed: a second events file
    (tmp_path / "stdout.json").write_text(
        "\n".join(json.dumps({"iter": i, "loss": 1.0 + i}) for i in (0, 10, 20)) + '\n{"iter": 30, "lo'  # a line being written
    )
    curves = read_curves(tmp_path, "alpha 2.5")
    assert curves.run == "alpha 2.5" and curves.spatial_layers == ["layer2_0"]
    assert set(curves.series) == {"Task_Loss", "Spatial_Loss/layer2_0", "Total_Loss"}
    steps, values = curves.series["Task_Loss"]
    np.testing.assert_array_equal(steps, np.arange(0, 80, 5))
    np.testing.assert_allclose(values, 10.0 / (steps + 1), rtol=1e-6)
    np.testing.assert_array_equal(curves.series["Total_Loss"][1], [1.0, 11.0, 21.0])
    assert curves.last()["Spatial_Loss/layer2_0"] == pytest.approx(0.5 - 75 / 1000)


def test_the_command_overlays_runs_and_names_a_folder_without_curves(tmp_path: Path, capsys) -> None:
    from spacetorch.cli.main import main

    for name in ("a", "b"):
        _run(tmp_path / name, range(0, 30, 10))
    assert main(["training-curves", str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "alpha 0", "alpha 15",
                 "--out", str(tmp_path / "c.png"), "--json", str(tmp_path / "c.json")]) == 0  # fmt: skip
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert set(json.loads((tmp_path / "c.json").read_text())) == {"alpha 0", "alpha 15"}
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "metrics.json").write_text("the run's record")
    for argv, message in [
        ([str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")], "empty: no training curve"),
        ([str(tmp_path / "a"), "--labels", "x", "y", "--out", str(tmp_path / "x.png")], "--labels: 2 labels for 1 runs"),
        ([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")], "nowhere: no such run folder"),
        ([str(tmp_path / "a"), "--out", str(tmp_path / "x.png"), "--json", str(tmp_path / "a" / "metrics.json")],
         f"--json {tmp_path / 'a' / 'metrics.json'} is a file of the run {tmp_path / 'a'}; it is left as it is"),
        ([str(tmp_path / "a"), "--out", str(tmp_path / "x.png"), "--json", str(tmp_path / "x.txt")], "expected a .json file"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["training-curves", *argv])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert (tmp_path / "a" / "metrics.json").read_text() == "the run's record"
