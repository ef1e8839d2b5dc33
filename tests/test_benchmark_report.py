"""benchmarks/report.py names, for every result file, the script that wrote it."""

from pathlib import Path

from benchmarks.report import script_of

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_script_of_variants() -> None:
    assert script_of("pde") == "pde"
    assert script_of("pde_darcy64") == "pde"  # a variant of the pde benchmark, not a module of its own
    assert script_of("pde_solvers") == "pde_solvers"  # the longest module prefix wins
    assert script_of("atmos_sr64_prior64_edm_zeta") == "atmos_sr"
    assert script_of("atmos_spectrum_nx128_ny128_dt450p0") == "atmos_spectrum"
    assert script_of("few_step_atmos64") == "few_step_domains"  # written under another name
    assert script_of("few_step_corrdiff64") == "few_step_domains"
    assert script_of("timeseries_learning_curve_imdiffusion") == "timeseries_learning_curve"


def test_every_recorded_result_names_an_existing_script() -> None:
    for f in (BENCHMARKS / "results").glob("*.json"):
        assert (BENCHMARKS / f"{script_of(f.stem)}.py").is_file(), f.name
