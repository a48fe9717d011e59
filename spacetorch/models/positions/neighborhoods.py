"""Neighborhoods: random square windows on the cortical sheet, trimmed to a common size.

For ``P`` windows of side ``width`` whose centres are uniform in
``[min + width / 2, max - width / 2]`` (per axis), let ``n_i`` be the number of units in window
``i`` (borders included).  With ``Q = min(max(percentile_5(n), 25), 500)``, windows holding
fewer than ``Q`` units are dropped and every other window keeps a uniformly random subset of
exactly ``Q`` of its units (without replacement, independently per window).

The naive way scans all ``N`` units for each of the ``P`` windows (``O(P * N)``).  Here the
units are sorted once by (horizontal band, x), with bands ``width / k`` high: the units of one
band inside a window's x-range are then a contiguous run of the sorted order, found by
binary search.  A window's count is exact: the bands strictly inside it contribute their
whole run, and only the units of its (at most two) border bands are tested one by one.  The
subset is then drawn in rank space (``Q`` distinct ranks among ``n_i``) and mapped back
through the window's runs, so the work grows with ``P * Q`` and not with ``P * n_i``.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch

__all__ = ["build_neighborhoods", "neighborhood_size"]

_CHUNK_ELEMENTS = 1 << 20  # bounds each temporary to about 8 MB


def neighborhood_size(counts: np.ndarray, min_size: int = 25, max_size: int = 500, percentile: float = 5.0) -> int:
    """``Q = min(max(percentile(counts), min_size), max_size)``, as an int."""
    return int(min(max(int(np.percentile(counts, percentile)), min_size), max_size))


def build_neighborhoods(
    coordinates: np.ndarray,
    width: float,
    n_neighborhoods: int,
    generator: torch.Generator,
    *,
    min_size: int = 25,
    max_size: int = 500,
    percentile: float = 5.0,
) -> np.ndarray:
    """Draw ``n_neighborhoods`` windows and return the kept neighborhoods.

    Args:
        coordinates: ``(N, 2)`` unit positions in mm (x, y).
        width: window side in mm.
        n_neighborhoods: number of windows drawn (``P``) before trimming.
        generator: a CPU ``torch.Generator``; the same state gives the same result.
        min_size, max_size, percentile: the trimming rule above.

    Returns:
        ``(P', Q)`` int32 unit indices, ``P' <= P`` (each row: ``Q`` distinct units).

    Raises:
        ValueError: the window is wider than the sheet, or no window holds ``min_size`` units.
    """
    xy = torch.as_tensor(np.asarray(coordinates), dtype=torch.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] < 2:
        raise ValueError(f"coordinates must have shape (N, 2) with N >= 2, got {tuple(xy.shape)}")
    if n_neighborhoods < 1:
        raise ValueError(f"n_neighborhoods must be >= 1, got {n_neighborhoods}")
    if not width > 0:
        raise ValueError(f"neighborhood width must be > 0 mm, got {width}")
    lo_xy, hi_xy = xy.min(0).values, xy.max(0).values
    extent = hi_xy - lo_xy
    if float(extent.min()) < width:
        raise ValueError(
            f"neighborhood width {width} mm is larger than the sheet "
            f"({float(extent[0]):.4g} x {float(extent[1]):.4g} mm)"
        )

    index = _BandIndex(xy, width)
    centres = lo_xy + width / 2 + torch.rand(n_neighborhoods, 2, generator=generator, dtype=torch.float64) * (extent - width)
    counts, runs = index.windows(centres - width / 2, centres + width / 2)
    q = neighborhood_size(counts.numpy(), min_size, max_size, percentile)
    keep = counts >= q
    if not bool(keep.any()):
        raise ValueError(
            f"no window of width {width} mm holds {q} units (largest holds {int(counts.max())}); "
            "use a wider neighborhood"
        )
    runs = runs.select(keep)
    ranks = _sorted_distinct_ranks(counts[keep], q, generator)
    return runs.units(ranks).to(torch.int32).numpy()


class _Runs:
    """Each window's units as runs of a pool: ``pool[start_j : start_j + length_j]``."""

    def __init__(self, pool: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor) -> None:
        self.pool, self.starts, self.lengths = pool, starts, lengths

    def select(self, mask: torch.Tensor) -> "_Runs":
        return _Runs(self.pool, self.starts[mask], self.lengths[mask])

    def units(self, ranks: torch.Tensor) -> torch.Tensor:
        """Unit index of the ``rank``-th unit of each window (ranks: ``(P, Q)``)."""
        ends = self.lengths.cumsum(1)
        out = torch.empty_like(ranks)
        for rows in _row_chunks(ranks.shape[0], ranks.shape[1]):
            run = torch.searchsorted(ends[rows], ranks[rows], right=True)
            offset = ranks[rows] - (ends[rows].gather(1, run) - self.lengths[rows].gather(1, run))
            out[rows] = self.pool[self.starts[rows].gather(1, run) + offset]
        return out


class _BandIndex:
    """Units sorted by (band, x) with integer keys ``band * N + rank_of_x`` (exact searches)."""

    def __init__(self, xy: torch.Tensor, width: float) -> None:
        n = xy.shape[0]
        self.n = n
        self.x, self.y = xy[:, 0].contiguous(), xy[:, 1].contiguous()
        self.y0 = float(self.y.min())
        area = float((self.x.max() - self.x.min()) * (self.y.max() - self.y.min()))
        expected = n * width * width / max(area, 1e-300)
        # k bands per window height balances binary searches (k) and border units (~2n/k)
        self.k = int(min(max(round(math.sqrt(expected / 2)), 1), 64))
        # work per window: k + 2 runs and about 2 * expected / k border units
        self.work_per_window = self.k + 2 + int(4 * expected / self.k)
        self.band_height = width / self.k
        self.x_sorted, x_order = torch.sort(self.x)
        x_rank = torch.empty(n, dtype=torch.int64)
        x_rank[x_order] = torch.arange(n)
        band = self._band(self.y)
        self.keys, self.order = torch.sort(band * n + x_rank)
        self.n_bands = int(band.max()) + 1

    def _band(self, y: torch.Tensor) -> torch.Tensor:
        return torch.floor((y - self.y0) / self.band_height).to(torch.int64)

    def windows(self, low: torch.Tensor, high: torch.Tensor) -> Tuple[torch.Tensor, _Runs]:
        """Exact unit counts ``(P,)`` of windows ``[low, high]`` (``(P, 2)`` corners) and their runs."""
        counts, starts, lengths, border = [], [], [], []
        offset = self.n
        for rows in _row_chunks(low.shape[0], self.work_per_window):
            count, start, length, units = self._window_chunk(low[rows], high[rows])
            start[:, -1] += offset
            offset += units.numel()
            counts.append(count)
            starts.append(start)
            lengths.append(length)
            border.append(units)
        runs = _Runs(torch.cat([self.order, *border]), torch.cat(starts), torch.cat(lengths))
        return torch.cat(counts), runs

    def _window_chunk(self, low: torch.Tensor, high: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        p = low.shape[0]
        ya, yb = low[:, 1], high[:, 1]
        rank_lo = torch.searchsorted(self.x_sorted, low[:, 0].contiguous())  # first x >= xa
        rank_hi = torch.searchsorted(self.x_sorted, high[:, 0].contiguous(), right=True)  # past x <= xb
        b_lo = self._band(ya).clamp(0, self.n_bands - 1)
        b_hi = self._band(yb).clamp(0, self.n_bands - 1)
        bands = b_lo[:, None] + torch.arange(self.k + 2)
        valid = bands <= b_hi[:, None]
        start = torch.searchsorted(self.keys, bands * self.n + rank_lo[:, None])
        stop = torch.searchsorted(self.keys, bands * self.n + rank_hi[:, None])
        length = torch.where(valid, stop - start, 0)
        inner = valid & (bands > b_lo[:, None]) & (bands < b_hi[:, None])

        # border bands: test each unit's y against the window
        border_len = torch.where(inner, 0, length).reshape(-1)
        total = int(border_len.sum())
        window_of = torch.arange(p).repeat_interleave(self.k + 2).repeat_interleave(border_len, output_size=total)
        run_start = (start.reshape(-1) - (border_len.cumsum(0) - border_len)).repeat_interleave(border_len, output_size=total)
        unit = self.order[run_start + torch.arange(total)]
        y = self.y[unit]
        inside = (y >= ya[window_of]) & (y <= yb[window_of])
        border_units = unit[inside]
        border_count = torch.bincount(window_of[inside], minlength=p)
        border_start = border_count.cumsum(0) - border_count

        inner_len = torch.where(inner, length, 0)
        return (
            inner_len.sum(1) + border_count,
            torch.cat([start, border_start[:, None]], 1),
            torch.cat([inner_len, border_count[:, None]], 1),
            border_units,
        )


def _row_chunks(rows: int, cols: int):  # type: ignore[no-untyped-def]
    step = max(1, _CHUNK_ELEMENTS // max(cols, 1))
    for begin in range(0, rows, step):
        yield slice(begin, min(begin + step, rows))


def _sorted_distinct_ranks(n: torch.Tensor, q: int, generator: torch.Generator) -> torch.Tensor:
    """For each row, ``q`` distinct ranks drawn uniformly from ``range(n_i)``, sorted.

    Rows with ``n_i <= 4q`` take all ``n_i`` ranks as candidates.  Larger rows take ``m``
    sorted i.i.d. ranks (from exponential spacings), whose distinct values number at least
    ``q`` with high probability (rows with fewer are drawn again).  Either way a uniformly
    random ``q`` of the distinct candidates is kept, so every ``q``-subset of ``range(n_i)``
    has the same probability.
    """
    out = torch.empty(n.shape[0], q, dtype=torch.int64)
    small = (n <= 4 * q).nonzero().squeeze(1)
    if small.numel():
        width = int(n[small].max())
        for rows in _row_chunks(small.numel(), width):
            candidates = torch.arange(width) < n[small[rows], None]
            out[small[rows]] = _choose(candidates, q, generator)
    large = (n > 4 * q).nonzero().squeeze(1)
    while large.numel():
        m = _draws_needed(int(n[large].min()), q)
        missed = []
        for rows in _row_chunks(large.numel(), m):
            ranks, distinct = _sorted_iid_ranks(n[large[rows]], m, generator)
            ok = distinct.sum(1) >= q
            out[large[rows][ok]] = ranks[ok].gather(1, _choose(distinct[ok], q, generator))
            missed.append(large[rows][~ok])
        large = torch.cat(missed)
    return out


def _choose(valid: torch.Tensor, q: int, generator: torch.Generator) -> torch.Tensor:
    """Column positions ``(R, q)``, sorted, of a uniformly random ``q`` of each row's valid entries.

    Every row must have at least ``q`` valid entries.  The ``d_i = valid_i - q`` entries with
    the largest random keys are dropped (a top-``max d`` search, cheap when ``d`` is small);
    when ``d`` is large the ``q`` smallest are kept instead.
    """
    rows, cols = valid.shape
    surplus = valid.sum(1) - q
    keys = torch.rand(rows, cols, generator=generator)  # ties only change which entries, never how many
    most = int(surplus.max()) if rows else 0
    if most <= q:  # drop the `surplus` valid entries with the largest keys
        keep = valid.clone()
        if most > 0:
            drop = torch.topk(keys.masked_fill_(~valid, -1.0), most, dim=1).indices
            keep.scatter_(1, drop, torch.arange(most) >= surplus[:, None])
    else:  # keep the q valid entries with the smallest keys
        keep = torch.zeros_like(valid)
        keep.scatter_(1, torch.topk(keys.masked_fill_(~valid, 2.0), q, dim=1, largest=False).indices, True)
    return keep.nonzero()[:, 1].view(rows, q)


def _draws_needed(n: int, q: int) -> int:
    """Draws from ``n`` values whose expected number of distinct values is ``q + 4 sqrt(q) + 4``."""
    target = min(q + 4 * math.sqrt(q) + 4, 0.95 * n)
    return max(q, math.ceil(math.log1p(-target / n) / math.log1p(-1 / n)))


def _sorted_iid_ranks(n: torch.Tensor, m: int, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """``m`` sorted i.i.d. uniform ranks in ``range(n_i)`` per row, and a first-of-its-value mask."""
    # normalised partial sums of m + 1 exponentials are the order statistics of m uniforms
    uniform01 = torch.rand(n.shape[0], m + 1, dtype=torch.float64, generator=generator)
    cumulative = uniform01.neg_().add_(1.0).log_().neg_().cumsum_(1)  # -log(1 - u) > -inf
    uniform = cumulative[:, :m] / cumulative[:, m:]
    ranks = torch.minimum((uniform * n[:, None]).long(), n[:, None] - 1)
    distinct = torch.ones_like(ranks, dtype=torch.bool)
    distinct[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
    return ranks, distinct
