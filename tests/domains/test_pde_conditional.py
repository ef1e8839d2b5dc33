"""The amortised conditional PDE model: its training conditions, and answers in physical units."""

from __future__ import annotations

import pytest
import torch

from sciddm.domains.pde import FieldStats
from sciddm.domains.pde.baselines import baseline_input
from sciddm.domains.pde.conditional import ConditionalPDEModule, observation_condition, solve_conditional
from sciddm.domains.pde.solve import make_observation
from sciddm.nets import UNetDenoiserNet
from sciddm.process import VE
from sciddm.training import DiffusionModule


def tiny(in_ch: int, cond: int = 0, out: int | None = None) -> UNetDenoiserNet:
    return UNetDenoiserNet(2, in_ch, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                           norm_num_groups=4, cond_channels=cond, out_channels=out)


def model(density: float = 0.05) -> ConditionalPDEModule:
    torch.manual_seed(0)
    m = ConditionalPDEModule(tiny(2, cond=4), tiny(4, out=2), VE(sigma_max=80.0), density=density, prediction="x0",
                             preconditioning="edm", sample_solver="heun", sample_steps=4, sample_grid="karras",
                             data_shape=[2, 16, 16])
    with torch.no_grad():
        for w in m.regression_net.parameters():
            w.add_(0.2 * torch.randn_like(w))
    return m


def test_training_conditions_observe_a_u_or_both_at_the_density() -> None:
    m = model(density=0.05)
    x0 = torch.randn(90, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    c = m.condition(x0, torch.Generator().manual_seed(1))
    assert c.shape == (90, 4, 16, 16)
    masks = c[:, [1, 3]]
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(c[:, [0, 2]], x0 * masks)  # observed values, zero elsewhere
    counts = masks.sum(dim=(2, 3))  # (90, 2) points of a and of u
    k = round(0.05 * 256)
    assert set(counts.flatten().tolist()) <= {0.0, float(k)}
    kinds = {tuple((counts[i] > 0).tolist()) for i in range(90)}
    assert kinds == {(True, False), (False, True), (True, True)}  # forward, inverse, both: all three drawn
    torch.testing.assert_close(m.condition(x0, torch.Generator().manual_seed(1)), c)  # reproducible
    assert not torch.equal(m.condition(x0, torch.Generator().manual_seed(2)), c)
    with pytest.raises(ValueError, match=r"\(B, 2, n, n\)"):
        m.condition(torch.zeros(2, 3, 16, 16))
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="density"):
            model(density=bad)


def test_an_observation_becomes_the_condition_in_model_units() -> None:
    stats = FieldStats(mean=(7.0, 0.01), std=(4.0, 0.005))
    truth = torch.stack([torch.full((16, 16), 12.0), torch.linspace(0, 0.02, 256).view(16, 16)]).double()
    obs = make_observation(truth, "forward", 0.05, generator=torch.Generator().manual_seed(0))
    c = observation_condition(obs, stats)
    assert c.shape == (1, 4, 16, 16)
    torch.testing.assert_close(c, baseline_input(stats.normalize(truth)[None] * obs.mask[None], obs.mask[None]))
    m = obs.mask[0].bool()
    assert torch.allclose(c[0, 0][m], torch.tensor(1.25))  # (12 - 7) / 4 where a is observed
    assert float(c[0, 3].sum()) == 0.0  # the forward problem observes no u


