"""spacetorch v1-figure: checkpoint + positions -> the V1 figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from spacetorch.cli.v1_figure import main

from model_helpers import SMALL_IMAGE_SIZE, exit_code

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_script_writes_the_figure_and_prints_the_numbers(small_model_files: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, positions = small_model_files
    out = tmp_path / "v1.png"
    result = subprocess.run(
        [sys.executable, "-m", "spacetorch", "v1-figure", "--checkpoint", str(checkpoint), "--positions",
         str(positions), "--image-size", str(SMALL_IMAGE_SIZE), "--spatial-frequencies", "4", "8", "16",
         "--exclude-border", "1", "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "layer2.0:" in result.stdout and "pinwheels" in result.stdout and "smoothness" in result.stdout
    assert Image.open(out).format == "PNG"


def test_help_and_errors(small_model_files: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    result = subprocess.run([sys.executable, "-m", "spacetorch", "v1-figure", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--checkpoint" in result.stdout and "--trust-checkpoint" in result.stdout
    checkpoint, positions = small_model_files
    base = ["--checkpoint", str(checkpoint), "--positions", str(positions), "--out", str(tmp_path / "x.png"), "--quiet"]
    assert exit_code(main, base) == 2  # 224 px gratings for 64 px positions
    assert "layer 'layer2.0' outputs features of shape (C, H, W) = (128, 28, 28)" in capsys.readouterr().err
    assert exit_code(main, base + ["--image-size", "64"]) == 2  # the standard frequencies alias at 64 px
    assert "Nyquist" in capsys.readouterr().err
    assert exit_code(main, ["--checkpoint", str(tmp_path / "none.torch"), "--positions", str(positions)]) == 2
    assert "none.torch does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_border_units_are_left_out_by_default_and_the_counts_are_stated(small_model_files, tmp_path: Path, capsys) -> None:
    checkpoint, positions = small_model_files
    base = ["--checkpoint", str(checkpoint), "--positions", str(positions), "--image-size", str(SMALL_IMAGE_SIZE),
            "--spatial-frequencies", "4", "8", "16", "--out", str(tmp_path / "v1.png"), "--quiet"]
    # layer1.0 at 64 px is 64 x 16 x 16; a unit's receptive field is [4i - 13, 4i + 13] px, so it
    # touches the image border for i <= 3 and i >= 13: 4 rows/columns at the top and left, 3 at the
    # bottom and right, leaving 9 x 9 positions of each channel
    assert main(base + ["--layer", "layer1.0"]) == 0
    out = capsys.readouterr().out
    assert ("layer1.0: 5184 of 16384 units analysed; 11200 left out: receptive field touches the image border "
            "(top/bottom/left/right: 4/3/4/3 rows/columns)") in out
    # a fixed ring: layer2.0 is 128 x 8 x 8, whose outermost ring holds 28 of the 64 positions of each channel
    assert main(base + ["--exclude-border", "1"]) == 0
    assert "layer2.0: 4608 of 8192 units analysed; 3584 left out: in the 1 outermost feature-map rows/columns" in capsys.readouterr().out
    assert main(base + ["--exclude-border", "0"]) == 0
    assert "layer2.0: 8192 of 8192 units analysed\n" in capsys.readouterr().out
    # at 64 px every layer2.0 unit sees the padding: the default says so instead of drawing nothing
    assert exit_code(main, base) == 2
    assert "--exclude-border rf leaves no unit of layer2.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--exclude-border", "ring"])
    assert "expected 'rf' or a number of rows/columns >= 0, got 'ring'" in capsys.readouterr().err
