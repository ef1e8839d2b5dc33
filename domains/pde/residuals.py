"""Finite-difference residuals of the static DiffusionPDE equations, differentiable in torch.

Each residual is ``L(a, u) - rhs`` on the INTERIOR nodes of the grid ``x_i = i / (n-1)``
(boundary included, as in :mod:`sciddm.datasets.pde`), in physical units, for fields of shape
``(..., n, n)`` (axis -1 is x). The discretisations are the data solvers' own, so a residual
vanishes to solver round-off on the stored pairs and to second order on smooth manufactured
solutions:

* Darcy ``-div(a grad u) = f``: flux-form 5-point stencil, face coefficient the harmonic
  (default, the solver's) or arithmetic mean of the two nodes. DiffusionPDE's own guidance
  (``scripts/generate_darcy.py``) uses a product of central differences without the grid
  spacing; we keep the solver's consistent stencil so that the residual of the truth is zero.
* Poisson ``laplacian(u) = a`` and Helmholtz ``laplacian(u) + k^2 u = a``: the 5-point Laplacian.
* Burgers ``u_t + (u^2/2)_x - nu u_xx = 0`` on the space-time image ``u (..., nx, nt)`` of
  :mod:`sciddm.datasets.pde` (periodic ``x_j = j / nx``, ``t_k = k T / (nt - 1)``): central
  differences in ``x`` (periodic) and ``t`` (interior times), second order in both, in physical
  units. DiffusionPDE's ``get_burger_loss`` uses the same central stencils per pixel without the
  grid spacings, the advective ``u u_x`` and zero padding at the image edges.

Guidance evaluates them on denoised estimates whose coefficient may leave the physical range:
the harmonic mean ``2 p q / (p + q)`` is singular where ``p + q = 0``, so
:func:`pde_residual` clamps ``a`` at ``min_coefficient`` for that face average (the arithmetic
mean needs no clamp).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["darcy_residual", "poisson_residual", "helmholtz_residual", "burgers_residual", "pde_residual", "RESIDUALS",
           "interior"]


def _check(a: Tensor, u: Tensor) -> float:
    if a.shape != u.shape:
        raise ValueError(f"coefficient {tuple(a.shape)} and solution {tuple(u.shape)} must have the same shape (..., n, n)")
    if u.ndim < 2 or u.shape[-1] != u.shape[-2] or u.shape[-1] < 3:
        raise ValueError(f"fields of shape {tuple(u.shape)}: expected (..., n, n) on the square grid with n >= 3")
    return 1.0 / (u.shape[-1] - 1)


def interior(x: Tensor) -> Tensor:
    """The interior nodes ``x[..., 1:-1, 1:-1]``."""
    return x[..., 1:-1, 1:-1]


def _laplacian(u: Tensor, h: float) -> Tensor:
    """Standard 5-point Laplacian on the interior nodes (second order)."""
    c = u[..., 1:-1, 1:-1]
    return (u[..., 1:-1, 2:] + u[..., 1:-1, :-2] + u[..., 2:, 1:-1] + u[..., :-2, 1:-1] - 4.0 * c) / h**2


def _rhs(f: float | Tensor, like: Tensor) -> Tensor | float:
    if isinstance(f, Tensor):
        return interior(torch.broadcast_to(f.to(like), like.shape))
    return float(f)


def darcy_residual(a: Tensor, u: Tensor, f: float | Tensor = 1.0, face: str = "harmonic") -> Tensor:
    """``-div(a grad u) - f`` on the interior nodes, flux form with ``face`` averaging of ``a``.

    ``-(1/h^2)[a_e (u_E - u_C) - a_w (u_C - u_W) + a_n (u_N - u_C) - a_s (u_C - u_S)] - f``,
    ``a_e = mean(a_C, a_E)`` etc. (``datasets/pde/darcy.py``'s matrix).
    """
    h = _check(a, u)
    if face == "harmonic":
        mean: Callable[[Tensor, Tensor], Tensor] = lambda p, q: 2.0 * p * q / (p + q)  # noqa: E731
    elif face == "arithmetic":
        mean = lambda p, q: 0.5 * (p + q)  # noqa: E731
    else:
        raise ValueError(f"unknown face average {face!r}: choose 'harmonic' or 'arithmetic'")
    ac, uc = a[..., 1:-1, 1:-1], u[..., 1:-1, 1:-1]
    flux = (mean(ac, a[..., 1:-1, 2:]) * (u[..., 1:-1, 2:] - uc) - mean(ac, a[..., 1:-1, :-2]) * (uc - u[..., 1:-1, :-2])
            + mean(ac, a[..., 2:, 1:-1]) * (u[..., 2:, 1:-1] - uc) - mean(ac, a[..., :-2, 1:-1]) * (uc - u[..., :-2, 1:-1]))
    return -flux / h**2 - _rhs(f, u)


def poisson_residual(a: Tensor, u: Tensor) -> Tensor:
    """``laplacian(u) - a`` on the interior nodes."""
    h = _check(a, u)
    return _laplacian(u, h) - interior(a)


def helmholtz_residual(a: Tensor, u: Tensor, k: float = 1.0) -> Tensor:
    """``laplacian(u) + k^2 u - a`` on the interior nodes."""
    h = _check(a, u)
    return _laplacian(u, h) + k**2 * interior(u) - interior(a)


def burgers_residual(a: Tensor | None, u: Tensor, nu: float = 0.01, final_time: float = 1.0,
                     forcing: float | Tensor = 0.0) -> Tensor:
    """``u_t + (u^2/2)_x - nu u_xx - forcing`` on the space-time image ``u (..., nx, nt)``.

    Axis -2 is ``x`` (periodic, spacing ``1 / nx``), axis -1 is ``t`` (``nt`` nodes on
    ``[0, final_time]``, spacing ``final_time / (nt - 1)``); the result lives on every ``x`` and the
    interior times, shape ``(..., nx, nt - 2)``. Central differences (second order):
    ``(u^{k+1} - u^{k-1}) / 2dt + (u_{j+1}^2 - u_{j-1}^2) / 4dx - nu (u_{j+1} - 2u_j + u_{j-1}) / dx^2``.
    ``a`` (the initial condition, in the joint prior the coefficient channel) does not enter the
    equation; when given it must have ``u``'s shape. ``forcing`` (a manufactured source) is a
    number or a tensor broadcastable to ``u`` on the full grid.
    """
    if a is not None and a.shape != u.shape:
        raise ValueError(f"coefficient {tuple(a.shape)} and solution {tuple(u.shape)} must have the same shape (..., nx, nt)")
    if u.ndim < 2 or u.shape[-1] < 3 or u.shape[-2] < 3:
        raise ValueError(f"solution of shape {tuple(u.shape)}: expected a space-time image (..., nx, nt) with nx, nt >= 3")
    if not (nu >= 0 and final_time > 0):
        raise ValueError(f"need nu >= 0 and final_time > 0; got nu={nu}, final_time={final_time}")
    dx, dt = 1.0 / u.shape[-2], final_time / (u.shape[-1] - 1)
    east, west = torch.roll(u, -1, dims=-2), torch.roll(u, 1, dims=-2)  # u_{j+1}, u_{j-1} (periodic x)
    flux_x = (east**2 - west**2) / (4.0 * dx)
    u_xx = (east - 2.0 * u + west) / dx**2
    u_t = (u[..., 2:] - u[..., :-2]) / (2.0 * dt)
    r = u_t + (flux_x - nu * u_xx)[..., 1:-1]
    if isinstance(forcing, Tensor):
        return r - torch.broadcast_to(forcing.to(u), u.shape)[..., 1:-1]
    return r - float(forcing)


RESIDUALS: dict[str, Callable[..., Tensor]] = {
    "darcy": darcy_residual, "poisson": poisson_residual, "helmholtz": helmholtz_residual, "burgers": burgers_residual,
}
_OPTIONS = {"darcy": {"forcing": "f", "face": "face"}, "poisson": {}, "helmholtz": {"k": "k"},
            "burgers": {"nu": "nu", "final_time": "final_time"}}


def pde_residual(pde: str, a: Tensor, u: Tensor, min_coefficient: float = 1e-3, **options: Any) -> Tensor:
    """The residual of ``pde`` (``"darcy"``, ``"poisson"``, ``"helmholtz"``, ``"burgers"``) on the interior nodes.

    ``options`` are the data generator's names (Darcy ``forcing``, ``face``; Helmholtz ``k``;
    Burgers ``nu``, ``final_time``; the solver's own time step ``dt`` is not the image's);
    other data options (GRF parameters, thresholds) are accepted and ignored. For the harmonic
    Darcy face average ``a`` is clamped at ``min_coefficient`` (see the module docstring).
    """
    if pde not in RESIDUALS:
        raise ValueError(f"no residual for PDE {pde!r}: choose one of {sorted(RESIDUALS)} "
                         "(no Navier-Stokes residual: see docs/pde.md)")
    kwargs = {_OPTIONS[pde][k]: v for k, v in options.items() if k in _OPTIONS[pde]}
    if pde == "darcy" and kwargs.get("face", "harmonic") == "harmonic":
        a = a.clamp(min=min_coefficient)
    return RESIDUALS[pde](a, u, **kwargs)
