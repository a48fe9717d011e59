"""Swap optimisation ("swapopt") of unit positions, as the original TDANN toolbox runs it.

For one layer, with responses ``R`` (stimuli x units) and ``C`` the units' correlation over
stimuli (NaN, from constant units, counted as 0), repeat: place a square window of side
``width`` (the layer's neighborhood width) uniformly inside the sheet; skip it if it holds
fewer than 5 units; keep a uniform subset of at most 500 of them; then make 500 attempts: draw
two distinct units ``a, b`` of the window and swap their positions if that strictly lowers

    loss(a, b) = (1 - pearson([C[a, W], C[b, W]], [D[a, W], D[b, W]])) / 2,
    D[i, j] = 1 / (distance(i, j) + 1)  (mm),

where ``W`` are the window's units (rows of two units against all of the window, self pairs
included).  The neighborhoods are then drawn again for the new coordinates, exactly as for
retinotopic positions.

How it is made fast, with the same decisions:

* **Slots.** A swap exchanges two units between two *places*; the set of places inside any
  window never changes.  So the windows, their subsets and the candidate pairs are drawn as
  places ("slots") from the seed alone, in the reference's order, and only which unit sits in
  each slot changes.  ``D`` of a window (between its slots) is fixed.
* **Units move, rows do not.** A window's correlation block is computed once, in the order of
  its units when its attempts start, and only read: a swap exchanges the two units' slots in a
  table, and an attempt reads ``C``'s rows of its two units against ``D``'s rows of their
  slots, looked up through that table.
* **Running sums.** A swap leaves the two rows' sums and sums of squares unchanged, so the
  loss falls exactly when the cross term ``sum(x * y)`` rises.  With ``M[u, v] = C[u] . D[v]``
  that change is ``M[a,b] + M[b,a] - M[a,a] - M[b,b] + (C[a,a] + C[b,b] - 2 C[a,b]) (1 - D[a,b])``:
  four dot products of length ``m`` per attempt, nothing recomputed from scratch.
* **Many windows at once.** Windows that do not overlap touch disjoint units, so a window only
  waits for the earlier windows it overlaps.  Windows are grouped into waves by that rule;
  each window's correlation block is one BLAS product, and a wave's attempts run in
  parallel (numba threads).  The result equals the one-window-at-a-time order for the same
  seed, on any number of threads.
* **On a GPU** (``engine="triton"``, the default where CUDA is there): a wave's correlation
  blocks are one batched product on the device, and its windows' attempts one Triton kernel, a
  program per window (:mod:`._swapopt_device`), with the same slots, order and tie rule.

A swap whose change is below floating-point resolution (``1e-9`` of the terms) counts as no
change, so ties never flip with rounding.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from spacetorch._files import atomic_write, own_folder
from spacetorch.models.positions import _swapopt_device as _device
from spacetorch.models.positions.layer_positions import LayerPositions, NetworkPositions
from spacetorch.models.positions.neighborhoods import BandIndex, build_neighborhoods

__all__ = [
    "ATTEMPTS_PER_WINDOW",
    "ENGINES",
    "MAX_WINDOW_UNITS",
    "MIN_WINDOW_UNITS",
    "SheetWindows",
    "SwapRecord",
    "WindowPlan",
    "plan_windows",
    "resolve_engine",
    "standardize",
    "swap_optimize",
    "swap_optimize_layer",
    "window_loss",
]

ATTEMPTS_PER_WINDOW = 500
ENGINES = ("auto", "numba", "triton")
MAX_WINDOW_UNITS = 500
MIN_WINDOW_UNITS = 5
_TOLERANCE = 1e-9
_CHUNK = 2048  # windows planned (and their pairs held in memory) at a time


@dataclass
class SwapRecord:
    """What a swapopt run of one layer did (written as JSON beside the new position set)."""

    layer: str
    attempts: int
    windows: int
    skipped_windows: int
    accepted: int
    loss_before: float
    loss_after: float
    seed: int
    width: float
    attempts_per_window: int
    max_window_units: int
    precision: str
    seconds: float = 0.0
    engine: str = "numba"
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WindowPlan:
    """A run of windows as slots: ``slots[offsets[i]:offsets[i+1]]`` are window ``i``'s places
    (indices into the layer's coordinates), ``pairs[i]`` its ``(A, 2)`` candidate pairs (indices
    into the list of units in those places when the window's attempts start, as the reference
    draws units), ``wave[i]`` the batch it can run in."""

    slots: np.ndarray
    offsets: np.ndarray
    pairs: np.ndarray
    wave: np.ndarray
    skipped: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def window(self, i: int) -> np.ndarray:
        return self.slots[self.offsets[i]:self.offsets[i + 1]]


# -- inputs ---------------------------------------------------------------------------------------
def standardize(responses: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``(N, S)`` rows ``z`` with ``z_i . z_j = corr(r_i, r_j)``; constant units give zero rows
    (their correlation counts as 0, as the original's NaN -> 0)."""
    z: np.ndarray = np.array(np.asarray(responses).T, dtype=dtype, order="C")  # (N, S), a copy
    z -= z.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", z, z))
    scale = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    z *= scale[:, None]
    return z


