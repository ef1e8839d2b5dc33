"""``ResidualDiffusionModule``: a regression mean plus a conditional diffusion model of the residual.

"Residual corrective diffusion" (Mardani et al. 2025, CorrDiff, eq. 3-4), written once for every
domain whose training example carries its own condition: a regression network estimates the
conditional mean ``mu(c)`` of the field ``x`` from a condition ``c`` derived from ``x`` itself (a
coarsened copy, sparse points of it, ...), and a diffusion model with ``c`` concatenated to its
input learns the residual ``x - mu(c)``. A sample is ``mu(c) + r`` with ``r`` drawn by a core
solver. Unlike the paper, whose two stages are trained one after the other, both are trained in one
run, the residual target using the regression's current output without gradient (same fixed point).

A subclass says how a condition is made from a clean training field (:meth:`condition`); the
module does the rest. Nothing here knows what the field is: the atmosphere's CorrDiff-style model
(bicubic upsampling of block means) and the PDE domain's amortised conditional model (zero-filled
sparse observations and their masks) are two subclasses.

Because nothing is guided at sampling time, every deterministic solver, optimised grid and
distilled student of the core applies unchanged: the residual denoiser is a conditional denoiser
``D(x, t, cond=c)`` like any other.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..losses import DiffusionLoss
from ..process import Process
from .data import derive_seed
from .module import DiffusionModule, unpack_batch

__all__ = ["ResidualDiffusionModule"]


class ResidualDiffusionModule(DiffusionModule):
    """Regression network + residual diffusion, trained together on fields with self-made conditions.

    Args:
        net: the residual denoiser's network; it must take ``cond`` with the condition's channels
            (e.g. ``UNetDenoiserNet(cond_channels=...)``).
        regression_net: ``regression_net(c, t) -> mu`` with the field's shape (called with
            ``t = 0``; e.g. a ``UNetDenoiserNet`` whose ``out_channels`` are the field's channels).
        process, prediction, preconditioning, sigma_data, loss, lr, ...: as in
            :class:`DiffusionModule`, for the residual model.

    Subclasses implement :meth:`condition`.
    """

    module_hparams = ("regression_net",)

    def __init__(
        self,
        net: nn.Module,
        regression_net: nn.Module,
        process: Process,
        prediction: str = "eps",
        preconditioning: str | None = None,
        sigma_data: float = 0.5,
        loss: DiffusionLoss | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        sample_solver: str = "ddim",
        sample_steps: int = 50,
        sample_grid: str = "time",
        val_num_samples: int = 0,
        data_shape: list[int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(net=net, process=process, prediction=prediction, preconditioning=preconditioning,
                         sigma_data=sigma_data, loss=loss, lr=lr, betas=betas, weight_decay=weight_decay,
                         warmup_steps=warmup_steps,
                         sample_solver=sample_solver, sample_steps=sample_steps, sample_grid=sample_grid,
                         val_num_samples=val_num_samples, data_shape=data_shape, seed=seed)
        self.regression_net = regression_net

    # -- what a subclass says ------------------------------------------------------------------------
    def condition(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The condition ``c`` the model will be given at sampling time, made from clean fields ``x0``.

        ``generator`` is the training step's (or validation batch's) random stream, for conditions
        that are random (noise, sampled observation points); ``None`` asks for a deterministic one
        where the subclass has one.
        """
        raise NotImplementedError(f"{type(self).__name__} must say how a condition is made from a field")

    # -- the model --------------------------------------------------------------------------------
    def regress(self, c: Tensor) -> Tensor:
        """``mu(c)``: the regression network's estimate of the field from the condition."""
        return self.regression_net(c, torch.zeros(c.shape[0], device=c.device))

    def _losses(self, batch: Any, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x0, _ = unpack_batch(batch)
        c = self.condition(x0, g)
        mu = self.regress(c)
        if mu.shape != x0.shape:
            raise ValueError(f"the regression network returns {tuple(mu.shape)} for fields {tuple(x0.shape)}: "
                             "its output must have the field's channels")
        reg = (mu - x0).pow(2).mean()  # CorrDiff eq. 3: the regression's MSE
        res = self.loss_fn(self.denoiser, x0 - mu.detach(), {"cond": c}, generator=g)  # eq. 4 on the residual
        return reg, res

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        if self.data_shape is None:
            self.data_shape = tuple(unpack_batch(batch)[0].shape[1:])
        g = torch.Generator(device=self.device).manual_seed(derive_seed(self.hparams.seed, 0, self.current_epoch, batch_idx))
        reg, res = self._losses(batch, g)
        self.log("train/regression", reg, prog_bar=True)
        self.log("train/residual", res, prog_bar=True)
        return reg + res

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        g = torch.Generator(device=self.device).manual_seed(derive_seed(self.hparams.seed, 1, batch_idx))
        reg, res = self._losses(batch, g)
        self.log("val/loss", reg + res, sync_dist=True)
        self.log("val/regression", reg, sync_dist=True)
        return reg + res

    def on_validation_epoch_end(self) -> None:  # no unconditional sampling metric for a conditional model
        self._eval_x, self._eval_cond = [], []

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_given(self, c: Tensor, num_samples: int, *, steps: int | None = None, solver: str | None = None,
                     grid: Any = None, denoiser: Any = None, generator: torch.Generator | None = None,
                     progress: bool = False) -> Tensor:
        """``num_samples`` fields ``mu(c) + r`` for one condition ``c`` of shape ``(1, *condition)``.

        ``solver``, ``steps`` and ``grid`` (a named grid or an array of times from 1 to 0) default to
        the model's sampling settings (an explicit ``steps`` with no ``grid`` uses the configured
        named grid). ``denoiser`` replaces the residual denoiser, e.g. a few-step student distilled
        from it (:class:`sciddm.distill.DistillationModule` with this model as teacher, sampled on
        its own grid): it must take ``cond=`` like the model's. Runs in eval mode and restores the
        model's mode afterwards.
        """
        from ..sampling import sample

        if c.ndim < 2 or c.shape[0] != 1:
            raise ValueError(f"c must be one condition with a leading batch axis of 1; got shape {tuple(c.shape)}")
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
        was_training = self.training
        self.eval()
        try:
            weight = next(self.parameters())
            c = c.to(weight.device, weight.dtype)
            mu = self.regress(c)
            cn = c.expand(num_samples, *c.shape[1:])
            x = self.process.prior_sample((num_samples, *mu.shape[1:]), generator=generator, dtype=mu.dtype)
            d = self.sampling_defaults()
            if grid is None:
                grid = d["grid"] if steps is None else self.hparams.sample_grid
            if steps is None:
                steps = d["steps"] if isinstance(grid, str) else len(grid) - 1
            r = sample(self.denoiser if denoiser is None else denoiser, self.process, x.to(mu.device),
                       solver=solver or d["solver"], steps=steps, grid=grid, generator=generator, progress=progress,
                       cond={"cond": cn})
        finally:
            self.train(was_training)  # as every generate: the caller's mode is kept
        return mu + r
