"""swapopt's device path: the attempts of a wave's windows as one Triton kernel, one program per
window, with the same slots, order and tie rule as the numba path (``swapopt._attempt_windows``).

Each window's correlation block is computed once, on the device, for all the windows of a wave
in one batched product, **in the order of the window's units when its attempts start**, and is
then only read.  A swap does not move rows of that block; it exchanges the two units' places.
So a program keeps, in registers, the place (slot) of each of its window's units and that
place's coordinates, and an attempt on units ``ka, kb`` reads their two rows of the block and
computes their distance rows from the coordinates:

    M[a, b] = sum_k C[ka, k] / (|p(kb) - p(k)| + 1),

the same four dot products as the numba path's (which keeps the same table, and looks the
distances up in the window's distance block instead of computing them).  Row sums of the
block (per unit) and of the distance block (per slot) do not change with swaps and are
computed beforehand.  Nothing is written while the attempts run, so the programs need no
synchronisation.

On a CPU tensor the same kernel runs in Triton's interpreter (slowly): the parity tests use that.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

try:  # comes with PyTorch's CUDA builds on Linux
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the numba path is used
    triton = tl = None

if TYPE_CHECKING:
    from spacetorch.models.positions.swapopt import WindowPlan

__all__ = ["available", "run_plan_device"]


def available() -> str | None:
    """None if the device path can run here, else why not."""
    if triton is None:
        return "Triton is not installed (it comes with PyTorch's CUDA builds on Linux)"
    return None


def _attempts(  # type: ignore[no-untyped-def]  # a Triton kernel: its arguments are pointers and scalars
    corr_ptr,  # (B, P, P) each window's correlation block, its units in their order at the start
    coords_ptr,  # (B, P, 2) the coordinates of each window's slots
    stats_ptr,  # (B, P, 4) per unit: its block row's sum and sum of squares; per slot: the same of D
    pairs_ptr,  # (B, A, 2) int32 candidate pairs (indices of the window's units)
    sizes_ptr,  # (B,) units in each window
    slot_ptr,  # (B, P) int32 out: the slot of each unit at the end
    accepted_ptr,  # (B,) int32 out
    attempts,
    tolerance,
    P: tl.constexpr,
):
    # sums are tl.reduce with the standard library's sum (what tl.sum runs), which Triton's
    # interpreter also runs when the kernel is interpreted without TRITON_INTERPRET set
    w = tl.program_id(0)
    m = tl.load(sizes_ptr + w)
    offs = tl.arange(0, P)
    inside = offs < m
    qx = tl.load(coords_ptr + (w * P + offs) * 2, mask=inside, other=0.0)
    qy = tl.load(coords_ptr + (w * P + offs) * 2 + 1, mask=inside, other=0.0)
    qs = offs  # the slot of each unit
    n = 2.0 * m
    count = 0
    for t in range(attempts):
        ka = tl.load(pairs_ptr + (w * attempts + t) * 2)
        kb = tl.load(pairs_ptr + (w * attempts + t) * 2 + 1)
        sa = tl.reduce(tl.where(offs == ka, qs, 0), 0, tl.standard._sum_combine)
        sb = tl.reduce(tl.where(offs == kb, qs, 0), 0, tl.standard._sum_combine)
        xa = tl.load(coords_ptr + (w * P + sa) * 2)
        ya = tl.load(coords_ptr + (w * P + sa) * 2 + 1)
        xb = tl.load(coords_ptr + (w * P + sb) * 2)
        yb = tl.load(coords_ptr + (w * P + sb) * 2 + 1)
        ca = tl.load(corr_ptr + (w * P + ka) * P + offs, mask=inside, other=0.0)
        cb = tl.load(corr_ptr + (w * P + kb) * P + offs, mask=inside, other=0.0)
        da = tl.where(inside, 1.0 / (tl.sqrt((qx - xa) * (qx - xa) + (qy - ya) * (qy - ya)) + 1.0), 0.0)
        db = tl.where(inside, 1.0 / (tl.sqrt((qx - xb) * (qx - xb) + (qy - yb) * (qy - yb)) + 1.0), 0.0)
        maa = tl.reduce(ca * da, 0, tl.standard._sum_combine)
        mbb = tl.reduce(cb * db, 0, tl.standard._sum_combine)
        mab = tl.reduce(ca * db, 0, tl.standard._sum_combine)
        mba = tl.reduce(cb * da, 0, tl.standard._sum_combine)
        sx = tl.load(stats_ptr + (w * P + ka) * 4) + tl.load(stats_ptr + (w * P + kb) * 4)
        sxx = tl.load(stats_ptr + (w * P + ka) * 4 + 1) + tl.load(stats_ptr + (w * P + kb) * 4 + 1)
        sy = tl.load(stats_ptr + (w * P + sa) * 4 + 2) + tl.load(stats_ptr + (w * P + sb) * 4 + 2)
        syy = tl.load(stats_ptr + (w * P + sa) * 4 + 3) + tl.load(stats_ptr + (w * P + sb) * 4 + 3)
        caa = tl.load(corr_ptr + (w * P + ka) * P + ka)
        cbb = tl.load(corr_ptr + (w * P + kb) * P + kb)
        cab = tl.load(corr_ptr + (w * P + ka) * P + kb)
        dab = 1.0 / (tl.sqrt((xa - xb) * (xa - xb) + (ya - yb) * (ya - yb)) + 1.0)
        change = mab + mba - maa - mbb + (caa + cbb - 2.0 * cab) * (1.0 - dab)
        scale = tl.abs(mab) + tl.abs(mba) + tl.abs(maa) + tl.abs(mbb)
        # a constant row: the correlation is undefined (NaN in the reference), no swap
        keep = (sxx - sx * sx / n > 0.0) & (syy - sy * sy / n > 0.0) & (change > tolerance * scale)
        # unit kb moves to slot a and unit ka to slot b, if the swap is kept
        qx = tl.where(keep, tl.where(offs == kb, xa, tl.where(offs == ka, xb, qx)), qx)
        qy = tl.where(keep, tl.where(offs == kb, ya, tl.where(offs == ka, yb, qy)), qy)
        qs = tl.where(keep, tl.where(offs == kb, sa, tl.where(offs == ka, sb, qs)), qs)
        count += keep.to(tl.int32)
    tl.store(slot_ptr + w * P + offs, qs, mask=inside)
    tl.store(accepted_ptr + w, count)


@functools.cache
def _kernel(interpret: bool) -> Any:
    """The kernel, compiled for the GPU or for Triton's interpreter (CPU tensors)."""
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(_attempts)
    return triton.jit(_attempts, do_not_specialize=["attempts"])


