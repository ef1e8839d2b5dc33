"""Time grids for sampling: descending from ``t = 1`` to ``t = 0`` (``sigma = 0``).

A grid for ``steps`` steps has ``steps + 1`` times ``1 = t_0 > t_1 > ... > t_{steps-1} = t_min >
t_steps = 0``: the last step jumps from the smallest noise level to clean data, as in EDM and
k-diffusion. Grids are float64 tensors, computed once per call, never cached.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..process import Process

__all__ = ["GRIDS", "make_grid", "time_grid", "logsnr_grid", "karras_grid", "karras_levels"]

#: Smallest effective noise level ``sigma/alpha`` a grid visits before the final jump to 0
#: (EDM's sigma_min).
SIGMA_EFF_MIN = 0.002
#: Lower clamp of ``logsnr`` at ``t = 1`` where it is infinite (rectified flow): sigma_eff = e^10.
LOGSNR_FLOOR = -20.0


def _t_bounds(process: Process, sigma_min: float | None) -> tuple[float, float]:
    s_min = SIGMA_EFF_MIN if sigma_min is None else float(sigma_min)
    t_min = float(process.t_of_sigma_eff(torch.tensor(s_min, dtype=torch.float64)))
    lam1 = float(process.logsnr(torch.tensor(1.0, dtype=torch.float64)))
    t_max = 1.0 if lam1 >= LOGSNR_FLOOR else float(process.t_of_logsnr(torch.tensor(LOGSNR_FLOOR, dtype=torch.float64)))
    if not 0.0 < t_min < t_max:
        raise ValueError(f"sigma_min={s_min} is not inside the process's noise range")
    return t_min, t_max


def _finish(t: Tensor) -> Tensor:
    t = t.clone()
    t[0] = 1.0
    return torch.cat([t, t.new_zeros(1)])


def time_grid(process: Process, steps: int, *, sigma_min: float | None = None) -> Tensor:
    """Uniform in ``t`` between 1 and ``t_min`` (DDIM's "linear"/"trailing"-like spacing)."""
    t_min, t_max = _t_bounds(process, sigma_min)
    return _finish(torch.linspace(t_max, t_min, steps, dtype=torch.float64))


def logsnr_grid(process: Process, steps: int, *, sigma_min: float | None = None) -> Tensor:
    """Uniform in ``logsnr`` (DPM-Solver's recommended spacing, "logSNR").

    Rectified flow's ``logsnr(1) = -inf`` is floored at ``LOGSNR_FLOOR`` for the spacing; the
    first time is then set back to exactly 1.
    """
    t_min, t_max = _t_bounds(process, sigma_min)
    lo = process.logsnr(torch.tensor(t_max, dtype=torch.float64))
    hi = process.logsnr(torch.tensor(t_min, dtype=torch.float64))
    lam = torch.linspace(float(lo), float(hi), steps, dtype=torch.float64)
    return _finish(process.t_of_logsnr(lam))


def karras_levels(sigma_max: float, sigma_min: float, count: int, rho: float = 7.0) -> Tensor:
    """EDM's noise levels (Karras et al. 2022, eq. 5): ``count`` float64 values from ``sigma_max`` down to
    ``sigma_min``, uniform in ``sigma^(1/rho)``."""
    ramp = torch.linspace(0, 1, count, dtype=torch.float64)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def karras_grid(process: Process, steps: int, *, rho: float = 7.0, sigma_min: float | None = None) -> Tensor:
    """EDM's grid (Karras et al. 2022, eq. 5): uniform in ``sigma_eff^(1/rho)``."""
    t_min, t_max = _t_bounds(process, sigma_min)
    s_max = float(process.sigma_eff(torch.tensor(t_max, dtype=torch.float64)))
    s_min = float(process.sigma_eff(torch.tensor(t_min, dtype=torch.float64)))
    return _finish(process.t_of_sigma_eff(karras_levels(s_max, s_min, steps, rho)))


GRIDS = {"time": time_grid, "logsnr": logsnr_grid, "karras": karras_grid}


def make_grid(process: Process, steps: int, grid: str | Sequence[float] | Tensor = "logsnr", **opts) -> Tensor:
    """A named grid, or a user array of times validated as a grid (descending, from 1 to 0)."""
    if not isinstance(grid, str):
        t = torch.as_tensor(grid, dtype=torch.float64).flatten()
        if t.numel() < 2 or not torch.all(torch.isfinite(t)):
            raise ValueError("a grid array needs at least two finite times")
        if not torch.all(t[1:] < t[:-1]):
            raise ValueError("a grid array must be strictly decreasing (t = 1 is noise, t = 0 is data)")
        if t[0] > 1 or t[-1] != 0:
            raise ValueError(f"a grid array must start at t <= 1 and end at t = 0; got {t[0].item()} ... {t[-1].item()}")
        return t
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; expected one of {sorted(GRIDS)} or an array of times")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    if steps == 1:
        return torch.tensor([1.0, 0.0], dtype=torch.float64)
    return GRIDS[grid](process, steps, **opts)
