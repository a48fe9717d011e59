"""Self-organising map (SOM) baselines of the TDANN paper (Figs. 2-3), trained with MiniSom.

**V1 SOM** (the "feature-poor" SOM of the original code, after Swindale's models).  A sheet of
``edge x edge`` nodes learns a 6-D feature space: orientation as ``(a, b) = R (cos 2 theta,
sin 2 theta)``, spatial frequency in ``[0, 1]``, colour (0 or 1) and retinotopic ``(x, y)`` on a
``sheet x sheet`` square.  Node ``(k, l)`` starts at retinotopic position ``(k, l) * sheet / edge``
plus Gaussian noise (``sigma_xy``), with weak random orientation (``a, b`` of size ``sigma_ab``)
and SF and colour near 0.5.  Trained on ``samples`` random feature vectors for ``iterations``
steps (learning rate ``epsilon``, neighbourhood ``sigma`` nodes), a node's response to a grating
is the dot product of its non-retinotopic weights (SF and colour centred on their means) with the
grating's ``(cos 2 theta, sin 2 theta, sf / sf_max - 0.5, colour - 0.5)``.  Nodes sit on a sheet
of ``tissue_size`` mm (the original's 4.56).

**VTC SOM**.  A SOM trained on a network's features of many images (the paper: the avgpool
features of a non-topographic SimCLR ResNet-18), reduced by PCA.  A node's response to an image
is minus the distance between the image's reduced features and the node's weights (MiniSom's
``activate`` gives the distance; the sign makes "closer" a stronger response, so that the
selectivity of a node near the faces is positive).  Nodes sit on a sheet of ``tissue_size`` mm
(the original's 10).  The original's settings for this SOM are not published; the defaults here
(20 PCA components, sigma 2.5, learning rate 0.5, 128 x 128 nodes) are stated, not reproduced.

The SOMs' responses go through the same analyses as a network's (orientation maps, category
patches), so TDANN and SOM maps can be shown side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["V1SOMSettings", "VTCSOM", "V1SOM", "train_v1_som", "train_vtc_som"]


@dataclass(frozen=True)
class V1SOMSettings:
    """The V1 SOM's settings; the defaults are the original's."""

    edge: int = 128
    epsilon: float = 0.02
    sigma: float = 2.5
    radius: float = 1.0  # R: length of the orientation vector of the samples
    sheet: float = 15.0  # side of the retinotopic square the samples come from
    sigma_ab: float = 0.1
    sigma_xy: float = 0.5
    samples: int = 10_000
    iterations: int = 1_000_000
    tissue_size: float = 4.56  # mm
    seed: int = 424

    def __post_init__(self) -> None:
        for name in ("edge", "samples", "iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epsilon", "sigma", "radius", "sheet", "tissue_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


def _grid_positions(edge: int, tissue_size: float) -> np.ndarray:
    """``(edge^2, 2)`` node positions in mm, node ``(k, l)`` at ``(k, l) / edge * tissue_size``."""
    rows, cols = np.meshgrid(np.arange(edge), np.arange(edge), indexing="ij")
    return np.column_stack([rows.ravel(), cols.ravel()]).astype(np.float64) / edge * tissue_size


@dataclass
class V1SOM:
    """A trained V1 SOM: ``weights (edge, edge, 6)`` as ``(a, b, sf, colour, x, y)``."""

    weights: np.ndarray
    settings: V1SOMSettings

    @property
    def positions(self) -> np.ndarray:
        return _grid_positions(self.settings.edge, self.settings.tissue_size)

    def responses(self, orientation: np.ndarray, spatial_frequency: np.ndarray, color: np.ndarray) -> np.ndarray:
        """``(S, edge^2)`` responses to gratings with these ``(S,)`` parameters (degrees; cycles per
        image, scaled by the largest; ``"bw"`` is colour 0, any other colour 1)."""
        w = self.weights[..., :4].reshape(-1, 4).copy()
        w[:, 2:] -= w[:, 2:].mean(0)
        theta = np.deg2rad(np.asarray(orientation, dtype=np.float64))
        sf = np.asarray(spatial_frequency, dtype=np.float64)
        colour = (np.asarray(color) != "bw").astype(np.float64)
        stimuli = np.column_stack([np.cos(2 * theta), np.sin(2 * theta), sf / sf.max() - 0.5, colour - 0.5])
        responses: np.ndarray = stimuli @ w.T
        return responses


def train_v1_som(settings: V1SOMSettings | None = None, *, verbose: bool = False) -> V1SOM:
    """Train the V1 SOM (minutes at the original's size: 10^6 steps over 128 x 128 nodes)."""
    from minisom import MiniSom

    s = settings or V1SOMSettings()
    rng = np.random.default_rng(s.seed)
    theta = rng.uniform(0, np.pi, s.samples)
    samples = np.column_stack([
        s.radius * np.cos(2 * theta), s.radius * np.sin(2 * theta), rng.uniform(0, 1, s.samples),
        (rng.random(s.samples) > 0.5).astype(np.float64), rng.uniform(0, s.sheet, s.samples), rng.uniform(0, s.sheet, s.samples),
    ])  # fmt: skip
    rows, cols = np.meshgrid(np.arange(s.edge), np.arange(s.edge), indexing="ij")
    node_theta = rng.uniform(0, np.pi, (s.edge, s.edge))
    weights = np.stack([
        rng.normal(0, s.sigma_ab, (s.edge, s.edge)) * np.cos(2 * node_theta),
        rng.normal(0, s.sigma_ab, (s.edge, s.edge)) * np.sin(2 * node_theta),
        rng.normal(0.5, s.sigma_ab, (s.edge, s.edge)),
        rng.normal(0.5, s.sigma_ab, (s.edge, s.edge)),
        rows * s.sheet / s.edge + rng.normal(0, s.sigma_xy, (s.edge, s.edge)),
        cols * s.sheet / s.edge + rng.normal(0, s.sigma_xy, (s.edge, s.edge)),
    ], axis=-1)  # fmt: skip
    som = MiniSom(s.edge, s.edge, 6, sigma=s.sigma, learning_rate=s.epsilon, random_seed=s.seed)
    som._weights = weights  # MiniSom keeps its weights here; it has no setter
    som.train(samples, s.iterations, random_order=True, verbose=verbose)
    return V1SOM(np.asarray(som.get_weights()).copy(), s)


@dataclass
class VTCSOM:
    """A trained VTC SOM with the PCA that reduces features for it."""

    som: Any
    pca: Any
    tissue_size: float

    @property
    def edge(self) -> int:
        return int(self.som.get_weights().shape[0])

    @property
    def positions(self) -> np.ndarray:
        return _grid_positions(self.edge, self.tissue_size)

    def responses(self, features: np.ndarray) -> np.ndarray:
        """``(S, edge^2)``: minus the distance of each image's reduced features to each node."""
        reduced = self.pca.transform(np.asarray(features, dtype=np.float64).reshape(len(features), -1))
        weights = self.som.get_weights().reshape(-1, reduced.shape[1])
        distances = np.sqrt(((reduced[:, None, :] - weights[None]) ** 2).sum(-1))
        responses: np.ndarray = -distances
        return responses


def train_vtc_som(
    features: np.ndarray, *, components: int = 20, edge: int = 128, sigma: float = 2.5, learning_rate: float = 0.5,
    iterations: int = 100_000, tissue_size: float = 10.0, seed: int = 424, verbose: bool = False,
) -> VTCSOM:  # fmt: skip
    """Train a VTC SOM on ``(n_images, ...)`` features (flattened per image).

    Raises:
        ValueError: fewer images than PCA components.
    """
    from minisom import MiniSom
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if len(x) <= components or x.shape[1] < components:
        raise ValueError(f"the VTC SOM's PCA keeps {components} components: it needs more images and features "
                         f"than that, got {x.shape}")  # fmt: skip
    pca = PCA(n_components=components, random_state=seed).fit(x)
    reduced = pca.transform(x)
    som = MiniSom(edge, edge, components, sigma=sigma, learning_rate=learning_rate, random_seed=seed)
    som.pca_weights_init(reduced)
    som.train(reduced, iterations, random_order=True, verbose=verbose)
    return VTCSOM(som, pca, tissue_size)
