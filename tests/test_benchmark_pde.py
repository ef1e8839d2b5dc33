"""benchmarks/pde.py: result names per grid and a clear refusal of a grid without a prior config."""

import pytest
import torch

from benchmarks import pde


def test_result_names() -> None:
    assert pde._out("darcy").name == "pde.json"  # the historical 32x32 Darcy file
    assert pde._out("poisson").name == "pde_poisson.json"
    assert pde._out("darcy", 64).name == "pde_darcy64.json"


def test_missing_prior_config_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        pde.main(["--pde", "poisson", "--resolution", "64"])
    assert info.value.code == 2
    assert "no prior config experiments/pde/poisson64.yaml" in capsys.readouterr().err


def test_navier_stokes_needs_the_methods_without_a_prior(capsys: pytest.CaptureFixture[str]) -> None:
    """No joint prior (no residual): the default methods are refused with the ones that work, and a
    conditional run gets past the prior check to the missing model."""
    with pytest.raises(SystemExit):
        pde.main(["--pde", "navier_stokes"])
    assert "(Navier-Stokes: --methods conditional,conditional_mu,fno,unet)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        pde.main(["--pde", "navier_stokes", "--methods", "conditional", "--conditional-model", "ns_missing"])
    assert "no model under" in capsys.readouterr().err


def test_metrics_of_a_pde_without_residual_leave_it_out() -> None:
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(2, 8, 8, generator=g)
    samples = truth + 0.5 * torch.randn(19, 2, 8, 8, generator=g)
    row = pde._metrics(samples, truth, "forward", "navier_stokes")
    assert "residual_rms" not in row and "a_error_rate" not in row
    assert row["u_rel_l2"] == pytest.approx(float((samples.mean(0)[1] - truth[1]).norm() / truth[1].norm()))
    assert "residual_rms" in pde._metrics(samples.abs() + 3, truth.abs() + 3, "forward", "darcy")


@pytest.mark.parametrize("args, match", [(["--priors", "darcy128"], "unknown prior"), (["--samples", "1"], ">= 2")])
def test_prior_check_refuses_unknown_priors_and_single_samples(args, match, capsys) -> None:
    from benchmarks.pde_prior_check import main

    with pytest.raises(SystemExit):
        main(args)
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [
    (["--prior", "darcy128_huge"], "no prior config experiments/pde/darcy128_huge.yaml"),
    (["--prior", "darcy64_large"], "prior darcy64_large is trained on darcy at 64x64"),  # default --resolution 32
    (["--prior", "poisson32", "--pde", "darcy"], "prior poisson32 is trained on poisson at 32x32"),
    (["--density", "0"], "--density 0.0: a fraction in (0, 1]"),
    (["--density", "1.5"], "--density 1.5: a fraction in (0, 1]"),
])
def test_prior_of_another_problem_is_refused(args, match, capsys) -> None:
    """--prior names a config; one of another PDE or grid is refused before any checkpoint is loaded."""
    with pytest.raises(SystemExit) as info:
        pde.main(args)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_prior_check_keeps_the_other_priors_rows(tmp_path, monkeypatch) -> None:
    """A run over some priors adds its rows to the record and keeps the rows of the priors it did not run."""
    import json

    from benchmarks import pde_prior_check

    out = tmp_path / "check.json"
    out.write_text(json.dumps({"priors": {"darcy32": {"self_mean": 0.5}, "darcy64": {"self_mean": 0.7}}}))
    monkeypatch.setattr(pde_prior_check, "check", lambda name, samples, seed, device: {"self_mean": 0.1})
    result = pde_prior_check.main(["--priors", "darcy64", "--out", str(out)])
    stored = json.loads(out.read_text())["priors"]
    assert stored["darcy32"] == {"self_mean": 0.5}  # not re-run: kept as it was
    assert stored["darcy64"]["self_mean"] == 0.1 and stored["darcy64"]["run"]["device"] == "cpu"  # replaced
    assert result["priors"].keys() == stored.keys()


@pytest.mark.parametrize("device", ["gpu0", "cuda:7"])
def test_a_device_this_machine_lacks_is_refused_before_loading(device, capsys) -> None:
    import torch

    from benchmarks.common import usable_device
    from benchmarks.pde_prior_check import main as prior_check

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    for run in (pde.main, prior_check):
        with pytest.raises(SystemExit) as info:
            run(["--device", device])
        assert info.value.code == 2 and f"--device {device}" in capsys.readouterr().err.replace("'", "")
    assert usable_device("cpu") == torch.device("cpu")


def test_diffusionpde_row_names_give_their_weights() -> None:
    from sciddm.domains.pde.guidance import PAPER_WEIGHTS

    w = PAPER_WEIGHTS["poisson"]
    assert pde.diffusionpde_weights("poisson", "diffusionpde", 50) == w
    assert pde.diffusionpde_weights("poisson", "diffusionpde_nopde", 50).zeta_pde == 0.0
    assert pde.diffusionpde_weights("poisson", "diffusionpde_scaled", 50).zeta_obs_u == pytest.approx(40 * w.zeta_obs_u)
    x10 = pde.diffusionpde_weights("poisson", "diffusionpde_x10", 50)
    assert (x10.zeta_obs_a, x10.zeta_obs_u, x10.zeta_pde) == pytest.approx((10 * w.zeta_obs_a, 10 * w.zeta_obs_u, 10 * w.zeta_pde))


