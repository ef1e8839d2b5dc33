"""``PDEDataModule``: stacked, normalised ``[a, u]`` fields for the joint DiffusionPDE prior.

DiffusionPDE (Huang et al. 2024, Sec. 3.1) learns the JOINT distribution of a PDE's coefficient
``a`` and solution ``u`` by stacking them as two channels of one image; sparse observations of
either field and the PDE residual then guide sampling. This module reads a store written by
:func:`sciddm.datasets.pde.generate_pde` (generating it first when ``generate`` is given, so a
config file alone reproduces a run), standardises each channel with the training split's mean and
standard deviation, and saves those statistics to ``stats_path`` so that observations and PDE
residuals can later be mapped between physical and model units (:class:`FieldStats`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sciddm.datasets.pde import PDEDataConfig, generate_pde, open_pde
from sciddm.io import write_json
from sciddm.training import DiffusionDataModule

__all__ = ["FieldStats", "PDEDataModule", "load_pairs", "STATIC_PDES"]

STATIC_PDES = ("darcy", "poisson", "helmholtz", "navier_stokes")  # (sample, y, x) coefficient and solution


@dataclass(frozen=True)
class FieldStats:
    """Per-channel affine normalisation ``z = (x - mean) / std`` of the stacked ``[a, u]`` fields."""

    mean: tuple[float, float]
    std: tuple[float, float]

    def __post_init__(self) -> None:
        if len(self.mean) != 2 or len(self.std) != 2 or min(self.std) <= 0:
            raise ValueError(f"FieldStats needs two means and two positive stds; got mean={self.mean}, std={self.std}")

    def _shape(self, x: Tensor, values: tuple[float, float]) -> Tensor:
        if x.ndim < 3 or x.shape[-3] != 2:
            raise ValueError(f"fields of shape {tuple(x.shape)}: expected (..., 2, H, W) with channels [a, u]")
        return torch.tensor(values, dtype=x.dtype, device=x.device).view(2, 1, 1)

    def normalize(self, x: Tensor) -> Tensor:
        """Physical ``[a, u]`` to model units."""
        return (x - self._shape(x, self.mean)) / self._shape(x, self.std)

    def denormalize(self, z: Tensor) -> Tensor:
        """Model units back to physical ``[a, u]``."""
        return z * self._shape(z, self.std) + self._shape(z, self.mean)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        return write_json({"mean": list(self.mean), "std": list(self.std), "channels": ["coefficient", "solution"]}, path)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> FieldStats:
        d = json.loads(Path(path).read_text())
        return cls(tuple(d["mean"]), tuple(d["std"]))  # type: ignore[arg-type]

    @classmethod
    def fit(cls, pairs: Tensor) -> FieldStats:
        """Channel means and standard deviations of ``pairs`` (N, 2, H, W)."""
        p = pairs.double()
        return cls(tuple(p.mean(dim=(0, 2, 3)).tolist()), tuple(p.std(dim=(0, 2, 3)).tolist()))  # type: ignore[arg-type]


def load_pairs(path: str | os.PathLike[str]) -> tuple[Tensor, PDEDataConfig]:
    """All ``(a, u)`` pairs of a store as one float32 tensor (N, 2, H, W) and its config.

    Static PDEs: the coefficient and solution grids. Burgers: the space-time image ``u (x, t)``
    (DiffusionPDE models it as one image) with the initial condition ``u0 (x)`` broadcast along
    ``t`` as the coefficient channel, so the joint machinery (masks, guidance, baselines) is shared.
    """
    ds, cfg = open_pde(path)
    a = torch.from_numpy(ds["coefficient"].values).float()
    u = torch.from_numpy(ds["solution"].values).float()
    if cfg.pde == "burgers":
        a = a[:, :, None].expand_as(u).contiguous()
    elif cfg.pde not in STATIC_PDES:
        raise ValueError(f"the store holds {cfg.pde!r}; the 2-D joint prior supports {(*STATIC_PDES, 'burgers')}")
    return torch.stack([a, u], dim=1), cfg


class _Tensors(Dataset):
    def __init__(self, x: Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.x[i]


class PDEDataModule(DiffusionDataModule):
    """Normalised ``[a, u]`` pairs (2, n, n) from a PDE store; the last ``num_val`` samples validate.

    Args:
        path: the ``*.zarr`` store of :func:`generate_pde`.
        generate: keyword arguments of :class:`PDEDataConfig`; if given, the store is generated
            first (reused when it already holds exactly that configuration).
        num_val: samples held out at the end of the store for validation.
        stats_path: JSON of the normalisation (computed on the training split if missing).
        batch_size, val_batch_size, num_workers, seed: see :class:`DiffusionDataModule`.
    """

    def __init__(self, path: str, generate: Mapping[str, Any] | None = None, num_val: int = 100,
                 stats_path: str | None = None, batch_size: int = 32, val_batch_size: int | None = None,
                 num_workers: int = 0, seed: int = 0) -> None:
        super().__init__(batch_size, val_batch_size, num_workers, seed)
        if num_val < 1:
            raise ValueError(f"num_val={num_val}: hold out at least one sample for validation")
        self.path, self.num_val = path, num_val
        self.generate = dict(generate) if generate is not None else None
        self.stats_path = stats_path
        self.stats: FieldStats | None = None
        self._resolution = int(self.generate["resolution"]) if self.generate and "resolution" in self.generate else None

    @property
    def data_shape(self) -> tuple[int, ...]:
        if self._resolution is None:
            _, cfg = open_pde(self.path)
            self._resolution = cfg.resolution
        return (2, self._resolution, self._resolution)

    def build_datasets(self) -> tuple[Dataset, Dataset]:
        if self.generate is not None:
            generate_pde(self.path, PDEDataConfig(**self.generate))
        pairs, cfg = load_pairs(self.path)
        if pairs.shape[0] <= self.num_val:
            raise ValueError(f"the store has {pairs.shape[0]} samples, not more than num_val={self.num_val}")
        self._resolution = cfg.resolution
        train, val = pairs[:-self.num_val], pairs[-self.num_val:]
        if self.stats_path is not None and Path(self.stats_path).exists():
            self.stats = FieldStats.from_json(self.stats_path)
        else:
            self.stats = FieldStats.fit(train)
            if self.stats_path is not None:
                self.stats.to_json(self.stats_path)
        return _Tensors(self.stats.normalize(train).float()), _Tensors(self.stats.normalize(val).float())
