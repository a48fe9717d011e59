"""Fixtures for the VISSL tests: a small position set and image set, and a train.py runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import spacetorch.vissl  # noqa: F401  (registers with VISSL)
from spacetorch.data import make_demo_image_folder
from spacetorch.models.positions import NetworkPositions

from train_helpers import IMAGE_SIZE


@pytest.fixture(autouse=True, scope="session")
def _vissl_on_cpu() -> None:
    """In-process VISSL objects run on the CPU, as in a rank of a cpu config."""
    from classy_vision.generic.distributed_util import set_cpu_device

    set_cpu_device()


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Composing a config makes VISSL write CHECKPOINT.DIR/train_config.yaml: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def small_positions(small_model_files: tuple[Path, Path]) -> Path:
    """ResNet-18 retinotopic positions for 64 px input (layer4 is 512 x 2 x 2); read-only."""
    positions = small_model_files[1]
    # made in tests/conftest.py: the same image size as these runs
    assert NetworkPositions.load_from_dir(positions)["layer2.0"].dims == (128, IMAGE_SIZE // 8, IMAGE_SIZE // 8)
    return positions


@pytest.fixture(scope="session")
def small_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageFolder of 48 train / 12 val crops of scikit-image's photographs, 72 px."""
    return make_demo_image_folder(tmp_path_factory.mktemp("images") / "demo", n_train=48, n_val=12, size=72)


@pytest.fixture
def one_process_group(tmp_path: Path) -> Iterator[None]:
    """A gloo process group of one process, as a CPU run has (DINO's loss all-reduces its centre)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
