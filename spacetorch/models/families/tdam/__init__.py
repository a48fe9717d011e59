"""Top-down attention models (TDAM, Jaiswal et al., ECCV 2022): the attention module and TD
blocks (:mod:`.blocks`), the TD ResNets (:mod:`.resnet`) and the TD ConvNeXt (:mod:`.convnext`)."""
