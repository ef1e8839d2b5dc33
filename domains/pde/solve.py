"""``solve_pde``: forward, inverse and both-sparse PDE problems with a joint ``[a, u]`` prior,
answered by an ensemble (mean, standard deviation, samples) from the DiffusionPDE sampler or from
one of the core's posterior samplers on the same observation.

Problems (DiffusionPDE, Sec. 4): ``"forward"`` observes ``a`` sparsely and wants ``u``;
``"inverse"`` observes ``u`` sparsely and wants ``a``; ``"both"`` observes both sparsely;
``"forward_full"`` knows ``a`` everywhere (the classical forward problem). Default density 3%.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciddm.inverse import sample_posterior
from sciddm.training import DiffusionModule

from .data import FieldStats
from .guidance import GuidanceWeights, diffusion_pde_sample
from .operators import FieldObservation, observation_mask, observe
from .residuals import RESIDUALS

__all__ = ["PROBLEMS", "METHODS", "PDESolution", "make_observation", "load_prior", "solve_pde", "joint_consistency"]

#: PDEs whose solution is a function of the coefficient alone (a solver can check a joint sample)
STATIC_PDES = ("darcy", "poisson", "helmholtz")

PROBLEMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "forward": (("a",), ()), "inverse": (("u",), ()), "both": (("a", "u"), ()), "forward_full": ((), ("a",)),
}
METHODS = ("diffusionpde", "dps", "daps", "tds")


@dataclass
class PDESolution:
    """An ensemble answer: ``samples`` (S, 2, n, n) of ``[a, u]`` in physical units."""

    samples: Tensor

    @property
    def mean(self) -> Tensor:
        return self.samples.mean(0)

    @property
    def std(self) -> Tensor:
        return self.samples.std(0) if self.samples.shape[0] > 1 else torch.zeros_like(self.samples[0])

    @property
    def a(self) -> Tensor:
        return self.mean[0]

    @property
    def u(self) -> Tensor:
        return self.mean[1]


def make_observation(fields: Tensor, problem: str = "forward", density: float = 0.03, *,
                     generator: torch.Generator | None = None) -> FieldObservation:
    """Observe the true ``fields`` (2, n, n) as ``problem`` asks, points drawn at ``density``."""
    if problem not in PROBLEMS:
        raise ValueError(f"unknown problem {problem!r}: choose one of {sorted(PROBLEMS)}")
    if fields.ndim != 3 or fields.shape[0] != 2 or fields.shape[1] != fields.shape[2]:
        raise ValueError(f"fields of shape {tuple(fields.shape)}: expected (2, n, n) stacked [a, u]")
    sparse, known = PROBLEMS[problem]
    return observe(fields, observation_mask(fields.shape[-1], sparse, density, known=known, generator=generator))


def load_prior(ckpt: str | os.PathLike[str], stats_path: str | os.PathLike[str]) -> tuple[DiffusionModule, FieldStats]:
    """The prior from a ``sciddm fit`` checkpoint and its :class:`FieldStats` JSON (eval mode)."""
    from sciddm.training import load_model

    model = load_model(ckpt)
    model.eval()
    return model, FieldStats.from_json(stats_path)


def solve_pde(prior: DiffusionModule, stats: FieldStats, observation: FieldObservation, *, pde: str,
              method: str = "diffusionpde", num_samples: int = 8, steps: int = 100,
              weights: GuidanceWeights | None = None, pde_options: dict[str, Any] | None = None,
              sigma_y: float = 1e-2, generator: torch.Generator | None = None, progress: bool = False,
              **hparams: Any) -> PDESolution:
    """An ensemble of ``num_samples`` answers to the observed problem.

    ``method``: ``"diffusionpde"`` (observation + PDE-residual guidance, :func:`diffusion_pde_sample`,
    ``2 steps - 1`` denoiser calls) or a core posterior sampler ``"dps"``, ``"daps"``, ``"tds"``
    on the core :class:`sciddm.inverse.Mask` of the same points with Gaussian noise ``sigma_y``
    (normalised units); ``hparams`` go to that sampler (for ``"diffusionpde"``: only ``residual_scale``,
    ``state_scale``, ``solver`` and ``sigmas``). The sampler runs on the CPU in float64 wherever the prior's network is:
    ``prior.to("cuda")`` puts only the denoiser calls on the GPU, and the answer does not depend on
    where they ran beyond float32 round-off.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {METHODS}")
    if pde not in RESIDUALS:
        raise ValueError(f"unknown PDE {pde!r}: solve_pde knows {sorted(RESIDUALS)}")
    n = observation.resolution
    shape = tuple(prior.data_shape or ())
    if shape != (2, n, n):
        raise ValueError(f"the prior models fields of shape {shape}; the observation is on a {n}x{n} grid")
    weight = next(prior.parameters())

    def denoiser(x: Tensor, t: Tensor) -> Tensor:
        # the sampler state is float64 on the CPU; the network is float32, on the CPU or (moved there by
        # the caller: ``prior.to("cuda")``) on an accelerator. Gradients flow back across the move.
        t = torch.as_tensor(t)
        return prior.denoiser(x.to(weight.device, weight.dtype), t.to(weight.device)).to(x.device, x.dtype)

    with torch.enable_grad():
        if method == "diffusionpde":
            if set(hparams) - {"residual_scale", "state_scale", "solver", "sigmas"}:
                raise ValueError("diffusionpde takes only residual_scale, state_scale, solver and sigmas as extra "
                                 "hyper-parameters; "
                                 f"got {sorted(hparams)}")
            samples = diffusion_pde_sample(denoiser, prior.process, observation, stats, pde=pde, pde_options=pde_options,
                                           weights=weights, num_samples=num_samples, steps=steps, generator=generator,
                                           progress=progress, **hparams)
        else:
            op, y = observation.operator(stats, sigma_y)
            z = sample_posterior(method, denoiser, prior.process, op, y,
                                 num_samples=num_samples, steps=steps, x_shape=(2, n, n), generator=generator,
                                 progress=progress, **hparams)
            samples = stats.denormalize(z.double())
    return PDESolution(samples.detach())


