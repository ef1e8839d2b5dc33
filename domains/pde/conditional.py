"""An amortised conditional model of ``[a, u]`` given sparse observations (CorrDiff-style).

DiffusionPDE (:mod:`.guidance`) conditions an *unconditional* joint prior at sampling time, one
guidance push per denoiser call; with few calls the pushes are too few to condition anything
(issue #9, ``benchmarks/pde_oracle.py --few-step``: even on the exact prior). This module learns
the conditioning instead: the core :class:`sciddm.training.ResidualDiffusionModule` (a regression
of the conditional mean ``mu(c)`` plus a conditional diffusion model of the residual, Mardani et
al. 2025) whose condition ``c`` is what the regression baselines are fed,
``[m_a a, m_a, m_u u, m_u]`` (:func:`.baselines.baseline_input`), drawn during training from random
masks of the three problem kinds (only ``a``, only ``u`` or both observed) at ``density``. One
model then answers forward, inverse and both-sparse problems, and since nothing is guided, every
deterministic solver, optimised grid and distilled student of the core applies.

What it gives up against DiffusionPDE: the PDE enters only through the training pairs (no
residual term at sampling time), and only the observation patterns it was trained on are in
distribution (point masks at ``density`` or, trained on a range of densities, within it; with
``sensors`` Burgers' fixed sensors; another pattern wants another model).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from sciddm.process import Process
from sciddm.training import ResidualDiffusionModule

from .baselines import baseline_input, random_problem_masks, sensor_problem_masks
from .data import FieldStats
from .operators import FieldObservation
from .solve import PDESolution

__all__ = ["ConditionalPDEModule", "observation_condition", "solve_conditional"]


class ConditionalPDEModule(ResidualDiffusionModule):
    """Regression + residual diffusion of normalised ``[a, u]`` given zero-filled sparse observations.

    Args:
        net: the residual denoiser's network on 2 channels, with ``cond`` of 4 channels
            (``UNetDenoiserNet(in_channels=2, cond_channels=4)``).
        regression_net: ``net(c, t) -> mu`` from the 4 condition channels to the 2 fields
            (``UNetDenoiserNet(in_channels=4, out_channels=2)``, called with ``t = 0``).
        density: the observed fraction of the grid in training (DiffusionPDE's 3 % by default); each
            training field is observed at this density on ``a`` only, ``u`` only or both, with
            equal probability (:func:`.baselines.random_problem_masks`). A pair ``[low, high]``
            draws each training field's density log-uniformly between the two, so that one model
            answers problems observed at any density in that range.
        sensors: if > 0, half of each training batch observes ``u`` at this many fixed positions at
            every time instead (Burgers' sensor problem, :func:`.baselines.sensor_problem_masks`, as
            the regression baselines are trained for it); 0 (default): point masks only.
        kwargs: ``prediction``, ``loss``, ``lr``, ``sample_*``, ...: as in
            :class:`sciddm.training.ResidualDiffusionModule` (for the residual model).
    """

    def __init__(self, net: nn.Module, regression_net: nn.Module, process: Process,
                 density: float | tuple[float, float] = 0.03, sensors: int = 0, **kwargs: Any) -> None:
        super().__init__(net=net, regression_net=regression_net, process=process, **kwargs)
        ranged = isinstance(density, (list, tuple))
        bounds = [float(d) for d in density] if ranged else [float(density)]
        if (ranged and (len(bounds) != 2 or bounds[0] >= bounds[1])) or not all(0.0 < d <= 1.0 for d in bounds):
            raise ValueError(f"density must be a fraction in (0, 1] or a pair [low, high] of them with low < high; "
                             f"got {density!r}")
        if isinstance(sensors, bool) or not isinstance(sensors, int) or sensors < 0:
            raise ValueError(f"sensors must be an integer >= 0; got {sensors!r}")
        self.density: float | tuple[float, float] = (bounds[0], bounds[1]) if ranged else bounds[0]
        self.sensors = sensors

    def condition(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``[m_a a, m_a, m_u u, m_u]`` of normalised fields ``x0`` (B, 2, n, n) on random problem masks
        (and, with ``sensors``, sensor masks for half the batch); with a density range, each field
        at its own density (:meth:`draw_density`)."""
        if x0.ndim != 4 or x0.shape[1] != 2 or x0.shape[-1] != x0.shape[-2]:
            raise ValueError(f"fields of shape {tuple(x0.shape)}: expected (B, 2, n, n) normalised [a, u]")
        g = generator
        if g is not None and g.device.type != "cpu":  # the masks are drawn on the CPU: a CPU stream of the same seed
            g = torch.Generator().manual_seed(g.initial_seed())
        density: float | Tensor = self.density if isinstance(self.density, float) else self.draw_density(x0.shape[0], g)
        if self.sensors > 0:
            masks = sensor_problem_masks(x0.shape[0], x0.shape[-1], density, g, sensors=self.sensors)
        else:
            masks = random_problem_masks(x0.shape[0], x0.shape[-1], density, g)
        return baseline_input(x0, masks.to(x0.device, x0.dtype)).to(x0.dtype)

    def draw_density(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """One training density per field, log-uniform in the model's ``[low, high]`` range."""
        low, high = (self.density, self.density) if isinstance(self.density, float) else self.density
        u = torch.rand(batch, generator=generator, dtype=torch.float64)
        return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def observation_condition(observation: FieldObservation, stats: FieldStats) -> Tensor:
    """The model's condition ``(1, 4, n, n)`` for an observation in physical units."""
    return baseline_input(observation.normalized(stats)[None], observation.mask[None])


def solve_conditional(model: ConditionalPDEModule, stats: FieldStats, observation: FieldObservation, *,
                      num_samples: int = 8, steps: int | None = None, solver: str | None = None, grid: Any = None,
                      denoiser: Any = None, generator: torch.Generator | None = None,
                      progress: bool = False) -> PDESolution:
    """An ensemble of ``num_samples`` answers ``mu(c) + r`` to the observed problem, in physical units.

    ``solver``, ``steps`` and ``grid`` default to the model's sampling settings (its ``sample_*``
    hyper-parameters); ``denoiser`` replaces the residual denoiser (a distilled student, with its
    ``grid``). Denoiser evaluations per member: ``steps`` for one-call solvers (Euler, DDIM,
    DPM-Solver++(2M)), ``2 steps - 1`` for Heun.
    """
    if not isinstance(model, ResidualDiffusionModule):
        raise ValueError(f"solve_conditional needs a conditional model (ConditionalPDEModule); got "
                         f"{type(model).__name__}. A joint prior is sampled with solve_pde")
    n = observation.resolution
    shape = tuple(model.data_shape or ())
    if shape != (2, n, n):
        raise ValueError(f"the model answers fields of shape {shape}; the observation is on a {n}x{n} grid")
    z = model.sample_given(observation_condition(observation, stats), num_samples, steps=steps, solver=solver,
                           grid=grid, denoiser=denoiser, generator=generator, progress=progress)
    return PDESolution(stats.denormalize(z.detach().double().cpu()))
