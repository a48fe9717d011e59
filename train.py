"""Train a topographic network with VISSL: ``python train.py config=<name> --gpus 0,1,2,3``.

``python train.py --help`` lists the options and the shipped configs (``configs/config/``).
"""

# At module level on purpose: spawned ranks and data-loader workers re-import this module,
# and they need spacetorch's VISSL registrations and runtime fixes too.
import spacetorch.vissl  # noqa: F401
from spacetorch.cli._exit import finish
from spacetorch.cli.train import main

if __name__ == "__main__":
    finish(main)
