"""The model registry: names, builders, facts, timm's registry."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from spacetorch.models import create_model, list_models, model_info, register_model, stage_areas
from spacetorch.models.registry import RESNET_AREAS, UnknownModelError


def test_resnets_are_torchvision_models_with_their_facts() -> None:
    assert {"resnet18", "resnet50", "resnet152", "wide_resnet50_2", "resnext50_32x4d"} <= set(list_models())
    model = create_model("resnet50")
    assert type(model) is torchvision.models.ResNet
    assert set(model.state_dict()) == set(torchvision.models.resnet50().state_dict())
    info = model_info("resnet18")
    assert info.layer_names(create_model("resnet18")) == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    assert info.input_size == 224 and info.classifier == "fc"


def test_headless_models_return_pooled_features_and_kwargs_reach_the_builder() -> None:
    assert isinstance(create_model("resnet18", headless=True).fc, nn.Identity)
    assert create_model("resnet18", num_classes=7).fc.out_features == 7
    out = create_model("resnet18", headless=True)(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 512)


def test_list_models_filters_by_pattern() -> None:
    assert list_models("resnet1*") == ["resnet101", "resnet152", "resnet18"]
    assert list_models("no_such_*") == []


def test_unknown_names_list_the_close_matches() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'resnet19'; did you mean resnet18") as err:
        create_model("resnet19")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    with pytest.raises(UnknownModelError, match=r"unknown model 'vgg16' \(spacetorch.models.list_models\(\)"):
        model_info("vgg16")


def test_the_tdann_resnet_area_map() -> None:
    names = [f"layer{s}.{b}" for s, n in zip(range(1, 5), (3, 4, 23, 3), strict=False) for b in range(n)]  # ResNet-101
    areas = RESNET_AREAS(names)
    assert [areas[f"layer1.{b}"] for b in range(3)] == ["retina"] * 3
    assert {areas[f"layer2.{b}"] for b in range(4)} == {"V1"} and {areas[f"layer4.{b}"] for b in range(3)} == {"VTC"}
    # the first max(n // 2, 1) blocks of layer3 are V2, the rest V4 (n = 23: 11 and 12)
    assert [areas[f"layer3.{b}"] for b in range(23)] == ["V2"] * 11 + ["V4"] * 12
    assert RESNET_AREAS(["layer3.0"]) == {"layer3.0": "V2"}


def test_stage_areas_split_in_three_and_refuse_an_unknown_stage() -> None:
    areas = stage_areas({"s": ("a", "b", "c")}, stage_of=r"(s)\d")
    assert list(areas([f"s{i}" for i in range(6)]).values()) == ["a", "a", "b", "b", "c", "c"]
    with pytest.raises(ValueError, match=r"layer 'x1' \(stage 'x1'\) has no cortical area"):
        areas(["x1"])


def _tiny(**kwargs: object) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def test_a_name_cannot_be_taken_by_another_builder() -> None:
    register_model(_tiny, name="registry_test_tiny", layers=r"0", areas=stage_areas({"0": "V1"}), classifier="3", timm=False)
    register_model(_tiny, name="registry_test_tiny", layers=r"0", areas=stage_areas({"0": "V1"}), classifier="3", timm=False)

    def other(**kwargs: object) -> nn.Module:
        return _tiny()

    with pytest.raises(ValueError, match="'registry_test_tiny' is already registered by .*_tiny; choose another name"):
        register_model(other, name="registry_test_tiny", timm=False)
    assert isinstance(create_model("registry_test_tiny", headless=True)[3], nn.Identity)


def test_models_registered_for_timm_are_created_by_timm_and_timms_own_stay_its_own() -> None:
    import timm

    @register_model(layers=r"0", areas=stage_areas({"0": "V1"}), classifier="3")
    def registry_test_timm_model(**kwargs: object) -> nn.Module:
        """A tiny test model."""
        return _tiny()

    assert "registry_test_timm_model" in timm.list_models("registry_test_*")
    model = timm.create_model("registry_test_timm_model")
    assert isinstance(model, nn.Sequential) and model[0].out_channels == 4
    with pytest.raises(ValueError, match="no downloadable weights"):
        timm.create_model("registry_test_timm_model", pretrained=True)
    # spacetorch's resnet18 (torchvision's) does not replace timm's
    assert type(timm.create_model("resnet18")).__module__.startswith("timm.")
