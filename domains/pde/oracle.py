"""Exact Gaussian oracle of the linear PDE problems (Poisson, Helmholtz).

The coefficient of the Poisson and Helmholtz data is a Gaussian random field, a finite
Karhunen-Loeve sum ``a = sum_k sqrt(mu_k) xi_k phi_k`` (:mod:`sciddm.datasets.pde.grf`, Helmholtz's
then zeroed on the boundary), and the finite-difference solution is linear in it, ``u = S a``
(:func:`sciddm.datasets.pde.elliptic.solve_elliptic`). So a data pair is exactly

    [a; u] = F xi,   xi ~ N(0, I_r),   F = [K; S K]   (r = n^2 - 1 modes, the constant one has mu = 0),

a Gaussian with mean 0 and the rank-``r`` covariance ``F F^T`` on ``2 n^2`` values. For it,
everything a diffusion sampler approximates is known in closed form (through the core's
:class:`sciddm.analytic.GaussianMixture` with one component):

- the denoiser ``E[x_0 | x_sigma]`` at every noise level, in the prior's normalised state;
- the posterior given sparse observations of ``a`` and/or ``u`` (a Kalman step), whose mean is
  the Bayes answer in mean squared error and whose marginals give calibrated 90 % intervals.

The exact denoiser in place of a trained network separates a sampler's error from the prior's:
``benchmarks/pde_oracle.py`` runs DiffusionPDE and the core samplers on it next to the exact
posterior. Every sample of this prior solves the PDE exactly, so the gradient of DiffusionPDE's
residual term through the exact denoiser is zero: only its observation guidance acts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciddm.analytic import GaussianMixture
from sciddm.datasets.pde.elliptic import solve_elliptic
from sciddm.datasets.pde.generate import DEFAULT_OPTIONS
from sciddm.datasets.pde.grf import cosine_basis, neumann_variances
from sciddm.process import VE

from .data import FieldStats
from .operators import FieldObservation

__all__ = ["LINEAR_PDES", "joint_factor", "exact_stats", "ExactPosterior", "LinearPDEOracle"]

#: PDEs whose data pairs are exactly Gaussian (a GRF coefficient, a linear solve)
LINEAR_PDES = ("poisson", "helmholtz")
_Z90 = 1.6448536269514722  # the standard normal's 95 % quantile: central 90 % interval = mean +- _Z90 std


def _options(pde: str, options: dict[str, float] | None) -> dict[str, float]:
    if pde not in LINEAR_PDES:
        raise ValueError(f"the exact oracle needs a linear PDE with a Gaussian coefficient, one of {LINEAR_PDES}; "
                         f"got {pde!r} (Darcy's thresholded coefficient and Burgers' nonlinear solve are not Gaussian)")
    unknown = set(options or {}) - set(DEFAULT_OPTIONS[pde])
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {pde!r}: valid ones are {sorted(DEFAULT_OPTIONS[pde])}")
    return {**DEFAULT_OPTIONS[pde], **{k: float(v) for k, v in (options or {}).items()}}


def joint_factor(pde: str, n: int, options: dict[str, float] | None = None) -> Tensor:
    """The factor ``F`` of the data's joint law, ``(r, 2, n, n)`` float64: a pair is ``xi @ F`` (flattened).

    Row ``j`` is the pair ``[a, u]`` made by KL mode ``(k, l)`` alone at unit amplitude
    (``a = sqrt(mu_kl) phi_k(y) phi_l(x)``, Helmholtz's zeroed on the boundary, and its solution),
    in the order of ``torch.nonzero(mu > 0)``; the mode ``(0, 0)`` (``mu = 0``) is left out. The
    generator draws the same ``xi`` on the full ``(n, n)`` mode grid: ``xi[:, k, l]`` is row ``j``'s weight.
    """
    o = _options(pde, options)
    if not isinstance(n, int) or n < 3:
        raise ValueError(f"n must be an integer grid size >= 3; got {n!r}")
    mu = neumann_variances(n, o["alpha"], o["tau"])
    basis = cosine_basis(n)  # (nodes, modes)
    k, l = torch.nonzero(mu > 0, as_tuple=True)
    a = mu[k, l].sqrt()[:, None, None] * basis[:, k].T[:, :, None] * basis[:, l].T[:, None, :]
    if pde == "helmholtz":  # as the data (generate._helmholtz, after generate_inhom_helmholtz.m)
        a[:, 0, :] = a[:, -1, :] = a[:, :, 0] = a[:, :, -1] = 0.0
    u = solve_elliptic(a, o.get("k", 0.0))
    return torch.stack([a, u], dim=1)


def exact_stats(factor: Tensor) -> FieldStats:
    """The per-channel mean (0) and standard deviation over all nodes of the Gaussian pairs: what
    :meth:`FieldStats.fit` converges to on infinitely many data pairs."""
    var = factor.pow(2).sum(0)  # (2, n, n): the marginal variance of each value
    return FieldStats((0.0, 0.0), tuple(var.mean(dim=(1, 2)).sqrt().tolist()))  # type: ignore[arg-type]


@dataclass
class ExactPosterior:
    """The exact posterior of ``[a, u]`` given a sparse observation, in physical units.

    ``mixture`` is the one-component :class:`GaussianMixture` in the prior's normalised state.
    """

    mixture: GaussianMixture
    stats: FieldStats
    resolution: int

    def _phys(self, z: Tensor) -> Tensor:
        return self.stats.denormalize(z.reshape(-1, 2, self.resolution, self.resolution))

    @property
    def mean(self) -> Tensor:
        """The posterior mean ``(2, n, n)``: the Bayes answer in mean squared error."""
        return self._phys(self.mixture.means)[0]

    @property
    def std(self) -> Tensor:
        """The posterior's marginal standard deviations ``(2, n, n)``."""
        var = self.mixture.variances()[0].clamp_min(0.0)
        s = torch.tensor(self.stats.std, dtype=torch.float64).view(2, 1, 1)
        return var.sqrt().reshape(2, self.resolution, self.resolution) * s

    def sample(self, num: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``num`` exact posterior draws ``(num, 2, n, n)``."""
        return self._phys(self.mixture.sample(num, generator=generator))

    def coverage(self, truth: Tensor, channel: int, level: float = 0.9) -> float:
        """Fraction of ``truth[channel]``'s nodes inside the exact central ``level`` interval
        (nodes the observation fixes, std ~ 0, count as covered when within 1e-9 of the mean)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level={level} must lie in (0, 1)")
        z = _Z90 if level == 0.9 else math.sqrt(2.0) * float(torch.erfinv(torch.tensor(level, dtype=torch.float64)))
        err = (truth[channel].double() - self.mean[channel]).abs()
        return float((err <= z * self.std[channel] + 1e-9).double().mean())


class LinearPDEOracle:
    """The exact prior of ``pde``'s ``n x n`` pairs in the normalised state of ``stats``.

    Args:
        pde: ``"poisson"`` or ``"helmholtz"``.
        n: grid side.
        stats: the normalisation of the prior to stand in for (e.g. a trained prior's
            ``normalization.json``); default :func:`exact_stats`.
        options: data options (``alpha``, ``tau``, Helmholtz ``k``); default the data's.
        sigma_max: the VE process's largest noise level (EDM: 80).
    """

    def __init__(self, pde: str, n: int, *, stats: FieldStats | None = None, options: dict[str, float] | None = None,
                 sigma_max: float = 80.0) -> None:
        self.pde, self.n = pde, n
        self.factor = joint_factor(pde, n, options)
        self.stats = stats if stats is not None else exact_stats(self.factor)
        scale = torch.tensor(self.stats.std, dtype=torch.float64).view(1, 2, 1, 1)
        state_factor = (self.factor / scale).flatten(1)  # (r, D)
        mean = self.stats.normalize(torch.zeros(2, n, n, dtype=torch.float64)).flatten()
        self.prior = GaussianMixture(torch.ones(1), mean[None], (state_factor.T @ state_factor)[None])
        self.process = VE(sigma_max)

    @property
    def dim(self) -> int:
        return 2 * self.n * self.n

    def denoiser(self) -> Callable[..., Tensor]:
        """``D(x, t) -> E[x_0 | x_t]`` in the normalised state, ``x`` of shape ``(B, 2, n, n)``, ``t = sigma / sigma_max``."""
        return self.prior.denoiser(self.process)

    def sample(self, num: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``num`` exact prior draws of ``[a, u]`` in physical units, ``(num, 2, n, n)``."""
        return self.stats.denormalize(self.prior.sample(num, generator=generator).reshape(num, 2, self.n, self.n))

    def posterior(self, observation: FieldObservation, sigma_y: float = 1e-4) -> ExactPosterior:
        """The exact posterior given ``observation``, its values seen with Gaussian noise ``sigma_y``
        (normalised units; the data's observations are exact, a small level keeps the Kalman step
        well conditioned where observed nodes are neighbours)."""
        if not isinstance(observation, FieldObservation):
            raise TypeError(f"observation must be a FieldObservation; got {type(observation).__name__}")
        if observation.resolution != self.n:
            raise ValueError(f"the observation is on a {observation.resolution}x{observation.resolution} grid; "
                             f"the oracle on {self.n}x{self.n}")
        if not sigma_y > 0:
            raise ValueError(f"sigma_y must be > 0; got {sigma_y}")
        seen = torch.nonzero(observation.mask.flatten(), as_tuple=True)[0]
        A = torch.zeros(seen.numel(), self.dim, dtype=torch.float64)
        A[torch.arange(seen.numel()), seen] = 1.0
        y = observation.normalized(self.stats).flatten()[seen]
        return ExactPosterior(self.prior.posterior(A, sigma_y, y), self.stats, self.n)

    def summary(self) -> dict[str, Any]:
        return {"pde": self.pde, "n": self.n, "rank": int(self.factor.shape[0]), "dim": self.dim,
                "stats": {"mean": list(self.stats.mean), "std": list(self.stats.std)}}