def joint_consistency(fields: Tensor, pde: str, *, darcy_threshold: float = 7.5) -> dict[str, Any]:
    """How well joint ``[a, u]`` samples obey the PDE: ``u`` against the solver's answer for ``a``.

    For each field pair of ``fields`` ``(N, 2, n, n)`` (physical units, e.g. unconditional draws of
    a joint prior, denormalised) the PDE is solved for the pair's own coefficient with the data's
    solver (Darcy: the coefficient thresholded at ``darcy_threshold`` to the data's two values 3 and
    12, as the benchmark scores it) and the pair's ``u`` is compared with that solution (relative
    L2). The same comparison with the solutions of the *other* pairs' coefficients (pair ``i``'s
    ``u`` against the solution for ``a_{i+1}``) gives the level of no coupling at all: a prior whose
    ``u`` is as far from its own coefficient's solution as from another's has not tied the fields
    together. Training pairs score 0 (up to round-off) against their own solution.

    Returns ``{"self": [per pair], "other": [per pair], "self_mean", "other_mean", "ratio"}``
    (``ratio = self_mean / other_mean``: 0 perfectly coupled, about 1 uncoupled).
    """
    from sciddm.datasets.pde.darcy import solve_darcy, threshold_coefficient
    from sciddm.datasets.pde.elliptic import solve_helmholtz, solve_poisson

    if pde not in STATIC_PDES:
        raise ValueError(f"joint_consistency needs a PDE whose solution is a function of the coefficient, one of "
                         f"{STATIC_PDES}; got {pde!r}")
    if fields.ndim != 4 or fields.shape[1] != 2 or fields.shape[-1] != fields.shape[-2] or fields.shape[0] < 2:
        raise ValueError(f"fields of shape {tuple(fields.shape)}: expected (N >= 2, 2, n, n) stacked [a, u]")
    if not bool(torch.isfinite(fields).all()):
        raise ValueError("fields contain NaN or Inf")
    a, u = fields[:, 0].double().cpu(), fields[:, 1].double().cpu()
    if pde == "darcy":
        solved = solve_darcy(threshold_coefficient(a, threshold=darcy_threshold))
    elif pde == "poisson":
        solved = solve_poisson(a)
    else:
        solved = solve_helmholtz(a)
    rel = lambda p, q: ((p - q).flatten(1).norm(dim=1) / q.flatten(1).norm(dim=1)).tolist()  # noqa: E731
    own, other = rel(u, solved), rel(u, solved.roll(-1, 0))
    s, o = sum(own) / len(own), sum(other) / len(other)
    return {"self": own, "other": other, "self_mean": s, "other_mean": o, "ratio": s / o}
