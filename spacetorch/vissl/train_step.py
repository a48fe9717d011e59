"""``custom_train_step``: VISSL's training iteration for models with spatial outputs.

It differs from VISSL's ``standard_train_step`` in these ways:

* VISSL's two model-output checks (``CheckNanModelOutputHook``, ``LogLossMetricsCheckpointHook``)
  are not run ``on_forward``: they call ``torch.isfinite`` on every element of the model output,
  and a spatial model's output holds a dict of (features, positions); the other ``on_forward``
  hooks run, before the loss, as in VISSL's step (the DINO teacher is one);
* the per-layer spatial losses the loss computed in this step are logged (log file and
  TensorBoard, every ``LOG_FREQUENCY`` iterations) without computing them again;
* the trunk's topography method (``TRUNK_PARAMS.topography``, :mod:`spacetorch.methods`) adds
  its penalties to the loss, and they are logged the same way;
* a non-finite loss stops training with the iteration and the layer(s) at fault;
* optionally (``HOOKS.TENSORBOARD_SETUP.ORIENTATION_MAP.EVERY_N_ITERATIONS``), the orientation
  map of a layer, from its responses to sine gratings, is logged to TensorBoard as an image.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import numpy as np
import torch
from classy_vision.generic.distributed_util import all_reduce_mean, is_primary
from classy_vision.tasks.classification_task import AmpType
from vissl.hooks import SSLClassyHookFunctions
from vissl.trainer.train_steps import register_train_step
from vissl.trainer.train_steps.standard_train_step import LastBatchInfo, construct_sample_for_model
from vissl.utils.perf_stats import PerfTimer

__all__ = ["NonFiniteLossError", "custom_train_step"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@register_train_step("custom_train_step")  # type: ignore[untyped-decorator]  # VISSL is not annotated
def custom_train_step(task: Any) -> Any:
    """One iteration: read a batch, forward, loss, backward, optimizer step, hooks."""
    if task.amp_type == AmpType.APEX:
        raise RuntimeError("custom_train_step supports MODEL.AMP_PARAMS.AMP_TYPE 'pytorch', not 'apex'")
    task.last_batch = LastBatchInfo()
    perf_stats = task.perf_stats
    step_timer = PerfTimer("train_step_total", perf_stats)
    step_timer.start()

    with PerfTimer("read_sample", perf_stats):
        sample = construct_sample_for_model(next(task.data_iterator), task)
    target = sample["target"]

    grad_context = torch.enable_grad() if task.train else torch.no_grad()
    amp_context = (
        torch.autocast(device_type="cuda") if task.amp_type == AmpType.PYTORCH else contextlib.nullcontext()
    )
    with grad_context, amp_context:
        with PerfTimer("forward", perf_stats):
            model_output = task.model(sample["input"])
        if len(model_output) == 1:
            model_output = model_output[0]
        task.last_batch.sample = sample
        task.last_batch.model_output = model_output
        task.last_batch.target = target
        _run_forward_hooks(task)
        with PerfTimer("loss_compute", perf_stats):
            local_loss = task.loss(model_output, target)
            penalties = _topography_penalties(task)
            if penalties:
                local_loss = local_loss + torch.stack(list(penalties.values())).sum()
            task.last_topography_penalties = {key: value.detach() for key, value in penalties.items()}
        with PerfTimer("loss_all_reduce", perf_stats):
            task.last_batch.loss = all_reduce_mean(local_loss.detach().clone())
        loss_value = float(task.last_batch.loss)  # one host sync a step, as in VISSL's step
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(_describe_non_finite(task, loss_value))
        task.losses.append(loss_value * target.size(0))
        _update_meters(task, model_output, target)
        task.run_hooks(SSLClassyHookFunctions.on_loss_and_meter.name)

    if task.train:
        with PerfTimer("backward", perf_stats):
            task.optimizer.zero_grad()
            if task.amp_type == AmpType.PYTORCH:
                task.amp_grad_scaler.scale(local_loss).backward()
            else:
                local_loss.backward()
        task.run_hooks(SSLClassyHookFunctions.on_backward.name)
        with PerfTimer("optimizer_step", perf_stats):
            if task.amp_type == AmpType.PYTORCH:
                task.amp_grad_scaler.step(task.optimizer, where=task.where)
                task.amp_grad_scaler.update()
            else:
                task.optimizer.step(where=task.where)
        task.run_hooks(SSLClassyHookFunctions.on_update.name)
        task.num_updates += task.get_global_batchsize()
        _log_spatial_losses(task)
        _log_orientation_map(task)

    step_timer.stop()
    step_timer.record()
    return task


def _run_forward_hooks(task: Any) -> None:
    """``on_forward`` of every hook but VISSL's model-output NaN checks (see the module)."""
    from vissl.hooks.log_hooks import LogLossMetricsCheckpointHook
    from vissl.hooks.state_update_hooks import CheckNanModelOutputHook

    for hook in task.hooks:
        if not isinstance(hook, (CheckNanModelOutputHook, LogLossMetricsCheckpointHook)):
            hook.on_forward(task)


def _spatial_losses(task: Any) -> dict[str, torch.Tensor]:
    return dict(getattr(task.loss, "last_spatial_losses", {}) or {})


def _topography_penalties(task: Any) -> dict[str, torch.Tensor]:
    """``{layer: weighted penalty}`` of the trunk's topography method (``TRUNK_PARAMS.topography``)."""
    trunk = getattr(task.base_model, "trunk", None)
    method = getattr(trunk, "topography", None)
    if trunk is None or method is None:
        return {}
    return dict(method.penalties(trunk.base_model))