def _check_inputs(layer: LayerPositions, responses: np.ndarray, width: float) -> np.ndarray:
    r = np.asarray(responses)
    if r.ndim != 2 or r.shape[1] != layer.num_units:
        raise ValueError(
            f"layer {layer.name!r}: responses must have shape (stimuli, {layer.num_units}) for its "
            f"{layer.num_units} units (dims {tuple(layer.dims)}), got {tuple(r.shape)}"
        )
    if r.shape[0] < 3:
        raise ValueError(f"layer {layer.name!r}: correlations need responses to at least 3 stimuli, got {r.shape[0]}")
    if not np.isfinite(r).all():
        raise ValueError(f"layer {layer.name!r}: responses contain NaN or inf")
    if not (r.max(axis=0) > r.min(axis=0)).any():
        raise ValueError(
            f"layer {layer.name!r}: every unit's response is the same for all stimuli (e.g. all zero); "
            "there is nothing to optimise. Record responses of a model that responds to the stimuli"
        )
    xy = np.asarray(layer.coordinates, dtype=np.float64)
    extent = xy.max(axis=0) - xy.min(axis=0)
    if not (math.isfinite(width) and 0 < width <= float(extent.min())):
        raise ValueError(
            f"layer {layer.name!r}: window width must be > 0 and fit the sheet "
            f"({extent[0]:.4g} x {extent[1]:.4g} mm), got {width} mm"
        )
    return r


# -- planning ------------------------------------------------------------------------------------
class SheetWindows:
    """A layer's slots (unit places) inside square windows of side ``width`` mm, found through
    the neighborhoods' band index."""

    def __init__(self, xy: np.ndarray, width: float) -> None:
        self.xy = xy
        self.width = width
        self.low = xy.min(axis=0)
        self.extent = xy.max(axis=0) - self.low
        self.index = BandIndex(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), width)

    def slots(self, low: np.ndarray) -> list[np.ndarray]:
        found = self.index.find(low, low + self.width)
        out = []
        for i in range(len(low)):
            runs = [np.arange(*found.spans[i, j]) for j in range(int(found.b_hi[i] - found.b_lo[i]) + 1)]
            ranks = np.concatenate(runs) if runs else np.empty(0, dtype=np.int64)
            y = self.index.y[ranks]
            inside = ranks[(y >= low[i, 1]) & (y <= low[i, 1] + self.width)]
            out.append(np.sort(self.index.order[inside]))
        return out


def plan_windows(
    windows: SheetWindows,
    n_windows: int,
    rng: np.random.Generator,
    attempts_per_window: int = ATTEMPTS_PER_WINDOW,
    max_units: int = MAX_WINDOW_UNITS,
    min_units: int = MIN_WINDOW_UNITS,
) -> WindowPlan:
    """Draw ``n_windows`` windows (skipping those with fewer than ``min_units`` slots), their
    subsets and candidate pairs, in the reference's order, and group them into waves."""
    low = windows.low + rng.random((n_windows, 2)) * (windows.extent - windows.width)
    kept_low, chosen, pairs = [], [], []
    skipped = 0
    for corner, slots in zip(low, windows.slots(low), strict=True):
        if len(slots) < min_units:
            skipped += 1
            continue
        if len(slots) > max_units:
            slots = np.sort(rng.choice(slots, max_units, replace=False))
        m = len(slots)
        a = rng.integers(0, m, attempts_per_window)
        b = rng.integers(0, m - 1, attempts_per_window)
        b += b >= a
        kept_low.append(corner)
        chosen.append(slots)
        pairs.append(np.stack([a, b], axis=1))
    offsets = np.zeros(len(chosen) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in chosen])
    return WindowPlan(
        slots=np.concatenate(chosen).astype(np.int64) if chosen else np.empty(0, dtype=np.int64),
        offsets=offsets,
        pairs=np.stack(pairs).astype(np.int32) if pairs else np.empty((0, attempts_per_window, 2), dtype=np.int32),
        wave=_waves(np.array(kept_low).reshape(-1, 2), windows.width),
        skipped=skipped,
    )


