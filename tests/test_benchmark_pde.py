"""benchmarks/pde.py: result names per grid and a clear refusal of a grid without a prior config."""

import pytest

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


@pytest.mark.parametrize("args, match", [(["--priors", "darcy128"], "unknown prior"), (["--samples", "1"], ">= 2")])
def test_prior_check_refuses_unknown_priors_and_single_samples(args, match, capsys) -> None:
    from benchmarks.pde_prior_check import main

    with pytest.raises(SystemExit):
        main(args)
    assert match in capsys.readouterr().err
