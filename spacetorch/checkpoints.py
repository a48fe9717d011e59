"""Earlier name of :mod:`spacetorch.models.checkpoints` (loading trunks and classifiers from
VISSL and original TDANN checkpoints), kept so that existing code keeps working."""

from spacetorch.models.checkpoints import *  # noqa: F403
from spacetorch.models.checkpoints import __all__  # noqa: F401
