"""Noise processes ``x_t = alpha(t) * x_0 + sigma(t) * eps`` on continuous time ``t`` in [0, 1].

``t = 0`` is data (``sigma(0) = 0``), ``t = 1`` is noise, for every process. A discrete DDPM
schedule is a continuous process evaluated on a grid (see :meth:`VP.from_betas`).

Every process exposes ``alpha``, ``sigma``, their time derivatives, ``logsnr = 2 log(alpha/sigma)``
and its inverse ``t_of_logsnr``. ``logsnr`` is strictly decreasing in ``t``, so samplers and grids
may work in whichever of ``t``, ``logsnr`` or the *effective sigma* ``sigma/alpha`` suits them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Process",
    "ProcessCoefficients",
    "VP",
    "VE",
    "EDM",
    "RectifiedFlow",
    "broadcast_to",
]


def broadcast_to(t: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample quantity of shape ``(B,)`` (or scalar) to broadcast against ``x``."""
    t = torch.as_tensor(t, device=x.device)
    if t.ndim == 0:
        return t
    return t.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def _as_tensor(t: Tensor | float) -> Tensor:
    if isinstance(t, Tensor):
        return t if t.is_floating_point() else t.double()
    return torch.as_tensor(t, dtype=torch.float64)


@dataclass(frozen=True)
class ProcessCoefficients:
    """The schedule at times ``t``: ``x_t = alpha_t x_0 + sigma_t eps`` and its time derivatives."""

    alpha_t: Tensor
    sigma_t: Tensor
    d_alpha_t: Tensor
    d_sigma_t: Tensor


