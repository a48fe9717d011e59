"""spacetorch som: both baselines end in the same panels as a network, from settings or features files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spacetorch.cli.main import main
from spacetorch.features import Features


def _features(path: Path, labels: np.ndarray, centres: np.ndarray, names: list[str], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    responses = (centres[labels] + rng.normal(0, 1, (len(labels), centres.shape[1]))).astype(np.float32)
    return Features(responses={"layer4.1": responses}, coordinates={"layer4.1": rng.uniform(0, 70, (centres.shape[1], 2))},
                    dims={"layer4.1": (centres.shape[1], 1, 1)}, labels=labels, label_names=names,
                    info={"arch": "resnet18"}).save(path)  # fmt: skip


def test_both_baselines_write_their_panels(tmp_path: Path) -> None:
    assert main(["som", "v1", "--edge", "16", "--iterations", "3000", "--samples", "500", "--out", str(tmp_path / "v1")]) == 0
    record = json.loads((tmp_path / "v1" / "panels.json").read_text())
    assert record["som"] == "v1" and record["panels"][0]["figures"] == ["v1_map.png", "v1_tuning.png"]
    assert record["panels"][0]["map_smoothness"] > record["panels"][0]["map_shuffled_smoothness"]
    centres = np.random.default_rng(0).normal(0, 3, (3, 30))
    train = _features(tmp_path / "train.h5", np.repeat(np.arange(3), 40), centres, ["a", "b", "c"], 1)
    floc = _features(tmp_path / "floc.npz", np.repeat(np.arange(3), 6), centres, ["faces", "bodies", "places"], 2)
    assert main(["som", "vtc", "--train-features", str(train), "--categories-features", str(floc), "--layer", "layer4.1",
                 "--components", "8", "--edge", "12", "--iterations", "3000", "--out", str(tmp_path / "vtc")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "vtc" / "panels.json").read_text())
    assert set(record["panels"][0]["patches"]) == {"faces", "bodies", "places"}
    assert (tmp_path / "vtc" / "categories.png").stat().st_size > 1000


def test_bad_input_is_named(tmp_path: Path, capsys) -> None:
    for argv, message in [
        (["v1", "--edge", "1", "--out", str(tmp_path / "o")], "argument --edge: expected 2 to 1,024 nodes, got 1"),
        (["vtc", "--train-features", str(tmp_path / "none.h5"), "--categories-features", str(tmp_path / "none.h5"),
          "--layer", "layer4.1", "--out", str(tmp_path / "o")], "none.h5: no such features file"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["som", *argv])
        assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
