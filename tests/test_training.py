"""Lightning training: data modules, the DiffusionModule's checkpoint contents, and a trained toy model."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from sciddm import VP, RectifiedFlow
from sciddm.analytic import GaussianMixture
from sciddm.losses import DiffusionLoss
from sciddm.metrics import sliced_wasserstein
from sciddm.nets import MLPDenoiserNet
from sciddm.training import (
    DiffusionModule,
    EpochSeededSampler,
    GaussianMixtureDataModule,
    toy_mixture,
    unpack_batch,
)



def _trainer(**kw) -> pl.Trainer:
    args = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    args.update(kw)
    return pl.Trainer(**args)


def test_unpack_batch_forms() -> None:
    x = torch.randn(4, 2)
    assert unpack_batch(x)[0] is x and unpack_batch((x,))[1] == {}
    x0, cond = unpack_batch({"x": x, "label": torch.arange(4)})
    assert x0 is x and list(cond) == ["label"]
    with pytest.raises(ValueError, match="dict with key 'x'"):
        unpack_batch({"image": x})


def test_epoch_seeded_sampler_is_a_function_of_seed_and_epoch() -> None:
    s = EpochSeededSampler(50, seed=7)
    s.set_epoch(3)
    a = list(s)
    assert sorted(a) == list(range(50))
    again = EpochSeededSampler(50, seed=7)
    again.set_epoch(3)
    assert list(again) == a
    s.set_epoch(4)
    assert list(s) != a


def test_gaussian_mixture_data_module() -> None:
    dm = GaussianMixtureDataModule(dim=16, num_train=256, num_val=32, batch_size=64, seed=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert dm.data_shape == (16,) and batch.shape == (64, 16) and batch.dtype == torch.float32
    assert len(dm.train_dataloader()) == 4 and len(dm.val_set) == 32
    dm2 = GaussianMixtureDataModule(dim=16, num_train=256, num_val=32, batch_size=64, seed=1)
    dm2.setup("fit")
    torch.testing.assert_close(dm2.train_set.x, dm.train_set.x)  # same seed, same data
    with pytest.raises(ValueError, match="smaller than batch_size"):
        GaussianMixtureDataModule(num_train=10, batch_size=64)


def test_toy_mixture_geometry() -> None:
    ring = toy_mixture(dim=2, num_components=8, radius=2.0, component_std=0.2)
    torch.testing.assert_close(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=torch.float64))
    high = toy_mixture(dim=16, num_components=5, radius=3.0, component_std=0.3)
    torch.testing.assert_close(high.means.norm(dim=1), torch.full((5,), 3.0, dtype=torch.float64))
    assert high.eigvals.min() >= 0.5 * 0.09 - 1e-12 and high.eigvals.max() <= 1.5 * 0.09 + 1e-12


def test_warmup_is_linear_in_steps() -> None:
    model = DiffusionModule(MLPDenoiserNet(2, width=8, depth=1, emb_dim=8), VP(), lr=0.1, warmup_steps=4)
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.AdamW) and conf["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_warmup_then_step_decay_at_milestones() -> None:
    """lr_milestones multiply the (warmed-up) rate by 0.1 at fractions of the run's optimiser steps."""
    seen: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    pl.seed_everything(0)
    model = DiffusionModule(MLPDenoiserNet(2, width=8, depth=1, emb_dim=8), VP(), lr=0.1, warmup_steps=2,
                            lr_milestones=(0.5, 0.75), val_num_samples=0)
    trainer = _trainer(max_steps=8)
    trainer.callbacks.append(Record())
    trainer.fit(model, GaussianMixtureDataModule(num_train=64, num_val=16, batch_size=8))
    assert seen == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    for bad in [(0.5, 0.25), (1.0,), (0.0,)]:
        with pytest.raises(ValueError, match="lr_milestones"):
            DiffusionModule(MLPDenoiserNet(2, width=8, depth=1, emb_dim=8), VP(), lr_milestones=bad)


