"""FNO and UNet baselines: shapes, the FNO's spectral truncation, a short fit that lowers the loss."""

import pytest
import torch

from sciddm.domains.pde.baselines import FNO2d, SpectralConv2d, UNetRegressor, baseline_input, random_problem_masks, train_regressor


def test_baselines_forward_shapes() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 2, 16, 16, generator=g)
    m = random_problem_masks(3, 16, 0.1, g)
    x = baseline_input(v, m)
    assert x.shape == (3, 4, 16, 16) and torch.equal(x[:, 1], m[:, 0]) and torch.equal(x[:, 0], v[:, 0] * m[:, 0])
    assert FNO2d(modes=4, width=8, layers=2)(x).shape == (3, 2, 16, 16)
    big = baseline_input(torch.randn(2, 2, 32, 32), random_problem_masks(2, 32, 0.1, g))
    assert UNetRegressor(features=(8, 8, 8, 8, 8, 8))(big).shape == (2, 2, 32, 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        UNetRegressor()(torch.zeros(1, 4, 20, 20))
    with pytest.raises(ValueError, match=r"\(B, 2, n, n\)"):
        baseline_input(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_masks_per_problem_kind() -> None:
    m = random_problem_masks(300, 10, 0.1, torch.Generator().manual_seed(1))
    counts = m.sum(dim=(2, 3))
    assert set(counts.flatten().tolist()) <= {0.0, 10.0}
    assert (counts.sum(dim=1) > 0).all()  # every problem observes something


def test_spectral_conv_keeps_only_low_modes() -> None:
    layer = SpectralConv2d(1, 1, modes=2)
    x = torch.zeros(1, 1, 16, 16)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    x[0, 0] = torch.cos(2 * torch.pi * 5 * xx / 16)  # frequency 5 > modes: filtered out exactly
    assert layer(x).abs().max() < 1e-5


def test_short_fit_lowers_loss() -> None:
    torch.manual_seed(0)
    # constant fields, u = a: every problem kind determines both fields from a few points
    data = torch.randn(8, 1, 1, 1) * torch.ones(8, 2, 16, 16)
    model = FNO2d(modes=4, width=8, layers=2)
    x = baseline_input(data, random_problem_masks(8, 16, 0.1, torch.Generator().manual_seed(2)))
    before = float(((model(x) - data) ** 2).mean())
    train_regressor(model, data, density=0.1, steps=100, batch_size=8, lr=1e-2)
    after = float(((model(x) - data) ** 2).mean())
    assert after < 0.5 * before, (before, after)


def test_train_regressor_uses_the_given_mask_patterns() -> None:
    seen: list[torch.Tensor] = []

    def only_u_row(batch: int, n: int, density: float, g: torch.Generator) -> torch.Tensor:
        m = torch.zeros(batch, 2, n, n)
        m[:, 1, 0] = 1.0
        seen.append(m)
        return m

    model = FNO2d(modes=2, width=4, layers=1)
    train_regressor(model, torch.randn(4, 2, 16, 16), steps=3, batch_size=2, masks=only_u_row)
    assert len(seen) == 3 and all(m.shape == (2, 2, 16, 16) for m in seen)
