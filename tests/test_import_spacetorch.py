"""What `import spacetorch` does in a fresh interpreter: registers the families with timm when timm
is loaded (the README's line), and stays free of torch otherwise (fast commands)."""

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


def test_import_spacetorch_alone_loads_no_torch() -> None:
    done = _python("import sys, spacetorch; print('torch' in sys.modules, 'timm' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
