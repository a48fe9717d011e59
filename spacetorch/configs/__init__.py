"""spacetorch's VISSL configs (``config=<name>`` picks ``CONFIG_DIR/<name>.yaml``).

The files live in the repository's top-level ``configs/config/``, the layout users of the
original TDANN know.  An installed wheel carries them inside this package, as
``spacetorch/configs/config/`` (``setup.py`` maps the folder there); a checkout or an editable
install reads the repository's folder itself.  :func:`spacetorch.vissl.config.compose` puts
:data:`CONFIG_DIR`'s folder on Hydra's search path beside VISSL's own configs, so training finds
them wherever it runs; ``dataset_catalog.json`` there is VISSL's dataset catalog for them.
"""

from pathlib import Path

__all__ = ["CONFIG_DIR"]

_HERE = Path(__file__).resolve().parent

#: the folder of the shipped YAML configs and their dataset catalog
CONFIG_DIR = _HERE / "config" if (_HERE / "config").is_dir() else _HERE.parents[1] / "configs" / "config"
