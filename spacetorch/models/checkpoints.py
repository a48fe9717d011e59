"""Load VISSL checkpoints of TDANN models as plain PyTorch modules.

A VISSL checkpoint (``model_final_checkpoint_phase199.torch``, ``checkpoint.torch``, ...) is a
``torch.save`` dict.  The trunk's weights sit at
``ckpt["classy_state_dict"]["base_model"]["model"]["trunk"]`` with keys
``base_model.<model key>`` (for a ResNet, torchvision's keys); the model is any registered
one (:func:`spacetorch.models.list_models`); checkpoints of the original code hold every weight a
second time under ``_feature_blocks.*``, which is ignored here.  Heads sit at
``...["model"]["heads"]`` (``0.clf.0.weight`` for a linear-evaluation ``mlp`` head).

Reading a checkpoint unpickles it, and unpickling can run arbitrary code.  Files are read with
``torch.load(weights_only=True)``, which admits only tensors and plain containers; a file that
needs more is refused unless the caller passes ``trusted=True``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spacetorch.models.registry import create_model, list_models, model_info

__all__ = [
    "CheckpointError",
    "check_checkpoint_file",
    "UnsafeCheckpointError",
    "load_classifier",
    "load_linear_head",
    "load_trunk",
    "read_checkpoint",
    "trunk_state_dict",
]

PathLike = str | os.PathLike[str]

#: where VISSL keeps the model's weights inside a checkpoint
MODEL_PATH = ("classy_state_dict", "base_model", "model")
_TRUNK_PREFIX = "base_model."
_DUPLICATE_PREFIX = "_feature_blocks."


class CheckpointError(ValueError):
    """A file is not the checkpoint that was expected (layout, architecture)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds objects that only a full (code-running) unpickling can rebuild."""


def check_checkpoint_file(path: PathLike) -> Path:
    """Check, without loading it, that ``path`` is a whole ``torch.save`` file; return it.

    Reads only the file's header and, for the zip format of current PyTorch, its central
    directory, which a truncated file lacks.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: ``path`` is a directory, empty, truncated, or not a torch file.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.torch"))[:4]
        hint = f" (it holds {', '.join(found)})" if found else ""
        raise CheckpointError(
            f"{path} is a directory; pass a checkpoint file such as {path}/checkpoint.torch or "
            f"{path}/model_final_checkpoint_phase<N>.torch{hint}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    with open(path, "rb") as file:
        head = file.read(4)
    if head == b"PK\x03\x04":  # torch.save's zip format
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointError(
                f"checkpoint {path} is truncated or corrupt ({err}; {size} bytes); a run killed while "
                "copying or saving it leaves such a file: use an earlier checkpoint or copy it again"
            ) from None
    elif head[:1] != b"\x80":  # the legacy format is a pickle (protocol 2+)
        raise CheckpointError(
            f"{path} is not a torch checkpoint: a torch.save file starts with a zip or pickle header, "
            f"this one with {head!r}"
        )
    return path


def read_checkpoint(path: PathLike, *, trusted: bool = False) -> dict[str, Any]:
    """The dict stored in a checkpoint file, with every tensor on the CPU.

    Args:
        path: a ``.torch`` / ``.pt`` file written by ``torch.save``.
        trusted: allow a full unpickling, which runs whatever code the file names.  Only for
            files from a source you trust.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the file needs a full unpickling and ``trusted`` is False.
        CheckpointError: the file is a directory, damaged, not a torch file or not a dict.
    """
    path = check_checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()
        detail = next((line.strip() for line in reason if "GLOBAL" in line or "Unsupported" in line), None)
        if detail is None:
            raise CheckpointError(f"{path} is not a readable torch checkpoint: {reason[0] if reason else err}") from None
        raise UnsafeCheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers ({detail}); "
            "loading it would run code named by the file. If you trust its source, load it with "
            "trusted=True (command line: --trust-checkpoint)"
        ) from None
    except Exception as err:  # a damaged file can raise almost anything (KeyError, EOFError...)
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, expected a VISSL checkpoint dict")
    return checkpoint


def _model_part(checkpoint: Mapping[str, Any], part: str, source: str) -> dict[str, torch.Tensor]:
    node: Any = checkpoint
    for depth, key in enumerate((*MODEL_PATH, part)):
        if not isinstance(node, Mapping) or key not in node:
            where = "".join(f"[{k!r}]" for k in MODEL_PATH[:depth])
            found = sorted(map(str, node))[:8] if isinstance(node, Mapping) else type(node).__name__
            raise CheckpointError(
                f"{source} is not a VISSL checkpoint: expected ckpt{where}[{key!r}] "
                f"(weights at ckpt{''.join(f'[{k!r}]' for k in (*MODEL_PATH, part))}), found keys {found}"
            )
        node = node[key]
    return dict(node)


