"""What `import spacetorch` does in a fresh interpreter: registers the families with timm when timm
is loaded, before or after it (the README's line), and stays free of torch otherwise (fast commands)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a fresh interpreter importing torch and timm
def test_timm_builds_a_family_model_right_after_import_timm_spacetorch() -> None:
    done = _python("import timm, spacetorch; m = timm.create_model('tdresnet18', num_classes=3); "
                   "print(type(m).__name__, m.fc.out_features)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["TDResNet", "3"]


@pytest.mark.slow  # fresh interpreters importing torch and timm
def test_timm_builds_a_family_model_when_imported_after_spacetorch() -> None:
    """`import spacetorch` then `import timm` registers the families as timm loads; a family
    module imported directly, which imports timm as it loads, is not disturbed."""
    done = _python("import spacetorch; import timm; print(type(timm.create_model('tdresnet18', num_classes=3)).__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["TDResNet"]
    done = _python("import spacetorch; from spacetorch.models.families.tdam.convnext import tdconvnext_tiny; import timm; "
                   "print(type(timm.create_model('v1_resnet50_local_rf', num_classes=3)).__name__)")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["V1ResNet"]


def test_import_spacetorch_alone_loads_no_torch() -> None:
    done = _python("import sys, spacetorch; print('torch' in sys.modules, 'timm' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
