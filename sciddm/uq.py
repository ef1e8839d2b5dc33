"""Uncertainty of ensembles: summary statistics, proper scores and calibration diagnostics.

Every function takes an ensemble ``ens`` of shape ``(N, ...)`` (``N`` members, e.g. posterior
samples) and, where it scores, a truth of shape ``(...)``. Statistics run in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = ["ensemble_mean", "ensemble_std", "quantiles", "crps", "interval_coverage", "spread_skill_ratio",
           "rank_histogram"]

Reduction = Literal["mean", "none"]


def _ensemble(ens: Tensor, min_members: int = 1) -> Tensor:
    ens = torch.as_tensor(ens)
    if ens.ndim < 1 or ens.shape[0] < min_members:
        raise ValueError(f"the ensemble must have shape (N, ...) with N >= {min_members} members; "
                         f"got {tuple(ens.shape)}")
    if not torch.all(torch.isfinite(ens)):
        raise ValueError("the ensemble contains NaN or Inf")
    return ens.to(torch.float64)


def _pair(ens: Tensor, truth: Tensor, min_members: int = 1) -> tuple[Tensor, Tensor]:
    ens = _ensemble(ens, min_members)
    truth = torch.as_tensor(truth).to(device=ens.device, dtype=torch.float64)
    if truth.shape != ens.shape[1:]:
        raise ValueError(f"truth has shape {tuple(truth.shape)} but ensemble members have {tuple(ens.shape[1:])}; "
                         f"the ensemble is (N, *truth.shape)")
    if not torch.all(torch.isfinite(truth)):
        raise ValueError("the truth contains NaN or Inf; drop those points first")
    return ens, truth


def _reduce(v: Tensor, reduction: Reduction) -> Tensor:
    if reduction == "mean":
        return v.mean()
    if reduction == "none":
        return v
    raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")


def ensemble_mean(ens: Tensor) -> Tensor:
    """Pointwise ensemble mean, shape ``(...)``."""
    return _ensemble(ens).mean(0)


def ensemble_std(ens: Tensor) -> Tensor:
    """Pointwise unbiased-variance ensemble standard deviation (divisor ``N - 1``)."""
    return _ensemble(ens, 2).std(0, correction=1)


def quantiles(ens: Tensor, q: float | Sequence[float] | Tensor,
              method: Literal["linear", "weibull"] = "linear") -> Tensor:
    """Pointwise empirical quantiles, shape ``(len(q), ...)`` (or ``(...)`` for a scalar ``q``).

    ``"linear"`` interpolates the sorted members at position ``q (N - 1)`` (numpy's default).
    ``"weibull"`` uses position ``q (N + 1)`` in 1-based ranks (Hyndman & Fan type 6), clamped
    to the extreme members: the ``k``-th member is then the ``k / (N + 1)`` quantile, which is
    what a new draw exchangeable with the members falls below with probability ``k/(N + 1)``.
    """
    ens = _ensemble(ens)
    qt = torch.as_tensor(q, dtype=torch.float64, device=ens.device)
    scalar = qt.ndim == 0
    qt = qt.reshape(-1)
    if torch.any((qt < 0) | (qt > 1)):
        raise ValueError(f"quantile levels must lie in [0, 1]; got {qt.tolist()}")
    n = ens.shape[0]
    if method == "linear":
        pos = qt * (n - 1)
    elif method == "weibull":
        pos = (qt * (n + 1) - 1).clamp(0, n - 1)
    else:
        raise ValueError(f"method must be 'linear' or 'weibull'; got {method!r}")
    srt = torch.sort(ens, dim=0).values
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo).reshape(-1, *([1] * (ens.ndim - 1)))
    out = srt[lo] + frac * (srt[hi] - srt[lo])
    return out[0] if scalar else out


def crps(ens: Tensor, truth: Tensor, reduction: Reduction = "mean") -> Tensor:
    """The fair ensemble CRPS (Ferro 2014, "Fair scores for ensemble forecasts") per point,
    averaged over points unless ``reduction="none"``.

    ``CRPS_fair = mean_i |X_i - y| - 1 / (2 N (N - 1)) sum_{i,j} |X_i - X_j|``, an unbiased
    estimate of the CRPS of the distribution the ``N`` members are drawn from. The pair sum is
    computed in O(N log N) from the sorted members ``x_(1) <= ... <= x_(N)``:
    ``sum_{i,j} |X_i - X_j| = 2 sum_k (2k - N - 1) x_(k)``.
    """
    ens, truth = _pair(ens, truth, 2)
    n = ens.shape[0]
    skill = (ens - truth).abs().mean(0)
    srt = torch.sort(ens, dim=0).values
    k = torch.arange(1, n + 1, dtype=torch.float64, device=ens.device)
    w = (2 * k - n - 1).reshape(-1, *([1] * (ens.ndim - 1)))
    pair_sum = 2 * (w * srt).sum(0)
    return _reduce(skill - pair_sum / (2 * n * (n - 1)), reduction)


def interval_coverage(ens: Tensor, truth: Tensor, level: float = 0.9, reduction: Reduction = "mean",
                      method: Literal["linear", "weibull"] = "weibull") -> Tensor:
    """Fraction of points whose truth lies in the central ``level`` interval of the ensemble.

    The interval runs from the ``(1 - level)/2`` to the ``(1 + level)/2`` empirical quantile.
    With the default ``"weibull"`` quantiles, a truth exchangeable with the members is covered
    with probability exactly ``level`` whenever ``(N + 1)(1 - level)/2`` is an integer (e.g.
    ``N = 19`` or ``99`` at 90 %), and within ``1/(N + 1)`` of it otherwise. numpy's
    ``"linear"`` quantiles cover only ``~ level (N - 1)/(N + 1)`` of such truths.
    """
    if not 0 < level < 1:
        raise ValueError(f"level is the nominal coverage and must lie in (0, 1); got {level}")
    ens, truth = _pair(ens, truth, 2)
    lo, hi = quantiles(ens, [(1 - level) / 2, (1 + level) / 2], method=method)
    inside = ((truth >= lo) & (truth <= hi)).to(torch.float64)
    return _reduce(inside, reduction)


def spread_skill_ratio(ens: Tensor, truth: Tensor) -> Tensor:
    """``sqrt((N + 1)/N) * spread / skill``, 1 for a calibrated ensemble (Fortin et al. 2014).

    ``spread = sqrt(mean over points of the unbiased ensemble variance)`` and ``skill`` is the
    RMSE of the ensemble mean. For a truth exchangeable with ``N`` members,
    ``E[(mean - y)^2] = (1 + 1/N) sigma^2``: the factor ``sqrt((N + 1)/N)`` removes that
    finite-ensemble excess so that the ratio is 1, not ``sqrt(N/(N + 1))``. Below 1: the
    ensemble is under-dispersed (over-confident); above 1: over-dispersed.
    """
    ens, truth = _pair(ens, truth, 2)
    n = ens.shape[0]
    spread = ens.var(0, correction=1).mean().sqrt()
    skill = (ens.mean(0) - truth).pow(2).mean().sqrt()
    if skill == 0:
        raise ValueError("the ensemble mean equals the truth everywhere; the spread-skill ratio is undefined")
    return ((n + 1) / n) ** 0.5 * spread / skill


def rank_histogram(ens: Tensor, truth: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Talagrand rank histogram: counts, shape ``(N + 1,)``, of the truth's rank among the members.

    The rank is the number of members below the truth; ties (e.g. members clipped at a bound
    equal to the truth) are broken uniformly at random with ``generator``. Flat for a
    calibrated ensemble, U-shaped for an under-dispersed one, dome-shaped for an over-dispersed
    one, sloped for a biased one.
    """
    ens, truth = _pair(ens, truth, 1)
    n = ens.shape[0]
    below = (ens < truth).sum(0)
    ties = (ens == truth).sum(0)
    if torch.any(ties > 0):
        u = torch.rand(ties.shape, generator=generator, dtype=torch.float64).to(ties.device)
        below = below + torch.floor(u * (ties + 1)).long()
    return torch.bincount(below.reshape(-1), minlength=n + 1)


# --- post-hoc calibration: one multiplicative spread-inflation factor ---------------------------

__all__ += ["inflate_spread", "fit_spread_inflation"]

InflationObjective = Literal["spread_skill", "crps", "coverage"]


def inflate_spread(ens: Tensor, factor: float) -> Tensor:
    """``mean + factor * (member - mean)``: the members' deviations from the ensemble mean scaled.

    Multiplicative inflation of ensemble forecasting and data assimilation (Anderson & Anderson
    1999, "A Monte Carlo implementation of the nonlinear filtering problem", eq. 5.1): the mean
    is kept, the spread (and every quantile's distance to the mean) is multiplied by
    ``factor``. Returned in ``ens``'s dtype.
    """
    ens_t = torch.as_tensor(ens)
    if not (isinstance(factor, (int, float)) or torch.is_tensor(factor)) or not float(factor) > 0:
        raise ValueError(f"factor must be a positive number (1 = unchanged); got {factor!r}")
    _ensemble(ens_t, 2)
    mean = ens_t.mean(0, keepdim=True)
    return mean + float(factor) * (ens_t - mean)


def _cases(ensembles: Tensor | Sequence[Tensor], truths: Tensor | Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    if torch.is_tensor(ensembles) != torch.is_tensor(truths):
        raise ValueError("pass one ensemble (N, ...) with one truth (...), or equal-length sequences of both")
    if torch.is_tensor(ensembles):
        ensembles, truths = [ensembles], [truths]  # type: ignore[list-item]
    ensembles, truths = list(ensembles), list(truths)  # type: ignore[arg-type]
    if not ensembles or len(ensembles) != len(truths):
        raise ValueError(f"need as many truths as ensembles (at least one); got {len(ensembles)} and {len(truths)}")
    return [_pair(e, y, 3) for e, y in zip(ensembles, truths)]


def fit_spread_inflation(ensembles: Tensor | Sequence[Tensor], truths: Tensor | Sequence[Tensor],
                         objective: InflationObjective = "spread_skill", level: float = 0.9) -> float:
    """The inflation factor ``s`` of :func:`inflate_spread` fitted on validation cases.

    ``ensembles``: one ensemble ``(N, ...)`` or a sequence of them (e.g. one per validation
    time; sizes may differ), each with its truth. Fit it on cases held out from the ones it is
    then applied to: on the same cases it is in-sample.

    - ``"spread_skill"``: the ``s`` that makes the pooled :func:`spread_skill_ratio` exactly 1:
      the mean is unchanged by inflation, so ``s^2 = sum_k MSE_k / sum_k (1 + 1/N_k) var_k``
      (``MSE_k``: squared error of case ``k``'s mean, ``var_k``: its mean unbiased member
      variance; ``E[MSE] = (1 + 1/N) sigma^2`` for exchangeable members, Fortin et al. 2014).
    - ``"crps"``: the ``s`` minimising the mean fair CRPS (Ferro 2014) over all points, i.e.
      minimum-CRPS estimation (Gneiting et al. 2005, "Calibrated probabilistic forecasting
      using ensemble model output statistics") of the one parameter. With ``a = mean - y``,
      deviations ``b_i`` and the pair term ``G = sum_ij |b_i - b_j| / (2N(N - 1))``, each
      point contributes ``(1/N) sum_i |b_i| |s - r_i| - s G`` with ``r_i = -a / b_i``: a
      convex piecewise-linear function of ``s`` whose minimiser is exactly the weighted
      quantile of the ``r_i`` (weights ``|b_i| / N``) at level ``(W + C) / 2W`` (``W``: total
      weight, ``C``: total pair term). Computed exactly, no optimiser.
    - ``"coverage"``: the smallest ``s`` whose central ``level`` intervals
      (:func:`interval_coverage`, Weibull quantiles) cover at least ``level`` of all points,
      pooled: split-conformal calibration of the ensemble's intervals, one scale for all
      points. Inflation keeps the members' order, so each interval becomes
      ``[m + s (q_lo - m), m + s (q_hi - m)]`` (``m``: the mean): a point is covered for all
      ``s`` at or above ``max((m - y)/(m - q_lo), (y - m)/(q_hi - m), 0)`` when its interval
      holds ``m`` (always, at 19 members and 90 %), and on an interval of ``s`` otherwise;
      the pooled coverage is evaluated exactly at every such breakpoint, no optimiser.
      ``level`` is used by this objective only.

    Raises ValueError when the ensembles carry no spread, the truths equal the means, the CRPS
    has no positive minimiser (e.g. members that are far off the truth in every case), or no
    factor reaches the coverage ``level``.
    """
    cases = _cases(ensembles, truths)
    if objective == "coverage":
        return _fit_coverage_inflation(cases, level)
    if objective == "spread_skill":
        num = den = 0.0
        for ens, y in cases:
            n = ens.shape[0]
            num += float((ens.mean(0) - y).pow(2).sum())
            den += (1 + 1 / n) * float(ens.var(0, correction=1).sum())
        if den == 0:
            raise ValueError("the ensembles have zero spread everywhere: no inflation factor can calibrate them")
        if num == 0:
            raise ValueError("the ensemble means equal the truths everywhere: the spread-skill ratio is undefined")
        return (num / den) ** 0.5
    if objective != "crps":
        raise ValueError(f"objective must be 'spread_skill', 'crps' or 'coverage'; got {objective!r}")
    r_all: list[Tensor] = []
    w_all: list[Tensor] = []
    pair_total = 0.0
    for ens, y in cases:
        n = ens.shape[0]
        mean = ens.mean(0)
        b = (ens - mean).reshape(n, -1)
        a = (mean - y).reshape(1, -1).expand_as(b)
        srt = torch.sort(b, dim=0).values
        k = torch.arange(1, n + 1, dtype=torch.float64, device=b.device)[:, None]
        pair_total += float((2 * (2 * k - n - 1) * srt).sum()) / (2 * n * (n - 1))  # Ferro's pair term, sorted form
        keep = b != 0
        r_all.append((-a[keep] / b[keep]).cpu())
        w_all.append((b[keep].abs() / n).cpu())
    r, w = torch.cat(r_all), torch.cat(w_all)
    total, c = float(w.sum()), pair_total
    if total == 0:
        raise ValueError("the ensembles have zero spread everywhere: no inflation factor can calibrate them")
    if c >= total:
        raise ValueError("the mean fair CRPS decreases without bound in s (ensembles too small or degenerate): "
                         "use objective='spread_skill' or more members")
    order = torch.argsort(r)
    r, cum = r[order], torch.cumsum(w[order], 0)
    # subgradient sum_j w_j sign(s - r_j) - C = 0  <=>  W(r < s) = (W + C) / 2
    idx = int(torch.searchsorted(cum, torch.tensor((total + c) / 2, dtype=cum.dtype)))
    s = float(r[min(idx, r.numel() - 1)])
    if not s > 0:
        raise ValueError(f"the CRPS-optimal inflation is {s:.3g} <= 0: the members' deviations carry no useful "
                         "spread; use objective='spread_skill' or check the ensembles")
    return s


def _reach(dist: Tensor, width: Tensor) -> Tensor:
    """The factor ``s`` with ``s * width = dist``: 0 where ``dist <= 0``, inf where the width is 0."""
    inf = torch.full_like(dist, float("inf"))
    return torch.where(dist <= 0, torch.zeros_like(dist), torch.where(width > 0, dist / width.clamp_min(1e-300), inf))


def _fit_coverage_inflation(cases: list[tuple[Tensor, Tensor]], level: float) -> float:
    """The ``"coverage"`` objective of :func:`fit_spread_inflation` (see there)."""
    if not 0 < level < 1:
        raise ValueError(f"level is the nominal coverage and must lie in (0, 1); got {level}")
    monotone: list[Tensor] = []  # points covered for s >= their entry
    start: list[Tensor] = []  # the other points: covered for start <= s <= stop
    stop: list[Tensor] = []
    for ens, y in cases:
        m = ens.mean(0).reshape(-1).cpu()
        lo, hi = (q.reshape(-1).cpu() for q in quantiles(ens, [(1 - level) / 2, (1 + level) / 2], method="weibull"))
        y = y.reshape(-1).cpu()
        dl, dh, d = lo - m, hi - m, y - m
        regular = (dl <= 0) & (dh >= 0)
        monotone.append(torch.maximum(_reach(-d, -dl), _reach(d, dh))[regular])
        # interval above the mean (dl > 0) or below it (dh < 0): both ends move the same way
        dl_i, dh_i, d_i = dl[~regular], dh[~regular], d[~regular]
        above = dl_i > 0  # lo = m + s dl <= y <= m + s dh  <=>  d / dh <= s <= d / dl  (d > 0)
        a = torch.where(above, d_i / dh_i, d_i / dl_i)  # below: dh < 0, covered iff d/dl <= s <= d/dh (d < 0)
        b = torch.where(above, d_i / dl_i, d_i / dh_i)
        ok = torch.where(above, d_i > 0, d_i < 0)
        start.append(a[ok])
        stop.append(b[ok])
    reg, s1, s2 = (torch.sort(torch.cat(v)).values for v in (monotone, start, stop))
    total = sum(int(y.numel()) for _, y in cases)
    candidates = torch.unique(torch.cat([reg, s1]))
    candidates = candidates[torch.isfinite(candidates) & (candidates > 0)]  # inflation factors are positive
    covered = (torch.searchsorted(reg, candidates, right=True) + torch.searchsorted(s1, candidates, right=True)
               - torch.searchsorted(s2, candidates, right=False))
    reach = torch.nonzero(covered >= level * total)
    if reach.numel() == 0:
        best = int(covered.max()) / total if covered.numel() else 0.0
        raise ValueError(f"no inflation factor covers {level:g} of the points (at most {best:.3f}): too many "
                         "points lie where the ensemble has no spread")
    return float(candidates[int(reach[0])])