def trunk_state_dict(
    checkpoint: Mapping[str, Any], source: str = "checkpoint", classifier: str | None = "fc"
) -> dict[str, torch.Tensor]:
    """The trunk's weights under the model's own names (``base_model.`` stripped, the
    ``classifier``'s weights dropped).

    Raises:
        CheckpointError: the dict is not a VISSL checkpoint, or its trunk keys are not
            ``base_model.*``; the message names what was found.
    """
    trunk = _model_part(checkpoint, "trunk", source)
    weights = {
        key[len(_TRUNK_PREFIX):]: value
        for key, value in trunk.items()
        if key.startswith(_TRUNK_PREFIX) and not (classifier and key.startswith(f"{_TRUNK_PREFIX}{classifier}."))
    }
    if not weights:
        raise CheckpointError(
            f"{source}: the trunk has no 'base_model.*' weights (found e.g. {sorted(trunk)[:5]}); "
            "expected a spacetorch/TDANN trunk"
        )
    return weights


def _mismatch(weights: Mapping[str, torch.Tensor], arch: str, model_kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """How ``weights`` differ from the registered model ``arch`` (classifier removed); empty when they match."""
    with torch.device("meta"):
        model = create_model(arch, headless=True, **(model_kwargs or {}))
    return _differences(weights, model)


def _differences(weights: Mapping[str, torch.Tensor], model: torch.nn.Module) -> list[str]:
    """A short summary of how ``weights`` differ from ``model``'s state dict (a few keys of each
    kind, not all of them); empty when they match."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = []
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    shapes = [k for k in sorted(set(expected) & set(weights)) if tuple(weights[k].shape) != expected[k]]
    if shapes:
        k = shapes[0]
        problems.append(f"{len(shapes)} of another shape (e.g. {k}: {tuple(weights[k].shape)}, expected {expected[k]})")
    return problems


def load_trunk(
    path: PathLike, arch: str = "resnet18", *, trusted: bool = False, model_kwargs: Mapping[str, Any] | None = None
) -> nn.Module:
    """The trunk of a VISSL checkpoint as the registered model ``arch`` without its classifier.

    The model returns the pooled ``(B, D)`` features (its classifier, ``fc`` for a ResNet, is an
    ``nn.Identity``) and is in eval mode.  Works for the published TDANN checkpoints (torchvision
    ResNets) and for those of ``train.py``.

    Args:
        path: the checkpoint file.
        arch: the registered model the trunk was trained as (:func:`spacetorch.models.list_models`).
        trusted: see :func:`read_checkpoint`.
        model_kwargs: the builder's keyword arguments the model was trained with
            (``TRUNK_PARAMS.model_kwargs``, e.g. ``{"time_steps": 2, "mdist": 1}`` for a TD ResNet).

    Raises:
        UnsafeCheckpointError, CheckpointError, FileNotFoundError: see :func:`read_checkpoint`;
            the trunk does not fit ``arch`` (naming the keys, and the depth it fits if any).

    Example (``images``: a ``(8, 3, 224, 224)`` normalised batch)::

        trunk = load_trunk("model_final_checkpoint_phase199.torch")
        trunk(images).shape  # torch.Size([8, 512])
    """
    return _trunk_of(read_checkpoint(path, trusted=trusted), str(path), arch, model_kwargs)


def _trunk_of(checkpoint: Mapping[str, Any], path: str, arch: str, model_kwargs: Mapping[str, Any] | None) -> nn.Module:
    """:func:`load_trunk` on a checkpoint already read."""
    info = model_info(arch)
    weights = trunk_state_dict(checkpoint, path, info.classifier)
    problems = _mismatch(weights, arch, model_kwargs)
    if problems:
        family = [other for other in list_models() if other != arch and model_info(other).family == info.family]
        fits = next((other for other in family if not _mismatch(weights, other, model_kwargs)), None)
        hint = f"; the weights fit arch={fits!r}" if fits else ""
        settings = f" with {dict(model_kwargs)}" if model_kwargs else ""
        raise CheckpointError(f"checkpoint {path}: the trunk is not a {arch}{settings}: {'; '.join(problems)}{hint}")
    model = create_model(arch, headless=True, **(model_kwargs or {}))
    model.load_state_dict(weights)
    return model.eval()


def load_linear_head(path: PathLike, *, trusted: bool = False) -> nn.Linear:
    """The linear-evaluation head of a VISSL checkpoint (one ``mlp`` head with one layer).

    Raises:
        CheckpointError: the checkpoint's heads are not a single linear layer (names the keys).
    """
    return _linear_head_of(read_checkpoint(path, trusted=trusted), str(path))


def _linear_head_of(checkpoint: Mapping[str, Any], path: str) -> nn.Linear:
    """:func:`load_linear_head` on a checkpoint already read."""
    heads = _model_part(checkpoint, "heads", path)
    weights = [k for k, v in heads.items() if k.endswith(".weight") and v.ndim == 2]
    bias = weights[0][: -len("weight")] + "bias" if len(weights) == 1 else None
    if bias is None or set(heads) != {weights[0], bias}:
        raise CheckpointError(
            f"checkpoint {path}: expected one linear head (keys '<i>.clf.0.weight' and '.bias', as "
            f"written by linear evaluation), found head keys {sorted(heads)}"
        )
    weight = heads[weights[0]]
    head = nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": heads[bias]})
    return head.eval()


#: where plain checkpoints (torchvision, timm, the original TDAM scripts) keep the state dict
_STATE_DICT_KEYS = ("state_dict", "model", "state_dict_ema")


def load_classifier(
    path: PathLike, arch: str, *, trusted: bool = False, model_kwargs: Mapping[str, Any] | None = None
) -> nn.Module:
    """A whole classifier (trunk and classification head) of the registered model ``arch``, in eval mode.

    ``path`` is a VISSL checkpoint whose head is one linear layer (supervised training or linear
    evaluation; the head becomes the model's classifier), or a plain state dict of the model, on
    its own or under ``state_dict`` / ``model`` (as torchvision, timm and the original TDAM
    scripts save them; a ``module.`` prefix from DistributedDataParallel is dropped).  The TDAM
    weights saved by other projects are turned into spacetorch's by the layouts their families
    register (:mod:`spacetorch.models.weight_layouts`): the TDAM authors' module names
    (``RA_block``, ``bn3_1``...), ConvNeXt weights in the official layout (theirs, and
    facebookresearch/ConvNeXt's) and the V1 models' authors' names (their family's ``authors``
    module says which of their components convert).  The number of classes is read from the weights.

    Raises:
        CheckpointError: the weights do not fit ``arch`` with ``model_kwargs`` (naming the keys), or
            the model has no classifier; see also :func:`read_checkpoint`.
    """
    info = model_info(arch)
    if info.classifier is None:
        raise CheckpointError(f"model {arch!r} has no classifier to load")
    checkpoint = read_checkpoint(path, trusted=trusted)
    if MODEL_PATH[0] in checkpoint:  # the file is read once, for the trunk and the head
        model = _trunk_of(checkpoint, str(path), arch, model_kwargs)
        model.set_submodule(info.classifier, _linear_head_of(checkpoint, str(path)))
        return model.eval()
    weights: Any = next((checkpoint[k] for k in _STATE_DICT_KEYS if isinstance(checkpoint.get(k), Mapping)), checkpoint)
    weights = {k.removeprefix("module."): v for k, v in weights.items() if isinstance(v, torch.Tensor)}
    from spacetorch.models.weight_layouts import weight_layouts

    layouts = weight_layouts()
    for layout in layouts:  # other projects' names, turned into spacetorch's (the family that owns them says how)
        if layout.rename_keys is not None and layout.matches(weights):
            weights = layout.rename_keys(weights)
    converting = [layout for layout in layouts if layout.convert is not None and layout.matches(weights)]
    head_key = next((layout.head_key for layout in converting if layout.head_key), f"{info.classifier}.weight")
    head = weights.get(head_key)
    if head is None:
        raise CheckpointError(
            f"checkpoint {path}: no classifier weight {head_key} for {arch}; "
            f"found keys {sorted(weights)[:6]}{' ...' if len(weights) > 6 else ''}"
        )
    kwargs = {**(model_kwargs or {}), "num_classes": int(head.shape[0])}
    model = create_model(arch, **kwargs)
    for layout in converting:  # layouts that need the model built to convert
        assert layout.convert is not None
        try:
            weights = layout.convert(weights, model)
        except ValueError as err:
            raise CheckpointError(f"checkpoint {path} ({layout.name}): {err}") from None
    problems = _differences(weights, model)
    if problems:
        raise CheckpointError(
            f"checkpoint {path}: the weights are not a {arch} with {dict(model_kwargs or {})}: " + "; ".join(problems)
        )
    model.load_state_dict(weights)
    return model.eval()
