"""Neuro-constrained front-end modules of the V1 ResNets (Pogoncheff, Granley and Beyeler,
NeurIPS 2023): center-surround (difference-of-Gaussians) convolution, locally connected layer,
divisive normalisation, polar-transform cortical magnification."""

from spacetorch.models.families.v1.center_surround import CenterSurround, DoGConv2d
from spacetorch.models.families.v1.divisive_norm import StandardDivisiveNorm, TunedDivisiveNorm
from spacetorch.models.families.v1.local import LocallyConnected2d
from spacetorch.models.families.v1.polar import PolarTransform

__all__ = [
    "CenterSurround",
    "DoGConv2d",
    "LocallyConnected2d",
    "PolarTransform",
    "StandardDivisiveNorm",
    "TunedDivisiveNorm",
]