def _waves(low: np.ndarray, width: float) -> np.ndarray:
    """Wave of each window: one more than the latest wave of the earlier windows it overlaps."""
    wave = np.zeros(len(low), dtype=np.int64)
    cells: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(low):
        cx, cy = int(math.floor(x / width)), int(math.floor(y / width))
        latest = -1
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in cells.get((cx + dx, cy + dy), ()):
                    if abs(low[j, 0] - x) <= width and abs(low[j, 1] - y) <= width:
                        latest = max(latest, int(wave[j]))
        wave[i] = latest + 1
        cells.setdefault((cx, cy), []).append(i)
    return wave


# -- the compiled attempts -----------------------------------------------------------------------
# reassociation lets the dot products run as SIMD reductions (rounding differs from a plain
# loop in the last bits; decisions within _TOLERANCE of a tie count as no change anyway)
@numba.njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _attempt_windows(
    units: np.ndarray,  # (N,) unit at each slot, updated in place
    slots: np.ndarray,
    offsets: np.ndarray,
    corr: np.ndarray,  # the windows' whole correlation blocks, their units in order at the start, flattened
    corr_offsets: np.ndarray,
    xy: np.ndarray,  # (N, 2) slot coordinates
    pairs: np.ndarray,  # (B, A, 2)
    accepted: np.ndarray,  # (B,) out
    tolerance: float,
) -> None:
    for w in numba.prange(len(offsets) - 1):
        s0, m = offsets[w], offsets[w + 1] - offsets[w]
        c = corr[corr_offsets[w]:corr_offsets[w] + m * m].reshape((m, m))  # only read: units move, not rows
        px, py = np.empty(m), np.empty(m)
        for i in range(m):
            px[i], py[i] = xy[slots[s0 + i], 0], xy[slots[s0 + i], 1]
        d = np.empty((m, m))  # between slots
        for i in range(m):
            for j in range(m):
                dx, dy = px[i] - px[j], py[i] - py[j]
                d[i, j] = 1.0 / (math.sqrt(dx * dx + dy * dy) + 1.0)
        csum, csq = np.empty(m), np.empty(m)  # per unit: a swap reorders its row, the sums stay
        dsum, dsq = np.empty(m), np.empty(m)  # per slot
        for i in range(m):
            s1 = s2 = s3 = s4 = 0.0
            for j in range(m):
                x, y = c[i, j], d[i, j]
                s1 += x
                s2 += x * x
                s3 += y
                s4 += y * y
            csum[i], csq[i], dsum[i], dsq[i] = s1, s2, s3, s4
        slot = np.arange(m)  # the slot of each of the window's units (as listed at its start)
        n = 2.0 * m
        count = 0
        for t in range(pairs.shape[1]):
            ka, kb = pairs[w, t, 0], pairs[w, t, 1]
            a, b = slot[ka], slot[kb]
            maa = mbb = mab = mba = 0.0
            for k in range(m):
                ca, cb, da, db = c[ka, k], c[kb, k], d[a, slot[k]], d[b, slot[k]]
                maa += ca * da
                mbb += cb * db
                mab += ca * db
                mba += cb * da
            sx, sxx = csum[ka] + csum[kb], csq[ka] + csq[kb]
            sy, syy = dsum[a] + dsum[b], dsq[a] + dsq[b]
            if sxx - sx * sx / n <= 0.0 or syy - sy * sy / n <= 0.0:
                continue  # a constant row: the correlation is undefined (NaN in the reference)
            change = mab + mba - maa - mbb + (c[ka, ka] + c[kb, kb] - 2.0 * c[ka, kb]) * (1.0 - d[a, b])
            scale = abs(mab) + abs(mba) + abs(maa) + abs(mbb)
            if change > tolerance * scale:
                slot[ka], slot[kb] = b, a
                count += 1
        local = np.empty(m, dtype=units.dtype)  # the units at the window's slots at its start
        for k in range(m):
            local[k] = units[slots[s0 + k]]
        for k in range(m):
            units[slots[s0 + slot[k]]] = local[k]
        accepted[w] = count


