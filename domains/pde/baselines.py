"""Regression baselines fed the sparse observations as DiffusionPDE compares against (Sec. 5):
a Fourier neural operator (Li et al. 2021) and a UNet regressor.

Both see the same input, the observed fields zero-filled plus their masks in the prior's
normalised units, ``[m_a a, m_a, m_u u, m_u]`` (4, n, n), and predict both fields ``[a, u]``
(2, n, n). :func:`train_regressor` trains either on random masks of the three problem kinds
(only ``a``, only ``u``, or both observed at one density), so one network serves the forward,
inverse and both-sparse problems.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

__all__ = ["SpectralConv2d", "FNO2d", "UNetRegressor", "baseline_input", "random_problem_masks", "sensor_problem_masks",
           "train_regressor"]


class SpectralConv2d(nn.Module):
    """Fourier layer kernel: keep the lowest ``modes`` frequencies per axis and multiply them by
    learned complex weights (Li et al. 2021, Eq. 4-5; both signs of the row frequency)."""

    def __init__(self, in_channels: int, out_channels: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (in_channels * out_channels)
        self.w_pos = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, modes, dtype=torch.cfloat))
        self.w_neg = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, modes, dtype=torch.cfloat))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        m = min(self.modes, h // 2, w // 2 + 1)
        xf = torch.fft.rfft2(x)
        out = torch.zeros(b, self.w_pos.shape[1], h, w // 2 + 1, dtype=torch.cfloat, device=x.device)
        out[:, :, :m, :m] = torch.einsum("bixy,ioxy->boxy", xf[:, :, :m, :m], self.w_pos[:, :, :m, :m])
        out[:, :, -m:, :m] = torch.einsum("bixy,ioxy->boxy", xf[:, :, -m:, :m], self.w_neg[:, :, :m, :m])
        return torch.fft.irfft2(out, s=(h, w))


class FNO2d(nn.Module):
    """Fourier neural operator (Li et al. 2021, Sec. 4): lift with the grid coordinates appended,
    ``layers`` of ``GELU(spectral conv + 1x1 conv)``, project; their Darcy defaults
    ``modes=12, width=32, layers=4``."""

    def __init__(self, in_channels: int = 4, out_channels: int = 2, modes: int = 12, width: int = 32,
                 layers: int = 4) -> None:
        super().__init__()
        if min(modes, width, layers) < 1:
            raise ValueError(f"modes, width and layers must be >= 1; got {modes}, {width}, {layers}")
        self.lift = nn.Conv2d(in_channels + 2, width, 1)
        self.spectral = nn.ModuleList([SpectralConv2d(width, width, modes) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(layers)])
        self.project = nn.Sequential(nn.Conv2d(width, 128, 1), nn.GELU(), nn.Conv2d(128, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        gy, gx = torch.meshgrid(torch.linspace(0, 1, h, device=x.device), torch.linspace(0, 1, w, device=x.device), indexing="ij")
        z = self.lift(torch.cat([x, gy.expand(b, 1, h, w).to(x), gx.expand(b, 1, h, w).to(x)], dim=1))
        for k, (sc, pw) in enumerate(zip(self.spectral, self.pointwise)):
            z = sc(z) + pw(z)
            z = F.gelu(z) if k < len(self.spectral) - 1 else z  # no activation after the last layer
        return self.project(z)


class UNetRegressor(nn.Module):
    """A plain UNet regressor (MONAI ``BasicUNet``: two 3x3 conv blocks per level, four poolings)."""

    def __init__(self, in_channels: int = 4, out_channels: int = 2,
                 features: tuple[int, ...] = (16, 32, 32, 64, 64, 16)) -> None:
        super().__init__()
        from monai.networks.nets import BasicUNet

        self.net = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, features=features)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % 16 or x.shape[-2] % 16 or min(x.shape[-2:]) < 32:
            raise ValueError(f"UNetRegressor pools four times (instance norm needs >= 2x2 at the bottom): "
                             f"the grid {tuple(x.shape[-2:])} must be a multiple of 16 and at least 32")
        return self.net(x)


def baseline_input(values: Tensor, mask: Tensor) -> Tensor:
    """``[m_a a, m_a, m_u u, m_u]`` from normalised ``values`` and ``mask``, both (B, 2, n, n)."""
    if values.shape != mask.shape or values.ndim != 4 or values.shape[1] != 2:
        raise ValueError(f"values {tuple(values.shape)} and mask {tuple(mask.shape)} must both be (B, 2, n, n)")
    v = values * mask
    return torch.stack([v[:, 0], mask[:, 0], v[:, 1], mask[:, 1]], dim=1).float()


def random_problem_masks(batch: int, n: int, density: float | Tensor,
                         generator: torch.Generator | None = None) -> Tensor:
    """Masks (B, 2, n, n): each row observes only ``a``, only ``u`` or both, at ``density`` (one
    fraction, or a tensor (B,) of one per row), ``round(density n^2)`` points (at least one) a field."""
    scores = torch.rand(batch, 2, n * n, generator=generator)
    if isinstance(density, Tensor):  # a density per row: the first k_i of each row's random order
        if density.shape != (batch,):
            raise ValueError(f"a density per row must have shape ({batch},); got {tuple(density.shape)}")
        k = (density.double() * n * n).round().clamp(min=1).to(torch.long)
        m = (scores.argsort(dim=-1).argsort(dim=-1) < k.view(batch, 1, 1)).float()
    else:
        k = max(1, int(round(density * n * n)))
        idx = scores.argsort(dim=-1)[..., :k]
        m = torch.zeros(batch, 2, n * n).scatter_(2, idx, 1.0)
    kind = torch.randint(0, 3, (batch,), generator=generator)  # 0: a only, 1: u only, 2: both
    m[kind == 0, 1] = 0.0
    m[kind == 1, 0] = 0.0
    return m.reshape(batch, 2, n, n)


def sensor_problem_masks(batch: int, n: int, density: float | Tensor, generator: torch.Generator | None = None, *,
                         sensors: int = 5) -> Tensor:
    """Masks (B, 2, n, n) for a space-time field (Burgers): the first half of the rows observe ``u`` at
    ``sensors`` fixed positions at every time (DiffusionPDE's Burgers problem,
    :func:`.operators.sensor_mask`), the rest are :func:`random_problem_masks` at ``density``."""
    from .operators import sensor_mask

    m = random_problem_masks(batch, n, density, generator)
    for i in range(batch // 2):
        m[i] = 0.0
        m[i, 1] = sensor_mask(n, sensors, generator=generator)
    return m


def train_regressor(model: nn.Module, data: Tensor, *, density: float = 0.03, steps: int = 1000, batch_size: int = 32,
                    lr: float = 1e-3, seed: int = 0, progress: bool = False,
                    masks: Callable[[int, int, float, torch.Generator], Tensor] | None = None) -> nn.Module:
    """Fit ``model`` to map :func:`baseline_input` to the full normalised fields ``data`` (N, 2, n, n)
    with MSE, Adam and a cosine learning-rate decay (FNO's setup uses Adam with step decay).

    ``masks(batch, n, density, generator) -> (batch, 2, n, n)`` draws the training observation
    patterns (default :func:`random_problem_masks`); give the patterns the model will be asked
    about (e.g. Burgers' fixed sensors) so that they are not out of distribution."""
    draw = random_problem_masks if masks is None else masks
    if data.ndim != 4 or data.shape[1] != 2:
        raise ValueError(f"data of shape {tuple(data.shape)}: expected (N, 2, n, n) normalised [a, u] pairs")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    for _ in tqdm(range(steps), disable=not progress, desc=type(model).__name__):
        x = data[torch.randint(0, data.shape[0], (batch_size,), generator=g)].float()
        m = draw(batch_size, x.shape[-1], density, g)
        loss = F.mse_loss(model(baseline_input(x, m)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model
