"""spacetorch: topographic deep neural networks (TDANN) in PyTorch."""

import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("spacetorch/__init__.py").read_text()).group(1)

setup(
    name="spacetorch",
    version=version,
    description="Topographic deep neural networks (TDANN): unit positions, the spatial loss and VISSL training",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # the VISSL configs: configs/config/ in the checkout, shipped inside the package as
    # spacetorch/configs/config/ so that an installed spacetorch trains wherever it runs
    packages=[*find_packages(include=["spacetorch", "spacetorch.*"]), "spacetorch.configs.config"],
    package_dir={"spacetorch.configs.config": "configs/config"},
    package_data={"spacetorch.configs.config": ["*.yaml", "*.json", "_base/*.yaml"]},
    # ranges, so the package also installs beside an existing torch on a GPU machine;
    # the tested versions are pinned in requirements/constraints.txt
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "numpy>=1.24",
        "scipy>=1.10",
        "numba>=0.59",  # compiled neighborhood sampling
        "threadpoolctl>=3.1",  # swapopt runs its BLAS products on one thread beside numba's
        "tqdm>=4.60",
        "pillow>=9",
        # training with VISSL; vissl==0.1.6 and classy-vision==0.7.0 themselves pin
        # Python-3.8-era packages, so they are installed with --no-deps (see the Makefile)
        "fvcore>=0.1.5",
        "iopath>=0.1.9",
        "hydra-core>=1.3,<1.4",
        "omegaconf>=2.3,<2.4",
        "tabulate",
        "tensorboard>=2.10",
        "setuptools<81",  # vissl.utils.misc imports pkg_resources (removed in setuptools 81)
        # the embedded demo trains on photographs shipped inside scikit-image
        "scikit-image>=0.21",
        # pictures of cortical maps
        "matplotlib>=3.7",
        # model families register with timm's registry too (timm.create_model works for them)
        "timm>=1.0",
        # corrupted image sets (ImageNet-C's corruptions): imagecorruptions==1.1.2 goes in with
        # --no-deps, as it asks for the GUI build of OpenCV, and this headless one serves it
        "opencv-python-headless>=4.5",
        # Grad-CAM maps; adversarial attacks come from torchattacks==3.5.1, installed with
        # --no-deps as it pins requests~=2.25, which it does not import
        "grad-cam>=1.5",
        # the paper's analyses: k-means fibres (wiring length), features on disk, the VTC SOM baseline
        "scikit-learn>=1.2",
        "h5py>=3.8",
        "minisom>=2.3",
        # train.py --slurm: one task per node through submitit (VISSL's own SLURM path uses it too)
        "submitit>=1.4",
    ],
    # the tests also run demo.ipynb top to bottom and build the documentation site (make docs)
    extras_require={
        "test": [
            "pytest>=8", "mypy>=1.10", "ruff>=0.15", "nbclient>=0.8", "nbformat>=5.7", "ipykernel>=6.20",
            "mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26",
        ]
    },
    entry_points={
        "console_scripts": [
            "spacetorch=spacetorch.__main__:entry",
        ]
    },
)