def _correlation_blocks(z: np.ndarray, units: np.ndarray, plan: WindowPlan, rows: np.ndarray,
                        pool: ThreadPoolExecutor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each window's ``C_W = Z_W Z_W^T``, whole (a BLAS product), its units in slot order; the
    windows shared among ``pool``'s threads (BLAS releases the GIL)."""
    sizes = np.diff(plan.offsets)[rows]
    corr_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    corr_offsets[1:] = np.cumsum(sizes * sizes)
    corr = np.empty(int(corr_offsets[-1]), dtype=z.dtype)

    def block(k: int) -> None:
        zw = z[units[plan.window(int(rows[k]))]]
        np.matmul(zw, zw.T, out=corr[corr_offsets[k]:corr_offsets[k + 1]].reshape(sizes[k], sizes[k]))

    if pool is None or len(rows) == 1:
        for k in range(len(rows)):
            block(k)
    else:
        list(pool.map(block, range(len(rows))))
    return corr, corr_offsets


def _run_plan(z: np.ndarray, units: np.ndarray, xy: np.ndarray, plan: WindowPlan) -> int:
    """Make every attempt of ``plan``, wave by wave; returns the number of accepted swaps.

    BLAS runs on one thread, and a wave's products are shared among as many threads as numba
    has: after a call, a multithreaded OpenBLAS keeps its threads spinning, and they took the
    cores from the attempts (2x slower on layer4 of a ResNet-18 on 2 cores, where each window
    waits for the one before it)."""
    total = 0
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(numba.get_num_threads()) as pool:
        for wave in range(int(plan.wave.max()) + 1 if len(plan) else 0):
            rows = np.flatnonzero(plan.wave == wave)
            corr, corr_offsets = _correlation_blocks(z, units, plan, rows, pool)
            sizes = np.diff(plan.offsets)[rows]
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            offsets[1:] = np.cumsum(sizes)
            slots = np.concatenate([plan.window(int(i)) for i in rows])
            accepted = np.zeros(len(rows), dtype=np.int64)
            _attempt_windows(units, slots, offsets, corr, corr_offsets, xy, plan.pairs[rows], accepted, _TOLERANCE)
            total += int(accepted.sum())
    return total


def resolve_engine(engine: str = "auto", device: str | None = None) -> tuple[str, str]:
    """Which engine runs the attempts, and on which device.

    ``"numba"`` runs on the CPU's cores; ``"triton"`` runs the device path
    (:mod:`._swapopt_device`) on ``device``, interpreted by Triton on a CPU device (slow: for
    tests).  ``"auto"``: Triton on a CUDA device (the default device where CUDA is there), else
    numba.

    Raises:
        ValueError: an unknown engine, or Triton asked for where it is not installed.
    """
    import torch

    if engine not in ENGINES:
        raise ValueError(f"swapopt engine must be one of {ENGINES}, got {engine!r}")
    device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if engine == "auto":
        engine = "triton" if torch.device(device).type == "cuda" and _device.available() is None else "numba"
    if engine == "numba":
        return engine, "cpu"
    missing = _device.available()
    if missing is not None:
        raise ValueError(f"swapopt engine 'triton': {missing}; use engine 'numba'")
    return engine, device


def _plan_runner(engine: str, device: str, z: np.ndarray, xy: np.ndarray) -> Callable[[np.ndarray, WindowPlan], int]:
    """``run(units, plan)``: every attempt of ``plan``, ``units`` updated in place."""
    if engine == "numba":
        return lambda units, plan: _run_plan(z, units, xy, plan)
    import torch

    z_device = torch.from_numpy(z).to(device)
    xy_device = torch.from_numpy(xy).to(device, z_device.dtype)

    def run(units: np.ndarray, plan: WindowPlan) -> int:
        on_device = torch.from_numpy(units).to(device)
        kept = _device.run_plan_device(z_device, on_device, xy_device, plan, _TOLERANCE)
        units[:] = on_device.cpu().numpy()
        return kept

    return run


# -- evaluation ----------------------------------------------------------------------------------
def window_loss(z: np.ndarray, units: np.ndarray, xy: np.ndarray, windows: Sequence[np.ndarray]) -> float:
    """Mean spatial loss ``(1 - pearson(C_W, D_W)) / 2`` over windows given as slots (the
    training loss of each window, every pair of its units)."""
    losses = []
    for slots in windows:
        zw = z[units[slots]]
        c = (zw @ zw.T).astype(np.float64).ravel()
        d = (1.0 / (cdist(xy[slots], xy[slots]) + 1.0)).ravel()
        n = len(c)
        cov = float(c @ d) - c.sum() * d.sum() / n
        var = (float(c @ c) - c.sum() ** 2 / n) * (float(d @ d) - d.sum() ** 2 / n)
        if var > 0:
            losses.append((1.0 - cov / math.sqrt(var)) / 2.0)
    return float(np.mean(losses)) if losses else float("nan")


# -- one layer, a network ------------------------------------------------------------------------
def swap_optimize_layer(
    layer: LayerPositions,
    responses: np.ndarray,
    *,
    attempts: int,
    seed: int = 0,
    width: float | None = None,
    attempts_per_window: int = ATTEMPTS_PER_WINDOW,
    max_window_units: int = MAX_WINDOW_UNITS,
    n_neighborhoods: int = 20_000,
    precision: str = "float32",
    eval_windows: int = 100,
    progress: Callable[[int, int, int, float], None] | None = None,
    resume_file: str | os.PathLike[str] | None = None,
    engine: str = "auto",
    device: str | None = None,
) -> tuple[LayerPositions, SwapRecord]:
    """Swap-optimise one layer's positions against its responses.

    Args:
        layer: the positions (coordinates are permuted among its units).
        responses: ``(stimuli, units)`` responses, units in ``features.flatten(1)`` order.
        attempts: swap attempts in all (``ceil(attempts / attempts_per_window)`` windows).
        seed: the same seed (and inputs) gives the same result.
        width: window side in mm (default: the layer's neighborhood width).
        precision: ``"float32"`` or ``"float64"`` correlations.
        eval_windows: fixed windows over which the loss is measured (before, during, after).
        progress: called after each block of windows with ``(attempts done, attempts in all,
            swaps kept so far, current loss)``.
        resume_file: the state is saved there after each block of windows (atomically), and a
            run started with the same file and settings continues from it, with the same
            result as an uninterrupted run.  Removed when the layer is done.
        engine, device: what runs the attempts (:func:`resolve_engine`): numba on the CPU, or
            the Triton kernel on a GPU.  Both take the same decisions (up to rounding within
            ``1e-9`` of a tie); in float32 a GPU's rounding differs from the CPU's, so a few
            decisions near a tie may go the other way.

    Returns:
        the new positions (neighborhoods drawn again for them, seeded) and the record.

    Raises:
        ValueError: naming the layer and what is wrong with the responses, the width, the
            settings, or a resume file made with other settings.
    """
    width = float(layer.neighborhood_width if width is None else width)
    responses = _check_inputs(layer, responses, width)
    if attempts < 1 or attempts_per_window < 1:
        raise ValueError(f"attempts and attempts_per_window must be >= 1, got {attempts} and {attempts_per_window}")
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    engine, device = resolve_engine(engine, device)
    start = time.perf_counter()
    z = standardize(responses, np.float32 if precision == "float32" else np.float64)
    xy = np.ascontiguousarray(np.asarray(layer.coordinates, dtype=np.float64))
    rng_plan, rng_eval, rng_hoods = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    windows = SheetWindows(xy, width)
    evaluation = [s for s in windows.slots(windows.low + rng_eval.random((eval_windows, 2)) * (windows.extent - width))
                  if len(s) >= MIN_WINDOW_UNITS]
    evaluation = [s if len(s) <= max_window_units else np.sort(rng_eval.choice(s, max_window_units, replace=False))
                  for s in evaluation]
    n_windows = math.ceil(attempts / attempts_per_window)
    settings = {
        "layer": layer.name, "units": layer.num_units, "stimuli": int(responses.shape[0]), "seed": seed,
        "windows": n_windows, "width": width, "attempts_per_window": attempts_per_window,
        "max_window_units": max_window_units, "precision": precision,
        "coordinates": float(np.abs(xy).sum()), "responses": float(np.abs(z).sum()),
    }
    state = _State.load(resume_file, settings) if resume_file is not None else None
    if state is None:
        state = _State(np.arange(layer.num_units, dtype=np.int64), 0, 0, 0, window_loss(z, np.arange(layer.num_units), xy, evaluation))
    else:
        rng_plan.bit_generator.state = state.rng
    units = state.units  # the unit at each slot
    run_plan = _plan_runner(engine, device, z, xy)
    while state.windows_done < n_windows:
        chunk = min(_CHUNK, n_windows - state.windows_done)
        plan = plan_windows(windows, chunk, rng_plan, attempts_per_window, max_window_units)
        state.accepted += run_plan(units, plan)
        state.skipped += plan.skipped
        state.windows_done += chunk
        if resume_file is not None:
            state.rng = dict(rng_plan.bit_generator.state)
            state.save(resume_file, settings)
        if progress is not None:
            progress(state.windows_done * attempts_per_window, n_windows * attempts_per_window, state.accepted,
                     window_loss(z, units, xy, evaluation))
    coordinates = np.empty_like(xy)
    coordinates[units] = xy  # unit units[s] now sits at slot s
    hoods = build_neighborhoods(coordinates, layer.neighborhood_width, n_neighborhoods, rng_hoods)
    new = LayerPositions(layer.name, layer.dims, coordinates, hoods, layer.neighborhood_width)
    record = SwapRecord(
        layer=layer.name, attempts=n_windows * attempts_per_window, windows=n_windows, skipped_windows=state.skipped,
        accepted=state.accepted, loss_before=state.loss_before, loss_after=window_loss(z, units, xy, evaluation),
        seed=seed, width=width, attempts_per_window=attempts_per_window, max_window_units=max_window_units,
        precision=precision, seconds=time.perf_counter() - start, engine=engine, device=device,
    )
    if resume_file is not None:
        Path(resume_file).unlink(missing_ok=True)
    return new, record


@dataclass
class _State:
    """Where a layer's run stands: the unit at each slot, windows done, the plan's generator."""

    units: np.ndarray
    windows_done: int
    accepted: int
    skipped: int
    loss_before: float
    rng: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str], settings: Mapping[str, Any]) -> None:
        meta = {"settings": dict(settings), "windows_done": self.windows_done, "accepted": self.accepted,
                "skipped": self.skipped, "loss_before": self.loss_before, "rng": self.rng}
        atomic_write(path, lambda f: np.savez(f, units=self.units, meta=np.array(json.dumps(meta))))

    @classmethod
    def load(cls, path: str | os.PathLike[str], settings: Mapping[str, Any]) -> _State | None:
        path = Path(path)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                units, meta = data["units"], json.loads(str(data["meta"]))
        except Exception as err:  # a damaged state file
            raise ValueError(f"{path}: not a readable swapopt state ({type(err).__name__}: {err}); delete it to start over") from None
        if meta["settings"] != dict(settings):
            differ = _differing(meta["settings"], settings)
            raise ValueError(
                f"{path}: this saved state is of a run with other settings ({', '.join(differ)} differ); "
                "run again with the same settings to continue it, or delete it to start over"
            )
        return cls(units, int(meta["windows_done"]), int(meta["accepted"]), int(meta["skipped"]),
                   float(meta["loss_before"]), meta["rng"])


