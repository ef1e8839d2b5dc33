"""The Gaussian-mixture oracle, checked against independent computations (autograd, quadrature)."""

import pytest
import torch

from sciddm.analytic import GaussianMixture
from sciddm.process import VP


def mixture_2d(full: bool = True) -> GaussianMixture:
    g = torch.Generator().manual_seed(1)
    means = torch.randn(3, 2, generator=g, dtype=torch.float64)
    if full:
        L = torch.randn(3, 2, 2, generator=g, dtype=torch.float64) * 0.4
        covs = L @ L.transpose(-1, -2) + 0.05 * torch.eye(2, dtype=torch.float64)
    else:
        covs = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    return GaussianMixture(torch.tensor([0.2, 0.5, 0.3]), means, covs)


def grid_2d(n=401, half=6.0):
    u = torch.linspace(-half, half, n, dtype=torch.float64)
    X, Y = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([X.flatten(), Y.flatten()], -1), (u[1] - u[0]) ** 2


@pytest.mark.parametrize("full", [True, False])
def test_density_integrates_to_one(full):
    gm = mixture_2d(full)
    pts, dA = grid_2d()
    assert float(torch.exp(gm.log_prob(pts)).sum() * dA) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("t", [0.05, 0.3, 0.8])
def test_posterior_mean_is_tweedie_of_the_noisy_density(full, t):
    # E[x0 | x_t] = (x + sigma^2 grad log p_t(x)) / alpha, gradient by autograd of log p_t
    gm, p = mixture_2d(full), VP()
    tt = torch.tensor(t, dtype=torch.float64)
    a, s = p.alpha(tt), p.sigma(tt)
    x = torch.randn(32, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(gm.log_prob_noisy(x, a, s).sum(), x)
    tweedie = (x.detach() + s**2 * grad) / a
    assert torch.allclose(gm.posterior_mean(x.detach(), a, s), tweedie, atol=1e-10)


def test_sample_moments_match():
    gm = mixture_2d(True)
    x = gm.sample(200_000, generator=torch.Generator().manual_seed(0))
    cov = gm.covariance()
    se = torch.sqrt(torch.diagonal(cov) / x.shape[0])
    assert torch.all((x.mean(0) - gm.mean()).abs() < 5 * se)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.02)


@pytest.mark.parametrize("full", [True, False])
def test_exact_posterior_against_quadrature(full):
    gm = mixture_2d(full)
    A = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    y = torch.tensor([0.3], dtype=torch.float64)
    sy = 0.2
    post = gm.posterior(A, sy, y)
    pts, dA = grid_2d()
    logp = gm.log_prob(pts) - 0.5 * ((pts @ A.T - y) ** 2).sum(-1) / sy**2
    w = torch.softmax(logp, 0)
    mean_q = w @ pts
    cov_q = (pts - mean_q).T @ ((pts - mean_q) * w[:, None])
    assert torch.allclose(post.mean(), mean_q, atol=1e-6)
    assert torch.allclose(post.covariance(), cov_q, atol=1e-6)
    # and the posterior density is the normalised product, pointwise
    assert torch.allclose(torch.exp(post.log_prob(pts)) * dA, w, atol=1e-8)


def test_posterior_handles_singular_components():
    # a degenerate (zero-variance) direction must not break the Woodbury update
    gm = GaussianMixture(torch.ones(2), torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    post = gm.posterior(torch.eye(2), 0.1, torch.tensor([0.5, 0.9]))
    assert torch.all(torch.isfinite(post.means)) and torch.all(post.eigvals >= 0)


def test_denoiser_convention_any_rank():
    gm = GaussianMixture(torch.ones(2), torch.randn(2, 6), 0.1)
    D = gm.denoiser(VP())
    x = torch.randn(5, 2, 3)
    out = D(x, torch.full((5,), 0.5))
    assert out.shape == x.shape and out.dtype == x.dtype
    flat = D(x.reshape(5, 6), 0.5)
    assert torch.allclose(out.reshape(5, 6), flat)


@pytest.mark.parametrize("covs", ["scalar", "isotropic", "diagonal", "full"])
def test_variances_are_the_covariance_diagonals(covs):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(3, 5, 5, generator=g, dtype=torch.float64)
    c = {"scalar": 0.3, "isotropic": torch.tensor([0.1, 0.2, 0.3]),
         "diagonal": torch.rand(3, 5, generator=g, dtype=torch.float64), "full": B @ B.transpose(-1, -2)}[covs]
    gm = GaussianMixture(torch.ones(3), torch.zeros(3, 5), c)
    assert torch.allclose(gm.variances(), gm.covariances().diagonal(dim1=-2, dim2=-1), rtol=1e-12, atol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="means"):
        GaussianMixture(torch.ones(2), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(torch.tensor([1.0, -1.0]), torch.zeros(2, 3), 1.0)
    gm = mixture_2d()
    with pytest.raises(ValueError, match="A must"):
        gm.posterior(torch.ones(1, 3), 0.1, torch.zeros(1))
    with pytest.raises(ValueError, match="sigma_y"):
        gm.posterior(torch.ones(1, 2), 0.0, torch.zeros(1))
