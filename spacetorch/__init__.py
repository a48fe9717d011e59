"""spacetorch: topographic deep neural networks (TDANN) in PyTorch.

Every unit of a network layer has a position on a simulated cortical sheet; a spatial
loss makes nearby units respond alike.  See Margalit et al., "A unifying framework for
functional organization in early and higher ventral visual cortex", Neuron (2024).
"""

import sys as _sys

__version__ = "0.1.0"

# `import timm, spacetorch`: with torch and timm already loaded, registering the model families
# (in spacetorch's registry and timm's) costs little, so timm.create_model("tdresnet50") works
# at once.  Otherwise the families register on `import spacetorch.models` (or any use of the
# registry), which keeps `spacetorch --help` and the other light commands free of torch.
if "timm" in _sys.modules:
    from spacetorch.models.registry import _load_families

    _load_families()
