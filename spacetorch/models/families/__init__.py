"""The model families shipped with spacetorch, one module (or package) each; importing this
package registers every one of their models (:mod:`spacetorch.models.registry`).

* :mod:`.resnet`: the TDANN ResNets (torchvision's ResNets, ResNeXts and wide ResNets);
* :mod:`.tdam`: top-down attention (TDAM, Jaiswal et al. 2022) ResNets and ConvNeXt, with the
  attention module and TD blocks in :mod:`.tdam.blocks`;
* :mod:`.v1`: V1-constrained ResNets (Pogoncheff et al. 2023), with their front-end modules;
* :mod:`.coarse_to_fine`: coarse-to-fine Top-Down Networks (Lelekas et al. 2020) and their
  bottom-up twins;
* :mod:`.vit`: timm's vision transformers (ViT, DeiT), every block's patch tokens on a sheet.

Families with weights released by other projects register those layouts with
:mod:`spacetorch.models.weight_layouts` (``tdam.authors``, ``v1.authors``).
"""

from spacetorch.models.families import coarse_to_fine, resnet, vit
from spacetorch.models.families.tdam import authors as tdam_authors
from spacetorch.models.families.tdam import convnext as tdam_convnext
from spacetorch.models.families.tdam import resnet as tdam_resnet
from spacetorch.models.families.v1 import authors as v1_authors
from spacetorch.models.families.v1 import resnet as v1_resnet

__all__ = ["coarse_to_fine", "resnet", "tdam_authors", "tdam_convnext", "tdam_resnet", "v1_authors", "v1_resnet", "vit"]