def swap_optimize(
    positions: NetworkPositions,
    responses: Mapping[str, np.ndarray] | Callable[[str], np.ndarray],
    *,
    attempts: int,
    seed: int = 0,
    layers: Sequence[str] | None = None,
    resume_dir: str | os.PathLike[str] | None = None,
    on_layer: Callable[[str], Callable[[int, int, int, float], None] | None] | None = None,
    **kwargs: Any,
) -> tuple[NetworkPositions, list[SwapRecord]]:
    """Swap-optimise the given layers; the other layers are kept as they are.

    Args:
        responses: ``{layer: (stimuli, units)}``, or a function returning a layer's responses
            (called once per layer, so that only one layer's responses are held at a time).
        attempts: per layer.
        seed: each layer gets its own seed, derived from this and its place in the set.
        layers: the layers to optimise (default: those of ``responses`` if it is a mapping,
            else every layer of ``positions``).
        resume_dir: finished layers and the state of the current one are kept there, so that a
            run started again with the same arguments continues where it stopped (a folder
            spacetorch marks as its own; an existing folder without the mark is refused).
        on_layer: called with each layer's name before it starts; returns its ``progress``.
        kwargs: passed on to :func:`swap_optimize_layer`.

    Raises:
        KeyError: a layer has no positions.
        FileExistsError: ``resume_dir`` exists and is not a resume folder spacetorch made.
    """
    names = list(positions.layer_positions)
    if layers is None:
        layers = list(responses) if isinstance(responses, Mapping) else names
    unknown = [name for name in layers if name not in positions.layer_positions]
    if unknown:
        raise KeyError(f"no positions for layer(s) {unknown}; layers: {names}")
    get = responses.__getitem__ if isinstance(responses, Mapping) else responses
    folder = own_folder(resume_dir, "swapopt resume folder") if resume_dir is not None else None
    result = dict(positions.layer_positions)
    records = []
    for name in layers:
        layer_seed = int(np.random.SeedSequence([seed, names.index(name)]).generate_state(1)[0])
        done = folder / f"{name}.done.npz" if folder is not None else None
        layer_responses = get(name)
        key = _run_key(positions[name], layer_responses, layer_seed, attempts, kwargs)
        if done is not None and done.exists():
            result[name], record = _load_done(done, key)
        else:
            progress = on_layer(name) if on_layer is not None else None
            result[name], record = swap_optimize_layer(
                positions[name], layer_responses, attempts=attempts, seed=layer_seed, progress=progress,
                resume_file=folder / f"{name}.state.npz" if folder is not None else None, **kwargs,
            )
            record.settings["network_seed"] = seed
            if done is not None:
                _save_done(done, result[name], record, key)
        del layer_responses
        records.append(record)
    return NetworkPositions(result, version=positions.version), records


