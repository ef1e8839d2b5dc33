"""Post-hoc spread inflation (sciddm.uq.inflate_spread / fit_spread_inflation).

Synthetic Gaussian case with a closed form: the predictive distribution of each point is
``N(mu, sigma^2)``, the truth ``y = mu + sigma z`` and the ``N`` members ``mu + tau xi_i`` are
under-dispersed (``tau < sigma``). Inflating about the ensemble mean ``m`` by ``s``:
``m - y ~ N(0, A)`` with ``A = sigma^2 + tau^2 / N`` and the deviations ``x_i - m`` have variance
``tau^2 (N - 1) / N``, independent of ``m``. Hence

- spread-skill = 1  <=>  ``s^2 = A N / ((N + 1) tau^2)``;
- the expected fair CRPS ``sqrt(2/pi) [sqrt(A + s^2 q) - s tau / sqrt(2)]`` (``q = tau^2 (N-1)/N``)
  is minimal at ``s^2 = A N^2 / (tau^2 (N - 1)(N - 2))``.
"""

from __future__ import annotations

import math

import pytest
import torch

from sciddm.uq import crps, fit_spread_inflation, inflate_spread, interval_coverage, quantiles, spread_skill_ratio

SIGMA, TAU = 1.0, 0.5


def gaussian_case(points: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(points, generator=g, dtype=torch.float64)
    truth = mu + SIGMA * torch.randn(points, generator=g, dtype=torch.float64)
    ens = mu + TAU * torch.randn(n, points, generator=g, dtype=torch.float64)
    return ens, truth


def test_inflate_spread_keeps_mean_and_scales_deviations() -> None:
    ens, _ = gaussian_case(50, 6, 0)
    out = inflate_spread(ens, 2.5)
    torch.testing.assert_close(out.mean(0), ens.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.std(0), 2.5 * ens.std(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(inflate_spread(ens, 1.0), ens, rtol=0, atol=1e-12)


def test_spread_skill_fit_is_exact_on_its_own_cases() -> None:
    """Inflation leaves the mean alone, so the fitted factor makes the ratio exactly 1 (identity)."""
    ens, truth = gaussian_case(300, 9, 1)
    s = fit_spread_inflation(ens, truth)
    assert float(spread_skill_ratio(inflate_spread(ens, s), truth)) == pytest.approx(1.0, abs=1e-12)
    # and it is 1 / (raw ratio) for a single case
    assert s == pytest.approx(1.0 / float(spread_skill_ratio(ens, truth)), rel=1e-12)


def test_spread_skill_fit_matches_closed_form() -> None:
    points, n = 20000, 8
    ens, truth = gaussian_case(points, n, 2)
    expected = math.sqrt((SIGMA**2 + TAU**2 / n) * n / ((n + 1) * TAU**2))
    # delta method: relative sd of s is sqrt(2/P + 2/((N-1)P)) / 2 (MSE and mean-variance estimates)
    se = 0.5 * math.sqrt(2 / points * (1 + 1 / (n - 1)))
    s = fit_spread_inflation(ens, truth)
    assert abs(s / expected - 1) < 4 * se


def test_pooled_cases_equal_concatenated_points() -> None:
    """Several cases with equal N pool exactly as one case holding all their points."""
    ens, truth = gaussian_case(400, 5, 3)
    parts = [ens[:, :100], ens[:, 100:250], ens[:, 250:]]
    truths = [truth[:100], truth[100:250], truth[250:]]
    for objective in ("spread_skill", "crps"):
        assert fit_spread_inflation(parts, truths, objective) == pytest.approx(
            fit_spread_inflation(ens, truth, objective), rel=1e-12)


def test_crps_fit_is_the_exact_minimiser() -> None:
    """No factor on a fine grid around it gives a lower mean fair CRPS (piecewise-linear objective)."""
    ens, truth = gaussian_case(200, 7, 4)
    s = fit_spread_inflation(ens, truth, "crps")
    best = float(crps(inflate_spread(ens, s), truth))
    for f in torch.linspace(0.5 * s, 1.5 * s, 201).tolist():
        assert float(crps(inflate_spread(ens, f), truth)) >= best - 1e-12


def test_crps_fit_matches_closed_form() -> None:
    """Mean of independent replicate fits against the closed form, within 4 Monte-Carlo SEs."""
    points, n, reps = 5000, 8, 8
    expected = math.sqrt((SIGMA**2 + TAU**2 / n) * n**2 / (TAU**2 * (n - 1) * (n - 2)))
    fits = torch.tensor([fit_spread_inflation(*gaussian_case(points, n, 10 + r), "crps") for r in range(reps)])
    se = float(fits.std()) / math.sqrt(reps)
    assert abs(float(fits.mean()) - expected) < 4 * se
    # the CRPS optimum is not the spread-skill one for finite N: both closed forms are distinct
    assert expected > math.sqrt((SIGMA**2 + TAU**2 / n) * n / ((n + 1) * TAU**2)) * 1.05


def test_calibration_errors() -> None:
    ens, truth = gaussian_case(20, 4, 5)
    with pytest.raises(ValueError, match="positive"):
        inflate_spread(ens, 0.0)
    with pytest.raises(ValueError, match="objective"):
        fit_spread_inflation(ens, truth, "mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="as many truths"):
        fit_spread_inflation([ens, ens], [truth])
    with pytest.raises(ValueError, match="zero spread"):
        fit_spread_inflation(ens[:1].expand(4, -1).clone(), truth)
    with pytest.raises(ValueError, match="truth"):
        fit_spread_inflation(ens, truth[:10])
    with pytest.raises(ValueError, match="N >= 3"):
        fit_spread_inflation(ens[:2], truth)


def _covered(ens: torch.Tensor, truth: torch.Tensor, s: float, level: float) -> float:
    return float(interval_coverage(inflate_spread(ens, s), truth, level))


@pytest.mark.parametrize("n,level", [(19, 0.9), (8, 0.8), (5, 0.2)])
def test_coverage_fit_is_the_smallest_factor_reaching_the_level(n: int, level: float) -> None:
    """Checked with interval_coverage itself, just above and just below the fitted factor. At
    5 members and 20 % the Weibull interval can miss the mean (both ends move the same way with s),
    the case the fit handles apart."""
    ens, truth = gaussian_case(3000, n, 20 + n)
    if n == 5:  # skewed members: some intervals lie wholly on one side of the mean
        ens = ens.exp()
        truth = truth.exp()
        lo, hi = quantiles(ens, [0.4, 0.6], "weibull")
        assert bool(((lo > ens.mean(0)) | (hi < ens.mean(0))).any())
    s = fit_spread_inflation(ens, truth, "coverage", level=level)
    assert _covered(ens, truth, s * (1 + 1e-9), level) >= level
    assert _covered(ens, truth, s * (1 - 1e-9), level) < level


def test_coverage_fit_calibrates_held_out_cases() -> None:
    """Fitted on one set of under-dispersed cases, applied to independent ones: 90 % within the
    binomial error of both sets (the raw intervals cover far less)."""
    points, n = 20000, 19
    ens, truth = gaussian_case(points, n, 30)
    s = fit_spread_inflation(ens, truth, "coverage")
    test_ens, test_truth = gaussian_case(points, n, 31)
    se = math.sqrt(2 * 0.9 * 0.1 / points)
    assert abs(_covered(test_ens, test_truth, s, 0.9) - 0.9) < 4 * se
    assert _covered(test_ens, test_truth, 1.0, 0.9) < 0.9 - 20 * se
    # at 19 members the 90 % interval runs from the smallest to the largest member: exchangeable
    # members (s near SIGMA / TAU up to the mean's own noise) are what covers 90 %
    assert 1.7 < s < 2.3


def test_coverage_fit_errors() -> None:
    ens, truth = gaussian_case(20, 4, 5)
    with pytest.raises(ValueError, match="level"):
        fit_spread_inflation(ens, truth, "coverage", level=1.0)
    flat = ens[:1].expand(4, -1).clone()  # no spread: no factor moves the intervals off the mean
    with pytest.raises(ValueError, match="no inflation factor covers"):
        fit_spread_inflation(flat, truth, "coverage")
