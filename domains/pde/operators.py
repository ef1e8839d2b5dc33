"""Sparse observations of the coefficient and/or solution of a PDE on its grid.

DiffusionPDE (Huang et al. 2024, Sec. 4) observes 500 of the 128 x 128 grid points (about 3%) of
``a``, of ``u`` or of both, drawn uniformly without replacement (``random_index`` in their
scripts); the forward problem may also know ``a`` fully. Here an observation of the stacked
``[a, u]`` fields is a per-channel 0/1 mask ``(2, n, n)`` plus the observed values
(:class:`FieldObservation`); :meth:`FieldObservation.operator` turns it into the core's
:class:`sciddm.inverse.Mask` in the prior's normalised units, so the core posterior samplers
(DPS, DAPS, TDS) see exactly the same information as the DiffusionPDE sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sciddm.inverse import Mask

from .data import FieldStats

__all__ = ["CHANNELS", "point_mask", "sensor_mask", "points_to_mask", "observation_mask", "FieldObservation", "observe"]

CHANNELS = {"a": 0, "u": 1}


def point_mask(n: int, density: float = 0.03, *, count: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
    """A 0/1 float64 ``(n, n)`` mask with exactly ``count`` (or ``round(density * n^2)``) points,
    uniform without replacement (DiffusionPDE: 500 of 128^2, density 3%)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n={n} must be a positive grid size")
    k = int(round(density * n * n)) if count is None else int(count)
    if count is None and not 0.0 < density <= 1.0:
        raise ValueError(f"density={density} is the observed fraction of the grid and must lie in (0, 1]")
    if not 1 <= k <= n * n:
        raise ValueError(f"{k} observed points requested on a {n}x{n} grid: need 1 <= count <= {n * n} "
                         "(raise the density or the count)")
    flat = torch.zeros(n * n, dtype=torch.float64)
    flat[torch.randperm(n * n, generator=generator)[:k]] = 1.0
    return flat.reshape(n, n)


def sensor_mask(n: int, count: int = 5, *, generator: torch.Generator | None = None) -> Tensor:
    """A 0/1 float64 ``(n, n)`` mask of ``count`` fixed sensors on a space-time image ``(x, t)``:
    ``count`` distinct rows (positions ``x``) observed at every time, uniform without replacement
    (DiffusionPDE's Burgers problem: 5 sensors on 128 positions, ``random_sensor``)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n={n} must be a positive grid size")
    if isinstance(count, bool) or int(count) != count or not 1 <= count <= n:
        raise ValueError(f"count={count} sensors on {n} positions: need 1 <= count <= {n}")
    m = torch.zeros(n, n, dtype=torch.float64)
    m[torch.randperm(n, generator=generator)[: int(count)]] = 1.0
    return m


def points_to_mask(points: Tensor | Sequence[Sequence[int]], n: int) -> Tensor:
    """A 0/1 ``(n, n)`` mask from integer grid indices ``points`` (K, 2) = (row y, column x): any pattern."""
    p = torch.as_tensor(points)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"points of shape {tuple(p.shape)}: expected (K, 2) integer (row, column) indices with K >= 1")
    if p.is_floating_point() and not torch.equal(p, p.round()):
        raise ValueError("points must be integer grid indices (row, column); round or interpolate first")
    p = p.long()
    if p.min() < 0 or p.max() >= n:
        bad = p[((p < 0) | (p >= n)).any(dim=1)][0].tolist()
        raise ValueError(f"observation point {bad} lies outside the {n}x{n} grid: indices must be in [0, {n - 1}]")
    m = torch.zeros(n, n, dtype=torch.float64)
    m[p[:, 0], p[:, 1]] = 1.0
    return m


def observation_mask(n: int, observe: Sequence[str] = ("u",), density: float = 0.03, *, known: Sequence[str] = (),
                     generator: torch.Generator | None = None) -> Tensor:
    """The ``(2, n, n)`` mask of ``[a, u]``: independent random points at ``density`` on each field
    in ``observe`` and every point of each field in ``known`` (e.g. the forward problem's ``a``)."""
    for name in (*observe, *known):
        if name not in CHANNELS:
            raise ValueError(f"unknown field {name!r}: the fields are 'a' (coefficient) and 'u' (solution)")
    if not observe and not known:
        raise ValueError("nothing is observed: give at least one field in observe or known")
    m = torch.zeros(2, n, n, dtype=torch.float64)
    for name in observe:
        m[CHANNELS[name]] = point_mask(n, density, generator=generator)
    for name in known:
        m[CHANNELS[name]] = 1.0
    return m


@dataclass
class FieldObservation:
    """Observed values of ``[a, u]`` (physical units) on a ``(2, n, n)`` 0/1 ``mask``.

    ``values`` has the mask's shape and is zero where nothing is observed.
    """

    mask: Tensor
    values: Tensor

    def __post_init__(self) -> None:
        m = torch.as_tensor(self.mask, dtype=torch.float64)
        if m.ndim != 3 or m.shape[0] != 2 or m.shape[1] != m.shape[2]:
            raise ValueError(f"mask of shape {tuple(m.shape)}: expected (2, n, n) for the channels [a, u]")
        if not torch.all((m == 0) | (m == 1)):
            raise ValueError("mask must contain only 0 (missing) and 1 (observed)")
        if m.sum() == 0:
            raise ValueError("the mask has no observed point: observe at least one point of a or u")
        v = torch.as_tensor(self.values, dtype=torch.float64)
        if v.shape != m.shape:
            raise ValueError(f"values {tuple(v.shape)} must have the mask's shape {tuple(m.shape)}")
        if not torch.isfinite(v).all():
            raise ValueError("observed values contain NaN or inf")
        self.mask, self.values = m, v * m

    @property
    def resolution(self) -> int:
        return int(self.mask.shape[-1])

    def density(self) -> tuple[float, float]:
        """Observed fraction of the grid for ``a`` and for ``u``."""
        return tuple((self.mask.sum(dim=(1, 2)) / self.mask[0].numel()).tolist())  # type: ignore[return-value]

    def normalized(self, stats: FieldStats) -> Tensor:
        """The observed values in the prior's units (zero where unobserved), ``(2, n, n)``."""
        return stats.normalize(self.values) * self.mask

    def operator(self, stats: FieldStats, sigma_y: float = 1e-3) -> tuple[Mask, Tensor]:
        """The core :class:`Mask` operator in the prior's units and its observation ``y`` (1, 2, n, n).

        ``sigma_y`` is the Gaussian noise level in normalised units (DiffusionPDE's observations
        are exact; a small level keeps the likelihood proper for the core samplers).
        """
        return Mask(self.mask, sigma_y, spatial_dims=2), self.normalized(stats)[None]


def observe(fields: Tensor, mask: Tensor) -> FieldObservation:
    """Observe physical ``fields`` ``(2, n, n)`` on ``mask`` (exact values, as DiffusionPDE)."""
    if fields.shape != mask.shape:
        raise ValueError(f"fields {tuple(fields.shape)} and mask {tuple(mask.shape)} must both be (2, n, n)")
    return FieldObservation(mask, fields.double() * mask)
