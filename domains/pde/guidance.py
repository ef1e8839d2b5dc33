"""The DiffusionPDE sampler (Huang et al. 2024, Alg. 1; ``scripts/generate_*.py`` of their code).

EDM's deterministic Heun sampler (Karras et al. 2022, Alg. 1, Karras noise levels, Eq. 5) on
the joint ``[a, u]`` prior, where after each Heun step the state is pushed down the gradient,
taken with respect to the CURRENT state ``x_i`` (through both denoiser evaluations of the step),
of

    zeta_a ||m_a (a_hat - y_a)||_2 + zeta_u ||m_u (u_hat - y_u)||_2           (i <= 0.8 N)
    0.1 (zeta_a ... + zeta_u ...) + zeta_pde ||r(a_hat, u_hat)||_2 / n^2     (i >  0.8 N)

with ``(a_hat, u_hat)`` the last denoised estimate in PHYSICAL units, ``m`` the observation
masks and ``r`` the PDE residual (:mod:`.residuals`). Norms are not squared, as in their code.
Their default weights (``configs/*.yaml``, 2000 steps at 128 x 128) are :data:`PAPER_WEIGHTS`.

Their weights are tied to the units of their residuals. Their Poisson and Helmholtz residuals
divide by the grid spacing as ours do; their Darcy and Burgers ones take differences per grid
cell (no spacing): the Darcy one is ``h^2`` times ours (it adds the unscaled ``f``, so its residual
of the truth is ~1, not 0; we keep the consistent right-hand side), the Burgers one about ``h``
times ours. :func:`paper_residual_scale` gives these factors and the sampler applies them by
default. Without them the paper's ``zeta_pde = 100`` on our physical Darcy residual is ~10^3 times
too strong: measured on the 32x32 benchmark prior (3 cases, 50 steps) it raised the residual of
the answer from 2.2 to 12 and the coefficient error rate from 0.19 to 0.47.

Their weights also act on THEIR normalised state: fixed affine maps ``x_c = c_c phys_c + d_c``
(:data:`PAPER_STATE_SCALE`, e.g. Darcy ``a = (x + 1.5) / 0.2``, ``u = (x + 0.9) / 115``), where
ours is per-channel standardisation ``z_c = (phys_c - m_c) / s_c``. A gradient step of weight zeta
moves channel ``c`` by ``zeta / c_c^2 * dL/dphys_c`` in physical units in their sampler and by
``zeta s_c^2 dL/dphys_c`` in a plain one on ``z``; so by default the gradient on ``z`` is multiplied
per channel by ``1 / (c_c s_c)^2``, which makes every guidance step (observations and residual) the
paper's step in physical units. With our data that is x1.2 (a) and x4.8 (u) for Darcy and ~x50 on
both channels for Poisson and Helmholtz, whose unconverted weights left the samples unconditioned.

Relation to the core: the residual could be a nonlinear operator observed to be 0 and stacked
with the observation mask (:class:`sciddm.inverse.Stack`) and sampled with DPS. That is close
but not this method: DPS differentiates a squared, noise-scaled likelihood through ONE denoiser
call per step, while DiffusionPDE uses unsquared norms, differentiates through the Heun step and
switches the weights late. So the sampler is written here (about 60 lines), and the core's
samplers are run next to it on the same :class:`sciddm.inverse.Mask` for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sciddm.process import VE, Process
from sciddm.sampling.grids import karras_levels

from .data import FieldStats
from .operators import FieldObservation
from .residuals import RESIDUALS, pde_residual

__all__ = ["GuidanceWeights", "PAPER_WEIGHTS", "PAPER_STATE_SCALE", "paper_residual_scale", "karras_sigmas",
           "denoiser_calls", "diffusion_pde_sample"]


@dataclass(frozen=True)
class GuidanceWeights:
    """DiffusionPDE's guidance weights and schedule.

    Args:
        zeta_obs_a, zeta_obs_u: weights of the observation norms of ``a`` and ``u``.
        zeta_pde: weight of the PDE-residual norm (0 turns PDE guidance off).
        pde_start: fraction of the steps after which PDE guidance starts (their code: 0.8).
        late_obs_factor: factor on the observation weights once PDE guidance is on (0.1).
    """

    zeta_obs_a: float = 0.0
    zeta_obs_u: float = 0.0
    zeta_pde: float = 0.0
    pde_start: float = 0.8
    late_obs_factor: float = 0.1

    def __post_init__(self) -> None:
        if min(self.zeta_obs_a, self.zeta_obs_u, self.zeta_pde, self.late_obs_factor) < 0:
            raise ValueError(f"guidance weights must be >= 0; got {self}")
        if not 0.0 <= self.pde_start <= 1.0:
            raise ValueError(f"pde_start={self.pde_start} is a fraction of the steps and must lie in [0, 1]")

    def scaled(self, factor: float) -> GuidanceWeights:
        """All three zetas times ``factor`` (e.g. ``2000 / steps`` to keep the paper's total push)."""
        return replace(self, zeta_obs_a=self.zeta_obs_a * factor, zeta_obs_u=self.zeta_obs_u * factor,
                       zeta_pde=self.zeta_pde * factor)


# DiffusionPDE configs/{pde}.yaml (joint / both-sparse problem, 2000 Heun steps, 128 x 128).
# Their forward problem sets zeta_obs_u = 0, their inverse zeta_obs_a = 0; here an unobserved
# field simply contributes nothing, so one set per PDE serves all three problems.
PAPER_WEIGHTS: dict[str, GuidanceWeights] = {
    "darcy": GuidanceWeights(zeta_obs_a=5.0, zeta_obs_u=3000.0, zeta_pde=100.0),
    "poisson": GuidanceWeights(zeta_obs_a=0.8, zeta_obs_u=40.0, zeta_pde=1.0),
    "helmholtz": GuidanceWeights(zeta_obs_a=0.8, zeta_obs_u=60.0, zeta_pde=1.0),
    # configs/burgers.yaml: zeta_obs=320 on ||m (u_hat - y)|| / (128 * 5) (their L_obs of 5 sensors
    # x 128 times), zeta_pde=100 on ||r|| / 128^2; written for the unnormalised norm used here:
    # 320 / 640 = 0.5. Their Burgers model has no coefficient channel: the u0 channel gets the same.
    "burgers": GuidanceWeights(zeta_obs_a=0.5, zeta_obs_u=0.5, zeta_pde=100.0),
}
PAPER_STEPS = 2000
# d(state)/d(physical) of each channel [a, u] in their scripts/generate_*.py ("Scale the data back"):
# Darcy a = (x + 1.5) / 0.2, u = (x + 0.9) / 115; Poisson a = 2.15 x, u = x / 36.5; Helmholtz
# a = 2.15 x, u = 0.028 x; Burgers u = 1.415 x (one channel; the u0 channel gets the same).
PAPER_STATE_SCALE: dict[str, tuple[float, float]] = {
    "darcy": (0.2, 115.0), "poisson": (1 / 2.15, 36.5), "helmholtz": (1 / 2.15, 1 / 0.028), "burgers": (1 / 1.415, 1 / 1.415),
}
# Power of the grid spacing h = 1 / (n - 1) between our physical residual and theirs (module docstring).
_PAPER_SPACING_POWER = {"darcy": 2, "poisson": 0, "helmholtz": 0, "burgers": 1}


def paper_residual_scale(pde: str, n: int) -> float:
    """Factor taking :func:`~.residuals.pde_residual` of ``pde`` on an ``n``-point grid to the units of
    DiffusionPDE's own residual, for which :data:`PAPER_WEIGHTS` were chosen: ``h**2`` for Darcy
    (differences per cell), ``h`` for Burgers (its time step; its x spacing ``1 / n`` is within
    ``1 / n`` of it), 1 for Poisson and Helmholtz (their code divides by ``h**2`` as ours does)."""
    if pde not in _PAPER_SPACING_POWER:
        raise ValueError(f"no residual for PDE {pde!r}: choose one of {sorted(_PAPER_SPACING_POWER)}")
    if not isinstance(n, int) or n < 3:
        raise ValueError(f"n must be an integer grid size >= 3; got {n!r}")
    return (1.0 / (n - 1)) ** _PAPER_SPACING_POWER[pde]


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """EDM noise levels (Karras et al. 2022, Eq. 5), ``steps`` of them then 0: float64 (steps + 1,)."""
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2; got {steps!r}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max; got {sigma_min}, {sigma_max}")
    return torch.cat([karras_levels(sigma_max, sigma_min, steps, rho), torch.zeros(1, dtype=torch.float64)])


def denoiser_calls(steps: int, solver: str = "heun") -> int:
    """Denoiser evaluations per sample of :func:`diffusion_pde_sample`: ``2 steps - 1`` for Heun (no
    correction on the last step, to sigma = 0), ``steps`` for Euler."""
    if solver not in ("heun", "euler"):
        raise ValueError(f"solver must be 'heun' or 'euler'; got {solver!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    return 2 * steps - 1 if solver == "heun" else steps


def _norm_per_sample(r: Tensor) -> Tensor:
    return torch.linalg.vector_norm(r.flatten(1), dim=1)


def diffusion_pde_sample(
    denoiser: Callable[[Tensor, Tensor], Tensor],
    process: Process,
    observation: FieldObservation,
    stats: FieldStats,
    *,
    pde: str | None = None,
    pde_options: dict[str, Any] | None = None,
    residual: Callable[[Tensor, Tensor], Tensor] | None = None,
    residual_scale: float | None = None,
    state_scale: tuple[float, float] | None = None,
    weights: GuidanceWeights | None = None,
    num_samples: int = 1,
    steps: int = 100,
    sigma_min: float = 0.002,
    rho: float = 7.0,
    solver: str = "heun",
    sigmas: Tensor | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Tensor:
    """Draw ``num_samples`` guided samples of ``[a, u]`` (physical units), ``(num_samples, 2, n, n)``.

    Args:
        denoiser: ``D(x, t) -> x0_hat`` of the prior in normalised units (``t`` of shape ``(B,)``).
        process: the prior's process; must be :class:`sciddm.VE` (EDM: ``x_t = x0 + sigma eps``).
        observation: the sparse observation (:class:`FieldObservation`, physical units).
        stats: the prior's normalisation (:class:`FieldStats`).
        pde: ``"darcy"``, ``"poisson"``, ``"helmholtz"`` or ``"burgers"`` for residual guidance (``None``: none);
            also picks :data:`PAPER_WEIGHTS` when ``weights`` is ``None``.
        pde_options: options of the residual (e.g. Darcy ``face``, Helmholtz ``k``).
        residual: a custom ``r(a, u)`` (physical, ``(B, n, n)`` each) instead of ``pde``'s.
        residual_scale: factor on the residual inside the guidance norm; default
            :func:`paper_residual_scale` for ``pde``'s own residual (the units the paper's weights
            assume) and 1 for a custom ``residual``.
        state_scale: ``d(state)/d(physical)`` per channel of the normalisation the weights were
            chosen for; the guidance gradient of channel ``c`` is multiplied by
            ``1 / (state_scale[c] * stats.std[c])^2`` (module docstring). Default
            :data:`PAPER_STATE_SCALE` for ``pde``; without ``pde`` (or with
            ``state_scale=(1 / std_a, 1 / std_u)``) the weights act on the standardised state as is.
        weights: guidance weights; default the paper's for ``pde`` (no default without ``pde``).
        num_samples, steps: ensemble size and steps (Heun: ``2 steps - 1`` denoiser calls).
        sigma_min, rho: EDM grid (``sigma_max`` is the process's).
        solver: ``"heun"`` (the paper's, EDM Alg. 1) or ``"euler"`` (its first-order step alone: one
            denoiser call per step, so any number of calls from 1 up; for few-step sampling, issue #9).
            The guidance is the same: after each step, down the gradient of the step's last estimate.
        sigmas: an explicit decreasing noise grid ending at 0 (e.g. a distilled student's), instead of
            the Karras grid of ``steps``, ``sigma_min`` and ``rho``; ``steps`` is then ``len(sigmas) - 1``.
        generator: seeds the initial noise.
        progress: progress bar over steps.
    """
    if not isinstance(process, VE):
        raise ValueError(f"DiffusionPDE samples an EDM/VE prior (x_t = x0 + sigma eps); got {type(process).__name__}: "
                         "train the prior with process sciddm.VE")
    if pde is not None and residual is None and pde not in RESIDUALS:  # fail now, not 80% into sampling
        raise ValueError(f"no residual for PDE {pde!r}: choose one of {sorted(RESIDUALS)}, "
                         "or pass residual=r(a, u) with weights=GuidanceWeights(...)")
    if weights is None:
        if pde is None or pde not in PAPER_WEIGHTS:
            raise ValueError(f"no default guidance weights for pde={pde!r}: pass weights=GuidanceWeights(...) "
                             f"or one of {sorted(PAPER_WEIGHTS)}")
        weights = PAPER_WEIGHTS[pde]
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
    n = observation.resolution
    if residual_scale is None:
        residual_scale = paper_residual_scale(pde, n) if residual is None and pde is not None else 1.0
    if not residual_scale > 0:
        raise ValueError(f"residual_scale must be > 0; got {residual_scale}")
    if state_scale is None and pde is not None:
        state_scale = PAPER_STATE_SCALE[pde]
    if state_scale is None:
        precondition = None
    else:
        if len(state_scale) != 2 or not min(state_scale) > 0:
            raise ValueError(f"state_scale must be two positive numbers (a, u); got {state_scale}")
        precondition = torch.tensor([1.0 / (c * sd) ** 2 for c, sd in zip(state_scale, stats.std)],
                                    dtype=torch.float64).reshape(1, 2, 1, 1)
    if residual is None and pde is not None:
        options = dict(pde_options or {})
        residual = lambda a, u: pde_residual(pde, a, u, **options)  # noqa: E731
    if residual is None and weights.zeta_pde > 0:
        raise ValueError("zeta_pde > 0 needs a PDE: pass pde=... or residual=...")
    if solver not in ("heun", "euler"):
        raise ValueError(f"solver must be 'heun' or 'euler'; got {solver!r}")
    sigma_max = float(process.sigma_max)
    if sigmas is None:
        if solver == "euler" and steps == 1:  # one step from sigma_max to 0: the denoised estimate
            sigmas = torch.tensor([sigma_max, 0.0], dtype=torch.float64)
        else:
            sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho)
    else:
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sigmas.numel() < 2 or sigmas[-1] != 0 or not bool((sigmas[1:] < sigmas[:-1]).all()):
            raise ValueError(f"sigmas must decrease strictly and end at 0; got {sigmas.tolist()}")
        steps = sigmas.numel() - 1
    mask, y = observation.mask, observation.values
    x = torch.randn((num_samples, 2, n, n), generator=generator, dtype=torch.float64) * sigmas[0]
    observed = [bool(mask[c].any()) for c in range(2)]
    zetas = (weights.zeta_obs_a, weights.zeta_obs_u)

    def d(xx: Tensor, s: Tensor) -> Tensor:
        t = (s / sigma_max).expand(xx.shape[0])
        return denoiser(xx, t).to(torch.float64)

    for i in tqdm(range(steps), disable=not progress, desc="DiffusionPDE"):
        s_cur, s_next = sigmas[i], sigmas[i + 1]
        x_cur = x.detach().requires_grad_(True)
        x0 = d(x_cur, s_cur)
        d_cur = (x_cur - x0) / s_cur
        x_next = x_cur + (s_next - s_cur) * d_cur  # Euler step, EDM Alg. 1 line 5
        if solver == "heun" and i < steps - 1:  # second-order correction, EDM Alg. 1 lines 7-8
            x0 = d(x_next, s_next)
            x_next = x_cur + (s_next - s_cur) * (0.5 * d_cur + 0.5 * (x_next - x0) / s_next)
        phys = stats.denormalize(x0)
        late = i > weights.pde_start * steps
        factor = weights.late_obs_factor if late else 1.0
        loss = torch.zeros((), dtype=torch.float64)
        for c in range(2):
            if observed[c] and zetas[c] > 0:
                loss = loss + factor * zetas[c] * _norm_per_sample(mask[c] * (phys[:, c] - y[c])).sum()
        if late and weights.zeta_pde > 0 and residual is not None:
            r = residual_scale * residual(phys[:, 0], phys[:, 1])
            loss = loss + weights.zeta_pde * (_norm_per_sample(r) / n**2).sum()
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(loss, x_cur)  # per-sample losses summed: per-sample gradients
            x_next = x_next - (grad if precondition is None else precondition * grad)
        x = x_next.detach()
    return stats.denormalize(x)
