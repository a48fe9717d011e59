import pytest
import torch

from spacetorch.models.layers import (
    block_output_dims,
    module_name,
    residual_block_names,
    torchvision_resnet,
    vissl_key,
)

# tdann.md: ResNet-18 block output dims at 224 px
RESNET18_DIMS = {
    "layer1.0": (64, 56, 56), "layer1.1": (64, 56, 56),
    "layer2.0": (128, 28, 28), "layer2.1": (128, 28, 28),
    "layer3.0": (256, 14, 14), "layer3.1": (256, 14, 14),
    "layer4.0": (512, 7, 7), "layer4.1": (512, 7, 7),
}


def test_key_mapping_round_trips():
    for name in RESNET18_DIMS:
        assert module_name(vissl_key(name)) == name
    assert vissl_key("layer2.0") == "layer2_0"


def test_module_name_rejects_other_keys():
    with pytest.raises(ValueError, match="layer<stage>_<block>"):
        module_name("conv1")


def test_resnet18_blocks_and_dims_match_the_reference():
    with torch.device("meta"):
        model = torchvision_resnet("resnet18")
    names = residual_block_names(model)
    assert names == list(RESNET18_DIMS)
    assert block_output_dims(model, names) == RESNET18_DIMS


def test_block_output_dims_on_a_real_model_keeps_its_mode():
    model = torchvision_resnet("resnet18").train()
    dims = block_output_dims(model, ["layer4.1"], input_size=64)
    assert dims == {"layer4.1": (512, 2, 2)}
    assert model.training


def test_unknown_names_are_reported():
    with pytest.raises(ValueError, match="resnet9000"):
        torchvision_resnet("resnet9000")
    with torch.device("meta"):
        model = torchvision_resnet("resnet18")
    with pytest.raises(ValueError, match="layer9.0"):
        block_output_dims(model, ["layer9.0"])
