"""The DiffusionPDE sampler with an exact Gaussian prior on a tiny grid: guidance lowers the
observation error and the PDE residual, shapes are kept, bad input is refused."""

import pytest
import torch

from sciddm.analytic import GaussianMixture
from sciddm.domains.pde.data import FieldStats
from sciddm.domains.pde.guidance import (PAPER_STATE_SCALE, PAPER_WEIGHTS, GuidanceWeights, denoiser_calls,
                                         diffusion_pde_sample, karras_sigmas, paper_residual_scale)
from sciddm.domains.pde.operators import observation_mask, observe
from sciddm.domains.pde.residuals import pde_residual, poisson_residual
from sciddm.process import VE, RectifiedFlow

N = 4  # 2 x 4 x 4 = 32 dimensions
STATS = FieldStats((0.0, 0.0), (1.0, 1.0))


def _prior(n: int = N) -> tuple[GaussianMixture, VE]:
    g = torch.Generator().manual_seed(0)
    B = torch.randn(2 * n * n, 2 * n * n, generator=g, dtype=torch.float64) / (2 * n)
    cov = B @ B.T + 0.05 * torch.eye(2 * n * n, dtype=torch.float64)
    gmm = GaussianMixture(torch.ones(1), torch.zeros(1, 2 * n * n), cov[None])
    return gmm, VE(80.0)


def _denoiser(gmm: GaussianMixture, process: VE):
    D = gmm.denoiser(process)
    return lambda x, t: D(x.flatten(1), t).reshape(x.shape)


