"""spacetorch: topographic deep neural networks (TDANN) in PyTorch.

Every unit of a network layer has a position on a simulated cortical sheet; a spatial
loss makes nearby units respond alike.  See Margalit et al., "A unifying framework for
functional organization in early and higher ventral visual cortex", Neuron (2024).
"""

import sys as _sys

__version__ = "0.1.0"


def _register_families() -> None:
    """Register the model families (in spacetorch's registry and timm's), unless they are being
    imported already: they register themselves as they load."""
    if not any(name.startswith("spacetorch.models.families") for name in _sys.modules):
        from spacetorch.models.registry import _load_families

        _load_families()


class _WhenTimmLoads:
    """A finder (``sys.meta_path`` entry) that finds nothing itself: when ``timm`` is first
    imported, it hands over timm's own spec with a loader that registers the families once timm
    has loaded, then steps aside.  (No import of ``importlib.abc`` here: ``import spacetorch``,
    the first thing ``python -m spacetorch`` does, stays as short as it can be.)"""

    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name != "timm":
            return None
        import importlib.util as _util

        if self in _sys.meta_path:
            _sys.meta_path.remove(self)
        spec = _util.find_spec(name)  # the finders that really find timm
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_timm = loader.exec_module

        def exec_module(module):  # type: ignore[no-untyped-def]
            exec_timm(module)
            _register_families()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


# `timm.create_model("tdresnet50")` works after `import spacetorch` and `import timm`, in either
# order.  With timm loaded, registering the families costs little, so it happens now or as timm
# loads; until then `import spacetorch` stays free of torch (`spacetorch --help` and the other
# light commands).  `import spacetorch.models` (or any use of the registry) registers them too.
if "timm" in _sys.modules:
    _register_families()
elif not any(isinstance(finder, _WhenTimmLoads) for finder in _sys.meta_path):
    _sys.meta_path.insert(0, _WhenTimmLoads())
