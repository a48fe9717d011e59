#!/usr/bin/env python
"""Parameters and multiply-accumulates of the top-down attention models, against the reported ones.

MACs are fvcore's count for one 224 px image (convolutions, linear layers, batch norms,
matrix products and the adaptive poolings; element-wise operations such as the TDAM's sigmoid
gates and products are not counted).  The reported numbers are those of the original TDAM
repository for ImageNet models.

    python bench/td_model_sizes.py            # the README's table
"""

from __future__ import annotations

import argparse
import platform

import torch
import torchvision
from fvcore.nn import FlopCountAnalysis

from spacetorch.models import create_model

#: (label, builder, reported params M, reported GMACs)
MODELS = [
    ("ResNet-50", lambda: torchvision.models.resnet50(), 25.56, 4.12),
    ("TDAM joint (t2, m1) ResNet-50", lambda: create_model("tdresnet50", time_steps=2, mdist=1), 27.65, 4.59),
    ("TDAM top (t2, m1) ResNet-50", lambda: create_model(
        "tdresnet50", time_steps=2, mdist=1, spotlight_gen_technique="top_attention_only"), 27.06, None),
    ("TDAM joint (t2, m2) ResNet-18", lambda: create_model("tdresnet18", time_steps=2, mdist=2), None, None),
    ("TDAM joint (t2, m2) ResNet-34", lambda: create_model("tdresnet34", time_steps=2, mdist=2), None, None),
    ("TDAM joint (t2, m1) ResNet-101", lambda: create_model("tdresnet101", time_steps=2, mdist=1), None, None),
    ("TDAM joint (t2, m1) ConvNeXt-Tiny", lambda: create_model("tdconvnext_tiny", time_steps=2, mdist=1), None, None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    image = torch.zeros(1, 3, args.image_size, args.image_size)
    print(f"# torch {torch.__version__}, {platform.machine()}, {args.image_size} px, fvcore MACs")
    print("| model | params (M) | reported | GMACs | reported |")
    print("|---|---|---|---|---|")
    for label, build, params_ref, macs_ref in MODELS:
        model = build().eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        counter = FlopCountAnalysis(model, image)
        counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with torch.no_grad():
            gmacs = counter.total() / 1e9
        ref = lambda v, fmt: "" if v is None else format(v, fmt)  # noqa: E731
        print(f"| {label} | {params:.2f} | {ref(params_ref, '.2f')} | {gmacs:.2f} | {ref(macs_ref, '.2f')} |")


if __name__ == "__main__":
    main()