def test_python_built_module_checkpoint_round_trip(tmp_path: Path) -> None:
    """A module built in Python stores process.config(), the data shape and an optimised grid."""
    pl.seed_everything(0)
    model = DiffusionModule(MLPDenoiserNet(2, width=8, depth=1, emb_dim=8), RectifiedFlow(), prediction="velocity",
                            loss=DiffusionLoss(time_density="logit_normal"), val_num_samples=0)
    dm = GaussianMixtureDataModule(num_train=128, num_val=16, batch_size=64)
    trainer = _trainer(max_steps=2)
    trainer.fit(model, dm)
    grid = torch.tensor([1.0, 0.6, 0.2, 0.0], dtype=torch.float64)
    model.set_sampling_grid(grid)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    raw = torch.load(tmp_path / "m.ckpt", weights_only=True)
    assert raw["sciddm"]["process"] == {"class_path": "RectifiedFlow"}
    assert raw["sciddm"]["data_shape"] == [2] and raw["sciddm"]["prediction"] == "velocity"
    loaded = DiffusionModule.load_from_checkpoint(tmp_path / "m.ckpt", net=MLPDenoiserNet(2, width=8, depth=1, emb_dim=8))
    assert isinstance(loaded.process, RectifiedFlow) and loaded.data_shape == (2,)
    assert loaded.loss_fn.time_density == "logit_normal"
    torch.testing.assert_close(loaded.sampling_grid, grid)
    defaults = loaded.sampling_defaults()
    assert defaults["steps"] == 3 and torch.equal(defaults["grid"], grid)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(model.generate(5, generator=g()), loaded.generate(5, generator=g()))
    with pytest.raises(ValueError, match="strictly decreasing"):
        loaded.set_sampling_grid(torch.tensor([1.0, 0.2, 0.6, 0.0]))


def test_training_step_is_reproducible_per_step() -> None:
    """The step's randomness depends on (seed, epoch, batch, rank) only, not on global RNG state."""
    model = DiffusionModule(MLPDenoiserNet(2, width=8, depth=1, emb_dim=8), VP(), val_num_samples=0)
    x = torch.randn(32, 2)
    a = model.training_step(x, 0)
    torch.randn(100)  # disturb the global generator
    assert model.training_step(x, 0).item() == a.item()
    assert model.training_step(x, 1).item() != a.item()


# -- a trained toy model against the exact mixture ----------------------------------------------
N_EVAL = 2000


def _moment_matched_gaussian(mix: GaussianMixture, n: int, g: torch.Generator) -> torch.Tensor:
    chol = torch.linalg.cholesky(mix.covariance())
    return mix.mean() + torch.randn(n, mix.dim, generator=g, dtype=torch.float64) @ chol.T


def test_trained_toy_model_matches_the_mixture() -> None:
    """Sliced W1 of model samples to exact samples, against the exact-vs-exact noise floor.

    Bound: the floor (two independent exact sets of N samples) plus 3 times the floor. A
    Gaussian with the mixture's mean and covariance -- what an undertrained model produces --
    must fail the same bound, so the test can fail; it does (asserted below).
    """
    pl.seed_everything(0)
    dm = GaussianMixtureDataModule(dim=2, num_train=8192, num_val=256, batch_size=256)
    model = DiffusionModule(MLPDenoiserNet(2, width=64, depth=2, emb_dim=32), VP(), prediction="v",
                            loss=DiffusionLoss(time_density="edm_lognormal"), lr=3e-3, warmup_steps=20, val_num_samples=0, sample_solver="ddim", sample_steps=40)
    _trainer(max_steps=600).fit(model, dm)
    g = torch.Generator().manual_seed(1)
    truth = dm.mixture.sample(N_EVAL, generator=g)
    floors = [sliced_wasserstein(dm.mixture.sample(N_EVAL, generator=g), truth,
                                 generator=torch.Generator().manual_seed(2)) for _ in range(3)]
    floor = max(floors)
    samples = model.generate(N_EVAL, generator=torch.Generator().manual_seed(3))
    sw = sliced_wasserstein(samples, truth, generator=torch.Generator().manual_seed(2))
    gaussian = sliced_wasserstein(_moment_matched_gaussian(dm.mixture, N_EVAL, g), truth,
                                  generator=torch.Generator().manual_seed(2))
    bound = 4.0 * floor
    assert gaussian > bound, f"the bound {bound:.3f} does not separate a moment-matched Gaussian ({gaussian:.3f})"
    assert sw < bound, f"model SW {sw:.4f} vs exact-exact floor {floor:.4f} (bound {bound:.4f})"
    assert math.isfinite(sw)
    print(f"SW model {sw:.4f} floor {floor:.4f} gaussian {gaussian:.4f}")
