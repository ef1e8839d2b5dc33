"""Burgers residual on the (x, t) image: second order on a manufactured solution, consistent with
the data solver's layout (axis -2 = periodic x, axis -1 = t), differentiable, clear errors."""

import math

import pytest
import torch

from sciddm.datasets.pde import solve_burgers
from sciddm.domains.pde.residuals import burgers_residual, pde_residual

NU = 0.05


def _manufactured(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """u = sin(2 pi x) e^{-t} + cos(4 pi x) t / 2 on x = j/n, t = k/(n-1), and its Burgers source."""
    x = torch.arange(n, dtype=torch.float64) / n
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    xx, tt = torch.meshgrid(x, t, indexing="ij")
    s, c = torch.sin(2 * math.pi * xx), torch.cos(4 * math.pi * xx)
    u = s * torch.exp(-tt) + 0.5 * c * tt
    u_t = -s * torch.exp(-tt) + 0.5 * c
    u_x = 2 * math.pi * torch.cos(2 * math.pi * xx) * torch.exp(-tt) - 2 * math.pi * torch.sin(4 * math.pi * xx) * tt
    u_xx = -(2 * math.pi) ** 2 * s * torch.exp(-tt) - 0.5 * (4 * math.pi) ** 2 * c * tt
    return u, u_t + u * u_x - NU * u_xx


def test_burgers_residual_second_order_on_manufactured_solution() -> None:
    errs = []
    for n in (16, 32, 64):
        u, f = _manufactured(n)
        r = burgers_residual(None, u, nu=NU, final_time=1.0, forcing=f)
        assert r.shape == (n, n - 2)
        errs.append(float(r.abs().max()))
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(abs(p - 2.0) < 0.3 for p in orders), (errs, orders)  # truncation error O(dx^2 + dt^2)


def test_burgers_residual_matches_solver_layout() -> None:
    # a smooth (viscous) solution of the data solver: its discrete residual shrinks at second order
    # when the image is refined, which fails if x / t axes, spacings or the periodic roll were wrong
    rms = []
    for n in (16, 32, 64):
        x = torch.arange(n, dtype=torch.float64) / n
        u = solve_burgers(torch.sin(2 * math.pi * x), nu=0.1, final_time=0.5, nt=n, dt=1e-3, refine=4)
        assert u.shape == (n, n)
        rms.append(float(pde_residual("burgers", u, u, nu=0.1, final_time=0.5, dt=1e-3, alpha=2.5).pow(2).mean().sqrt()))
    orders = [math.log2(rms[i] / rms[i + 1]) for i in range(2)]
    assert all(abs(p - 2.0) < 0.4 for p in orders), (rms, orders)


def test_burgers_residual_gradcheck_and_errors() -> None:
    u = torch.randn(2, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: burgers_residual(None, v, nu=0.1), (u,))
    with pytest.raises(ValueError, match="same shape"):
        burgers_residual(torch.zeros(5, 5), torch.zeros(5, 6))
    with pytest.raises(ValueError, match=r"\(\.\.\., nx, nt\)"):
        burgers_residual(None, torch.zeros(5, 2))
    with pytest.raises(ValueError, match="nu >= 0"):
        burgers_residual(None, torch.zeros(5, 5), nu=-1.0)


def test_burgers_pairs_stack_the_initial_condition(tmp_path) -> None:
    from sciddm.datasets.pde import PDEDataConfig, generate_pde
    from sciddm.domains.pde import PAPER_WEIGHTS, load_pairs

    path = generate_pde(tmp_path / "b.zarr", PDEDataConfig("burgers", num_samples=2, resolution=16), plot=False)
    pairs, cfg = load_pairs(path)
    assert cfg.pde == "burgers" and pairs.shape == (2, 2, 16, 16)
    # channel 0 is u0 broadcast along t, and equals the solution's first time column
    assert torch.equal(pairs[:, 0], pairs[:, 0, :, :1].expand(-1, -1, 16))
    assert torch.allclose(pairs[:, 0, :, 0], pairs[:, 1, :, 0])
    assert PAPER_WEIGHTS["burgers"].zeta_pde == 100.0
