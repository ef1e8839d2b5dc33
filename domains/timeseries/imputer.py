"""The diffusion imputer of CSDI and ImDiffusion: training module, data module, imputation, its scores.

Training (Tashiro et al. 2021, "CSDI", Algorithm 1; Chen et al. 2023, "ImDiffusion", sec. 4):
for a window ``x_0`` (``K`` channels by ``L`` steps) draw a mask (observed = True), a time ``t``
and noise ``eps``; the network predicts ``eps`` and the loss is the squared error on the
*hidden* entries only, ``||(eps - eps_theta) * (1 - mask)||^2 / #hidden``.

- ``CSDINet(conditional=True)``: the network sees the clean observed values and the noisy
  hidden ones (CSDI's conditional model; CSDI trains it with random masks of a ratio drawn
  ``U(0, 1)``: ``mask_strategies=(2,), random_ratio=None``).
- ``CSDINet(conditional=False, num_strategies=3)``: ImDiffusion's *unconditional imputed
  diffusion*: the whole window is noised, and at sampling time the observed entries are
  replaced by forward-noised copies of their true values; the mask strategy (grating even /
  odd, random; :mod:`.masks`) is embedded.

The noise process is CSDI's: 50 discrete steps with the "quad" schedule
``beta_i = (linspace(sqrt(1e-4), sqrt(0.5), 50)_i)^2``, as a continuous
:meth:`sciddm.VP.from_betas` process, so every core solver and grid applies.

Imputation (:meth:`ImputerModule.impute`) runs a core sampler on the denoiser
``D'(x, t) = mask * x_obs + (1 - mask) * D(x, t)``: a denoiser that knows the observed values
exactly. For the deterministic DDIM this keeps the sampler's state at observed entries equal to
``alpha_t x_obs + sigma_t eps`` (the start is ``alpha_1 x_obs + sigma_1 eps`` there, pure
noise elsewhere), i.e. a forward-noised copy of the observations at every step, which is
ImDiffusion's (and CSDI's unconditional) input; the final sample returns observed entries
unchanged. The denoised estimate of each sampler step can be
recorded: ImDiffusion's residuals of intermediate steps are computed from them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sciddm.datasets.timeseries import SlidingWindows, SyntheticConfig, fit_normalizer, generate_timeseries
from sciddm.denoiser import broadcast_coefficients
from sciddm.nets.csdi import CSDINet
from sciddm.parameterization import target
from sciddm.process import VP
from sciddm.sampling import make_grid, sample
from sciddm.training import DiffusionDataModule, DiffusionModule, EpochSeededSampler, derive_seed, unpack_batch
from sciddm.uq import crps

from .masks import MASK_STRATEGIES, random_mask, training_masks

__all__ = ["quad_betas", "ImputerModule", "TimeSeriesDataModule", "train_imputer", "imputation_metrics"]

_TRAIN, _VAL = 0, 1


def quad_betas(num_steps: int = 50, beta_start: float = 1e-4, beta_end: float = 0.5) -> Tensor:
    """CSDI's "quad" schedule: ``beta_i = linspace(sqrt(beta_start), sqrt(beta_end), N)_i^2`` (float64)."""
    if num_steps < 1 or not 0.0 < beta_start < beta_end < 1.0:
        raise ValueError(f"need num_steps >= 1 and 0 < beta_start < beta_end < 1; got {num_steps}, {beta_start}, {beta_end}")
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64) ** 2


