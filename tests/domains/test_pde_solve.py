"""Data module (stacked normalised [a, u], stats saved) and solve_pde's plumbing and errors."""

from pathlib import Path

import pytest
import torch
from torch import nn

from sciddm.domains.pde import FieldStats, PDEDataModule
from sciddm.domains.pde.solve import make_observation, solve_pde
from sciddm.process import VE
from sciddm.training import DiffusionModule


def test_data_module_normalises_and_saves_stats(tmp_path: Path) -> None:
    dm = PDEDataModule(str(tmp_path / "d.zarr"), generate={"pde": "poisson", "num_samples": 20, "resolution": 16},
                       num_val=4, stats_path=str(tmp_path / "stats.json"), batch_size=4)
    dm.setup()
    assert dm.data_shape == (2, 16, 16)
    train = torch.stack([dm.train_set[i] for i in range(len(dm.train_set))])
    assert train.shape == (16, 2, 16, 16) and len(dm.val_set) == 4
    assert torch.allclose(train.double().mean(dim=(0, 2, 3)), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(train.double().std(dim=(0, 2, 3)), torch.ones(2, dtype=torch.float64), atol=1e-4)
    stats = FieldStats.from_json(tmp_path / "stats.json")
    assert stats == dm.stats
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    assert torch.allclose(stats.denormalize(stats.normalize(x)), x)
    with pytest.raises(ValueError, match="num_val"):
        PDEDataModule("x.zarr", num_val=0)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        stats.normalize(torch.zeros(3, 5, 5))


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_solve_pde_shapes_and_errors() -> None:
    prior = DiffusionModule(_Tiny(), VE(80.0), prediction="x0", preconditioning="edm", sigma_data=1.0, data_shape=[2, 8, 8])
    stats = FieldStats((7.5, 0.01), (4.5, 0.005))
    truth = torch.stack([torch.full((8, 8), 3.0), torch.zeros(8, 8)]).double()
    obs = make_observation(truth, "inverse", 0.1, generator=torch.Generator().manual_seed(0))
    assert obs.mask[0].sum() == 0 and obs.mask[1].sum() == 6
    for method, steps in (("diffusionpde", 3), ("dps", 3)):
        sol = solve_pde(prior, stats, obs, pde="darcy", method=method, num_samples=3, steps=steps,
                        generator=torch.Generator().manual_seed(1))
        assert sol.samples.shape == (3, 2, 8, 8) and sol.mean.shape == sol.std.shape == (2, 8, 8)
        assert torch.isfinite(sol.samples).all()
    with pytest.raises(ValueError, match="unknown method"):
        solve_pde(prior, stats, obs, pde="darcy", method="ddrm")
    with pytest.raises(ValueError, match="only residual_scale, state_scale, solver and sigmas"):
        solve_pde(prior, stats, obs, pde="darcy", method="diffusionpde", zeta=1.0)
    with pytest.raises(ValueError, match="solver must be"):  # reaches the sampler
        solve_pde(prior, stats, obs, pde="darcy", method="diffusionpde", solver="rk4")
    one = solve_pde(prior, stats, obs, pde="darcy", method="diffusionpde", num_samples=2, steps=1, solver="euler",
                    generator=torch.Generator().manual_seed(1))
    assert one.samples.shape == (2, 2, 8, 8) and torch.isfinite(one.samples).all()
    with pytest.raises(ValueError, match="residual_scale must be > 0"):  # reaches the sampler
        solve_pde(prior, stats, obs, pde="darcy", method="diffusionpde", residual_scale=-1.0)
    with pytest.raises(ValueError, match="state_scale must be two positive"):
        solve_pde(prior, stats, obs, pde="darcy", method="diffusionpde", state_scale=(1.0,))
    with pytest.raises(ValueError, match="unknown problem"):
        make_observation(truth, "sideways")
    with pytest.raises(ValueError, match=r"expected \(2, n, n\)"):
        make_observation(truth[0], "forward")
    other = make_observation(torch.zeros(2, 16, 16, dtype=torch.float64), "forward", 0.1)
    with pytest.raises(ValueError, match="8x8|16x16"):
        solve_pde(prior, stats, other, pde="darcy")
    for method in ("diffusionpde", "dps"):  # a PDE name that does not exist: caught before sampling
        with pytest.raises(ValueError, match="unknown PDE 'heat'"):
            solve_pde(prior, stats, obs, pde="heat", method=method)
    with pytest.raises(ValueError, match="unknown PDE 'navier_stokes'"):
        solve_pde(prior, stats, obs, pde="navier_stokes")


def test_plot_solution(tmp_path: Path) -> None:
    from sciddm.domains.pde.plots import plot_solution
    from sciddm.domains.pde.solve import PDESolution

    truth = torch.randn(2, 8, 8, dtype=torch.float64)
    obs = make_observation(truth, "both", 0.2, generator=torch.Generator().manual_seed(0))
    sol = PDESolution(truth + 0.1 * torch.randn(5, 2, 8, 8, dtype=torch.float64))
    assert plot_solution(truth, sol, obs, tmp_path / "m.png").stat().st_size > 0
    with pytest.raises(ValueError, match="differ"):
        plot_solution(truth[:, :4], sol, obs, tmp_path / "n.png")


def test_joint_consistency_is_zero_for_solver_pairs_and_exact_for_a_scaled_solution() -> None:
    from sciddm.datasets.pde.darcy import solve_darcy, threshold_coefficient
    from sciddm.datasets.pde.elliptic import solve_poisson
    from sciddm.domains.pde import joint_consistency

    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(5, 1, 20, 20, generator=g, dtype=torch.float64), 5, 1)[:, 0]
    a = threshold_coefficient(smooth)  # 16 x 16, two values 3 / 12
    pairs = torch.stack([a, solve_darcy(a)], 1)
    out = joint_consistency(pairs, "darcy")
    assert max(out["self"]) < 1e-10 and out["other_mean"] > 0.05 and out["ratio"] < 1e-8
    # a coefficient sampled off the two values is thresholded at 7.5 first, as the benchmark scores it
    fuzzy = pairs.clone()
    fuzzy[:, 0] += 2.0 * torch.where(pairs[:, 0] > 7.5, -1.0, 1.0)  # 10 / 5: still on the right side
    assert max(joint_consistency(fuzzy, "darcy")["self"]) < 1e-10

    f = torch.randn(4, 12, 12, generator=g, dtype=torch.float64)
    scaled = torch.stack([f, 1.1 * solve_poisson(f)], 1)  # u off by exactly 10 % everywhere
    assert joint_consistency(scaled, "poisson")["self"] == pytest.approx([0.1] * 4, rel=1e-9)  # relative to the solution


@pytest.mark.parametrize("pde, shape, match", [("burgers", (3, 2, 8, 8), "coefficient"),
                                               ("darcy", (3, 3, 8, 8), "expected"),
                                               ("darcy", (1, 2, 8, 8), "expected")])
def test_joint_consistency_refuses_what_it_cannot_check(pde, shape, match) -> None:
    from sciddm.domains.pde import joint_consistency

    with pytest.raises(ValueError, match=match):
        joint_consistency(torch.ones(shape), pde)