def _describe_non_finite(task: Any, loss_value: float) -> str:
    bad = [key for key, value in _spatial_losses(task).items() if not math.isfinite(float(value))]
    bad += [f"{key} (topography penalty)" for key, value in getattr(task, "last_topography_penalties", {}).items()
            if not math.isfinite(float(value))]
    task_loss: torch.Tensor | None = getattr(task.loss, "last_task_loss", None)
    parts = [f"the training loss is {loss_value} at iteration {task.iteration}"]
    if bad:
        parts.append(f"spatial loss not finite in layer(s) {', '.join(bad)}")
    if task_loss is not None and not math.isfinite(float(task_loss)):
        parts.append(f"task loss is {float(task_loss)}")
    if len(parts) == 1:
        parts.append("on another rank, or in a loss without per-layer parts")
    return "; ".join(parts) + " (try a lower learning rate or layer weights)"


def _update_meters(task: Any, model_output: Any, target: torch.Tensor) -> None:
    if not task.meters or not (task.config["METERS"]["enable_training_meter"] or not task.train):
        return
    # meters see the task output only, not the spatial dict
    scores = model_output[0] if isinstance(model_output, (list, tuple)) else model_output
    with PerfTimer("meters_update", task.perf_stats):
        for meter in task.meters:
            meter.update(scores.detach().cpu(), target.detach().cpu())


def _log_spatial_losses(task: Any) -> None:
    frequency = int(task.config["LOG_FREQUENCY"])
    if not is_primary() or task.iteration % max(frequency, 1) != 0:
        return
    per_layer = _spatial_losses(task)
    penalties = {key: float(value) for key, value in getattr(task, "last_topography_penalties", {}).items()}
    if not per_layer and not penalties:
        return
    values = {key: float(value) for key, value in per_layer.items()}
    task_loss = getattr(task.loss, "last_task_loss", None)
    parts = [f"task loss {float(task_loss):.4f}"] if task_loss is not None else []
    if values:
        parts.append("spatial loss " + ", ".join(f"{key} {value:.4f}" for key, value in values.items()))
    if penalties:
        method = task.base_model.trunk.topography.name
        parts.append(f"topography penalty ({method}) " + ", ".join(f"{key} {value:.4f}" for key, value in penalties.items()))
    # the root logger: VISSL points logging.root at its stdout + log.txt handlers
    logging.info(f"Iteration {task.iteration}: " + "; ".join(parts))
    writer = _tensorboard_writer(task)
    if writer is not None:
        for key, value in values.items():
            writer.add_scalar(f"Spatial_Loss/{key}", value, global_step=task.iteration)
        for key, value in penalties.items():
            writer.add_scalar(f"Topography_Penalty/{key}", value, global_step=task.iteration)
        if task_loss is not None:
            writer.add_scalar("Task_Loss", float(task_loss), global_step=task.iteration)


def _tensorboard_writer(task: Any) -> Any:
    for hook in task.hooks:
        writer = getattr(hook, "tb_writer", None)
        if writer is not None:
            return writer
    return None


def _log_orientation_map(task: Any) -> None:
    settings = task.config["HOOKS"]["TENSORBOARD_SETUP"].get("ORIENTATION_MAP") or {}
    every = int(settings.get("EVERY_N_ITERATIONS", 0) or 0)
    if every <= 0 or not is_primary() or task.iteration % every != 0:
        return
    writer = _tensorboard_writer(task)
    if writer is None:
        return
    layer = str(settings.get("LAYER", "layer2_0"))
    frequencies = list(settings.get("SPATIAL_FREQUENCIES") or [])
    image = orientation_map_image(
        task.base_model.trunk, layer, int(settings.get("IMAGE_SIZE", 224)), frequencies or None,
        title=f"{layer}, iteration {task.iteration}",
    )
    writer.add_image(f"Orientation_Map/{layer}", image, global_step=task.iteration, dataformats="HWC")


@torch.no_grad()
def orientation_map_image(
    trunk: torch.nn.Module,
    layer: str,
    image_size: int,
    spatial_frequencies: list[float] | None = None,
    *,
    title: str,
) -> np.ndarray:
    """The orientation map of a spatial trunk's layer (VISSL key) as an ``(H, W, 3)`` uint8 image,
    measured as every command measures maps (:func:`spacetorch.maps.orientation_map_image`).

    Raises:
        TypeError: ``trunk`` is not a :class:`~spacetorch.models.trunks.SpatialTrunk`.
        KeyError: ``layer`` is not one of its layers.
    """
    from spacetorch import maps
    from spacetorch.models.layers import layer_for_key
    from spacetorch.models.topographic import TopographicModel
    from spacetorch.models.trunks import SpatialTrunk
    from spacetorch.stimuli import SPATIAL_FREQUENCIES, SineGratings

    if not isinstance(trunk, SpatialTrunk):
        raise TypeError(
            f"ORIENTATION_MAP needs a spacetorch spatial trunk (spatial_model, spatial_resnet18, ...), "
            f"got {type(trunk).__name__}; set HOOKS.TENSORBOARD_SETUP.ORIENTATION_MAP.EVERY_N_ITERATIONS=0"
        )
    try:
        name = layer_for_key(layer, trunk.layer_names)
    except KeyError as err:
        raise KeyError(f"ORIENTATION_MAP.LAYER: {err.args[0]}") from None
    gratings = SineGratings(image_size, spatial_frequencies=spatial_frequencies or SPATIAL_FREQUENCIES)
    model = TopographicModel(trunk.base_model, trunk.network_positions())
    return maps.orientation_map_image(model, name, gratings, title=title)