class ImputerModule(DiffusionModule):
    """Train a :class:`~sciddm.nets.csdi.CSDINet` as a masked imputer and impute with core samplers.

    Args:
        net: the network (conditional CSDI or unconditional ImDiffusion; see the module notes).
        num_steps, beta_start, beta_end: CSDI's quad schedule (50, 1e-4, 0.5).
        prediction: what the network predicts: ``"eps"`` (CSDI, ImDiffusion), or ``"x0"``/``"v"``
            (the loss is then the MSE on that target, still on hidden entries only).
        mask_strategies: ids of :data:`~.masks.MASK_STRATEGIES` drawn per training sample
            (ImDiffusion: all three; CSDI: ``(2,)``, random only).
        random_ratio: hidden fraction of random masks (ImDiffusion 0.5); ``None`` draws it
            ``U(0, 1)`` per sample (CSDI).
        grating_splits: blocks per window of the grating masks (ImDiffusion: 4).
        lr, betas, weight_decay, warmup_steps: AdamW (CSDI: Adam, lr 1e-3, weight decay 1e-6).
        lr_milestones: fractions of the run's optimiser steps after which the learning rate is
            multiplied by 0.1 (CSDI's ``MultiStepLR`` at 75% and 90% of the epochs); ``()`` keeps
            it constant. The run's length is the trainer's ``estimated_stepping_batches``.
        sample_solver, sample_steps, sample_grid: imputation defaults (DDIM, 10 steps, time grid).
        seed: seeds the training masks, times and noise.
    """

    def __init__(
        self,
        net: CSDINet,
        num_steps: int = 50,
        beta_start: float = 1e-4,
        beta_end: float = 0.5,
        prediction: str = "eps",
        mask_strategies: Sequence[int] = (0, 1, 2),
        random_ratio: float | None = 0.5,
        grating_splits: int = 4,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 1e-6,
        warmup_steps: int = 0,
        lr_milestones: Sequence[float] = (0.75, 0.9),
        sample_solver: str = "ddim",
        sample_steps: int = 10,
        sample_grid: str = "time",
        data_shape: list[int] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(net, CSDINet):
            raise ValueError(f"ImputerModule trains a sciddm.nets.csdi.CSDINet; got {type(net).__name__}")
        bad = [s for s in mask_strategies if s not in range(len(MASK_STRATEGIES))]
        if not mask_strategies or bad:
            raise ValueError(f"mask_strategies must be ids in [0, {len(MASK_STRATEGIES)}) of {MASK_STRATEGIES}; "
                             f"got {list(mask_strategies)}")
        if net.num_strategies and max(mask_strategies) >= net.num_strategies:
            raise ValueError(f"the network embeds {net.num_strategies} strategies but mask_strategies uses id "
                             f"{max(mask_strategies)}: raise num_strategies or drop that id")
        if random_ratio is not None and not 0.0 < random_ratio < 1.0:
            raise ValueError(f"random_ratio must lie in (0, 1) or be None; got {random_ratio}")
        process = VP.from_betas(quad_betas(num_steps, beta_start, beta_end))
        super().__init__(net, process, prediction=prediction, lr=lr, betas=betas, weight_decay=weight_decay,
                         warmup_steps=warmup_steps, lr_milestones=lr_milestones, sample_solver=sample_solver,
                         sample_steps=sample_steps, sample_grid=sample_grid, val_num_samples=0, data_shape=data_shape,
                         seed=seed)
        self.mask_strategies = tuple(int(s) for s in mask_strategies)
        self.random_ratio, self.grating_splits = random_ratio, int(grating_splits)

    @property
    def conditional(self) -> bool:
        return bool(self.net.conditional)

    # -- training ---------------------------------------------------------------------------------
    def masked_loss(self, x0: Tensor, generator: torch.Generator) -> Tensor:
        """CSDI's loss (Algorithm 1): eps-MSE (or the chosen target's) on the hidden entries of a fresh mask."""
        B, K, L = x0.shape
        g_cpu = torch.Generator().manual_seed(int(torch.randint(2**62, (), generator=generator, device=generator.device)))
        mask, strategy = training_masks(B, K, L, strategies=self.mask_strategies, splits=self.grating_splits,
                                        ratio=self.random_ratio, generator=g_cpu)
        mask, strategy = mask.to(x0.device), strategy.to(x0.device)
        t = torch.rand(B, generator=generator, device=x0.device, dtype=torch.float64).clamp(1e-5, 1.0)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.process.add_noise(x0, t.to(x0.dtype), eps)
        cond: dict[str, Tensor] = {"observed": x0 * mask, "mask": mask}
        if self.net.num_strategies:
            cond["strategy"] = strategy
        pred = self.net(x_t, t.to(x0.dtype), **cond)
        goal = target(x0, eps, broadcast_coefficients(self.process, t, x0), self.denoiser.prediction)
        hidden = (~mask).to(x0.dtype)
        return (((goal - pred) * hidden) ** 2).sum() / hidden.sum().clamp_min(1.0)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x0, _ = unpack_batch(batch)
        if self.data_shape is None:
            self.data_shape = tuple(x0.shape[1:])
        loss = self.masked_loss(x0, self._generator(_TRAIN, self.current_epoch, batch_idx, self.global_rank))
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=x0.shape[0])
        return loss

    def _eval_step(self, batch: Any, batch_idx: int, prefix: str, tag: int) -> Tensor:
        x0, _ = unpack_batch(batch)
        loss = self.masked_loss(x0, self._generator(tag, batch_idx, self.global_rank))
        self.log(f"{prefix}/loss", loss, on_epoch=True, sync_dist=True, batch_size=x0.shape[0])
        return loss

    # -- imputation -------------------------------------------------------------------------------
    def check_windows(self, x: Tensor) -> None:
        """Clear errors for windows the model cannot take (shape, channels, NaN)."""
        if x.ndim != 3:
            raise ValueError(f"windows must be (B, K channels, L steps); got shape {tuple(x.shape)}")
        if x.shape[1] != self.net.num_features:
            raise ValueError(f"the model was trained on {self.net.num_features} channels but the data has {x.shape[1]}: "
                             "use a model trained for this channel count (the feature embedding is per channel)")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("the windows hold NaN or inf: fill gaps first (the readers' nan='ffill') or mark them "
                             "hidden in the mask and put any finite value there")

    @torch.no_grad()
    def impute(
        self,
        x: Tensor,
        mask: Tensor,
        *,
        strategy: Tensor | int | None = None,
        num_samples: int = 1,
        solver: str | None = None,
        steps: int | None = None,
        grid: Any = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        record: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Impute the hidden entries of windows ``x`` ``(B, K, L)`` given ``mask`` (True = observed).

        Returns ``(num_samples, B, K, L)`` samples whose observed entries equal ``x`` exactly;
        with ``record=True`` also the denoised estimate of every sampler step,
        ``(num_samples, steps, B, K, L)``. ``noise`` (``(num_samples, B, K, L)``) fixes the start
        of the sampler (how windows get noise that does not depend on their batch); else it is
        drawn from ``generator``. Hidden entries of ``x`` are never read.
        """
        self.check_windows(x)
        if mask.shape != x.shape:
            raise ValueError(f"mask must have the windows' shape {tuple(x.shape)}; got {tuple(mask.shape)}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1; got {num_samples}")
        defaults = self.sampling_defaults()
        solver = solver or defaults["solver"]
        steps = defaults["steps"] if steps is None else steps
        grid = defaults["grid"] if grid is None else grid
        mask = mask.to(device=self.device, dtype=torch.bool)
        x = x.to(self.device, torch.float32)
        B = x.shape[0]
        cond: dict[str, Tensor] = {"mask": mask}
        if self.net.num_strategies:
            sid = strategy if strategy is not None else 2
            cond["strategy"] = torch.as_tensor(sid, dtype=torch.long, device=self.device).expand(B).contiguous()
        elif strategy is not None:
            raise ValueError("strategy given but the network has no strategy embedding")
        if noise is None:
            noise = torch.randn((num_samples, *x.shape), generator=generator, device=self.device)
        elif noise.shape != (num_samples, *x.shape):
            raise ValueError(f"noise must have shape {(num_samples, *x.shape)}; got {tuple(noise.shape)}")
        observed = torch.where(mask, x, torch.zeros_like(x))  # hidden entries are never read
        # the start is a forward-noised copy of the observations where observed (pure noise if alpha(t0) = 0)
        t0 = make_grid(self.process, steps, grid)[0] if isinstance(grid, str) else torch.as_tensor(grid)[0]
        a0, s0 = float(self.process.alpha(t0)), float(self.process.sigma(t0))
        was_training = self.training
        self.eval()
        outs, records = [], []
        try:
            for n in range(num_samples):
                trace: list[Tensor] = []
                d = self.known_value_denoiser(observed, mask, cond, trace if record else None)
                start = torch.where(mask, a0 * observed + s0 * noise[n], noise[n])
                out = sample(d, self.process, start, solver=solver, steps=steps, grid=grid,
                             generator=generator)
                outs.append(torch.where(mask, observed, out))
                if record:
                    records.append(torch.stack(trace))
        finally:
            self.train(was_training)
        samples = torch.stack(outs)
        return (samples, torch.stack(records)) if record else samples

    def known_value_denoiser(self, observed: Tensor, mask: Tensor, cond: dict[str, Tensor],
                             trace: list[Tensor] | None = None) -> Callable[[Tensor, Tensor], Tensor]:
        """``D'(x, t) = mask * x_obs + (1 - mask) * D(x, t, observed, mask)``; records ``D`` into ``trace``."""
        # the conditional network reads the observed values and the mask; the unconditional one neither
        if self.conditional:
            kwargs = dict(cond, observed=observed, mask=mask)
        else:
            kwargs = {k: v for k, v in cond.items() if k != "mask"}

        def denoise(x: Tensor, t: Tensor) -> Tensor:
            d = self.denoiser(x, t, **kwargs)
            if trace is not None:
                trace.append(d.detach())
            return torch.where(mask, observed.to(d.dtype), d)

        return denoise


class _Windows(Dataset):
    """The ``x`` tensors of a :class:`SlidingWindows` (the imputer draws its own masks)."""

    def __init__(self, windows: SlidingWindows) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> Tensor:
        return self.windows[i]["x"]  # type: ignore[return-value]


class TimeSeriesDataModule(DiffusionDataModule):
    """Windows ``(K, window)`` of a z-scored series: train windows (stride ``stride``) and validation windows.

    The series is the synthetic benchmark (:func:`sciddm.datasets.timeseries.generate_timeseries`,
    ``channels`` channels, seed ``data_seed``) unless ``series`` (an ``AnomalySeries``) is given.
    The normaliser is fitted on train only and kept as :attr:`normalizer`.
    """

    def __init__(self, window: int = 32, stride: int = 1, channels: int = 20, data_seed: int = 0,
                 train_length: int = 3000, val_length: int = 2000, test_length: int = 3000,
                 series: Any = None, batch_size: int = 16, val_batch_size: int | None = 64,
                 num_workers: int = 0, seed: int = 0) -> None:
        super().__init__(batch_size, val_batch_size, num_workers, seed)
        self.window, self.stride = window, stride
        self.series = series if series is not None else generate_timeseries(
            SyntheticConfig(channels=channels, train_length=train_length, val_length=val_length,
                            test_length=test_length), data_seed)
        if self.series.val is None:
            self.series = self.series.with_validation()
        self.normalizer = fit_normalizer(self.series.train)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (self.series.num_channels, self.window)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        train = SlidingWindows(self.normalizer.transform(self.series.train), self.window, self.stride)
        val = SlidingWindows(self.normalizer.transform(self.series.val), self.window, self.window)
        return _Windows(train), _Windows(val)


def train_imputer(
    train: np.ndarray,
    *,
    conditional: bool,
    window: int = 32,
    max_steps: int = 600,
    batch_size: int = 16,
    net_kwargs: dict[str, Any] | None = None,
    module_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> ImputerModule:
    """Train an imputer on a normalised ``(T, C)`` series in Python (no CLI), ``max_steps`` optimiser steps.

    ``conditional=True``: CSDI (random masks, ratio ``U(0, 1)``); ``False``: ImDiffusion
    (unconditional, grating and random masks, strategy embedding). Everything is seeded by ``seed``.
    """
    x = np.asarray(train, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"train must be a (T, C) series; got shape {x.shape}")
    torch.manual_seed(derive_seed(seed, 7))  # network initialisation
    net = CSDINet(x.shape[1], conditional=conditional, num_strategies=0 if conditional else len(MASK_STRATEGIES),
                  **(net_kwargs or {}))
    defaults: dict[str, Any] = ({"mask_strategies": (2,), "random_ratio": None} if conditional else {})
    module = ImputerModule(net, data_shape=[x.shape[1], window], seed=seed, **{**defaults, **(module_kwargs or {})})
    windows = _Windows(SlidingWindows(x, window, 1))
    loader = DataLoader(windows, batch_size=batch_size, sampler=EpochSeededSampler(len(windows), seed), drop_last=True)
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, loader)
    module.eval()
    return module


def imputation_metrics(module: ImputerModule, windows: Tensor, *, ratio: float = 0.2, num_samples: int = 8,
                       steps: int | None = None, seed: int = 0) -> dict[str, float]:
    """CRPS and MAE of imputing a random ``ratio`` of entries of ``windows`` ``(B, K, L)`` (CSDI sec. 5).

    CRPS is the fair ensemble CRPS of :func:`sciddm.uq.crps` over the ``num_samples`` imputations,
    averaged over hidden entries; MAE is that of the ensemble median (CSDI's deterministic estimate).
    Also returned: the same for linear interpolation along time (a reference, MAE only), the
    number of hidden entries, and the fraction of observed entries returned unchanged (must be 1).
    """
    g = torch.Generator().manual_seed(derive_seed(seed, 11))
    B, K, L = windows.shape
    mask = torch.stack([random_mask(K, L, ratio, generator=g) for _ in range(B)])
    samples = module.impute(windows, mask, num_samples=num_samples, steps=steps, generator=g,
                            strategy=2 if module.net.num_strategies else None).double()
    hidden = ~mask
    truth = windows.double()[hidden]
    ens = samples[:, hidden]
    median = ens.median(dim=0).values
    interp = _interpolate(windows.double(), mask)[hidden]
    return {"crps": float(crps(ens, truth)), "mae": float((median - truth).abs().mean()),
            "interp_mae": float((interp - truth).abs().mean()), "hidden_entries": int(hidden.sum()),
            "observed_unchanged": float((samples[:, mask] == windows.double()[mask]).double().mean())}


def _interpolate(x: Tensor, mask: Tensor) -> Tensor:
    """Linear interpolation along time of each channel's hidden entries from its observed ones."""
    out = x.clone()
    t = np.arange(x.shape[-1])
    for b in range(x.shape[0]):
        for k in range(x.shape[1]):
            m = mask[b, k].numpy()
            if m.any() and not m.all():
                out[b, k, ~m] = torch.from_numpy(np.interp(t[~m], t[m], x[b, k, m].numpy()))
    return out
