"""Baseline detectors against exact cases: subspace distance, AR coefficients, exact interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from sciddm.datasets.timeseries import SyntheticConfig, fit_normalizer, generate_timeseries
from sciddm.domains.timeseries import (
    DETECTORS,
    REFERENCE_DETECTORS,
    ForecastDetector,
    GaussianImputationDetector,
    InterpolationDetector,
    IsolationForestDetector,
    PCADetector,
    auroc,
)


def test_pca_score_is_the_squared_distance_to_the_train_subspace() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    train = rng.normal(size=(300, 2)) * [3.0, 1.0] @ basis[:, :2].T + 2.0 * basis[:, 0]  # rank 2 + a mean in the plane
    detector = PCADetector(variance=0.95).fit(train)
    inside = rng.normal(size=(4, 2)) @ basis[:, :2].T
    outside = rng.normal(size=(4, 3)) @ basis[:, 2:].T
    assert np.allclose(detector.score(inside + outside), (outside**2).sum(1), atol=1e-9)


def test_forecast_recovers_the_ar_coefficient_and_finds_a_spike() -> None:
    rng = np.random.default_rng(0)
    n, phi = 4000, 0.8
    x = np.zeros(n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal()
    detector = ForecastDetector(lags=1, alpha=1e-6).fit(x[:, None])
    se = np.sqrt((1 - phi**2) / n)  # asymptotic standard error of the least-squares AR(1) estimate
    assert abs(np.ravel(detector.ridge.coef_)[0] - phi) < 4 * se
    test = x[:500, None].copy()
    test[250] += 8.0
    assert np.argmax(detector.score(test)) == 250


def test_interpolation_is_exact_on_a_linear_series_and_flags_a_spike() -> None:
    t = np.arange(60, dtype=float)
    x = np.stack([2.0 * t + 1.0, -0.5 * t], axis=1)
    for block in (1, 4):
        imputed = InterpolationDetector(block).impute(x)
        inner = slice(block, 60 - block)  # np.interp holds end values beyond the first/last visible step
        assert np.allclose(imputed[inner], x[inner])
    rng = np.random.default_rng(0)
    noisy = x + rng.normal(scale=0.1, size=x.shape)
    detector = InterpolationDetector(block=1).fit(noisy)
    spiked = noisy.copy()
    spiked[30, 0] += 5.0
    assert np.argmax(detector.score(spiked)) == 30


def test_isolation_forest_step_score_is_the_mean_of_covering_windows() -> None:
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(400, 3)), rng.normal(size=(50, 3))
    one = IsolationForestDetector(window=1, seed=0).fit(train)
    assert np.allclose(one.score(test), -one.forest.score_samples(test))
    five = IsolationForestDetector(window=5, seed=0).fit(train)
    windows = np.stack([test[s:s + 5].reshape(-1) for s in range(46)])
    w = -five.forest.score_samples(windows)
    assert np.isclose(five.score(test)[7], w[3:8].mean()) and np.isclose(five.score(test)[0], w[0])
    again = IsolationForestDetector(window=5, seed=0).fit(train)
    assert np.array_equal(again.score(test), five.score(test))  # seeded


@pytest.mark.parametrize("name", sorted(DETECTORS) + sorted(REFERENCE_DETECTORS))
def test_detectors_refuse_bad_input(name: str) -> None:
    detector = {**DETECTORS, **REFERENCE_DETECTORS}[name]()
    with pytest.raises(ValueError, match="not fitted"):
        detector.score(np.zeros((100, 2)))
    detector.fit(np.random.default_rng(0).normal(size=(200, 2)))
    with pytest.raises(ValueError, match="fitted on 2 channels"):
        detector.score(np.zeros((100, 3)))
    bad = np.zeros((100, 2))
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        detector.score(bad)


def test_spikes_are_found_on_the_synthetic_benchmark() -> None:
    cfg = SyntheticConfig(channels=10, train_length=1000, val_length=400, test_length=800, kinds=("spike",), anomalies_per_kind=6)
    s = generate_timeseries(cfg, 0)
    norm = fit_normalizer(s.train)
    detector = ForecastDetector().fit(norm.transform(s.train))
    # a 4-6 std jump on one channel against a one-step forecast: far above chance (0.5)
    assert auroc(s.test_labels, detector.score(norm.transform(s.test))) > 0.9


def test_gaussian_imputation_is_the_conditional_mean_and_flags_a_broken_relation() -> None:
    rng = np.random.default_rng(0)
    n = 6000
    # channel 1 copies channel 0 (an AR(1) factor) up to small noise; channel 2 is independent noise
    f = np.zeros(n)
    for t in range(1, n):
        f[t] = 0.9 * f[t - 1] + np.sqrt(1 - 0.81) * rng.normal()
    x = np.stack([f + 0.05 * rng.normal(size=n), f + 0.05 * rng.normal(size=n), rng.normal(size=n)], axis=1)
    train, test = x[:5000], x[5000:].copy()
    det = GaussianImputationDetector(window=8, masks="random", seed=3).fit(train)
    # the imputation of one window equals mu_h + S_ho S_oo^-1 (x_o - mu_o) computed directly
    observed, hidden, gain = det.gains[0]
    w = test[:8].T.reshape(-1)
    direct = det.mean[hidden] + np.linalg.solve(det.covariance_[np.ix_(observed, observed)],
                                                det.covariance_[np.ix_(observed, hidden)]).T @ (w[observed] - det.mean[observed])
    imputed = det.impute(test[:16])[:8].T.reshape(-1)
    assert np.allclose(imputed[hidden], direct, atol=1e-10)
    # a shift of channel 1 that stays inside its marginal range breaks its relation to channel 0:
    # the imputation (from channel 0) misses it, so its steps score highest
    test[300:310, 1] -= 1.5 * np.sign(test[300:310, 1] + 1e-9)
    score = det.score(test)
    labels = np.zeros(len(test), int)
    labels[300:310] = 1
    assert auroc(labels, score) > 0.95


@pytest.mark.parametrize("args, flag", [
    (["--every", "0"], "--every"), (["--steps", "0"], "--every"),  # settings that would evaluate nothing
    (["--steps", "10", "--decay-steps", "0", "--every", "20"], "--every"),
    (["--train-length", "40"], "--train-length"),  # a train split shorter than two windows
    (["--net", "huge"], "--net"),  # an unknown network size
    (["--seed", "-1"], "--seed"),
])
def test_learning_curve_benchmark_refuses_bad_settings(args, flag, capsys) -> None:
    from benchmarks.timeseries_learning_curve import main

    with pytest.raises(SystemExit):
        main(args)
    assert flag in capsys.readouterr().err


def test_gaussian_imputation_shrinkage_spans_the_sample_covariance_to_the_mean_imputer() -> None:
    from numpy.lib.stride_tricks import sliding_window_view

    rng = np.random.default_rng(1)
    f = np.cumsum(rng.normal(size=800)) * 0.1
    x = np.stack([f + 0.1 * rng.normal(size=800), f + 0.1 * rng.normal(size=800)], axis=1)
    train, test = x[:600], x[600:]
    flat = sliding_window_view(train, 4, axis=0).reshape(-1, 8)
    exact = GaussianImputationDetector(window=4, shrinkage=0.0).fit(train)
    assert np.allclose(exact.covariance_, np.cov(flat, rowvar=False, bias=True), atol=1e-12)
    # full shrinkage: a scaled identity, nothing observed informs a hidden entry: the train mean is imputed
    blind = GaussianImputationDetector(window=4, shrinkage=1.0).fit(train)
    assert np.allclose(blind.impute(test)[:4], flat.mean(axis=0).reshape(2, 4).T, atol=1e-12)
    # and it imputes worse than the exact covariance, which uses the other channel
    assert np.abs(blind.impute(test) - test).mean() > 3 * np.abs(exact.impute(test) - test).mean()


@pytest.mark.parametrize("shrinkage", [-0.1, 1.5])
def test_gaussian_imputation_refuses_shrinkage_outside_the_unit_interval(shrinkage: float) -> None:
    with pytest.raises(ValueError, match="shrinkage"):
        GaussianImputationDetector(shrinkage=shrinkage)


def test_imputer_quality_goal_mae_interpolates_the_first_crossing() -> None:
    from benchmarks.timeseries_imputer_quality import goal_mae

    rows = [{"shrinkage": s, "mae": m, "f1": f, "seed": seed}
            for seed in (0, 1) for s, m, f in (("a", 0.1, 0.9), ("b", 0.2, 0.7), ("c", 0.3, 0.8), ("d", 0.4, 0.5))]
    assert goal_mae(rows, 0.8) == pytest.approx(0.15)  # between 0.1 (0.9) and 0.2 (0.7), not the later 0.3
    assert goal_mae(rows, 0.95) is None  # even the best imputer misses
    assert goal_mae(rows, 0.4) == pytest.approx(0.4)  # none misses: the largest swept error


def test_imputer_quality_benchmark_refuses_repeated_seeds(capsys) -> None:
    from benchmarks.timeseries_imputer_quality import main

    with pytest.raises(SystemExit):
        main(["--seeds", "0", "0"])
    assert "--seeds" in capsys.readouterr().err


def test_gaussian_conditional_mean_matches_the_detectors_own_imputation_and_checks_its_input() -> None:
    rng = np.random.default_rng(2)
    f = np.cumsum(rng.normal(size=700)) * 0.1
    x = np.stack([f + 0.1 * rng.normal(size=700), -f + 0.1 * rng.normal(size=700), rng.normal(size=700)], axis=1)
    det = GaussianImputationDetector(window=6, masks="random", seed=5)
    with pytest.raises(ValueError, match="not fitted"):
        det.conditional_mean(np.zeros((1, 3, 6)), np.ones((1, 3, 6), bool))
    det.fit(x[:600])
    test = x[600:612]  # two whole windows
    windows = np.stack([test[:6].T, test[6:].T])
    imputed = det.impute(test)
    for observed, hidden, _ in det.gains:  # the detector's pair: each mask's hidden entries agree
        m = np.broadcast_to(observed.reshape(3, 6), windows.shape)
        got = det.conditional_mean(windows, m)
        want = np.stack([imputed[:6].T, imputed[6:].T])
        assert np.allclose(got[~m], want[~m], atol=1e-10)
        assert np.array_equal(got[m], windows[m])  # observed entries unchanged
    with pytest.raises(ValueError, match=r"\(B, 3, 6\)"):
        det.conditional_mean(windows[:, :2], np.ones((2, 2, 6), bool))


def test_learning_curve_runs_saves_and_its_network_reloads_for_rescoring(tmp_path) -> None:
    import json

    import torch

    from benchmarks.timeseries_learning_curve import main
    from benchmarks.timeseries_rescore import load_network

    out, saved = tmp_path / "curve.json", tmp_path / "net.pt"
    main(["--steps", "2", "--decay-steps", "0", "--every", "2", "--save", str(saved), "--out", str(out)])
    result = json.loads(out.read_text())
    (row,) = result["curve"]
    assert row["step"] == 2 and {"one_step_mae", "train_one_step_mae", "ddim10_median_mae"} <= set(row)
    assert result["gaussian_mae"] < result["interpolation_mae"]  # the exact conditional mean beats interpolation
    module, setup = load_network(saved)
    assert setup["step"] == 2 and setup["seed"] == 0 and setup["model"] == "csdi"
    state = torch.load(saved, weights_only=False)["state_dict"]
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())
    with pytest.raises(ValueError, match="not a network saved"):
        torch.save({"weights": 1}, tmp_path / "other.pt")
        load_network(tmp_path / "other.pt")


def test_rescore_refuses_missing_network_files(tmp_path, capsys) -> None:
    from benchmarks.timeseries_rescore import main

    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent.pt")])
    assert "no such network file" in capsys.readouterr().err


def test_gaussian_imputation_without_per_channel_scaling_scores_the_raw_squared_residual() -> None:
    rng = np.random.default_rng(4)
    f = np.cumsum(rng.normal(size=500)) * 0.1
    x = np.stack([f + 0.1 * rng.normal(size=500), 5 * f + rng.normal(size=500)], axis=1)
    raw = GaussianImputationDetector(window=4, per_channel=False).fit(x[:400])
    scaled = GaussianImputationDetector(window=4).fit(x[:400])
    test = x[400:]
    assert np.allclose(raw.score(test), ((test - raw.impute(test)) ** 2).mean(axis=1), atol=1e-12)
    assert np.allclose(scaled.score(test), (((test - scaled.impute(test)) / scaled.residual_std) ** 2).mean(axis=1))
    assert not np.allclose(raw.score(test), scaled.score(test))
