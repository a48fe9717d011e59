"""spacetorch's pieces registered with VISSL.

Importing this package applies the runtime fixes VISSL 0.1.6 needs on a modern stack
(:mod:`spacetorch.vissl.compat`) and registers, under the original TDANN names:

* trunks ``spatial_model`` (any registered model, ``TRUNK_PARAMS.model``; see
  ``spacetorch.models.list_models()``), its aliases ``spatial_resnet18``, ``spatial_resnet50``,
  ``spatial_resnet`` (``TRUNK_PARAMS.arch``) and the top-down attention ``spatial_tdresnet18``
  and ``spatial_tdresnet50``, and ``plain_model`` / ``custom_resnet`` (without positions, for
  linear or supervised training; ``TRUNK_PARAMS.model: tdresnet50`` is the plain TD trunk);
* the ``identity`` head, which passes the spatial outputs through to the loss;
* losses ``spatial_correlation_simclr_info_nce_loss``, ``spatial_correlation_dino_loss`` and
  ``cross_entropy_spatial_correlation_loss``;
* the train step ``custom_train_step``;

and imports the user modules named in ``$SPACETORCH_IMPORTS`` (``train.py --import``), which
register a user's own trunks.

It also points VISSL's dataset catalog at the shipped one (``configs/config/dataset_catalog.json``,
which names the demo image set), unless ``$VISSL_DATASET_CATALOG_PATH`` names another.

An entry script must import it at module level, so that spawned ranks and data-loader
workers, which re-import the entry module, see the same registry and fixes.
"""

import os

from spacetorch.configs import CONFIG_DIR

# before VISSL's dataset catalog is imported (it reads the file then); inherited by the ranks
os.environ.setdefault("VISSL_DATASET_CATALOG_PATH", str(CONFIG_DIR / "dataset_catalog.json"))

from spacetorch.vissl import compat  # noqa: E402

compat.apply()

from spacetorch.vissl import registry, train_step  # noqa: E402  (registers on import)
from spacetorch.vissl.registry import (  # noqa: E402
    CrossEntropySpatialCorrelationLoss,
    SpatialCorrelationSimclrInfoNCELoss,
    import_user_modules,
)

import_user_modules()

__all__ = [
    "CrossEntropySpatialCorrelationLoss",
    "SpatialCorrelationSimclrInfoNCELoss",
    "compat",
    "import_user_modules",
    "registry",
    "train_step",
]
