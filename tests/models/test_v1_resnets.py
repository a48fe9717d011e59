"""The V1 ResNet-50 family: each variant's composition (the paper's table), per-instance settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spacetorch.models import create_model, list_models, model_info
from spacetorch.models.families.v1 import (
    CenterSurround,
    LocallyConnected2d,
    PolarTransform,
    StandardDivisiveNorm,
    TunedDivisiveNorm,
)
from spacetorch.models.families.v1.resnet import V1Components, V1ResNet

#: letter -> (DoG, LC, tuned DN, polar), as in the paper
TABLE = {
    "a": (True, True, True, True),
    "b": (False, True, True, True),
    "c": (True, True, False, True),
    "d": (True, True, True, False),
    "e": (False, False, True, True),
    "f": (False, True, False, True),
    "g": (False, True, True, False),
}


def _composition(model: nn.Module) -> tuple[bool, bool, bool, bool]:
    layer1 = model.layer1
    dog = [any(isinstance(m, CenterSurround) for m in layer1[i].conv2.modules()) for i in range(3)]
    assert dog in ([True, True, False], [False, False, False])
    lc = any(isinstance(m, LocallyConnected2d) for m in layer1[2].conv2.modules())
    assert not any(isinstance(m, LocallyConnected2d) for i in (0, 1) for m in layer1[i].modules())
    tuned = [isinstance(layer1[i].post_norm, TunedDivisiveNorm) for i in range(3)]
    assert len(set(tuned)) == 1  # every layer1 block or none
    polar = isinstance(model.maxpool, PolarTransform)
    assert polar or isinstance(model.maxpool, nn.MaxPool2d)
    return dog[0], lc, tuned[0], polar


@pytest.mark.parametrize("letter", sorted(TABLE))
def test_every_composite_variant_has_the_components_of_the_table(letter: str) -> None:
    model = create_model(f"v1_resnet50_{letter}")
    assert _composition(model) == TABLE[letter]
    assert not any(isinstance(m, StandardDivisiveNorm) for m in model.modules())


def test_single_component_models_have_one_component_each() -> None:
    expected = {
        "center_surround": (True, False, False, False),
        "local_rf": (False, True, False, False),
        "tuned_dn": (False, False, True, False),
        "cortical_magnification": (False, False, False, True),
        "standard_dn": (False, False, False, False),
    }
    for name, composition in expected.items():
        model = create_model(f"v1_resnet50_{name}")
        assert _composition(model) == composition, name
    standard = create_model("v1_resnet50_standard_dn")
    assert all(isinstance(standard.layer1[i].post_norm, StandardDivisiveNorm) for i in range(3))


def test_building_several_variants_in_one_process_keeps_each_ones_settings() -> None:
    first, second, third = create_model("v1_resnet50_a"), create_model("v1_resnet50_g"), create_model("v1_resnet50_a")
    assert _composition(first) == _composition(third) == TABLE["a"] and _composition(second) == TABLE["g"]
    mine = V1ResNet(V1Components(local_rf=True, local_rf_dropout=0.5), num_classes=200)
    assert isinstance(mine.layer1[2].conv2[0], nn.Dropout2d) and mine.fc.out_features == 200
    assert not isinstance(create_model("v1_resnet50_f").layer1[2].conv2[0], nn.Dropout2d)


def test_the_family_is_registered_at_64_px_with_its_normalisation() -> None:
    names = list_models("v1_resnet50_*")
    assert len(names) == 12
    info = model_info("v1_resnet50_a")
    assert info.input_size == 64 and info.mean == (0.5, 0.5, 0.5) and info.std == (0.5, 0.5, 0.5)
    assert tuple(create_model("v1_resnet50_a", num_classes=10)(torch.randn(1, 3, 64, 64)).shape) == (1, 10)


def test_bad_components_are_named() -> None:
    with pytest.raises(ValueError, match=r"divisive_norm='opponent' is not valid; choose one of 'none', 'tuned', 'standard'"):
        V1Components(divisive_norm="opponent")
    with pytest.raises(ValueError, match=r"LocallyConnected2d was built for input \(B, 64, 16, 16\), got \(1, 64, 32, 32\)"):
        create_model("v1_resnet50_local_rf")(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError, match=r"PolarTransform was built for \(B, C, 32, 32\) maps, got \(1, 64, 64, 64\)"):
        create_model("v1_resnet50_f")(torch.randn(1, 3, 128, 128))
