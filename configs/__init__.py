"""spacetorch's VISSL configs (``configs/config/<name>.yaml``, ``config=<name>``).

They ship inside the installed package as ``spacetorch.configs`` (in a checkout,
``spacetorch/configs`` is a link to this folder), and :func:`spacetorch.vissl.config.compose`
puts that package on Hydra's search path beside VISSL's own configs, so training finds them
wherever it runs.  ``dataset_catalog.json`` here is VISSL's dataset catalog for them.
"""