def test_solve_conditional_answers_in_physical_units_and_refuses_what_it_cannot_answer() -> None:
    m = model()
    stats = FieldStats(mean=(7.0, 0.01), std=(4.0, 0.005))
    truth = torch.stack([torch.full((16, 16), 3.0), torch.zeros(16, 16)]).double()
    obs = make_observation(truth, "inverse", 0.05, generator=torch.Generator().manual_seed(0))
    sol = solve_conditional(m, stats, obs, num_samples=3, denoiser=lambda x, t, cond: torch.zeros_like(x),
                            generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu = m.regress(observation_condition(obs, stats).float())[0].double()
    torch.testing.assert_close(sol.samples, stats.denormalize(mu).expand(3, -1, -1, -1), rtol=1e-6, atol=1e-6)
    drawn = solve_conditional(m, stats, obs, num_samples=4, steps=3, solver="euler",
                              generator=torch.Generator().manual_seed(0))
    assert drawn.samples.shape == (4, 2, 16, 16) and float(drawn.std.max()) > 0
    with pytest.raises(ValueError, match="8x8 grid"):
        solve_conditional(m, stats, make_observation(truth[:, :8, :8], "forward", 0.1), num_samples=2)
    prior = DiffusionModule(tiny(2), VE(sigma_max=80.0), data_shape=[2, 16, 16])
    with pytest.raises(ValueError, match="conditional model"):
        solve_conditional(prior, stats, obs)


def test_with_sensors_half_the_batch_observes_u_at_fixed_positions_at_every_time() -> None:
    torch.manual_seed(0)
    m = ConditionalPDEModule(tiny(2, cond=4), tiny(4, out=2), VE(sigma_max=80.0), density=0.05, sensors=3)
    c = m.condition(torch.randn(10, 2, 16, 16), torch.Generator().manual_seed(0))
    for i in range(5):  # sensors: no a, u on 3 whole rows (positions x, every time t)
        assert float(c[i, 1].sum()) == 0.0
        rows = c[i, 3].sum(dim=1)
        assert sorted(rows.tolist()).count(16.0) == 3 and float(rows.sum()) == 48.0
    k = round(0.05 * 256)
    for i in range(5, 10):  # point masks of the three kinds
        assert {float(c[i, 1].sum()), float(c[i, 3].sum())} <= {0.0, float(k)}
    with pytest.raises(ValueError, match="sensors"):
        ConditionalPDEModule(tiny(2, cond=4), tiny(4, out=2), VE(sigma_max=80.0), sensors=-1)


def test_a_density_range_observes_each_training_field_at_its_own_density() -> None:
    """density=[low, high]: per field log-uniform in the range, each field observed at round(d n^2) points."""
    m = model(density=[0.02, 0.2])
    assert m.density == (0.02, 0.2)
    d = m.draw_density(4000, torch.Generator().manual_seed(0))
    assert float(d.min()) >= 0.02 and float(d.max()) <= 0.2
    # log-uniform: log d uniform on [log 0.02, log 0.2], so its median is the geometric mean
    assert float(d.median()) == pytest.approx((0.02 * 0.2) ** 0.5, rel=0.05)
    x0 = torch.randn(64, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    c = m.condition(x0, torch.Generator().manual_seed(3))
    dens = m.draw_density(64, torch.Generator().manual_seed(3))  # the same stream: drawn first
    counts = c[:, [1, 3]].sum(dim=(2, 3))
    expect = (dens * 256).round().clamp(min=1)
    for i in range(64):
        seen = counts[i][counts[i] > 0]
        assert seen.numel() >= 1 and bool((seen == expect[i]).all())  # a, u or both at that field's density
    assert len(set(expect.tolist())) > 5  # the densities differ from field to field
    for bad in ([0.2, 0.02], [0.0, 0.1], [0.1, 1.5], [0.01, 0.05, 0.1]):
        with pytest.raises(ValueError, match="density"):
            model(density=bad)


def test_per_row_densities_in_the_mask_draw() -> None:
    from sciddm.domains.pde.baselines import random_problem_masks

    g = torch.Generator().manual_seed(0)
    m = random_problem_masks(3, 8, torch.tensor([0.05, 0.5, 1.0]), g)
    per_field = m.sum(dim=(2, 3))
    assert per_field.max(dim=1).values.tolist() == [3.0, 32.0, 64.0]
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        random_problem_masks(3, 8, torch.tensor([0.1, 0.2]), g)
