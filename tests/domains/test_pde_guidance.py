"""The DiffusionPDE sampler with an exact Gaussian prior on a tiny grid: guidance lowers the
observation error and the PDE residual, shapes are kept, bad input is refused."""

import pytest
import torch

from sciddm.analytic import GaussianMixture
from sciddm.domains.pde.data import FieldStats
from sciddm.domains.pde.guidance import GuidanceWeights, diffusion_pde_sample, karras_sigmas
from sciddm.domains.pde.operators import observation_mask, observe
from sciddm.domains.pde.residuals import poisson_residual
from sciddm.process import VE, RectifiedFlow

N = 4  # 2 x 4 x 4 = 32 dimensions
STATS = FieldStats((0.0, 0.0), (1.0, 1.0))


def _prior() -> tuple[GaussianMixture, VE]:
    g = torch.Generator().manual_seed(0)
    B = torch.randn(2 * N * N, 2 * N * N, generator=g, dtype=torch.float64) / (2 * N)
    cov = B @ B.T + 0.05 * torch.eye(2 * N * N, dtype=torch.float64)
    gmm = GaussianMixture(torch.ones(1), torch.zeros(1, 2 * N * N), cov[None])
    return gmm, VE(80.0)


def _denoiser(gmm: GaussianMixture, process: VE):
    D = gmm.denoiser(process)
    return lambda x, t: D(x.flatten(1), t).reshape(x.shape)


def test_karras_sigmas() -> None:
    s = karras_sigmas(5)
    assert s.shape == (6,) and s[0] == 80.0 and abs(float(s[4]) - 0.002) < 1e-12 and s[5] == 0
    assert torch.all(s[1:] < s[:-1])


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
    with pytest.raises(ValueError, match="steps"):
        karras_sigmas(1)
