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
subset is drawn in rank space (``Q`` distinct ranks among ``n_i``, Floyd's algorithm) and
mapped back through the window's runs, so the work grows with ``P * Q`` and not with
``P * n_i``.

The two passes (count, then sample) are compiled with numba (cached on disk after the
first run) and split over threads by windows.  Each window draws from its own
counter-based stream (SplitMix64 keyed by the layer's key and the window's number), so the
result does not depend on the number of threads.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Tuple

import numba
import numpy as np

__all__ = ["build_neighborhoods", "neighborhood_size"]

_BANDS_MAX = 64


def neighborhood_size(counts: np.ndarray, min_size: int = 25, max_size: int = 500, percentile: float = 5.0) -> int:
    """``Q = min(max(percentile(counts), min_size), max_size)``, as an int."""
    return int(min(max(int(np.percentile(counts, percentile)), min_size), max_size))


def build_neighborhoods(
    coordinates: np.ndarray,
    width: float,
    n_neighborhoods: int,
    rng: np.random.Generator,
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
        rng: a NumPy generator; the same state gives the same result.
        min_size, max_size, percentile: the trimming rule above.

    Returns:
        ``(P', Q)`` int32 unit indices, ``P' <= P`` (each row: ``Q`` distinct units).

    Raises:
        ValueError: the window is wider than the sheet, or no window holds ``min_size`` units.
    """
    xy = np.asarray(coordinates, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] < 2:
        raise ValueError(f"coordinates must have shape (N, 2) with N >= 2, got {xy.shape}")
    if n_neighborhoods < 1:
        raise ValueError(f"n_neighborhoods must be >= 1, got {n_neighborhoods}")
    if not width > 0:
        raise ValueError(f"neighborhood width must be > 0 mm, got {width}")
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    lo_xy = np.array([x.min(), y.min()])
    extent = np.array([x.max(), y.max()]) - lo_xy
    if float(extent.min()) < width:
        raise ValueError(
            f"neighborhood width {width} mm is larger than the sheet ({extent[0]:.4g} x {extent[1]:.4g} mm)"
        )

    index = BandIndex(x, y, width)
    low = lo_xy + rng.random((n_neighborhoods, 2)) * (extent - width)
    counts = index.count(low, low + width)
    q = neighborhood_size(counts, min_size, max_size, percentile)
    kept = np.flatnonzero(counts >= q)
    if kept.size == 0:
        raise ValueError(
            f"no window of width {width} mm holds {q} units (largest holds {int(counts.max())}); "
            "use a wider neighborhood"
        )
    return index.sample(low[kept], low[kept] + width, q, kept, key=int(rng.integers(0, 2**63)))


class BandIndex:
    """Units sorted by (band, x); windows ``[low, high]`` are counted and sampled through it.

    Bands are ``width / k`` high.  A window of ``n`` units costs ``k + 2`` pairs of binary
    searches plus about ``2 n / k`` units tested one by one in its border bands; a pair of
    searches costs about as much as 8 such tests, so ``k = sqrt(n / 16)`` (at most 64).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, width: float) -> None:
        self.y0 = float(y.min())
        expected = len(x) * width * width / max(float(np.ptp(x) * np.ptp(y)), 1e-300)
        k = int(min(max(round(math.sqrt(expected / 16)), 1), _BANDS_MAX))
        self.band_height = width / k
        self.max_bands = k + 2  # a window's edges fall at most k + 1 bands apart
        band = self._band(y)
        n_bands = int(band.max()) + 1
        by_x = np.argsort(x)
        band_by_x = band[by_x].astype(np.int16) if n_bands <= 2**15 else band[by_x]  # NumPy radix-sorts int16
        self.order = by_x[np.argsort(band_by_x, kind="stable")].astype(np.int32)  # by band, then x
        self.x, self.y = x[self.order], y[self.order]
        self.band_start = np.searchsorted(band[self.order], np.arange(n_bands + 1))

    def _band(self, y: np.ndarray) -> np.ndarray:
        """Band of each ``y``: monotone in ``y``, so units and window edges agree exactly."""
        return np.floor((y - self.y0) / self.band_height).astype(np.int64)

    def _windows(self, low: np.ndarray, high: np.ndarray) -> Tuple[Any, ...]:
        """The arguments every kernel takes after its row range: the index and the windows."""
        last = len(self.band_start) - 2
        low = np.ascontiguousarray(low, dtype=np.float64)
        high = np.ascontiguousarray(high, dtype=np.float64)
        b_lo, b_hi = self._band(low[:, 1]).clip(0, last), self._band(high[:, 1]).clip(0, last)
        return self.order, self.x, self.y, self.band_start, self.max_bands, low, high, b_lo, b_hi

    def count(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Exact number of units in each window ``[low_i, high_i]`` (``(P, 2)`` corners), int64."""
        counts = np.empty(len(low), dtype=np.int64)
        _over_threads(_count_rows, len(low), *self._windows(low, high), counts)
        return counts

    def sample(self, low: np.ndarray, high: np.ndarray, q: int, numbers: np.ndarray, key: int) -> np.ndarray:
        """``(P, q)`` int32: a uniform ``q``-subset of each window's units (each must hold ``q``).

        Window ``i`` draws from the stream of ``(key, numbers[i])``.
        """
        out = np.empty((len(low), q), dtype=np.int32)
        numbers = np.ascontiguousarray(numbers, dtype=np.int64)
        _over_threads(_sample_rows, len(low), *self._windows(low, high), numbers, np.uint64(key), out)
        return out


def _sample_ranks(n: np.ndarray, q: int, key: int) -> np.ndarray:
    """``(len(n), q)`` distinct ranks per row, uniform over the ``q``-subsets of ``range(n_i)``.

    The neighborhoods' sampler on its own (for tests); row ``i`` draws from the stream of
    ``(key, i)``.
    """
    n = np.ascontiguousarray(n, dtype=np.int64)
    if n.size and int(n.min()) < q:
        raise ValueError(f"every row needs at least q={q} values, the smallest has {int(n.min())}")
    out = np.empty((len(n), q), dtype=np.int64)
    _ranks_rows(n, np.uint64(key), out)
    return out


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _over_threads(kernel: Callable[..., None], rows: int, *args: Any) -> None:
    """``kernel(begin, end, *args)`` on equal slices of ``range(rows)``, one thread each."""
    bounds = np.linspace(0, rows, max(1, min(_threads(), rows // 256)) + 1).astype(np.int64)
    if len(bounds) == 2:
        kernel(0, rows, *args)
        return
    with ThreadPoolExecutor(len(bounds) - 1) as pool:  # the kernels release the GIL
        for job in [pool.submit(kernel, begin, end, *args) for begin, end in zip(bounds[:-1], bounds[1:])]:
            job.result()


# --- compiled kernels ------------------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_A = np.uint64(0xBF58476D1CE4E5B9)
_MIX_B = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1 << 32)
_jit = numba.njit(cache=True, nogil=True)


@_jit
def _mix(z: np.uint64) -> np.uint64:  # SplitMix64's output function
    z = (z ^ (z >> np.uint64(30))) * _MIX_A
    z = (z ^ (z >> np.uint64(27))) * _MIX_B
    return z ^ (z >> np.uint64(31))


@_jit
def _stream(key: np.uint64, number: np.int64) -> np.uint64:
    """Start of the random stream of window ``number``."""
    return _mix(key ^ _mix(np.uint64(number) * _GAMMA + _GAMMA))


@_jit
def _below(state: np.uint64, m: np.uint64) -> Tuple[np.uint64, np.uint64]:
    """Next state and an exactly uniform integer in ``[0, m)``, ``1 <= m <= 2**32`` (Lemire)."""
    while True:
        state += _GAMMA
        product = (_mix(state) >> np.uint64(32)) * m
        fraction = product & _LOW32
        if fraction >= m or fraction >= (_TWO32 - m) % m:
            return state, product >> np.uint64(32)


@_jit
def _draw(n: int, state: np.uint64, marked: np.ndarray, ranks: np.ndarray) -> None:
    """``ranks`` = a uniform ``len(ranks)``-subset of ``range(n)`` (Floyd's algorithm).

    ``marked`` (at least ``n`` long) is all False on entry and on return.
    """
    q = len(ranks)
    for i in range(q):
        j = n - q + i
        state, t = _below(state, np.uint64(j + 1))
        r = np.int64(t)  # (a uint64 and an int64 would unify to float64)
        if marked[r]:
            r = np.int64(j)
        marked[r] = True
        ranks[i] = r
    for i in range(q):
        marked[ranks[i]] = False


@_jit
def _lower_bound(values: np.ndarray, begin: int, end: int, value: float) -> int:
    while begin < end:  # first index in [begin, end) with values[index] >= value
        mid = (begin + end) >> 1
        if values[mid] < value:
            begin = mid + 1
        else:
            end = mid
    return begin


@_jit
def _upper_bound(values: np.ndarray, begin: int, end: int, value: float) -> int:
    while begin < end:  # first index in [begin, end) with values[index] > value
        mid = (begin + end) >> 1
        if values[mid] <= value:
            begin = mid + 1
        else:
            end = mid
    return begin


@_jit
def _window_runs(x, y, band_start, low, high, b_lo, b_hi, w, run_start, run_end, border):  # type: ignore[no-untyped-def]
    """Window ``w``'s units: runs ``[run_start, run_end)`` of inner bands, then border units.

    Returns the number of runs, of units in runs and of border units (``border[:count]``,
    positions in the sorted order).
    """
    xa, ya, xb, yb = low[w, 0], low[w, 1], high[w, 0], high[w, 1]
    runs = inner = n_border = 0
    for b in range(b_lo[w], b_hi[w] + 1):
        begin = _lower_bound(x, band_start[b], band_start[b + 1], xa)
        end = _upper_bound(x, begin, band_start[b + 1], xb)
        if b == b_lo[w] or b == b_hi[w]:  # test each unit's y; written always, kept if inside
            for s in range(begin, end):
                border[n_border] = s
                n_border += (ya <= y[s]) & (y[s] <= yb)
        elif end > begin:
            run_start[runs] = begin
            run_end[runs] = end
            runs += 1
            inner += end - begin
    return runs, inner, n_border


@_jit
def _count_rows(begin, end, order, x, y, band_start, max_bands, low, high, b_lo, b_hi, counts):  # type: ignore[no-untyped-def]
    run_start = np.empty(max_bands, np.int64)
    run_end = np.empty(max_bands, np.int64)
    border = np.empty(len(x), np.int64)
    for w in range(begin, end):
        _, inner, n_border = _window_runs(x, y, band_start, low, high, b_lo, b_hi, w, run_start, run_end, border)
        counts[w] = inner + n_border


@_jit
def _sample_rows(begin, end, order, x, y, band_start, max_bands, low, high, b_lo, b_hi, numbers, key, out):  # type: ignore[no-untyped-def]
    run_start = np.empty(max_bands, np.int64)
    run_end = np.empty(max_bands, np.int64)
    run_first = np.empty(max_bands + 1, np.int64)  # rank of each run's first unit
    run_at = np.empty(4 * max_bands + 2, np.int64)  # run holding rank b << shift
    border = np.empty(len(x), np.int64)
    marked = np.zeros(len(x), np.bool_)
    ranks = np.empty(out.shape[1], np.int64)
    for w in range(begin, end):
        runs, inner, n_border = _window_runs(x, y, band_start, low, high, b_lo, b_hi, w, run_start, run_end, border)
        _draw(inner + n_border, _stream(key, numbers[w]), marked, ranks)
        # ranks 0..inner-1 walk the runs in order, the rest the border units.  Buckets of
        # 2**shift ranks, at most half a mean run long, find a rank's run in about one step.
        run_first[0] = 0
        for r in range(runs):
            run_first[r + 1] = run_first[r] + run_end[r] - run_start[r]
        shift = 0
        while runs and (inner >> (shift + 1)) >= 2 * runs:
            shift += 1
        r = 0
        for b in range((inner >> shift) + 1):
            while r + 1 < runs and run_first[r + 1] <= (b << shift):
                r += 1
            run_at[b] = r
        for i in range(len(ranks)):
            rank = ranks[i]
            if rank >= inner:
                out[w, i] = order[border[rank - inner]]
                continue
            r = run_at[rank >> shift]
            while run_first[r + 1] <= rank:
                r += 1
            out[w, i] = order[run_start[r] + rank - run_first[r]]


@_jit
def _ranks_rows(n, key, out):  # type: ignore[no-untyped-def]
    marked = np.zeros(max(n.max(), 1) if len(n) else 1, np.bool_)
    for w in range(len(n)):
        _draw(n[w], _stream(key, w), marked, out[w])
