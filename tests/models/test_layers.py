import pytest

from spacetorch.models.layers import layer_for_key, vissl_key


def test_vissl_keys_replace_dots_and_map_back_to_their_layer():
    layers = ["layer1.0", "layer2.1", "stages.0.blocks.2"]
    assert [vissl_key(n) for n in layers] == ["layer1_0", "layer2_1", "stages_0_blocks_2"]
    for name in layers:
        assert layer_for_key(vissl_key(name), layers) == name


def test_unknown_key_names_the_known_keys():
    with pytest.raises(KeyError, match=r"'layer9_0'.*\['layer1_0'\]"):
        layer_for_key("layer9_0", ["layer1.0"])