def _differing(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between the settings ``saved`` with a resume file and ``now``."""
    return sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))


_SAME_DECISIONS = ("engine", "device")  # options that do not change what a run decides


def _run_key(layer: LayerPositions, responses: Any, seed: int, attempts: int, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What a finished layer in a resume folder must have been made with to be taken as it is:
    the same positions, responses (their sum, to 6 digits), seed, attempts and options (the
    engine and device aside: they take the same decisions)."""
    values = np.asarray(responses.detach().cpu() if hasattr(responses, "detach") else responses, dtype=np.float64)
    return {
        "layer": layer.name, "units": layer.num_units, "seed": seed, "attempts": int(attempts),
        "coordinates": f"{float(np.abs(np.asarray(layer.coordinates, dtype=np.float64)).sum()):.9g}",
        "responses": f"{values.shape}:{float(np.abs(values).sum()):.6g}",
        "options": {k: repr(v) for k, v in sorted(kwargs.items()) if k not in _SAME_DECISIONS},
    }


def _save_done(path: Path, layer: LayerPositions, record: SwapRecord, key: Mapping[str, Any]) -> None:
    arrays = layer._numpy_fields()
    atomic_write(path, lambda f: np.savez(
        f, dims=np.array(layer.dims), width=np.array(layer.neighborhood_width),
        record=np.array(json.dumps(record.to_dict())), coordinates=arrays["coordinates"],
        neighborhood_indices=arrays["neighborhood_indices"], key=np.array(json.dumps(dict(key))),
    ))


def _load_done(path: Path, key: Mapping[str, Any]) -> tuple[LayerPositions, SwapRecord]:
    """The finished layer saved in ``path``, if it was made with the settings ``key``.

    Raises:
        ValueError: it is damaged, or of a run with other settings (naming them)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = json.loads(str(data["key"])) if "key" in data.files else {}
            record = SwapRecord(**json.loads(str(data["record"])))
            c, h, w = (int(d) for d in data["dims"])
            coordinates, indices, width = data["coordinates"], data["neighborhood_indices"], float(data["width"])
    except Exception as err:  # a damaged file
        raise ValueError(f"{path}: not a readable finished swapopt layer ({type(err).__name__}: {err}); "
                         "delete it to start that layer over") from None
    if saved != dict(key):
        differ = _differing(saved, key)
        raise ValueError(
            f"{path}: this finished layer is of a run with other settings ({', '.join(differ)} differ); "
            "run again with the same checkpoint, positions and options to continue it, or delete it to start over"
        )
    return LayerPositions(record.layer, (c, h, w), coordinates, indices, width), record

