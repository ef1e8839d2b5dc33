"""The CSDI / ImDiffusion imputer: schedule, observed entries kept, known-value sampling, training, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sciddm.domains.timeseries.imputer import (
    ImputerModule, TimeSeriesDataModule, imputation_metrics, quad_betas, train_imputer,
)
from sciddm.nets.csdi import CSDINet

K, L = 3, 8
TINY = dict(channels=8, layers=1, heads=2, step_embed_dim=16, position_embed_dim=8, feature_embed_dim=4)


def _module(conditional: bool) -> ImputerModule:
    torch.manual_seed(0)
    net = CSDINet(K, conditional=conditional, num_strategies=0 if conditional else 3, **TINY)
    torch.nn.init.normal_(net.output_projection2.weight, std=0.3)  # an untrained but non-trivial predictor
    return ImputerModule(net, data_shape=[K, L]).eval()


def test_quad_schedule_is_csdis_and_the_process_hits_its_knots():
    betas = quad_betas()
    assert betas.shape == (50,)
    torch.testing.assert_close(betas[[0, -1]], torch.tensor([1e-4, 0.5], dtype=torch.float64))
    torch.testing.assert_close(betas.sqrt().diff(), torch.full((49,), (0.5**0.5 - 0.01) / 49, dtype=torch.float64))
    process = _module(True).process
    i = torch.tensor([1, 10, 50])
    alpha_bar = torch.cumprod(1 - betas, 0)[i - 1]
    torch.testing.assert_close(process.alpha(i.double() / 50.0) ** 2, alpha_bar)


@pytest.mark.parametrize("conditional", [True, False])
def test_observed_entries_come_back_unchanged_and_hidden_ones_are_never_read(conditional):
    m = _module(conditional)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, K, L, generator=g)
    mask = torch.rand(4, K, L, generator=g) > 0.5
    noise = torch.randn(2, 4, K, L, generator=g)
    out = m.impute(x, mask, num_samples=2, steps=5, noise=noise)
    assert out.shape == (2, 4, K, L)
    assert torch.equal(out[:, mask], x[mask].expand(2, -1))
    assert not torch.allclose(out[:, ~mask], x[~mask].expand(2, -1))  # hidden entries are imputed, not copied
    x_other = torch.where(mask, x, torch.randn_like(x) * 100)
    torch.testing.assert_close(m.impute(x_other, mask, num_samples=2, steps=5, noise=noise), out)


def test_known_value_sampling_keeps_observed_entries_forward_noised():
    """DDIM with the known-value denoiser: x_t = alpha_t x_obs + sigma_t eps_start where observed."""
    m = _module(False)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, K, L, generator=g)
    mask = torch.rand(2, K, L, generator=g) > 0.5
    noise = torch.randn(1, 2, K, L, generator=g)
    states = []
    original = m.known_value_denoiser

    def spy(observed, mask_, cond, trace=None):
        inner = original(observed, mask_, cond, trace)

        def call(x_t, t):
            states.append((x_t.detach().clone(), float(t[0])))
            return inner(x_t, t)
        return call

    m.known_value_denoiser = spy  # type: ignore[method-assign]
    m.impute(x, mask, steps=6, noise=noise)
    assert len(states) == 6
    for x_t, t in states:
        expect = m.process.alpha(t) * x.double() + m.process.sigma(t) * noise[0].double()
        torch.testing.assert_close(x_t[mask].double(), expect[mask], atol=1e-5, rtol=1e-5)


def test_recorded_steps_end_at_the_returned_imputation():
    m = _module(True)
    x = torch.randn(3, K, L)
    mask = torch.rand(3, K, L) > 0.5
    out, trace = m.impute(x, mask, steps=4, record=True, generator=torch.Generator().manual_seed(0))
    assert trace.shape == (1, 4, 3, K, L)
    torch.testing.assert_close(trace[0, -1][~mask], out[0][~mask])  # DDIM's last step returns D's estimate


def test_bad_windows_get_clear_errors():
    m = _module(True)
    mask = torch.ones(1, K, L, dtype=torch.bool)
    with pytest.raises(ValueError, match="trained on 3 channels"):
        m.impute(torch.randn(1, K + 1, L), torch.ones(1, K + 1, L, dtype=torch.bool))
    bad = torch.randn(1, K, L)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m.impute(bad, mask)
    with pytest.raises(ValueError, match="mask must have"):
        m.impute(torch.randn(1, K, L), mask[:, :, :2])
    with pytest.raises(ValueError, match="CSDINet"):
        ImputerModule(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_training_lowers_the_masked_loss():
    t = np.arange(400)
    series = np.stack([np.sin(2 * np.pi * t / 16), np.cos(2 * np.pi * t / 16), np.sin(2 * np.pi * t / 16)], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train_imputer(series, conditional=True, window=L, max_steps=80, batch_size=16, net_kwargs=TINY, seed=0)
    x0 = torch.tensor(series[:64 * L].reshape(-1, L, K).transpose(0, 2, 1), dtype=torch.float32)[:32]
    fresh = ImputerModule(CSDINet(K, **TINY), mask_strategies=(2,), random_ratio=None, data_shape=[K, L])
    loss = lambda mod: float(mod.masked_loss(  # noqa: E731
        x0, torch.Generator().manual_seed(5)).detach())
    # the untrained (zero) predictor has loss E[eps^2] = 1; trained it must be clearly below
    assert loss(fresh) == pytest.approx(1.0, abs=0.15)
    assert loss(m) < 0.7


def test_imputation_metrics_keep_observed_and_interpolate_a_constant_exactly():
    m = _module(True)
    level = torch.arange(K, dtype=torch.float32)[None, :, None].expand(4, K, L).contiguous()
    out = imputation_metrics(m, level, ratio=0.25, num_samples=3, steps=3)
    assert out["observed_unchanged"] == 1.0
    assert out["hidden_entries"] == 4 * round(0.25 * K * L)
    assert out["interp_mae"] == 0.0  # the linear-interpolation reference is exact on constant channels
    assert out["crps"] > 0.0 and out["mae"] > 0.0  # an untrained imputer is not


def test_data_module_windows_and_train_only_normalisation():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm = TimeSeriesDataModule(window=16, channels=4, train_length=300, val_length=1500, test_length=1500, batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (8, 4, 16) and dm.data_shape == (4, 16)
    z = dm.normalizer.transform(dm.series.train)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-9)


def test_experiment_config_trains_through_the_cli_and_loads(tmp_path):
    from pathlib import Path

    from sciddm.cli import main
    from sciddm.training import load_model

    config = Path(__file__).resolve().parents[2] / "experiments" / "timeseries" / "imdiffusion.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["fit", "--config", str(config), "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
              "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    model = load_model(ckpt)
    assert isinstance(model, ImputerModule) and model.data_shape == (20, 32)
    assert not model.conditional and model.net.num_strategies == 3
    x = torch.randn(1, 20, 32)
    mask = torch.rand(1, 20, 32) > 0.5
    assert torch.equal(model.impute(x, mask, steps=2)[0][mask], x[mask])


def test_learning_rate_steps_down_at_csdis_milestones():
    """CSDI's MultiStepLR: x0.1 after 75% and again after 90% of the run's optimiser steps."""
    import lightning.pytorch as pl

    t = np.arange(200)
    series = np.stack([np.sin(2 * np.pi * t / 16)] * K, 1)
    seen: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    torch.manual_seed(0)
    m = ImputerModule(CSDINet(K, **TINY), lr=1e-3, mask_strategies=(2,), random_ratio=None, data_shape=[K, L])
    loader = torch.utils.data.DataLoader(torch.tensor(series[:160].reshape(20, L, K).transpose(0, 2, 1),
                                                      dtype=torch.float32), batch_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, callbacks=[Record()]).fit(m, loader)
    assert seen == pytest.approx([1e-3] * 15 + [1e-4] * 3 + [1e-5] * 2)
    with pytest.raises(ValueError, match="lr_milestones"):
        ImputerModule(CSDINet(K, **TINY), lr_milestones=(0.9, 0.5))
