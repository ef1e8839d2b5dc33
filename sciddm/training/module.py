"""``DiffusionModule``: the LightningModule that trains a denoiser and can sample from a checkpoint alone.

It holds the science (network, process, parameterisation, preconditioning, loss, optimiser,
sampling defaults); the data module holds the data; the ``sciddm`` command wires both from YAML.

A checkpoint carries everything sampling needs: the hyper-parameters (under the ``sciddm``
command, the network's and process's ``class_path``/``init_args``), plus a ``"sciddm"`` entry
with ``process.config()``, the prediction, preconditioning, ``sigma_data``, sampling defaults and
the data shape, and an optional optimised grid of times as the buffer ``sampling_grid``.

Randomness of a training step (times, noise, CFG dropout) comes from a generator seeded by
``(seed, epoch, batch_idx, rank)``, so a run resumed from a checkpoint repeats an uninterrupted
one step for step; with the data module's resumable training loader this holds for a checkpoint
taken mid-epoch too. The global torch RNG (dropout inside a network) is stored in the checkpoint
and restored when training resumes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, ClassVar, Mapping, Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn

from ..denoiser import Denoiser
from ..losses import DiffusionLoss
from ..metrics import sliced_wasserstein
from ..process import Process
from .data import derive_seed

__all__ = ["DiffusionModule", "unpack_batch"]

try:  # set by LightningCLI while it builds the model: the YAML config that becomes the hparams
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
except ImportError:  # pragma: no cover - a Lightning without it: checkpoints then need `net=` to load
    _given_hyperparameters = None

# Stream tags that keep training, validation, test and predict randomness apart.
_TRAIN, _VAL, _TEST, _PREDICT, _METRIC = 0, 1, 2, 3, 4


def unpack_batch(batch: Any) -> tuple[Tensor, dict[str, Any]]:
    """``x0`` and conditioning kwargs from a batch: a tensor, a 1-tuple, or a dict with key ``"x"``."""
    if isinstance(batch, Tensor):
        return batch, {}
    if isinstance(batch, (tuple, list)) and len(batch) == 1 and isinstance(batch[0], Tensor):
        return batch[0], {}
    if isinstance(batch, Mapping) and isinstance(batch.get("x"), Tensor):
        return batch["x"], {k: v for k, v in batch.items() if k != "x"}
    raise ValueError("a batch must be a tensor x0, a 1-tuple (x0,), or a dict with key 'x' and conditioning "
                     f"keys for the network; got {type(batch).__name__}")


class DiffusionModule(pl.LightningModule):
    """Train ``net`` as a denoiser of ``process`` and sample from it.

    Args:
        net: the network, ``net(x, t, **cond)`` (e.g. :class:`sciddm.nets.MLPDenoiserNet`).
        process: the noise process (``sciddm.VP``, ``sciddm.VE``, ``sciddm.RectifiedFlow``).
        prediction: ``"eps"``, ``"x0"``, ``"v"`` or ``"velocity"``.
        preconditioning: ``None`` or ``"edm"`` (with ``prediction="x0"``).
        sigma_data: data standard deviation for EDM preconditioning and the ``"edm"`` weighting.
        loss: the objective (:class:`sciddm.losses.DiffusionLoss`); default plain MSE, uniform t.
        lr, betas, weight_decay: AdamW (Loshchilov & Hutter 2019).
        warmup_steps: linear learning-rate warm-up over this many optimiser steps.
        lr_milestones: fractions of the run's optimiser steps after which the learning rate is
            multiplied by 0.1 (a step decay, e.g. CSDI's ``MultiStepLR`` at 0.75 and 0.9); ``()``
            (default) keeps it constant. The run's length is the trainer's
            ``estimated_stepping_batches`` (``max_steps``, or epochs x batches).
        sample_solver, sample_steps, sample_grid: sampling defaults for validation and
            ``sciddm sample`` (any of :data:`sciddm.sampling.SOLVERS` / grids).
        val_num_samples: samples drawn at each validation epoch end to log
            ``val/sliced_wasserstein`` against the validation data (0 turns it off).
        data_shape: shape of one sample; taken from the data module or first batch if ``None``.
        seed: seed of the per-step random streams.
    """

    #: further init arguments that are networks (a subclass's), kept out of the hyper-parameters like ``net``
    module_hparams: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        net: nn.Module,
        process: Process,
        prediction: str = "eps",
        preconditioning: str | None = None,
        sigma_data: float = 0.5,
        loss: DiffusionLoss | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_milestones: Sequence[float] = (),
        sample_solver: str = "ddim",
        sample_steps: int = 50,
        sample_grid: str = "logsnr",
        val_num_samples: int = 256,
        data_shape: list[int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(process, Mapping):
            process = Process.from_config(dict(process))
        if isinstance(loss, Mapping):
            loss = DiffusionLoss(**loss)
        loss = loss if loss is not None else DiffusionLoss()
        if lr <= 0 or weight_decay < 0 or warmup_steps < 0:
            raise ValueError(f"need lr > 0, weight_decay >= 0, warmup_steps >= 0; got {lr}, {weight_decay}, {warmup_steps}")
        if any(not 0.0 < float(f) < 1.0 for f in lr_milestones) or list(lr_milestones) != sorted(lr_milestones):
            raise ValueError(f"lr_milestones must be increasing fractions in (0, 1); got {list(lr_milestones)}")
        self.lr_milestones = tuple(float(f) for f in lr_milestones)
        if not isinstance(sample_steps, int) or sample_steps < 1:
            raise ValueError(f"sample_steps must be an integer >= 1; got {sample_steps!r}")
        if val_num_samples < 0:
            raise ValueError(f"val_num_samples must be >= 0; got {val_num_samples}")
        if _given_hyperparameters is not None and _given_hyperparameters.get() is not None:
            # Under the sciddm command: the YAML config, including the net's class_path/init_args.
            self.save_hyperparameters()
        else:
            # Built in Python: objects are not stored; the checkpoint then needs `net=` to load.
            self.save_hyperparameters(ignore=["net", "process", "loss", *self.module_hparams])
            self.hparams["process"] = process.config()
            self.hparams["loss"] = asdict(loss)
        self.denoiser = Denoiser(net, process, prediction, preconditioning, sigma_data)
        self.loss_fn = loss
        self.data_shape: tuple[int, ...] | None = tuple(data_shape) if data_shape is not None else None
        self.register_buffer("sampling_grid", torch.empty(0, dtype=torch.float64))
        self._eval_x: list[Tensor] = []
        self._eval_cond: list[dict[str, Any]] = []

    # -- what sampling needs -----------------------------------------------------------------------
    @property
    def net(self) -> nn.Module:
        return self.denoiser.net

    @property
    def process(self) -> Process:
        return self.denoiser.process

    def set_sampling_grid(self, times: Tensor | None) -> None:
        """Store an optimised grid of times (descending from <= 1 to 0) as the default grid; ``None`` clears it."""
        from ..sampling import make_grid

        if times is None:
            self.sampling_grid = torch.empty(0, dtype=torch.float64, device=self.sampling_grid.device)
            return
        grid = make_grid(self.process, len(times) - 1, torch.as_tensor(times))
        self.sampling_grid = grid.to(self.sampling_grid.device)

    def sampling_defaults(self) -> dict[str, Any]:
        """Solver, steps and grid used when a caller does not choose (the optimised grid if one is stored)."""
        if self.sampling_grid.numel() > 0:
            grid: Any = self.sampling_grid.detach().cpu()
            return {"solver": self.hparams.sample_solver, "steps": grid.numel() - 1, "grid": grid}
        return {"solver": self.hparams.sample_solver, "steps": self.hparams.sample_steps,
                "grid": self.hparams.sample_grid}

    @torch.no_grad()
    def generate(
        self,
        num_samples: int,
        *,
        cond: Mapping[str, Any] | None = None,
        solver: str | None = None,
        steps: int | None = None,
        grid: Any = None,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> Tensor:
        """Draw ``num_samples`` samples ``(N, *data_shape)`` with a core solver (defaults: :meth:`sampling_defaults`).

        ``cond`` holds per-sample conditioning tensors with ``N`` rows; without it a conditional
        network samples unconditionally.
        """
        from ..sampling import sample

        if self.data_shape is None:
            raise ValueError("the model does not know its data shape; train it first or pass data_shape=[...]")
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
        batch_size = num_samples if batch_size is None else batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        defaults = self.sampling_defaults()
        if steps is not None and grid is None and not isinstance(defaults["grid"], str):
            defaults["grid"] = self.hparams.sample_grid  # an explicit step count overrides the stored grid
        solver = solver or defaults["solver"]
        steps = defaults["steps"] if steps is None else steps
        grid = defaults["grid"] if grid is None else grid
        return self.sample_in_batches(
            num_samples, batch_size, cond, generator,
            lambda x, c: sample(self.denoiser, self.process, x, solver=solver, steps=steps, grid=grid,
                                generator=generator, progress=progress, cond=c))

    def sample_in_batches(self, num_samples: int, batch_size: int, cond: Mapping[str, Any] | None,
                          generator: torch.Generator | None, draw: Callable[[Tensor, dict[str, Tensor]], Tensor],
                          noise_scale: float = 1.0) -> Tensor:
        """Run ``draw(x_T, cond_batch)`` over batches of prior noise in eval mode; ``(N, *data_shape)``.

        The one batching loop of every ``generate``: noise (times ``noise_scale``) is drawn batch by
        batch from ``generator``, conditioning rows are sliced alongside, and the training mode is
        restored afterwards.
        """
        if self.data_shape is None:
            raise ValueError("the model does not know its data shape; train it first or pass data_shape=[...]")
        was_training = self.training
        self.eval()
        out = []
        try:
            for start in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - start)
                c = {k: v[start:start + n].to(self.device) for k, v in (cond or {}).items()}
                x = self.process.prior_sample((n, *self.data_shape), generator=generator, device=self.device)
                out.append(draw(x if noise_scale == 1.0 else noise_scale * x, c))
        finally:
            self.train(was_training)
        return torch.cat(out)

    # -- training -------------------------------------------------------------------------------
    def _generator(self, *keys: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(derive_seed(self.hparams.seed, *keys))

    def setup(self, stage: str) -> None:
        if self.data_shape is None:
            shape = getattr(getattr(self.trainer, "datamodule", None), "data_shape", None)
            if shape is not None:
                self.data_shape = tuple(int(s) for s in shape)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x0, cond = unpack_batch(batch)
        if self.data_shape is None:
            self.data_shape = tuple(x0.shape[1:])
        g = self._generator(_TRAIN, self.current_epoch, batch_idx, self.global_rank)
        loss = self.loss_fn(self.denoiser, x0, cond, generator=g)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=x0.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        h = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=h.lr, betas=tuple(h.betas), weight_decay=h.weight_decay)
        warmup = int(h.warmup_steps)
        if warmup <= 0 and not self.lr_milestones:
            return opt
        total = int(self.trainer.estimated_stepping_batches) if self.lr_milestones else 0
        steps = [int(f * total) for f in self.lr_milestones]

        def factor(step: int) -> float:
            ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
            return ramp * 0.1 ** sum(step >= m for m in steps)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- evaluation -----------------------------------------------------------------------------
    def _eval_step(self, batch: Any, batch_idx: int, prefix: str, tag: int) -> Tensor:
        x0, cond = unpack_batch(batch)
        g = self._generator(tag, batch_idx, self.global_rank)
        loss = self.loss_fn(self.denoiser, x0, cond, generator=g)
        self.log(f"{prefix}/loss", loss, on_epoch=True, sync_dist=True, batch_size=x0.shape[0])
        have = sum(x.shape[0] for x in self._eval_x)
        if have < self.hparams.val_num_samples:
            self._eval_x.append(x0.detach())
            self._eval_cond.append({k: v.detach() for k, v in cond.items() if isinstance(v, Tensor)})
        return loss

    def _eval_epoch_end(self, prefix: str) -> None:
        xs, conds = self._eval_x, self._eval_cond
        self._eval_x, self._eval_cond = [], []
        if not xs or self.hparams.val_num_samples == 0 or self.trainer.sanity_checking:
            return
        n = min(self.hparams.val_num_samples, sum(x.shape[0] for x in xs))
        ref = torch.cat(xs)[:n]
        cond = {k: torch.cat([c[k] for c in conds])[:n] for k in conds[0]}
        g = self._generator(_METRIC, self.current_epoch, self.global_rank)
        try:
            samples = self.generate(n, cond=cond, generator=g)
        except ValueError as err:  # e.g. a solver or grid the config names wrongly
            rank_zero_warn(f"validation sampling failed, no {prefix}/sliced_wasserstein logged: {err}")
            return
        gp = torch.Generator().manual_seed(derive_seed(self.hparams.seed, _METRIC))
        sw = sliced_wasserstein(samples.detach().cpu(), ref.cpu(), generator=gp)
        self.log(f"{prefix}/sliced_wasserstein", sw, sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step(batch, batch_idx, "val", _VAL)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step(batch, batch_idx, "test", _TEST)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Samples, one per item of the batch, conditioned on the batch's conditioning if any."""
        x0, cond = unpack_batch(batch)
        if self.data_shape is None:
            self.data_shape = tuple(x0.shape[1:])
        return self.generate(x0.shape[0], cond=cond, generator=self._generator(_PREDICT, batch_idx, self.global_rank))

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        d = self.denoiser
        checkpoint["sciddm"] = {
            "process": d.process.config(),
            "prediction": d.prediction,
            "preconditioning": d.preconditioning,
            "sigma_data": d.sigma_data,
            "sampling": {k: v for k, v in self.sampling_defaults().items() if k != "grid" or isinstance(v, str)},
            "data_shape": list(self.data_shape) if self.data_shape is not None else None,
        }
        # the global RNG drives dropout inside networks; restored on resume (see on_load_checkpoint)
        checkpoint["sciddm_rng"] = {"cpu": torch.get_rng_state(),
                                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get("sciddm", {})
        if self.data_shape is None and info.get("data_shape") is not None:
            self.data_shape = tuple(info["data_shape"])
        rng = checkpoint.get("sciddm_rng")
        if rng is not None and self._trainer is not None and self.trainer.state.fn == "fit":
            torch.set_rng_state(rng["cpu"])  # only when resuming training: loading to sample leaves it alone
            if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda"])
        grid = checkpoint.get("state_dict", {}).get("sampling_grid")
        if grid is not None:  # resize the buffer so load_state_dict accepts a stored grid
            self.sampling_grid = torch.empty_like(grid, device=self.sampling_grid.device)
