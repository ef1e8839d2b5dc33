"""The exact Gaussian oracle of the linear PDEs: the generator's pairs exactly, a posterior that is
the Kalman step (it keeps the PDE, reproduces the observations, and its variance is the error's)."""

import pytest
import torch

from sciddm.datasets.pde.elliptic import solve_elliptic
from sciddm.datasets.pde.generate import DEFAULT_OPTIONS, _draw, _helmholtz, _poisson
from sciddm.datasets.pde.grf import neumann_variances
from sciddm.domains.pde.oracle import LinearPDEOracle, exact_stats, joint_factor
from sciddm.domains.pde.operators import observation_mask, observe
from sciddm.domains.pde.residuals import pde_residual

PAIRS = {"poisson": _poisson, "helmholtz": _helmholtz}


@pytest.mark.parametrize("pde", ["poisson", "helmholtz"])
def test_factor_reproduces_the_generators_pairs(pde: str) -> None:
    """The same normal draws through the factor give the data generator's pairs to round-off."""
    n, o = 16, DEFAULT_OPTIONS[pde]
    a, u = PAIRS[pde](o, n, _draw(pde, o, n, 5, torch.Generator().manual_seed(3)))
    xi = torch.randn(5, n, n, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    k, l = torch.nonzero(neumann_variances(n) > 0, as_tuple=True)
    pairs = torch.einsum("br,rcij->bcij", xi[:, k, l], joint_factor(pde, n))
    assert torch.allclose(pairs[:, 0], a, rtol=0, atol=1e-12 * a.abs().max())
    assert torch.allclose(pairs[:, 1], u, rtol=0, atol=1e-12 * u.abs().max())


def test_exact_stats_are_the_channel_scales_of_many_pairs() -> None:
    n, o = 16, DEFAULT_OPTIONS["poisson"]
    a, u = _poisson(o, n, _draw("poisson", o, n, 3000, torch.Generator().manual_seed(0)))
    stats = exact_stats(joint_factor("poisson", n))
    assert stats.std[0] == pytest.approx(float(a.std()), rel=0.03)
    assert stats.std[1] == pytest.approx(float(u.std()), rel=0.05)


@pytest.mark.parametrize("pde", ["poisson", "helmholtz"])
def test_prior_draws_solve_the_pde(pde: str) -> None:
    draws = LinearPDEOracle(pde, 16).sample(4, generator=torch.Generator().manual_seed(0))
    r = pde_residual(pde, draws[:, 0], draws[:, 1])
    # round-off of the eigen-decomposed covariance, times the Laplacian's 4 / h^2 ~ 900; a wrong
    # factor (another mode order, a transposed basis) leaves residuals of the size of a itself
    assert float(r.abs().max()) < 1e-4 * float(draws[:, 0].abs().max())


def _observation(oracle: LinearPDEOracle, fields: torch.Tensor, observed: tuple[str, ...], seed: int = 0):
    mask = observation_mask(oracle.n, observed, 0.08, generator=torch.Generator().manual_seed(seed))
    return observe(fields, mask)


@pytest.mark.parametrize("observed", [("a",), ("u",)])
def test_posterior_mean_keeps_the_pde_and_the_observations(observed) -> None:
    oracle = LinearPDEOracle("helmholtz", 16)
    truth = oracle.sample(1, generator=torch.Generator().manual_seed(1))[0]
    obs = _observation(oracle, truth, observed)
    post = oracle.posterior(obs, sigma_y=1e-6)
    mean = post.mean
    scale = torch.tensor(oracle.stats.std, dtype=torch.float64).view(2, 1, 1)
    assert float(((mean - truth) * obs.mask / scale).abs().max()) < 1e-4  # the observed values, within the noise
    assert float((post.std * obs.mask / scale).max()) < 1e-4  # ... and no spread left there
    solved = solve_elliptic(mean[0], DEFAULT_OPTIONS["helmholtz"]["k"])  # u of the mean coefficient
    assert torch.allclose(mean[1], solved, rtol=0, atol=1e-8 * float(scale[1]))
    # the observation informs: closer to the truth than the prior mean (zero) is
    wanted = 1 if observed == ("a",) else 0
    assert float((mean[wanted] - truth[wanted]).norm()) < 0.9 * float(truth[wanted].norm())


def test_posterior_variance_is_the_squared_error_of_its_mean() -> None:
    """Over truths drawn from the prior, with one observation pattern, the mean squared error of the
    posterior mean at each node is the posterior variance there (what calibration means)."""
    oracle = LinearPDEOracle("poisson", 16)
    truths = oracle.sample(400, generator=torch.Generator().manual_seed(2))
    mask = observation_mask(16, ("u",), 0.05, generator=torch.Generator().manual_seed(0))
    sq, var, covered = 0.0, None, []
    for t in truths:
        post = oracle.posterior(observe(t, mask))
        sq = sq + (post.mean[0] - t[0]) ** 2
        var = post.std[0] ** 2
        covered.append(post.coverage(t, 0))
    ratio = float((sq / len(truths)).sum() / var.sum())
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert sum(covered) / len(covered) == pytest.approx(0.90, abs=0.03)


def test_exact_denoiser_returns_the_pair_at_small_noise_and_the_mean_at_large() -> None:
    oracle = LinearPDEOracle("poisson", 16)
    x0 = oracle.stats.normalize(oracle.sample(2, generator=torch.Generator().manual_seed(4)))
    D = oracle.denoiser()
    small = D(x0 + 1e-4 * torch.randn_like(x0), torch.full((2,), 1e-4 / 80.0))
    assert float((small - x0).abs().max()) < 1e-2 * float(x0.abs().max())
    large = D(x0 + 1e4 * torch.randn_like(x0), torch.full((2,), 1e4 / 80.0))
    mean = oracle.stats.normalize(torch.zeros(2, 16, 16, dtype=torch.float64))
    assert float((large - mean).abs().max()) < 1e-2 * float(x0.abs().max())


@pytest.mark.parametrize("call, match", [
    (lambda: joint_factor("darcy", 16), "linear PDE with a Gaussian coefficient"),
    (lambda: joint_factor("poisson", 16, {"k": 2.0}), "unknown option"),
    (lambda: joint_factor("poisson", 2), "grid size >= 3"),
])
def test_bad_input_is_refused(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_posterior_refuses_another_grid_and_no_noise() -> None:
    oracle = LinearPDEOracle("poisson", 16)
    other = torch.zeros(2, 32, 32, dtype=torch.float64)
    with pytest.raises(ValueError, match="32x32 grid; the oracle on 16x16"):
        oracle.posterior(observe(other, observation_mask(32, ("u",), 0.05)))
    fields = torch.zeros(2, 16, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="sigma_y must be > 0"):
        oracle.posterior(observe(fields, observation_mask(16, ("u",), 0.05)), sigma_y=0.0)
    with pytest.raises(TypeError, match="FieldObservation"):
        oracle.posterior(fields)  # type: ignore[arg-type]


def test_benchmark_refuses_a_nonlinear_pde(capsys) -> None:
    from benchmarks.pde_oracle import main

    with pytest.raises(SystemExit) as info:
        main(["--pde", "darcy"])
    assert info.value.code == 2
    assert "the exact oracle covers poisson, helmholtz" in capsys.readouterr().err


def test_replot_swaps_in_the_current_trained_rows(tmp_path, monkeypatch) -> None:
    """--replot re-reads the trained rows (including the 199-Euler-step file) and re-summarises, without sampling."""
    import json

    from benchmarks import pde_oracle

    monkeypatch.setattr(pde_oracle, "RESULTS", tmp_path)
    row = {"pde": "poisson", "case": 0, "problem": "forward", "u_rel_l2": 0.2, "a_rel_l2": 0.3}
    result = {"pdes": ["poisson"], "cases": 1, "members": 4,
              "rows": [{**row, "method": "bayes"}, {**row, "method": "trained/unet", "u_rel_l2": 9.0}]}
    out = tmp_path / "oracle.json"
    out.write_text(json.dumps(result))
    (tmp_path / "pde_poisson.json").write_text(json.dumps({"rows": [
        {"case": 0, "problem": "forward", "method": "unet", "u_rel_l2": 0.4, "a_rel_l2": 0.5},
        {"case": 1, "problem": "forward", "method": "unet", "u_rel_l2": 7.0, "a_rel_l2": 7.0}]}))  # beyond --cases
    (tmp_path / "pde_poisson_euler199.json").write_text(json.dumps({"rows": [
        {"case": 0, "problem": "forward", "method": "diffusionpde_x3", "u_rel_l2": 0.25, "a_rel_l2": 0.35}]}))
    pde_oracle.main(["--replot", "--out", str(out)])
    pde_oracle.main(["--replot", "--out", str(out)])  # a second redraw replaces the trained rows, never adds them again
    summary = json.loads(out.read_text())["summary"]
    assert summary["poisson/forward/trained/unet"]["u_rel_l2"] == 0.4
    assert summary["poisson/forward/trained/diffusionpde_euler_x3"]["u_rel_l2"] == 0.25
    assert summary["poisson/forward/trained/unet"]["cases"] == 1
    (tmp_path / "pde_poisson32_long_euler199.json").write_text(json.dumps({"rows": [
        {"case": 0, "problem": "forward", "method": "diffusionpde", "u_rel_l2": 0.2, "a_rel_l2": 0.3}]}))
    pde_oracle.main(["--replot", "--out", str(out)])
    pde_oracle.main(["--replot", "--out", str(out)])
    summary = json.loads(out.read_text())["summary"]
    assert summary["poisson/forward/trained_long/diffusionpde_euler"]["cases"] == 1
    assert summary["poisson/forward/bayes"]["cases"] == 1
    assert (tmp_path / "oracle.png").is_file()


def test_replot_without_a_result_is_refused(tmp_path, capsys) -> None:
    from benchmarks.pde_oracle import main

    with pytest.raises(SystemExit) as info:
        main(["--replot", "--out", str(tmp_path / "none.json")])
    assert info.value.code == 2
    assert "no result" in capsys.readouterr().err


def test_few_step_mode_scales_the_push_to_the_full_runs_total(tmp_path, monkeypatch) -> None:
    """--few-step: at k calls the scaled row's weights are the full run's x3 times full_steps / k, and the
    rows carry the call counts of the sampler."""
    import json

    from benchmarks import pde_oracle

    monkeypatch.setattr(pde_oracle, "CACHE", tmp_path)
    out = tmp_path / "few.json"
    pde_oracle.main(["--few-step", "--pde", "poisson", "--cases", "1", "--members", "2", "--problems", "forward",
                     "--euler-steps", "8", "--threads", "1", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    full = [r for r in rows if r["method"] == "full"]
    assert [(r["weights"], r["nfe"]) for r in full] == [("diffusionpde_euler_x3", 8)]
    scaled = {r["nfe"]: r["weights"] for r in rows if r["method"] == "scaled"}
    assert scaled == {k: f"diffusionpde_euler_x{3 * 8 / k:g}" for k in (1, 2, 4, 8, 16, 64)}
    assert sorted(r["nfe"] for r in rows if r["method"] == "paper") == [1, 2, 4, 8, 16, 64]
    assert (tmp_path / "few.png").is_file()


@pytest.mark.parametrize("args, match", [(["--members", "1"], "--members 1: at least 2"),
                                         (["--euler-steps", "0"], "--euler-steps 0: at least 1"),
                                         (["--steps", "1"], "--steps 1: at least 2")])
def test_benchmark_refuses_too_few_members_or_steps(args, match, capsys) -> None:
    from benchmarks.pde_oracle import main

    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert match in capsys.readouterr().err
