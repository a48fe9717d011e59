"""Category selectivity and category patches (a VTC-like layer, e.g. ``layer4.1``).

Selectivity of a unit for category ``c``: Welch's t-statistic between its responses to the
images of ``c`` and to all other images.  Patches (Margalit et al. 2024): the units' t-values
are smoothed on the sheet with a Gaussian (sigma 2.4 mm), thresholded at ``t > 2``, and the
connected regions of 100 to 4,500 mm^2 holding at least 10 units are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CategoryPatches", "Patch", "category_overlap", "category_patches", "category_selectivity"]


def category_selectivity(
    responses: np.ndarray, labels: Sequence[int] | np.ndarray, measure: str = "t"
) -> tuple[np.ndarray, np.ndarray]:
    """Welch t-statistic (``measure="t"``) or d' (``"dprime"``: the difference of the means over
    the root mean of the two variances) of every unit for every category, one category vs the rest.

    Args:
        responses: ``(S, N)`` responses to S labelled images.
        labels: ``(S,)`` integer category of each image.

    Returns:
        ``categories (K,)`` the distinct labels, sorted, and ``t (K, N)``; 0 where a unit's
        responses have no variance in either group.

    Raises:
        ValueError: shapes that disagree, or a category with fewer than 2 images (or fewer
            than 2 images outside it).
    """
    if measure not in ("t", "dprime"):
        raise ValueError(f"measure must be 't' or 'dprime', got {measure!r}")
    r = np.asarray(responses, dtype=np.float64)
    y = np.asarray(labels)
    if r.ndim != 2 or y.shape != (r.shape[0],):
        raise ValueError(f"responses must be (S, N) and labels (S,), got {r.shape} and {y.shape}")
    categories = np.unique(y)
    t = np.zeros((len(categories), r.shape[1]))
    for k, category in enumerate(categories):
        inside = y == category
        a, b = r[inside], r[~inside]
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"category {category} has {len(a)} images and the rest {len(b)}; each needs >= 2")
        if measure == "t":
            spread = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        else:
            spread = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)
        difference = a.mean(0) - b.mean(0)
        ok = spread > 0
        t[k, ok] = difference[ok] / spread[ok]
    return categories, t


@dataclass
class Patch:
    """One patch: area (mm^2), units inside, centroid (mm)."""

    area: float
    n_units: int
    x: float
    y: float


@dataclass
class CategoryPatches:
    """The patches of one category map, and the smoothed map they come from.

    Attributes:
        patches: the kept patches.
        x, y: ``(W,)``, ``(H,)`` grid of the smoothed map, mm.
        smoothed: ``(H, W)`` smoothed t-values (NaN far from any unit).
        labels: ``(H, W)`` 0 outside kept patches, ``i + 1`` inside ``patches[i]``.
    """

    patches: list[Patch]
    x: np.ndarray
    y: np.ndarray
    smoothed: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.patches)

    @property
    def total_area(self) -> float:
        return float(sum(p.area for p in self.patches))


def category_patches(
    coordinates: np.ndarray,
    t: np.ndarray,
    *,
    sigma: float = 2.4,
    threshold: float = 2.0,
    min_area: float = 100.0,
    max_area: float = 4500.0,
    min_units: int = 10,
    resolution: float | None = None,
) -> CategoryPatches:
    """Patches of one category's selectivity map.

    The t-values are averaged per grid pixel and smoothed by normalised Gaussian convolution
    (pixels far from any unit get NaN); connected pixels above ``threshold`` (4-connected)
    form a region, kept if its area is in ``[min_area, max_area]`` mm^2 and it holds at least
    ``min_units`` units.

    Args:
        coordinates: ``(N, 2)`` mm.
        t: ``(N,)`` selectivity of each unit for the category.
        sigma: Gaussian smoothing, mm.
        resolution: grid pixel size, mm (default ``sigma / 4``).

    Raises:
        ValueError: shapes that disagree, or non-positive sizes.
    """
    from scipy import ndimage

    xy = np.asarray(coordinates, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or t.shape != (xy.shape[0],):
        raise ValueError(f"coordinates must be (N, 2) and t (N,), got {xy.shape} and {t.shape}")
    if not (sigma > 0 and (resolution is None or resolution > 0)):
        raise ValueError(f"sigma and resolution must be > 0 mm, got {sigma} and {resolution}")
    step = sigma / 4 if resolution is None else float(resolution)
    low = xy.min(0)
    cols, rows = (np.floor((xy - low) / step).astype(np.int64)).T
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    sums = np.zeros(shape)
    counts = np.zeros(shape)
    np.add.at(sums, (rows, cols), t)
    np.add.at(counts, (rows, cols), 1.0)
    weight = ndimage.gaussian_filter(counts, sigma / step, mode="constant")
    numerator = ndimage.gaussian_filter(sums, sigma / step, mode="constant")
    covered = weight > 1e-3 * weight.max()
    smoothed = np.full(shape, np.nan)
    smoothed[covered] = numerator[covered] / weight[covered]
    regions, n_regions = ndimage.label(np.where(covered, smoothed, -np.inf) > threshold)
    unit_region = regions[rows, cols]
    labels = np.zeros(shape, dtype=np.int64)
    patches: list[Patch] = []
    for region in range(1, n_regions + 1):
        pixels = regions == region
        area = float(pixels.sum()) * step * step
        n_units = int((unit_region == region).sum())
        if min_area <= area <= max_area and n_units >= min_units:
            r, c = np.nonzero(pixels)
            patches.append(Patch(area, n_units, float(low[0] + (c.mean() + 0.5) * step), float(low[1] + (r.mean() + 0.5) * step)))
            labels[pixels] = len(patches)
    x = low[0] + (np.arange(shape[1]) + 0.5) * step
    y = low[1] + (np.arange(shape[0]) + 0.5) * step
    return CategoryPatches(patches, x, y, smoothed, labels)


def category_overlap(maps: Sequence[CategoryPatches]) -> np.ndarray:
    """``(K, K)`` overlap of the categories' patches: the area both cover over the area either
    covers (Jaccard index; 1 on the diagonal of a category with patches, NaN where neither has any).

    Raises:
        ValueError: maps on different grids (made from other units or settings).
    """
    masks = [m.labels > 0 for m in maps]
    if len({mask.shape for mask in masks}) > 1:
        raise ValueError("category maps on different grids: make them from the same units and settings")
    k = len(masks)
    overlap = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            either = np.logical_or(masks[i], masks[j]).sum()
            if either:
                overlap[i, j] = np.logical_and(masks[i], masks[j]).sum() / either
    return overlap
