"""benchmarks/atmos_sr.py refuses a prior config that does not fit the asked resolution, before training."""

from __future__ import annotations

import pytest

from benchmarks.atmos_sr import main


def test_prior_of_another_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="not a 64x64 config"):
        main(["--resolution", "64", "--prior", "quick32"])
    with pytest.raises(ValueError, match="not a 32x32 config"):
        main(["--resolution", "32", "--prior", "prior64_edm"])


def test_unknown_prior_config_is_refused() -> None:
    with pytest.raises(ValueError, match="no experiments/atmos/prior64_nope.yaml"):
        main(["--resolution", "64", "--prior", "prior64_nope"])
