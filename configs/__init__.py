"""spacetorch's VISSL configs.

A package named ``configs`` on the path ahead of site-packages takes the place of the one
VISSL installs, so Hydra (``config=<name>``) and VISSL's dataset catalog read the files in
``configs/config/``.  ``train.py`` lives beside this folder, which puts it first on the path.
"""
