"""Runtime fixes for VISSL 0.1.6 on a current PyTorch/Python stack.

Every fix here is small, idempotent and names the symptom it prevents.  :func:`apply` runs at
``import spacetorch.vissl`` (see there); :func:`fix_config` runs on each config ``train.py``
launches.  VISSL's files are never edited.  Fixes that are
install-time choices live in setup.py / the Makefile instead:

* ``setuptools<81``: ``vissl.utils.misc`` imports ``pkg_resources``;
* ``vissl`` and ``classy-vision`` are installed ``--no-deps`` (their pins predate Python 3.10);
* LARC needs NVIDIA apex, so the configs set ``OPTIMIZER.use_larc: false``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Any

from spacetorch._files import publish, temporary_name
from spacetorch.data.image_check import UnreadableImageError  # one error for a damaged image, in training too

_applied = False

#: ``config.DATA.<split>.<key>: true`` trains on without unreadable images (each is named in a warning)
SKIP_UNREADABLE_IMAGES = "SKIP_UNREADABLE_IMAGES"


def apply() -> None:
    """Apply every fix once per process."""
    global _applied
    if _applied:
        return
    _applied = True
    _quiet_import_time_deprecations()
    _quiet_hydra_version_base()
    _atomic_checkpoints()
    _name_unreadable_images()


def _quiet_import_time_deprecations() -> None:
    # Symptom: every process (each rank and data-loader worker) prints deprecation warnings
    # while importing VISSL, about code paths TDANN training never runs:
    # torchvision.transforms._transforms_video and _functional_video (imported by VISSL's
    # transform registry), torch.jit.script (applied at import by fvcore.nn.focal_loss), and
    # pkg_resources (imported by vissl.utils.misc; kept working by the setuptools<81 pin).
    warnings.filterwarnings("ignore", message=r".*torchvision\.transforms\._(transforms|functional)_video.*deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated as an API", category=UserWarning)


def _quiet_hydra_version_base() -> None:
    # Symptom: every config composition prints a multi-line Hydra14MigrationWarning, because
    # vissl.utils.hydra_config calls initialize_config_module() without version_base; the
    # Hydra 1.1 behaviour it then assumes is the one VISSL's configs were written for.
    warnings.filterwarnings("ignore", message=r"(?s).*version_base parameter is not specified")
    # Symptom: outside a checkout, every composition warns "provider=vissl, path=configs is not
    # available": VISSL's search path plugin adds ./configs, which only a checkout has (the
    # shipped configs come from the package spacetorch.configs).
    warnings.filterwarnings("ignore", message=r"provider=vissl, path=configs is not available")


def _atomic_checkpoints() -> None:
    # Symptom: a run killed while VISSL writes model_phaseN.torch leaves a truncated file
    # under the final name; auto-resume then picks it and dies with "PytorchStreamReader
    # failed reading zip archive".  Write under a temporary name (not *.torch, so resume
    # never sees it) and rename: a checkpoint file is complete or absent.
    import vissl.utils.checkpoint as vissl_checkpoint

    original = vissl_checkpoint.save_checkpoint
    if getattr(original, "_spacetorch_atomic", False):
        return

    def save_checkpoint_atomically(checkpoint_folder: str, state: Any, checkpoint_file: str = "checkpoint.torch") -> str:
        # a name train.py removes at its next start if this process is killed while writing
        partial = temporary_name(checkpoint_file)
        try:
            written = original(checkpoint_folder, state, checkpoint_file=partial)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(checkpoint_folder, partial))
            raise
        final = os.path.join(checkpoint_folder, checkpoint_file)
        publish(written, final)
        return final

    save_checkpoint_atomically._spacetorch_atomic = True  # type: ignore[attr-defined]
    vissl_checkpoint.save_checkpoint = save_checkpoint_atomically


def _name_unreadable_images() -> None:
    # Symptom: one truncated or corrupt JPEG in a disk_folder dataset kills training with
    # PIL's "image file is truncated" and a long traceback that never names the file:
    # DiskImageDataset.__getitem__ indexes the ImageFolder (which decodes the image) before
    # its own try block, so VISSL's "Couldn't load" handling never runs.  Raise an error that
    # names the image and the ways out; with DATA.<split>.SKIP_UNREADABLE_IMAGES true, warn
    # naming the image and use the next readable one instead.
    from vissl.data.disk_dataset import DiskImageDataset

    original = DiskImageDataset.__getitem__
    if getattr(original, "_spacetorch_names_images", False):
        return

    def getitem(self: Any, idx: int) -> Any:
        if self.data_source != "disk_folder":
            return original(self, idx)
        skip = bool(self.cfg["DATA"][self.split].get(SKIP_UNREADABLE_IMAGES, False))
        attempts = len(self) if skip else 1
        for offset in range(attempts):
            index = (idx + offset) % len(self)
            try:
                return original(self, index)
            except (OSError, ValueError, SyntaxError) as err:  # PIL's errors for damaged files
                path, root = self.image_dataset.samples[index][0], self.image_dataset.root
                if not skip:
                    raise UnreadableImageError(
                        f"{path}: cannot read this {self.split.lower()} image ({type(err).__name__}: {err}). "
                        f"List every unreadable image with `spacetorch check-images {root}` (add "
                        f"--move-to DIR to set them aside), or train without them, each named in a warning, "
                        f"with ++config.DATA.{self.split}.{SKIP_UNREADABLE_IMAGES}=true"
                    ) from None
                logging.warning(f"skipping unreadable image {path} ({type(err).__name__}: {err})")
        raise UnreadableImageError(f"{self.image_dataset.root}: no image of this folder can be read")

    getitem._spacetorch_names_images = True  # type: ignore[attr-defined]
    DiskImageDataset.__getitem__ = getitem


def fix_config(cfg: Any) -> None:
    """Config-level fixes, applied to a composed config before VISSL launches it."""
    # Symptom: with a relative CHECKPOINT.DIR, VISSL points checkpoint.torch at
    # "<DIR>/model_phaseN.torch", a target resolved from inside DIR, so the link dangles and
    # each later update logs "Error in symlink - File exists".  An absolute DIR fixes both.
    cfg.CHECKPOINT.DIR = os.path.abspath(cfg.CHECKPOINT.DIR)
