"""Bicubic baseline, the CorrDiff-style module and the atmospheric data module on tiny inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sciddm import VP
from sciddm.domains.atmos import AtmosDataModule, CorrDiffModule, bicubic, corrdiff_sample
from sciddm.inverse import CoarseGrain
from sciddm.nets import UNetDenoiserNet


def test_bicubic_reproduces_constants_and_interior_linear_fields() -> None:
    const = torch.full((1, 2, 4, 4), 1.5, dtype=torch.float64)
    torch.testing.assert_close(bicubic(const, (16, 16)), torch.full((1, 2, 16, 16), 1.5, dtype=torch.float64))
    # a field linear in x: its block means are the line at the block centres, and Keys' a = -1/2
    # kernel reproduces linear functions exactly where its 4-point stencil stays inside the grid
    h = w = 32
    x = torch.arange(w, dtype=torch.float64).expand(1, 1, h, w).clone()
    up = bicubic(CoarseGrain(4, 0.1, spatial_dims=2).forward(x), (h, w))
    torch.testing.assert_close(up[..., 8:24], x[..., 8:24], rtol=0, atol=1e-10)
    # values of a smooth function at the coarse cell centres are interpolated to third order
    # (Keys 1981): halving the coarse spacing cuts the interior error by about 2^3
    errs = []
    for n in (8, 16):
        centres = lambda m: (torch.arange(m, dtype=torch.float64) + 0.5) / m  # noqa: E731
        coarse = torch.sin(2 * torch.pi * centres(n)).expand(1, 1, 2, n).clone()
        fine = torch.sin(2 * torch.pi * centres(8 * n))
        err = (bicubic(coarse, (2, 8 * n))[0, 0, 0] - fine)[2 * 8: -2 * 8].abs().max()
        errs.append(float(err))
    assert 6.0 < errs[0] / errs[1] < 10.0, errs
    with pytest.raises(ValueError, match="bicubic expects"):
        bicubic(torch.zeros(2, 4, 4), (8, 8))


def tiny_net(cond: int = 0) -> UNetDenoiserNet:
    return UNetDenoiserNet(2, 2, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1, norm_num_groups=4,
                           cond_channels=cond)


def test_corrdiff_losses_and_sampling_shapes() -> None:
    torch.manual_seed(0)
    m = CorrDiffModule(tiny_net(2), tiny_net(), VP(), factor=4, sample_steps=3)
    x0 = torch.randn(3, 2, 8, 8)
    c = m.upsampled_coarse(x0)
    reg, res = m._losses(x0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float(reg) == pytest.approx(float((m.regress(c) - x0).pow(2).mean()), rel=1e-6)
    assert torch.isfinite(res)
    out = corrdiff_sample(m, torch.randn(2, 2, 2), (8, 8), 5, generator=torch.Generator().manual_seed(1))
    assert out.shape == (5, 2, 8, 8) and torch.isfinite(out).all()


def test_data_module_on_a_tiny_synthetic_store(tmp_path: Path) -> None:
    dm = AtmosDataModule(str(tmp_path / "qg.zarr"), ["z250", "u250"], train=("2000-01-01", "2000-01-15"),
                         val=("2000-01-16", "2000-01-31"), stats_path=str(tmp_path / "m" / "stats.json"),
                         synthetic=dict(ny=8, nx=8, num_snapshots=12, spinup_days=2.0, snapshot_interval_days=2.0,
                                        lat_range=[30.0, 50.0], lon_range=[-20.0, 20.0]),
                         in_memory=True, batch_size=4)
    assert dm.data_shape == (2, 8, 8)
    dm.setup("fit")
    assert len(dm.train_set) == 8 and len(dm.val_set) == 4  # snapshots every 2 days from Jan 1
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (4, 2, 8, 8) and batch.dtype == torch.float32
    assert (tmp_path / "m" / "stats.json").is_file()
    # training statistics: the training set is standardised
    allx = dm.train_set.data.double()
    assert float(allx.mean((0, 2, 3)).abs().max()) < 1e-5
    assert allx.std((0, 2, 3), correction=0).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    with pytest.raises(ValueError, match="does not exist"):
        AtmosDataModule(str(tmp_path / "none.zarr"), ["z250"], ("2000-01-01", "2000-01-02"), ("2000-01-03", "2000-01-04")).prepare_data()


def test_corrdiff_trains_on_noisy_block_means_when_asked() -> None:
    """coarse_noise adds N(0, s^2) to each block mean (only with a generator: sampling stays exact)."""
    net = lambda: UNetDenoiserNet(spatial_dims=2, in_channels=1, channels=[8, 8], attention_levels=[False, False],
                                  num_res_blocks=1, norm_num_groups=4)  # noqa: E731
    x0 = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    exact = CorrDiffModule(net(), net(), VP(), factor=4).coarse_of(x0)
    noisy_model = CorrDiffModule(net(), net(), VP(), factor=4, coarse_noise=0.3)
    torch.testing.assert_close(noisy_model.coarse_of(x0), exact)  # no generator: no noise
    diff = noisy_model.coarse_of(x0, torch.Generator().manual_seed(1)) - exact
    assert diff.shape == (64, 1, 2, 2)
    assert abs(float(diff.std()) - 0.3) < 0.3 * 0.15 and abs(float(diff.mean())) < 0.3 * 0.15
    with pytest.raises(ValueError, match="coarse_noise"):
        CorrDiffModule(net(), net(), VP(), factor=4, coarse_noise=-0.1)


def test_corrdiff_sample_grid_and_denoiser_overrides() -> None:
    from sciddm.process import VE
    from sciddm.sampling import make_grid

    torch.manual_seed(0)
    m = CorrDiffModule(tiny_net(2), tiny_net(), VE(sigma_max=80.0), factor=4, prediction="x0", preconditioning="edm",
                       sample_solver="heun", sample_steps=3, sample_grid="karras")
    coarse = torch.randn(2, 2, 2)

    def draw(**kw):
        return corrdiff_sample(m, coarse, (8, 8), 3, generator=torch.Generator().manual_seed(1), **kw)

    # an explicit array equal to the named grid draws the same fields; its length sets the steps
    times = make_grid(m.process, 4, "karras")
    torch.testing.assert_close(draw(solver="euler", grid=times), draw(solver="euler", steps=4))
    torch.testing.assert_close(draw(), draw(solver="heun", steps=3, grid="karras"))  # the model's defaults
    assert not torch.allclose(draw(solver="euler", steps=4), draw(solver="euler", steps=2))
    # a residual denoiser that returns 0 leaves the regression mean, the same for every member
    with torch.no_grad():
        mu = m.regress(bicubic(coarse[None], (8, 8)))
    zero = draw(solver="euler", steps=2, denoiser=lambda x, t, cond: torch.zeros_like(x))
    torch.testing.assert_close(zero, mu.expand(3, -1, -1, -1))


def test_corrdiff_posterior_pulls_the_observed_pixels_to_the_observation_around_mu() -> None:
    from sciddm.domains.atmos import corrdiff_posterior
    from sciddm.inverse import Mask, PhaseRetrieval
    from sciddm.process import VE

    torch.manual_seed(0)
    m = CorrDiffModule(tiny_net(2), tiny_net(), VE(sigma_max=80.0), factor=4, prediction="x0", preconditioning="edm")
    coarse = torch.randn(2, 2, 2)
    with torch.no_grad():
        for w in m.regression_net.parameters():  # the UNet's output layer starts at zero: give it a mean
            w.add_(0.2 * torch.randn_like(w))
        mu = m.regress(bicubic(coarse[None], (8, 8)))[0]
    assert float(mu.abs().mean()) > 0.1  # the shift by A mu matters in this test

    def gaussian(x, t, cond):  # exact denoiser of a residual r ~ N(0, I) under VE noise sigma(t)
        s2 = m.process.sigma(t).view(-1, 1, 1, 1) ** 2
        return x / (1.0 + s2)

    keep = torch.zeros(2, 8, 8, dtype=torch.bool)
    keep[:, ::2, ::3] = True
    op = Mask(keep, 0.01, spatial_dims=2)
    truth = mu + 0.8
    y = op.forward(truth[None])[0]
    kw = dict(generator=torch.Generator().manual_seed(3))
    post = corrdiff_posterior(m, coarse, (8, 8), 6, op, y, steps=30, zeta=1.0, denoiser=gaussian, **kw)
    free = corrdiff_sample(m, coarse, (8, 8), 6, solver="euler", steps=30, denoiser=gaussian, **kw)
    err_post = float((post - truth)[:, keep].abs().mean())
    err_free = float((free - truth)[:, keep].abs().mean())
    assert err_post < 0.25 * err_free  # guided towards y, around mu (a wrong shift would miss by |mu|)
    assert float((post - truth)[:, ~keep].abs().mean()) > 2 * err_post  # unobserved pixels: the prior's spread

    with pytest.raises(ValueError, match="linear"):
        corrdiff_posterior(m, coarse, (8, 8), 2, PhaseRetrieval(0.1), torch.zeros(2, 8, 8), steps=2)
