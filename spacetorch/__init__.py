"""spacetorch: topographic deep neural networks (TDANN) in PyTorch.

Every unit of a network layer has a position on a simulated cortical sheet; a spatial
loss makes nearby units respond alike.  See Margalit et al., "A unifying framework for
functional organization in early and higher ventral visual cortex", Neuron (2024).
"""

__version__ = "0.1.0"
