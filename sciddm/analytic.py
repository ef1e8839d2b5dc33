"""Gaussian-mixture oracle: exact denoiser at every noise level and exact linear-Gaussian posterior.

For ``x_0 ~ sum_k w_k N(mu_k, C_k)`` and ``x_t = alpha x_0 + sigma eps``, the marginal is
``sum_k w_k N(alpha mu_k, alpha^2 C_k + sigma^2 I)`` and the ideal denoiser is

    E[x_0 | x_t] = sum_k r_k(x_t) [mu_k + alpha C_k (alpha^2 C_k + sigma^2 I)^{-1} (x_t - alpha mu_k)],

with responsibilities ``r_k`` from the marginal. Covariances are kept as eigen-decompositions
``C_k = U_k diag(l_k) U_k^T`` so that every noise level costs one rotation. Everything is computed
in float64. This is how samplers are tested: against truth, not against themselves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .denoiser import as_time
from .process import Process

__all__ = ["GaussianMixture"]


class GaussianMixture:
    """A mixture ``sum_k w_k N(mu_k, C_k)`` in ``D`` dimensions.

    Args:
        weights: ``(K,)`` non-negative, normalised internally.
        means: ``(K, D)``.
        covs: a float (shared isotropic std**2 is *not* implied: this is a variance), ``(K,)``
            per-component isotropic variances, ``(K, D)`` diagonal variances, or ``(K, D, D)``
            full covariances.
    """

    def __init__(self, weights: Tensor, means: Tensor, covs: Tensor | float) -> None:
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D); got {tuple(means.shape)}")
        K, D = means.shape
        weights = torch.as_tensor(weights, dtype=torch.float64).flatten()
        if weights.shape != (K,) or torch.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"weights must be {K} non-negative numbers with a positive sum")
        covs = torch.as_tensor(covs, dtype=torch.float64)
        self.means = means
        self.weights = weights / weights.sum()
        self.eigvecs: Tensor | None = None
        if covs.ndim == 0:
            covs = covs.expand(K)
        if covs.ndim == 1:
            if covs.shape != (K,):
                raise ValueError(f"per-component variances must have shape ({K},); got {tuple(covs.shape)}")
            self.eigvals = covs[:, None].expand(K, D).clone()
        elif covs.ndim == 2:
            if covs.shape != (K, D):
                raise ValueError(f"diagonal covariances must have shape ({K}, {D}); got {tuple(covs.shape)}")
            self.eigvals = covs.clone()
        elif covs.ndim == 3:
            if covs.shape != (K, D, D):
                raise ValueError(f"full covariances must have shape ({K}, {D}, {D}); got {tuple(covs.shape)}")
            sym = 0.5 * (covs + covs.transpose(-1, -2))
            l, U = torch.linalg.eigh(sym)
            self.eigvals, self.eigvecs = l.clamp_min(0.0), U
        else:
            raise ValueError("covs must be a scalar, (K,), (K, D) or (K, D, D)")
        if torch.any(self.eigvals < 0):
            raise ValueError("covariances must be positive semi-definite")

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def covariances(self) -> Tensor:
        """Full ``(K, D, D)`` covariance matrices."""
        if self.eigvecs is None:
            return torch.diag_embed(self.eigvals)
        return self.eigvecs @ torch.diag_embed(self.eigvals) @ self.eigvecs.transpose(-1, -2)

    def variances(self) -> Tensor:
        """The diagonals ``(K, D)`` of the component covariances, from the eigen-decompositions
        (``O(K D^2)``, without forming the ``(K, D, D)`` matrices)."""
        if self.eigvecs is None:
            return self.eigvals.clone()
        return ((self.eigvecs * self.eigvecs) @ self.eigvals[..., None])[..., 0]

    def mean(self) -> Tensor:
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """Covariance of the whole mixture."""
        m = self.mean()
        d = self.means - m
        return torch.einsum("k,kij->ij", self.weights, self.covariances()) + torch.einsum("k,ki,kj->ij", self.weights, d, d)

    # -- rotations into each component's eigenbasis ---------------------------------------------
    def _rotate(self, v: Tensor) -> Tensor:
        """``(B, K, D)`` -> coordinates in each component's eigenbasis."""
        if self.eigvecs is None:
            return v
        return torch.einsum("kdi,bkd->bki", self.eigvecs, v)

    def _unrotate(self, z: Tensor) -> Tensor:
        if self.eigvecs is None:
            return z
        return torch.einsum("kdi,bki->bkd", self.eigvecs, z)

    def _noisy_stats(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-component log-likelihood of ``x_t`` and eigen-coordinates; alpha, sigma are ``(B,)``."""
        a, s = alpha[:, None, None], sigma[:, None, None]
        var = a * a * self.eigvals[None] + s * s  # (B, K, D)
        z = self._rotate(x[:, None, :] - a * self.means[None])
        loglik = -0.5 * ((z * z) / var).sum(-1) - 0.5 * torch.log(var).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return loglik, z, var

    def _flatten(self, x: Tensor) -> tuple[Tensor, torch.Size]:
        if x.shape[-1] != self.dim and x[0].numel() != self.dim:
            raise ValueError(f"samples must have {self.dim} features; got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1).to(torch.float64), x.shape

    # -- the oracle ------------------------------------------------------------------------------
    def log_prob_noisy(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """``log p_t(x)`` of the noisy marginal at per-sample ``(alpha, sigma)``."""
        xf, _ = self._flatten(x)
        loglik, _, _ = self._noisy_stats(xf, alpha.to(torch.float64).expand(xf.shape[0]), sigma.to(torch.float64).expand(xf.shape[0]))
        return torch.logsumexp(loglik + torch.log(self.weights), dim=-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of the clean mixture (requires non-singular covariances)."""
        one = torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
        return self.log_prob_noisy(x, one, 0.0 * one)

    def posterior_mean(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """``E[x_0 | x_t = x]`` at per-sample ``alpha``, ``sigma`` of shape ``(B,)``; float64."""
        xf, shape = self._flatten(x)
        alpha = alpha.to(torch.float64).expand(xf.shape[0])
        sigma = sigma.to(torch.float64).expand(xf.shape[0])
        loglik, z, var = self._noisy_stats(xf, alpha, sigma)
        r = torch.softmax(loglik + torch.log(self.weights), dim=-1)  # (B, K)
        gain = alpha[:, None, None] * self.eigvals[None] / var
        comp = self.means[None] + self._unrotate(gain * z)  # (B, K, D)
        return torch.einsum("bk,bkd->bd", r, comp).reshape(shape)

    def score(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """``grad log p_t(x) = (alpha E[x_0|x] - x) / sigma^2`` (Tweedie)."""
        x0 = self.posterior_mean(x, alpha, sigma)
        a = alpha.to(torch.float64).reshape(-1, *([1] * (x.ndim - 1)))
        s = sigma.to(torch.float64).reshape(-1, *([1] * (x.ndim - 1)))
        return (a * x0 - x.to(torch.float64)) / (s * s)

    def denoiser(self, process: Process):
        """The exact denoiser ``D(x, t) -> E[x_0 | x_t]`` for a process, in ``x``'s dtype."""

        def D(x: Tensor, t: Tensor | float, **cond) -> Tensor:
            t = as_time(t, x).to(torch.float64)
            return self.posterior_mean(x, process.alpha(t), process.sigma(t)).to(x.dtype)

        return D

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples, float64, shape ``(n, D)``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, dtype=torch.float64, generator=generator)
        z = eps * self.eigvals[k].sqrt()
        if self.eigvecs is not None:
            # rotate per component: gathering a (D, D) basis per sample would cost n D^2 memory
            for j in torch.unique(k).tolist():
                sel = k == j
                z[sel] = z[sel] @ self.eigvecs[j].T
        return self.means[k] + z

    # -- exact posterior under y = A x + sigma_y n -----------------------------------------------
    def posterior(self, A: Tensor, sigma_y: float | Tensor, y: Tensor) -> "GaussianMixture":
        """The exact posterior ``p(x | y)`` for ``y = A x + sigma_y n``, ``n ~ N(0, I)``.

        Each component updates as a Kalman step (Woodbury form, so singular priors are fine):
        ``C' = C - C A^T S^{-1} A C``, ``mu' = mu + C A^T S^{-1} (y - A mu)``, ``S = A C A^T +
        sigma_y^2 I``, and weight ``w' ∝ w N(y; A mu, S)``.
        """
        A = torch.as_tensor(A, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64).flatten()
        if A.ndim != 2 or A.shape[1] != self.dim:
            raise ValueError(f"A must have shape (d_y, {self.dim}); got {tuple(A.shape)}")
        if y.shape != (A.shape[0],):
            raise ValueError(f"y must have {A.shape[0]} entries to match A; got {tuple(y.shape)}")
        sy = torch.as_tensor(sigma_y, dtype=torch.float64)
        if torch.any(sy <= 0):
            raise ValueError(f"sigma_y must be positive; got {sigma_y}")
        noise = (sy * sy).expand(A.shape[0]) if sy.ndim == 0 else sy * sy
        C = self.covariances()  # (K, D, D)
        CAt = C @ A.T  # (K, D, d_y)
        S = A @ CAt + torch.diag(noise)  # (K, d_y, d_y)
        L = torch.linalg.cholesky(S)
        resid = y[None] - self.means @ A.T  # (K, d_y)
        sol = torch.cholesky_solve(resid[..., None], L)[..., 0]
        means = self.means + (CAt @ sol[..., None])[..., 0]
        gain_t = torch.cholesky_solve(CAt.transpose(-1, -2), L)  # S^{-1} A C
        covs = C - CAt @ gain_t
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        loglik = -0.5 * (resid * sol).sum(-1) - 0.5 * logdet
        logw = torch.log(self.weights) + loglik
        return GaussianMixture(torch.softmax(logw, 0), means, covs)