def test_karras_sigmas() -> None:
    s = karras_sigmas(5)
    assert s.shape == (6,) and s[0] == 80.0 and abs(float(s[4]) - 0.002) < 1e-12 and s[5] == 0
    assert torch.all(s[1:] < s[:-1])
    # EDM eq. 5 written out, and the core's Karras grid of the VE process at the same levels
    i = torch.arange(5, dtype=torch.float64)
    eq5 = (80.0 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(s[:5], eq5, rtol=1e-13, atol=0)
    from sciddm.sampling import make_grid

    ve = VE(sigma_max=80.0)
    core = ve.sigma(make_grid(ve, 5, "karras", sigma_min=0.002))
    torch.testing.assert_close(core.double(), s, rtol=1e-10, atol=1e-12)


def test_observation_guidance_reduces_observation_error() -> None:
    gmm, process = _prior()
    g = torch.Generator().manual_seed(1)
    truth = gmm.sample(1, generator=g).reshape(2, N, N)
    obs = observe(truth, observation_mask(N, ("u",), 0.25, generator=g))
    D = _denoiser(gmm, process)
    kw = dict(num_samples=16, steps=20)
    free = diffusion_pde_sample(D, process, obs, STATS, weights=GuidanceWeights(), generator=torch.Generator().manual_seed(2), **kw)
    guided = diffusion_pde_sample(D, process, obs, STATS, weights=GuidanceWeights(zeta_obs_u=0.5),
                                  generator=torch.Generator().manual_seed(2), **kw)
    assert guided.shape == free.shape == (16, 2, N, N)
    m = obs.mask[1] == 1
    err = lambda s: (s[:, 1][:, m] - truth[1][m]).norm(dim=1).mean()  # noqa: E731
    # unguided samples miss the 4 observed values by the prior spread (~O(1)); guidance must
    # remove most of it
    assert err(guided) < 0.3 * err(free), (float(err(guided)), float(err(free)))


def test_pde_guidance_reduces_residual() -> None:
    gmm, process = _prior()
    g = torch.Generator().manual_seed(3)
    truth = gmm.sample(1, generator=g).reshape(2, N, N)
    obs = observe(truth, observation_mask(N, ("a",), 0.25, generator=g))
    D = _denoiser(gmm, process)
    kw = dict(num_samples=16, steps=20, residual=poisson_residual)
    res = lambda s: poisson_residual(s[:, 0], s[:, 1]).flatten(1).norm(dim=1).mean()  # noqa: E731
    off = diffusion_pde_sample(D, process, obs, STATS, weights=GuidanceWeights(zeta_obs_a=0.5),
                               generator=torch.Generator().manual_seed(4), **kw)
    on = diffusion_pde_sample(D, process, obs, STATS, generator=torch.Generator().manual_seed(4),
                              weights=GuidanceWeights(zeta_obs_a=0.5, zeta_pde=0.1, pde_start=0.5), **kw)
    # fixed-size steps on an unsquared norm: a weight far above ~1/||L|| overshoots (as the
    # paper's would); 0.1 is in the stable range for the 4x4 Laplacian (||L|| ~ 36 / n^2 = 16)
    assert res(on) < 0.5 * res(off), (float(res(on)), float(res(off)))


def test_paper_residual_scale() -> None:
    assert paper_residual_scale("darcy", 33) == pytest.approx(1 / 32**2)
    assert paper_residual_scale("burgers", 33) == pytest.approx(1 / 32)
    assert paper_residual_scale("poisson", 33) == paper_residual_scale("helmholtz", 9) == 1.0
    with pytest.raises(ValueError, match="no residual for PDE 'heat'"):
        paper_residual_scale("heat", 32)
    with pytest.raises(ValueError, match="grid size"):
        paper_residual_scale("darcy", 2)


def test_paper_darcy_weights_keep_the_coefficient() -> None:
    """The paper's Darcy weights assume its per-cell residual: applied in those units (the default)
    PDE guidance lowers the residual and leaves the coefficient where observation guidance put it;
    the same weights on the physical residual (``residual_scale=1``) are ~n^2 times stronger and
    drag the coefficient far off (a 3.5x larger error on this prior)."""
    n = 8
    gmm, process = _prior(n)
    stats = FieldStats((7.5, 0.005), (4.5, 0.004))  # the Darcy benchmark data's scale
    g = torch.Generator().manual_seed(5)
    truth = stats.denormalize(gmm.sample(1, generator=g).reshape(2, n, n))
    obs = observe(truth, observation_mask(n, ("a",), 0.25, generator=g))
    D = _denoiser(gmm, process)
    w = PAPER_WEIGHTS["darcy"]

    def run(**kw):
        s = diffusion_pde_sample(D, process, obs, stats, pde="darcy", num_samples=16, steps=20,
                                 generator=torch.Generator().manual_seed(4), **kw)
        resid = pde_residual("darcy", s[:, 0], s[:, 1]).flatten(1).norm(dim=1).mean()
        return float(resid), float((s[:, 0] - truth[0]).flatten(1).norm(dim=1).mean())

    r_off, e_off = run(weights=GuidanceWeights(w.zeta_obs_a, w.zeta_obs_u, 0.0))
    r_on, e_on = run()
    _, e_physical = run(residual_scale=1.0)
    assert r_on < 0.9 * r_off, (r_on, r_off)
    assert e_on < 1.05 * e_off, (e_on, e_off)
    assert e_physical > 2 * e_off, (e_physical, e_off)


def test_state_scale_gives_the_papers_physical_step() -> None:
    """With an identity denoiser the Heun steps leave the state alone and only guidance moves it.
    Observation guidance of weight zeta then moves each observed value, in physical units, by
    zeta / c^2 along the unit residual direction in the paper's state x = c phys + d, whatever our
    standardisation; the plain step on the standardised state moves it by zeta s^2 instead."""
    n, steps, zeta = 4, 2, 0.5
    stats = FieldStats((7.5, 0.005), (4.5, 0.004))
    truth = torch.stack([torch.full((n, n), 3.0), torch.full((n, n), 0.002)]).double()
    obs = observe(truth, observation_mask(n, ("u",), 0.25, generator=torch.Generator().manual_seed(0)))
    identity = lambda x, t: x  # noqa: E731
    weights = GuidanceWeights(zeta_obs_u=zeta, pde_start=1.0)  # every step is an early (full-weight) step

    def moved(**kw):
        g = torch.Generator().manual_seed(1)
        start = stats.denormalize(torch.randn((1, 2, n, n), generator=g, dtype=torch.float64) * 80.0)
        end = diffusion_pde_sample(identity, VE(80.0), obs, stats, weights=weights, num_samples=1, steps=steps,
                                   generator=torch.Generator().manual_seed(1), **kw)
        return (start - end)[0, 1][obs.mask[1] == 1].norm()  # the residual keeps its direction: steps add up

    c_u = PAPER_STATE_SCALE["darcy"][1]
    assert float(moved(pde="darcy")) == pytest.approx(steps * zeta / c_u**2, rel=1e-9)
    assert float(moved(pde="darcy", state_scale=(1 / 4.5, 1 / 0.004))) == pytest.approx(steps * zeta * 0.004**2, rel=1e-9)
    with pytest.raises(ValueError, match="state_scale"):
        diffusion_pde_sample(identity, VE(80.0), obs, stats, pde="darcy", state_scale=(1.0, 0.0))


def test_bad_input() -> None:
    gmm, process = _prior()
    obs = observe(torch.zeros(2, N, N), observation_mask(N, ("u",), 0.25))
    D = _denoiser(gmm, process)
    with pytest.raises(ValueError, match="VE"):
        diffusion_pde_sample(D, RectifiedFlow(), obs, STATS, pde="darcy")
    with pytest.raises(ValueError, match="no residual for PDE 'heat'"):
        diffusion_pde_sample(D, process, obs, STATS, pde="heat")
    with pytest.raises(ValueError, match="no residual for PDE 'heat'"):  # before any sampling, weights or not
        diffusion_pde_sample(D, process, obs, STATS, pde="heat", weights=GuidanceWeights(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="no default guidance weights"):
        diffusion_pde_sample(D, process, obs, STATS)
    with pytest.raises(ValueError, match="needs a PDE"):
        diffusion_pde_sample(D, process, obs, STATS, weights=GuidanceWeights(zeta_pde=1.0))
    with pytest.raises(ValueError, match="residual_scale"):
        diffusion_pde_sample(D, process, obs, STATS, pde="darcy", residual_scale=0.0)
    with pytest.raises(ValueError, match="steps"):
        karras_sigmas(1)


def test_euler_one_step_is_the_denoised_estimate_and_converges_at_first_order() -> None:
    """``solver="euler"`` (few-step rows of issue #9): one step from sigma_max lands on D(x_T, sigma_max);
    unguided, its ODE map approaches Heun's as the steps double, with the error halving (first order)."""
    gmm, process = _prior()
    obs = observe(torch.zeros(2, N, N), observation_mask(N, ("u",), 0.25))
    D = _denoiser(gmm, process)
    free = GuidanceWeights()

    def run(steps: int, solver: str) -> torch.Tensor:
        return diffusion_pde_sample(D, process, obs, STATS, weights=free, num_samples=8, steps=steps, solver=solver,
                                    generator=torch.Generator().manual_seed(5))

    x_T = torch.randn((8, 2, N, N), generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 80.0
    one = run(1, "euler")
    assert torch.allclose(one, D(x_T, torch.ones(8, dtype=torch.float64)), atol=1e-12)
    exact = run(200, "heun")
    errs = [float((run(k, "euler") - exact).norm() / exact.norm()) for k in (100, 200, 400)]
    assert errs[0] > errs[1] > errs[2]
    for coarse, fine in zip(errs, errs[1:]):
        assert 0.4 < fine / coarse < 0.65, errs


def test_explicit_grid_matches_the_karras_grid_and_is_checked() -> None:
    gmm, process = _prior()
    obs = observe(torch.ones(2, N, N), observation_mask(N, ("u",), 0.25))
    D = _denoiser(gmm, process)
    kw = dict(weights=GuidanceWeights(zeta_obs_u=0.5), num_samples=4)
    a = diffusion_pde_sample(D, process, obs, STATS, steps=6, generator=torch.Generator().manual_seed(0), **kw)
    b = diffusion_pde_sample(D, process, obs, STATS, sigmas=karras_sigmas(6), generator=torch.Generator().manual_seed(0),
                             **kw)
    assert torch.equal(a, b)
    for bad in ([80.0, 1.0], [80.0, 1.0, 2.0, 0.0], [0.0]):
        with pytest.raises(ValueError, match="sigmas must decrease"):
            diffusion_pde_sample(D, process, obs, STATS, sigmas=torch.tensor(bad), **kw)
    with pytest.raises(ValueError, match="solver"):
        diffusion_pde_sample(D, process, obs, STATS, solver="rk4", **kw)


@pytest.mark.parametrize("solver, steps", [("heun", 2), ("heun", 7), ("euler", 1), ("euler", 5)])
def test_denoiser_calls_counts_what_the_sampler_calls(solver: str, steps: int) -> None:
    gmm, process = _prior()
    obs = observe(torch.ones(2, N, N), observation_mask(N, ("u",), 0.25))
    D, calls = _denoiser(gmm, process), []

    def counting(x, t):
        calls.append(1)
        return D(x, t)

    diffusion_pde_sample(counting, process, obs, STATS, weights=GuidanceWeights(zeta_obs_u=0.5), num_samples=2,
                         steps=steps, solver=solver)
    assert len(calls) == denoiser_calls(steps, solver)
    with pytest.raises(ValueError, match="solver"):
        denoiser_calls(steps, "rk4")
    with pytest.raises(ValueError, match="steps"):
        denoiser_calls(0, solver)
