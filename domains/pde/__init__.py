"""DiffusionPDE (Huang et al. 2024): a joint diffusion prior over a PDE's coefficient and solution,
sampled with guidance from sparse observations of either field and from the PDE residual.

- :mod:`.data`: :class:`PDEDataModule` (stacked normalised ``[a, u]`` for ``sciddm fit``), :class:`FieldStats`.
- :mod:`.residuals`: differentiable finite-difference residuals (Darcy, Poisson, Helmholtz, Burgers).
- :mod:`.operators`: sparse point and sensor masks on either field, :class:`FieldObservation` (core ``Mask``).
- :mod:`.guidance`: :func:`diffusion_pde_sample`, EDM Heun with observation + PDE guidance.
- :mod:`.baselines`: :class:`FNO2d`, :class:`UNetRegressor` fed masked fields + masks.
- :mod:`.solve`: :func:`solve_pde`, forward / inverse / both-sparse problems as ensembles;
  :func:`joint_consistency`, how well joint samples obey the PDE.
- :mod:`.plots`: :func:`plot_solution`, truth / mean / error / std maps.
"""

from .baselines import FNO2d, UNetRegressor, baseline_input, train_regressor
from .data import FieldStats, PDEDataModule, load_pairs
from .guidance import (PAPER_STATE_SCALE, PAPER_WEIGHTS, GuidanceWeights, diffusion_pde_sample, karras_sigmas,
                       paper_residual_scale)
from .operators import FieldObservation, observation_mask, observe, point_mask, points_to_mask, sensor_mask
from .plots import plot_solution
from .residuals import burgers_residual, darcy_residual, helmholtz_residual, pde_residual, poisson_residual
from .solve import METHODS, PROBLEMS, PDESolution, joint_consistency, load_prior, make_observation, solve_pde

__all__ = [
    "FieldStats", "PDEDataModule", "load_pairs",
    "darcy_residual", "poisson_residual", "helmholtz_residual", "burgers_residual", "pde_residual",
    "point_mask", "sensor_mask", "points_to_mask", "observation_mask", "observe", "FieldObservation",
    "GuidanceWeights", "PAPER_WEIGHTS", "PAPER_STATE_SCALE", "paper_residual_scale", "karras_sigmas",
    "diffusion_pde_sample",
    "FNO2d", "UNetRegressor", "baseline_input", "train_regressor",
    "PROBLEMS", "METHODS", "PDESolution", "make_observation", "load_prior", "solve_pde", "plot_solution",
    "joint_consistency",
]