def _blocks(z: torch.Tensor, units: torch.Tensor, plan: WindowPlan, rows: np.ndarray, width: int) -> tuple[torch.Tensor, ...]:
    """The wave's slots padded to ``(B, width)`` (``-1`` past a window's end), its units, and each
    window's correlation block in the order of its units (zero past its end)."""
    device = z.device
    sizes = np.diff(plan.offsets)[rows]
    slots = np.full((len(rows), width), -1, dtype=np.int64)
    for k, i in enumerate(rows):
        slots[k, :sizes[k]] = plan.window(int(i))
    slots_t = torch.from_numpy(slots).to(device)
    inside = slots_t >= 0
    local = torch.where(inside, units[slots_t.clamp(min=0)], -1)
    zw = torch.where(inside[..., None], z[local.clamp(min=0)], 0)
    corr = torch.bmm(zw, zw.transpose(1, 2))
    return slots_t, inside, local, corr, torch.from_numpy(sizes).to(device)


def run_plan_device(z: torch.Tensor, units: torch.Tensor, xy: torch.Tensor, plan: WindowPlan, tolerance: float) -> int:
    """Make every attempt of ``plan`` wave by wave on ``z``'s device; ``units`` (the unit at
    each slot, on that device) is updated in place.  Returns the number of swaps kept.

    ``z``: ``(N, S)`` standardised responses (float32 or float64; the attempts run in that
    precision), ``xy``: ``(N, 2)`` slot coordinates in the same dtype."""
    device = z.device
    kernel = _kernel(device.type == "cpu")
    total = torch.zeros((), dtype=torch.int64, device=device)
    pairs_all = torch.from_numpy(plan.pairs).to(device)
    # one block width for the whole plan (a power of two: the kernel is compiled once per width)
    width = max(16, 1 << int(np.diff(plan.offsets).max(initial=1) - 1).bit_length())
    for wave in range(int(plan.wave.max()) + 1 if len(plan) else 0):
        rows = np.flatnonzero(plan.wave == wave)
        slots, inside, local, corr, sizes = _blocks(z, units, plan, rows, width)
        coords = torch.where(inside[..., None], xy[slots.clamp(min=0)], 0)
        distance = 1.0 / (torch.linalg.vector_norm(coords[:, :, None] - coords[:, None], dim=-1) + 1.0)
        distance = distance * (inside[:, :, None] & inside[:, None, :])
        stats = torch.stack([corr.sum(-1), (corr * corr).sum(-1), distance.sum(-1), (distance * distance).sum(-1)], -1)
        slot_of = torch.zeros((len(rows), width), dtype=torch.int32, device=device)
        accepted = torch.zeros(len(rows), dtype=torch.int32, device=device)
        pairs = pairs_all[torch.from_numpy(rows).to(device)].contiguous()
        kernel[(len(rows),)](
            corr.contiguous(), coords.contiguous(), stats.contiguous(), pairs, sizes.to(torch.int32),
            slot_of, accepted, plan.pairs.shape[1], tolerance, P=width,
        )
        moved = slots.gather(1, slot_of.long())  # where each unit now sits
        units[moved[inside]] = local[inside]
        total += accepted.sum()
    return int(total)