class Process(ABC):
    """A Gaussian noising process ``x_t = alpha(t) x_0 + sigma(t) eps`` with ``t`` in [0, 1]."""

    #: whether ``alpha**2 + sigma**2 == 1`` (VP processes).
    variance_preserving: bool = False

    @abstractmethod
    def alpha(self, t: Tensor | float) -> Tensor: ...

    @abstractmethod
    def sigma(self, t: Tensor | float) -> Tensor: ...

    @abstractmethod
    def d_alpha(self, t: Tensor | float) -> Tensor: ...

    @abstractmethod
    def d_sigma(self, t: Tensor | float) -> Tensor: ...

    @abstractmethod
    def t_of_logsnr(self, logsnr: Tensor | float) -> Tensor:
        """Inverse of :meth:`logsnr`; ``+inf`` maps to ``t = 0``."""

    def logsnr(self, t: Tensor | float) -> Tensor:
        """``log(alpha^2 / sigma^2)``: ``+inf`` at ``t = 0``, decreasing in ``t``."""
        t = _as_tensor(t)
        return 2.0 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def d_logsnr(self, t: Tensor | float) -> Tensor:
        t = _as_tensor(t)
        return 2.0 * (self.d_alpha(t) / self.alpha(t) - self.d_sigma(t) / self.sigma(t))

    def sigma_eff(self, t: Tensor | float) -> Tensor:
        """Effective (variance-exploding) noise level ``sigma / alpha = exp(-logsnr / 2)``."""
        t = _as_tensor(t)
        return self.sigma(t) / self.alpha(t)

    def t_of_sigma_eff(self, sigma_eff: Tensor | float) -> Tensor:
        s = _as_tensor(sigma_eff)
        return self.t_of_logsnr(-2.0 * torch.log(s))

    def coefficients(self, t: Tensor | float) -> ProcessCoefficients:
        t = _as_tensor(t)
        return ProcessCoefficients(self.alpha(t), self.sigma(t), self.d_alpha(t), self.d_sigma(t))

    def add_noise(self, x0: Tensor, t: Tensor, eps: Tensor | None = None) -> Tensor:
        """Draw ``x_t`` given ``x_0`` and per-sample times ``t`` of shape ``(B,)``."""
        if eps is None:
            eps = torch.randn_like(x0)
        t = _as_tensor(t).to(device=x0.device)
        a = broadcast_to(self.alpha(t), x0).to(x0.dtype)
        s = broadcast_to(self.sigma(t), x0).to(x0.dtype)
        return a * x0 + s * eps

    def prior_sample(
        self,
        shape: tuple[int, ...] | torch.Size,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Draw ``x_1`` from the terminal distribution ``N(0, sigma(1)^2 I)``.

        The ``alpha(1) x_0`` term is dropped: it is zero for rectified flow and negligible
        (``alpha(1) <= 1e-2``) for the VP schedules shipped here.
        """
        eps = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return float(self.sigma(1.0)) * eps

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "class_path")
        return f"{type(self).__name__}({fields})"

    def config(self) -> dict:
        """A plain-dict description that :func:`process_from_config` turns back into the process."""
        raise NotImplementedError

    @staticmethod
    def from_config(config: dict) -> "Process":
        cfg = dict(config)
        name = cfg.pop("class_path", None)
        classes = {"VP": VP, "VE": VE, "RectifiedFlow": RectifiedFlow}
        if name not in classes:
            raise ValueError(f"unknown process {name!r}; expected one of {sorted(classes)}")
        if name == "VP" and cfg.get("schedule") == "betas":
            return VP.from_betas(torch.as_tensor(cfg["betas"], dtype=torch.float64))
        return classes[name](**cfg)


class VP(Process):
    """Variance-preserving process: ``alpha^2 + sigma^2 = 1``.

    ``schedule="linear"``: ``beta(t) = beta_min + t (beta_max - beta_min)`` (Song et al. 2021,
    eq. 32); with the defaults it is the 1,000-step linear DDPM schedule of Ho et al. (2020),
    ``beta_i = beta(t_i) / 1000``.

    ``schedule="cosine"``: ``alpha^2(t) = f(t)/f(0)``, ``f(t) = cos^2(pi/2 (t+s)/(1+s))``
    (Nichol & Dhariwal 2021, eq. 17), with time rescaled so that ``alpha^2(1) = exp(logsnr_min)``
    instead of exactly 0 (the discrete schedule clips ``beta`` at 0.999 for the same reason).
    """

    variance_preserving = True

    def __init__(
        self,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        schedule: str = "linear",
        s: float = 0.008,
        logsnr_min: float = -15.0,
    ) -> None:
        if schedule not in ("linear", "cosine"):
            raise ValueError(f"VP schedule must be 'linear', 'cosine' or built with VP.from_betas; got {schedule!r}")
        if schedule == "linear" and not (0 <= beta_min < beta_max):
            raise ValueError(f"VP needs 0 <= beta_min < beta_max; got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min, self.beta_max, self.schedule, self.s, self.logsnr_min = (
            float(beta_min), float(beta_max), schedule, float(s), float(logsnr_min))
        self._log_betas: Tensor | None = None
        if schedule == "cosine":
            # u(t) in [0, u_max): the iDDPM angle at time t. Choose u_max so logsnr(1) = logsnr_min.
            s_ = self.s
            theta0 = math.pi / 2 * s_ / (1 + s_)
            # alpha^2 = cos^2(theta)/cos^2(theta0); logsnr = log(alpha^2/(1-alpha^2))
            a2_min = 1.0 / (1.0 + math.exp(-self.logsnr_min))
            self._theta0 = theta0
            self._theta1 = math.acos(math.sqrt(a2_min) * math.cos(theta0))

    # -- log alpha and its derivative; everything else follows --------------------------------
    def _log_alpha(self, t: Tensor) -> Tensor:
        if self._log_betas is not None:
            return self._interp(t)[0]
        if self.schedule == "linear":
            return -0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)
        theta = self._theta0 + t * (self._theta1 - self._theta0)
        # log cos(theta) - log cos(theta0), both through the same kernels at the same positions, so
        # that t = 0 gives exactly 0 in any dtype (libm's scalar log and torch's vectorised one can
        # differ by an ulp: a log alpha of +1e-20 made sigma(0) = sqrt(-1e-20) NaN); and never above 0
        theta0 = torch.full_like(theta, self._theta0)
        return (torch.log(torch.cos(theta)) - torch.log(torch.cos(theta0))).clamp(max=0.0)

    def _d_log_alpha(self, t: Tensor) -> Tensor:
        if self._log_betas is not None:
            return self._interp(t)[1]
        if self.schedule == "linear":
            return -0.5 * (self.beta_min + (self.beta_max - self.beta_min) * t)
        theta = self._theta0 + t * (self._theta1 - self._theta0)
        return -torch.tan(theta) * (self._theta1 - self._theta0)

    def alpha(self, t):
        return torch.exp(self._log_alpha(_as_tensor(t)))

    def sigma(self, t):
        t = _as_tensor(t)
        # sqrt(1 - exp(2 log alpha)) computed stably near t = 0
        return torch.sqrt(-torch.expm1(2.0 * self._log_alpha(t)))

    def d_alpha(self, t):
        t = _as_tensor(t)
        return self.alpha(t) * self._d_log_alpha(t)

    def d_sigma(self, t):
        t = _as_tensor(t)
        a = self.alpha(t)
        return -a * a * self._d_log_alpha(t) / self.sigma(t)

    def logsnr(self, t):
        t = _as_tensor(t)
        la2 = 2.0 * self._log_alpha(t)
        return la2 - torch.log(-torch.expm1(la2))

    def t_of_logsnr(self, logsnr):
        lam = _as_tensor(logsnr)
        # log alpha^2 = -softplus(-lambda)
        log_a2 = -torch.nn.functional.softplus(-lam)
        if self._log_betas is not None:
            return self._inverse_interp(0.5 * log_a2)
        if self.schedule == "linear":
            # beta_min t + (beta_max - beta_min) t^2 / 2 = -log alpha^2 =: c
            c = -log_a2
            b, a = self.beta_min, 0.5 * (self.beta_max - self.beta_min)
            return 2.0 * c / (b + torch.sqrt(b * b + 4.0 * a * c))
        cos_theta = torch.exp(0.5 * log_a2) * math.cos(self._theta0)
        return (torch.acos(cos_theta.clamp(-1.0, 1.0)) - self._theta0) / (self._theta1 - self._theta0)

    # -- discrete schedules ------------------------------------------------------------------
    @classmethod
    def from_betas(cls, betas: Tensor | list[float]) -> "VP":
        """The continuous process through a discrete schedule ``beta_1..beta_N``.

        Step ``i`` (1-based) sits at ``t_i = i / N`` with ``alpha(t_i)^2 = prod_{j<=i} (1 - beta_j)``;
        ``log alpha`` is linear between grid points, and ``alpha(0) = 1``.
        """
        betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
        if betas.numel() < 1 or not torch.all((betas > 0) & (betas < 1)):
            raise ValueError("VP.from_betas needs a non-empty sequence of betas in (0, 1)")
        proc = cls.__new__(cls)
        proc.schedule = "betas"
        proc.beta_min = proc.beta_max = proc.s = proc.logsnr_min = float("nan")
        log_a = torch.cat([torch.zeros(1, dtype=torch.float64), 0.5 * torch.cumsum(torch.log1p(-betas), 0)])
        proc._log_betas = betas
        proc._log_alpha_knots = log_a
        return proc

    def _interp(self, t: Tensor) -> tuple[Tensor, Tensor]:
        knots = self._log_alpha_knots.to(t.device)
        n = knots.numel() - 1
        u = (t.to(torch.float64) * n).clamp(0, n)
        i = torch.clamp(torch.floor(u).long(), max=n - 1)
        w = u - i
        slope = (knots[i + 1] - knots[i]) * n
        return (knots[i] + w * (knots[i + 1] - knots[i])).to(t.dtype), slope.to(t.dtype)

    def _inverse_interp(self, log_a: Tensor) -> Tensor:
        knots = self._log_alpha_knots.to(log_a.device)  # decreasing
        n = knots.numel() - 1
        neg = -knots  # increasing
        j = torch.searchsorted(neg, -log_a.to(torch.float64).contiguous()).clamp(1, n)
        lo, hi = neg[j - 1], neg[j]
        w = ((-log_a - lo) / (hi - lo)).clamp(0, 1)
        return ((j - 1 + w) / n).to(log_a.dtype)

    def config(self) -> dict:
        if self._log_betas is not None:
            return {"class_path": "VP", "schedule": "betas", "betas": self._log_betas.tolist()}
        cfg = {"class_path": "VP", "schedule": self.schedule}
        if self.schedule == "linear":
            cfg.update(beta_min=self.beta_min, beta_max=self.beta_max)
        else:
            cfg.update(s=self.s, logsnr_min=self.logsnr_min)
        return cfg

    def __repr__(self) -> str:
        if self._log_betas is not None:
            return f"VP.from_betas(<{self._log_betas.numel()} betas>)"
        return super().__repr__()


class VE(Process):
    """Variance-exploding process of EDM (Karras et al. 2022): ``alpha = 1``, ``sigma(t) = sigma_max t``.

    Here ``t`` is EDM's ``sigma`` divided by ``sigma_max``; the rho-spaced EDM grid is the
    ``"karras"`` grid of :mod:`sciddm.sampling`, and EDM's network preconditioning is an option
    of :class:`sciddm.Denoiser`.
    """

    def __init__(self, sigma_max: float = 80.0) -> None:
        if not sigma_max > 0:
            raise ValueError(f"VE needs sigma_max > 0; got {sigma_max}")
        self.sigma_max = float(sigma_max)

    def alpha(self, t):
        return torch.ones_like(_as_tensor(t))

    def sigma(self, t):
        return self.sigma_max * _as_tensor(t)

    def d_alpha(self, t):
        return torch.zeros_like(_as_tensor(t))

    def d_sigma(self, t):
        return torch.full_like(_as_tensor(t), self.sigma_max)

    def logsnr(self, t):
        return -2.0 * torch.log(self.sigma(t))

    def t_of_logsnr(self, logsnr):
        return torch.exp(-0.5 * _as_tensor(logsnr)) / self.sigma_max

    def config(self) -> dict:
        return {"class_path": "VE", "sigma_max": self.sigma_max}


#: EDM's process is the variance-exploding one with ``sigma_max = 80``.
EDM = VE


class RectifiedFlow(Process):
    """Linear interpolant of rectified flow / flow matching: ``alpha = 1 - t``, ``sigma = t``."""

    def alpha(self, t):
        return 1.0 - _as_tensor(t)

    def sigma(self, t):
        return _as_tensor(t).clone()

    def d_alpha(self, t):
        return -torch.ones_like(_as_tensor(t))

    def d_sigma(self, t):
        return torch.ones_like(_as_tensor(t))

    def logsnr(self, t):
        t = _as_tensor(t)
        return 2.0 * (torch.log1p(-t) - torch.log(t))

    def t_of_logsnr(self, logsnr):
        return torch.sigmoid(-0.5 * _as_tensor(logsnr))

    def config(self) -> dict:
        return {"class_path": "RectifiedFlow"}
