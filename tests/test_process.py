"""Processes: round trips t -> logsnr -> t, derivatives against finite differences, endpoints."""

import math

import pytest
import torch

from sciddm.process import VE, VP, Process, RectifiedFlow

PROCESSES = {
    "vp_linear": VP(),
    "vp_cosine": VP(schedule="cosine"),
    "vp_betas": VP.from_betas(torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)),
    "ve": VE(80.0),
    "flow": RectifiedFlow(),
}


@pytest.fixture(params=sorted(PROCESSES))
def process(request) -> Process:
    return PROCESSES[request.param]


T = torch.linspace(1e-3, 0.999, 257, dtype=torch.float64)


def test_logsnr_round_trip(process):
    assert torch.allclose(process.t_of_logsnr(process.logsnr(T)), T, atol=1e-10, rtol=0)


def test_logsnr_strictly_decreasing(process):
    lam = process.logsnr(T)
    assert torch.all(lam[1:] < lam[:-1])


def test_endpoints(process):
    assert float(process.sigma(0.0)) == 0.0
    assert float(process.alpha(0.0)) == pytest.approx(1.0)
    assert math.isinf(float(process.logsnr(torch.tensor(0.0, dtype=torch.float64))))
    # in a batch too: vectorised kernels (as a sampler's grid ending at 0) may round differently
    # from the scalar path; a VP's log alpha a hair above 0 once made sigma(0) NaN
    for dtype in (torch.float32, torch.float64):
        t = torch.cat([torch.zeros(64, dtype=dtype), torch.linspace(0, 1, 65, dtype=dtype)])
        sig = process.sigma(t)
        assert bool(torch.isfinite(sig).all()) and bool((sig[:64] == 0).all()) and bool((sig >= 0).all())


def test_logsnr_matches_alpha_sigma(process):
    expected = 2 * torch.log(process.alpha(T) / process.sigma(T))
    assert torch.allclose(process.logsnr(T), expected, rtol=1e-10, atol=1e-10)


def test_derivatives_match_finite_differences(process):
    if isinstance(process, VP) and process.schedule == "betas":
        # piecewise-linear log alpha: compare inside one interval, away from the knots
        t = (torch.arange(10, 990, 97, dtype=torch.float64) + 0.5) / 1000
        h = 1e-5
    else:
        t, h = T[5:-5], 1e-6
    for f, df in ((process.alpha, process.d_alpha), (process.sigma, process.d_sigma), (process.logsnr, process.d_logsnr)):
        fd = (f(t + h) - f(t - h)) / (2 * h)
        assert torch.allclose(df(t), fd, rtol=1e-5, atol=1e-6)


def test_vp_is_variance_preserving():
    for p in (PROCESSES["vp_linear"], PROCESSES["vp_cosine"], PROCESSES["vp_betas"]):
        assert torch.allclose(p.alpha(T) ** 2 + p.sigma(T) ** 2, torch.ones_like(T), atol=1e-12)


def test_vp_linear_is_the_ddpm_schedule():
    # Ho et al. (2020): beta_i linear from 1e-4 to 0.02 over 1000 steps; continuous beta(t)/1000.
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    t = torch.arange(1, 1001, dtype=torch.float64) / 1000
    log_cont = 2 * torch.log(VP(beta_min=0.1, beta_max=20.0).alpha(t))
    # log(1 - b) = -b - O(b^2), and the sum of beta_i is a Riemann sum of the integral of beta(t):
    # the two differ by at most sum b^2 plus the quadrature error (beta_max - beta_min) / N.
    bound = float((betas**2).sum()) + (20.0 - 0.1) / 1000
    assert float((log_cont - torch.log(alpha_bar)).abs().max()) <= bound
    disc = PROCESSES["vp_betas"].alpha(t) ** 2
    assert torch.allclose(disc, alpha_bar, rtol=1e-12)


def test_cosine_matches_iddpm_away_from_the_end():
    # Nichol & Dhariwal eq. 17 with s = 0.008; our time is rescaled only by the end clamp.
    p = PROCESSES["vp_cosine"]
    f = lambda u: torch.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    lam = p.logsnr(T[:100])
    u = p.t_of_logsnr(lam)
    a2 = p.alpha(u) ** 2
    # invert the iDDPM curve at the same alpha^2 and check it is a fixed rescaling of time
    theta = torch.acos(torch.sqrt(a2) * math.cos(0.008 / 1.008 * math.pi / 2))
    u_iddpm = theta / (math.pi / 2) * 1.008 - 0.008
    ratio = u_iddpm[1:] / u[1:]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-8)
    assert float(ratio[0]) == pytest.approx(1.0, abs=1e-3)
    assert torch.allclose(f(u_iddpm) / f(torch.zeros(1, dtype=torch.float64)), a2, rtol=1e-10)


def test_rectified_flow_closed_form():
    p = RectifiedFlow()
    assert torch.allclose(p.alpha(T), 1 - T)
    assert torch.allclose(p.sigma(T), T)
    assert torch.allclose(p.t_of_logsnr(p.logsnr(T)), T)


def test_add_noise_broadcasts_over_any_rank():
    p = VP()
    for shape in [(4, 3), (4, 2, 5), (4, 1, 3, 3), (4, 1, 2, 2, 2)]:
        x0, eps = torch.randn(shape), torch.randn(shape)
        t = torch.rand(4)
        xt = p.add_noise(x0, t, eps)
        for i in range(4):
            expect = p.alpha(t[i].double()).float() * x0[i] + p.sigma(t[i].double()).float() * eps[i]
            assert torch.allclose(xt[i], expect, atol=1e-6)


def test_config_round_trip():
    for p in PROCESSES.values():
        q = Process.from_config(p.config())
        assert torch.allclose(q.logsnr(T), p.logsnr(T))


@pytest.mark.parametrize("bad", [dict(beta_min=5.0, beta_max=1.0), dict(schedule="quadratic")])
def test_bad_vp_arguments(bad):
    with pytest.raises(ValueError):
        VP(**bad)


def test_bad_betas_and_ve():
    with pytest.raises(ValueError, match="betas"):
        VP.from_betas([0.5, 1.5])
    with pytest.raises(ValueError, match="sigma_max"):
        VE(-1.0)
    with pytest.raises(ValueError, match="unknown process"):
        Process.from_config({"class_path": "Nope"})
