"""spacetorch's VISSL hooks, added to VISSL's own (:func:`hook_generator`).

:class:`StartupReport`: each rank says, on stdout as it happens, how far its start has got:
its process group is up (the rendezvous), it waits for its first batch, the batch has come
(data loading), its first step is done.  A run that stalls before training shows where by the
last of these lines (:data:`STARTUP_STAGES`, read by ``bench/gpu_check.py``).

:class:`BestAccuracyCheckpoint`: with ``TEST_MODEL`` on, VISSL measures the test split after
every ``TEST_EVERY_NUM_EPOCH`` training epochs.  Each time its first meter's top-1 accuracy is the
best so far, the model is written to ``CHECKPOINT.DIR/model_best_accuracy.torch`` (a VISSL
checkpoint, which ``load_classifier`` and ``load_trunk`` read) and the epoch and accuracy to
``best_accuracy.json``, as the original V1 and TDAM training scripts keep their best model.

:class:`SpatialDinoTeacher`: the teacher of ``spatial_correlation_dino_loss``, VISSL's DINO hook
(teacher built from the student, EMA update, teacher temperature, prototype normalisation) run
on the views the student saw and reading its settings from the spatial loss's own config.

:class:`CloseTensorboard`: closes the TensorBoard writers when training ends (VISSL never does),
so that the last events are on disk however the process exits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from classy_vision.generic.distributed_util import is_primary
from classy_vision.hooks.classy_hook import ClassyHook
from vissl.hooks.dino_hooks import DINOHook

from spacetorch.vissl.registry import SpatialCorrelationDinoLoss

__all__ = [
    "BEST_CHECKPOINT",
    "STARTUP_STAGES",
    "BestAccuracyCheckpoint",
    "CloseTensorboard",
    "SpatialDinoTeacher",
    "StartupReport",
    "hook_generator",
]

BEST_CHECKPOINT = "model_best_accuracy.torch"
BEST_RECORD = "best_accuracy.json"


class _Hook(ClassyHook):  # type: ignore[misc]  # classy-vision is not annotated
    """A hook whose every event does nothing; each hook below defines the events it acts on."""

    on_start = ClassyHook._noop
    on_phase_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_update = ClassyHook._noop
    on_step = ClassyHook._noop
    on_phase_end = ClassyHook._noop
    on_end = ClassyHook._noop


class BestAccuracyCheckpoint(_Hook):
    """Keep the model of the best test top-1 accuracy so far (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.best: float | None = None

    def on_phase_end(self, task: Any) -> None:
        if task.train or not task.meters or not is_primary():
            return
        top1 = task.meters[0].value.get("top_1")
        if not top1:
            return
        accuracy = float(next(iter(top1.values())))
        folder = Path(task.checkpoint_folder)
        record = folder / BEST_RECORD
        if self.best is None and record.is_file():  # a resumed run keeps the best of before
            self.best = float(json.loads(record.read_text())["top_1"])
        if self.best is not None and accuracy <= self.best:
            return
        self.best = accuracy
        from spacetorch._files import atomic_write

        content = {"classy_state_dict": task.get_classy_state(), "train_phase_idx": task.train_phase_idx}
        atomic_write(folder / BEST_CHECKPOINT, lambda f: torch.save(content, f))
        text = json.dumps({"top_1": accuracy, "train_phase_idx": int(task.train_phase_idx), "iteration": int(task.iteration)})
        atomic_write(record, lambda f: f.write(text.encode()))


#: what each rank prints as its start gets there, in order
STARTUP_STAGES = ("process group ready", "waiting for the first batch", "first batch read", "first step done")
_STARTED = time.monotonic()  # this module is imported as a rank starts (train.py imports it at module level)


def _report(stage: str, detail: str = "") -> None:
    from classy_vision.generic.distributed_util import get_rank

    print(f"train.py: rank {get_rank()}: {stage}{detail} ({time.monotonic() - _STARTED:.1f} s after the rank started)", flush=True)


class _FirstBatch:
    """The data iterator, saying when its first batch has come."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.iterator, self.waiting = iterator, True

    def __iter__(self) -> _FirstBatch:
        return self

    def __next__(self) -> Any:
        batch = next(self.iterator)
        if self.waiting:
            self.waiting = False
            _report(STARTUP_STAGES[2])
        return batch

    def __len__(self) -> int:  # classy-vision counts a phase's batches by it
        return len(self.iterator)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.iterator, name)


class StartupReport(_Hook):
    """Print each of :data:`STARTUP_STAGES` once, as this rank reaches it (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = self.stepping = True

    def on_start(self, task: Any) -> None:
        import torch.distributed as dist

        world = f"{dist.get_backend()}, {dist.get_world_size()} process(es)" if dist.is_initialized() else "not distributed"
        _report(STARTUP_STAGES[0], f" ({world}); model, loss and data loaders built")

    def on_phase_start(self, task: Any) -> None:
        if task.train and self.waiting:
            self.waiting = False
            task.data_iterator = _FirstBatch(task.data_iterator)
            _report(STARTUP_STAGES[1])

    def on_update(self, task: Any) -> None:
        if self.stepping:
            self.stepping = False
            _report(STARTUP_STAGES[3])


class SpatialDinoTeacher(DINOHook):  # type: ignore[misc]  # VISSL is not annotated
    """VISSL's ``DINOHook`` for ``spatial_correlation_dino_loss``.

    Two differences: the teacher sees the batch the student saw, all its views in one tensor
    (``simclr_collator``'s layout; VISSL's hook takes a list of multi-crop tensors), and the
    prototypes are normalised as the loss's own ``normalize_last_layer`` says (VISSL's hook
    reads ``LOSS.dino_loss``).  The teacher's spatial outputs are computed and not used.
    """

    @torch.no_grad()
    def on_forward(self, task: Any) -> None:
        if task.loss.momentum_teacher is None:
            self._build_momentum_network(task)
        task.loss.teacher_output = task.loss.momentum_teacher(task.last_batch.sample["input"])[0][-1]
        self.get_teacher_temperature(task)

    @torch.no_grad()
    def normalize_last_layer(self, task: Any) -> None:
        from vissl.models.model_helpers import get_no_ddp_model

        if not task.loss.loss_config.get("normalize_last_layer", True):
            return
        for model in (task.model, task.loss.momentum_teacher):
            if model is None:
                continue
            head = get_no_ddp_model(model).heads[0]
            for index in range(head.nmb_heads):
                weight = getattr(head, f"prototypes{index}").weight
                weight.copy_(torch.nn.functional.normalize(weight, dim=1, p=2))


class CloseTensorboard(_Hook):
    """Close the TensorBoard writers of the other hooks when training ends, so that their last
    events are on disk (VISSL leaves its writer open for the interpreter's exit to flush)."""

    def on_end(self, task: Any) -> None:
        for hook in task.hooks:
            writer = getattr(hook, "tb_writer", None)
            if writer is not None:
                writer.close()


def hook_generator(cfg: Any) -> list[Any]:
    """VISSL's hooks, :class:`StartupReport`, :class:`CloseTensorboard` with TensorBoard on,
    :class:`SpatialDinoTeacher` for the spatial DINO loss, and :class:`BestAccuracyCheckpoint`
    when the config tests the model."""
    from vissl.hooks import default_hook_generator

    hooks: list[Any] = [*default_hook_generator(cfg), StartupReport()]
    if cfg.LOSS.name == SpatialCorrelationDinoLoss._loss_name:
        hooks.append(SpatialDinoTeacher())
    if cfg.TEST_MODEL and cfg.METERS.get("name"):
        hooks.append(BestAccuracyCheckpoint())
    if cfg.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD:
        hooks.append(CloseTensorboard())  # last: after every hook's own last events
    return hooks
