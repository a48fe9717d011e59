"""spacetorch: topographic deep neural networks (TDANN) in PyTorch."""

import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("spacetorch/__init__.py").read_text()).group(1)

setup(
    name="spacetorch",
    version=version,
    description="Topographic deep neural networks: unit positions on a cortical sheet and the spatial loss",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["spacetorch", "spacetorch.*"]),
    # ranges, so the package also installs beside an existing torch on a GPU machine;
    # the tested versions are pinned in requirements/constraints.txt
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "numpy>=1.24",
        "scipy>=1.10",
        "tqdm>=4.60",
    ],
    extras_require={"test": ["pytest>=8", "mypy>=1.10"]},
    entry_points={
        "console_scripts": [
            "spacetorch-save-positions=spacetorch.cli.save_retinotopic_positions:main",
        ]
    },
)
