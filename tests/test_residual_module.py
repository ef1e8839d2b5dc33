"""The core ResidualDiffusionModule: its two losses, and sampling mu(c) + r with an exact residual denoiser."""

from __future__ import annotations

import pytest
import torch

from sciddm.nets import UNetDenoiserNet
from sciddm.process import VE
from sciddm.training import ResidualDiffusionModule


def tiny(in_ch: int, cond: int = 0, out: int | None = None) -> UNetDenoiserNet:
    return UNetDenoiserNet(2, in_ch, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                           norm_num_groups=4, cond_channels=cond, out_channels=out)


class Halved(ResidualDiffusionModule):
    """A deterministic condition with other channels than the field: [x / 2, x / 2, x / 2] stacked."""

    def condition(self, x0, generator=None):
        return torch.cat([0.5 * x0] * 3, dim=1)


def model(**kw) -> Halved:
    torch.manual_seed(0)
    m = Halved(tiny(2, cond=6), tiny(6, out=2), VE(sigma_max=80.0), prediction="x0", preconditioning="edm", **kw)
    with torch.no_grad():  # MONAI's output layer starts at zero: give the regression a non-trivial mean
        for w in m.regression_net.parameters():
            w.add_(0.2 * torch.randn_like(w))
    return m


def test_the_base_class_asks_for_a_condition_and_the_regression_must_match_the_field() -> None:
    base = ResidualDiffusionModule(tiny(2, cond=2), tiny(2), VE(sigma_max=80.0))
    with pytest.raises(NotImplementedError, match="condition"):
        base.condition(torch.zeros(1, 2, 8, 8))
    wrong = Halved(tiny(2, cond=6), tiny(6), VE(sigma_max=80.0))  # regression returns 6 channels, field has 2
    with pytest.raises(ValueError, match="field's channels"):
        wrong._losses(torch.zeros(2, 2, 8, 8), torch.Generator().manual_seed(0))


def test_losses_are_the_regression_mse_and_the_diffusion_loss_of_the_residual() -> None:
    m = model()
    x0 = torch.randn(4, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    reg, res = m._losses(x0, torch.Generator().manual_seed(5))
    with torch.no_grad():
        c = m.condition(x0)
        mu = m.regress(c)
        assert float(mu.abs().mean()) > 0.05
        assert float(reg) == pytest.approx(float((mu - x0).pow(2).mean()), rel=1e-6)
        expect = m.loss_fn(m.denoiser, x0 - mu, {"cond": c}, generator=torch.Generator().manual_seed(5))
        assert float(res) == pytest.approx(float(expect), rel=1e-6)
        # the target is the residual, not the field: the loss on x0 itself differs
        other = m.loss_fn(m.denoiser, x0, {"cond": c}, generator=torch.Generator().manual_seed(5))
        assert abs(float(other) - float(expect)) > 1e-3


def test_sample_given_draws_mu_plus_the_residual_distribution() -> None:
    """With the exact denoiser of a Gaussian residual N(0, s^2 I), the samples are N(mu(c), s^2 I)."""
    m = model(sample_solver="heun", sample_steps=100, sample_grid="karras")  # 18 steps: std 6 % high
    s = 0.3

    def exact(x, t, cond):
        sig2 = m.process.sigma(t).view(-1, 1, 1, 1) ** 2
        return x * s**2 / (s**2 + sig2)

    c = m.condition(torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(2)))
    out = m.sample_given(c, 400, denoiser=exact, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        mu = m.regress(c)
    r = out - mu
    assert out.shape == (400, 2, 8, 8)
    assert abs(float(r.mean())) < 4 * s / (r.numel() ** 0.5)
    assert float(r.std()) == pytest.approx(s, rel=0.02)
    # a denoiser returning zero leaves mu(c) for every member; the defaults are the model's Heun 100
    zero = m.sample_given(c, 3, denoiser=lambda x, t, cond: torch.zeros_like(x), generator=torch.Generator())
    torch.testing.assert_close(zero, mu.expand(3, -1, -1, -1))
    m.train()  # sampling in the middle of training leaves the model training, as every generate does
    m.sample_given(c, 2, steps=2, generator=torch.Generator())
    assert m.training and m.regression_net.training
    m.eval()
    m.sample_given(c, 2, steps=2, generator=torch.Generator())
    assert not m.training
    with pytest.raises(ValueError, match="batch axis of 1"):
        m.sample_given(torch.cat([c, c]), 2)
    with pytest.raises(ValueError, match="num_samples"):
        m.sample_given(c, 0)