@pytest.mark.parametrize("method", ["diffusionpde_x0", "diffusionpde_x-3", "diffusionpde_xten", "diffusionpde_fast", "dsp"])
def test_unknown_method_is_refused_before_loading(method, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        pde.main(["--pde", "poisson", "--methods", method])
    assert info.value.code == 2
    assert "unknown" in capsys.readouterr().err


def test_a_conditional_model_that_is_not_trained_is_refused_with_the_command_to_train_it(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        pde.main(["--pde", "poisson", "--methods", "unet,conditional", "--conditional-model", "poisson32_cond_missing"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "no model under" in err and "experiments/pde/poisson32_cond_missing.yaml" in err


def test_a_regressor_training_store_that_does_not_exist_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        pde.main(["--pde", "poisson", "--methods", "unet", "--baseline-data", "poisson_32_missing"])
    assert info.value.code == 2
    assert "no store" in capsys.readouterr().err


def test_only_the_samplers_of_the_joint_prior_need_it() -> None:
    assert not pde.needs_prior(["conditional"]) and not pde.needs_prior(["conditional", "unet", "fno"])
    assert pde.needs_prior(["conditional", "diffusionpde"]) and pde.needs_prior(["tds", "unet"])
    assert not pde.needs_prior(["conditional_mu", "unet"]) and pde.needs_prior(["conditional_mu", "dps"])
    assert pde.needs_prior(["unet"])  # regressors alone: normalised with the prior's statistics


@pytest.mark.parametrize("value", ["0", "1.5"])
def test_a_baseline_density_outside_the_unit_interval_is_refused(value, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        pde.main(["--baseline-density", value])
    assert info.value.code == 2
    assert f"--baseline-density {float(value)}: a fraction in (0, 1]" in capsys.readouterr().err


def test_append_keeps_the_rows_it_does_not_replace_and_the_runs_they_come_from() -> None:
    first = {"date": "2026-01-01"}
    old = {"machine": {"date": "2026-02-01"}, "earlier_runs": [first],
           "rows": [{"case": c, "problem": p, "method": m} for c in range(3) for p in ("forward", "inverse")
                    for m in ("unet", "conditional")]}
    rows, earlier = pde.kept_rows(old, ["conditional"], ["forward"], 2)
    assert {"case": 2, "problem": "forward", "method": "conditional"} in rows  # beyond this run's cases
    assert not any(r["method"] == "conditional" and r["problem"] == "forward" and r["case"] < 2 for r in rows)
    assert len(rows) == 12 - 2
    assert earlier == [first, {"date": "2026-02-01"}]


def test_maps_of_the_conditional_model(tmp_path, monkeypatch) -> None:
    """Without DiffusionPDE among the methods the maps are the conditional model's, one PNG a problem."""
    import torch

    from sciddm.domains.pde import FieldStats
    from sciddm.domains.pde.conditional import ConditionalPDEModule
    from sciddm.nets import UNetDenoiserNet
    from sciddm.process import VE

    def tiny(in_ch: int, cond: int = 0, out: int | None = None) -> UNetDenoiserNet:
        return UNetDenoiserNet(2, in_ch, channels=[8, 8], attention_levels=[False, False], num_res_blocks=1,
                               norm_num_groups=4, cond_channels=cond, out_channels=out)

    monkeypatch.setattr(pde, "RESULTS", tmp_path)
    m = ConditionalPDEModule(tiny(2, cond=4), tiny(4, out=2), VE(sigma_max=80.0), density=0.05, prediction="x0",
                             preconditioning="edm", sample_solver="heun", sample_steps=4, data_shape=[2, 16, 16])
    truth = torch.stack([torch.full((16, 16), 12.0), torch.linspace(0, 0.02, 256).view(16, 16)]).double()
    pde.plot_maps(m, FieldStats(mean=(7.0, 0.01), std=(4.0, 0.005)), truth, "darcy", ["forward", "inverse"],
                  members=3, steps=4, tag="cond_test", conditional=True)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["pde_cond_test_forward.png", "pde_cond_test_inverse.png"]


def test_a_conditional_checkpoint_path_needs_its_run_normalisation(tmp_path, capsys) -> None:
    ckpt = tmp_path / "run" / "checkpoints" / "step=500.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    for path in (ckpt, tmp_path / "missing.ckpt"):  # no normalization.json above it; no file at all
        with pytest.raises(SystemExit) as info:
            pde.main(["--methods", "conditional", "--conditional-model", str(path)])
        assert info.value.code == 2
        assert "no normalization.json in a directory above it" in capsys.readouterr().err
