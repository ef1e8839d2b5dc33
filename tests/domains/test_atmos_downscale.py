"""downscale end to end with an exact Gaussian-mixture prior: structure, statistics, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from sciddm import VP
from sciddm.analytic import GaussianMixture
from sciddm.datasets.atmosphere import Normalization
from sciddm.domains.atmos import coarse_grain, downscale

VARS = ["z250", "t500"]
STATS = Normalization(mean={"z250": 10000.0, "t500": 250.0}, std={"z250": 100.0, "t500": 5.0})
SHAPE = (2, 4, 4)


def oracle_prior() -> tuple:
    d = int(np.prod(SHAPE))
    g = torch.Generator().manual_seed(0)
    gmm = GaussianMixture(torch.tensor([0.5, 0.5]), torch.randn(2, d, generator=g), 0.5)
    process = VP()
    flat = gmm.denoiser(process)
    return (lambda x, t, **c: flat(x.reshape(x.shape[0], -1), t).reshape(x.shape)), process, SHAPE


def grid() -> xr.Dataset:
    lat = 40.0 + np.arange(4.0)
    lon = np.arange(4.0) * 2.0
    rng = np.random.default_rng(3)
    data = {v: (("lat", "lon"), STATS.mean[v] + STATS.std[v] * rng.standard_normal((4, 4)),
                {"units": u, "standard_name": s}) for v, u, s in
            (("z250", "m", "geopotential_height"), ("t500", "K", "air_temperature"))}
    return xr.Dataset(data, coords={"lat": lat, "lon": lon}).assign_coords(time=np.datetime64("2001-01-01", "ns"))


def stations() -> pd.DataFrame:
    return pd.DataFrame({"station_id": ["A", "B"], "lat": [40.5, 42.0], "lon": [1.0, 4.0],
                         "time": pd.Timestamp("2001-01-01"), "variable": ["t500", "z250"], "value": [251.0, 9990.0]})


def test_downscale_structure_statistics_and_files(tmp_path: Path) -> None:
    g = grid()
    out = tmp_path / "ens"
    ds = downscale(oracle_prior(), STATS, g, VARS, coarse=coarse_grain(g, 2), stations=stations(), num_members=4,
                   steps=8, seed=1, out=out, plot=True, truth=g)
    for v in VARS:
        assert ds[v].dims == ("member", "lat", "lon") and ds[v].shape == (4, 4, 4)
        m = ds[v].values.astype(np.float64)
        np.testing.assert_allclose(ds[f"{v}_mean"].values, m.mean(0), rtol=1e-6)
        np.testing.assert_allclose(ds[f"{v}_std"].values, m.std(0, ddof=1), rtol=1e-5)
        np.testing.assert_allclose(ds[f"{v}_quantile"].values, np.quantile(m, [0.05, 0.5, 0.95], axis=0), rtol=1e-6)
        assert ds[v].attrs["units"] == g[v].attrs["units"]
        assert ds[f"{v}_mean"].attrs["cell_methods"] == "member: mean"
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["modalities"] == "coarse,stations"
    assert ds.attrs["coarse_factor"] == 2 and ds.attrs["station_count"] == 2
    assert ds["time"].values == np.datetime64("2001-01-01", "ns")
    for path, engine in ((out.with_suffix(".nc"), "netcdf4"), (out.with_suffix(".zarr"), "zarr")):
        with xr.open_dataset(path, engine=engine) as back:
            xr.testing.assert_identical(back.load(), ds)
    assert (tmp_path / "ens_z250.png").stat().st_size > 0 and (tmp_path / "ens_spectra.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind
    # same seed, same ensemble
    again = downscale(oracle_prior(), STATS, g, VARS, coarse=coarse_grain(g, 2), stations=stations(), num_members=4,
                      steps=8, seed=1)
    np.testing.assert_array_equal(again["t500"].values, ds["t500"].values)


def test_downscale_bad_input() -> None:
    g = grid()
    with pytest.raises(ValueError, match="nothing to condition on"):
        downscale(oracle_prior(), STATS, g, VARS, num_members=2, steps=2)
    with pytest.raises(ValueError, match="prior models fields of shape"):
        downscale(oracle_prior(), STATS, g, ["z250"], coarse=coarse_grain(g, 2), num_members=2, steps=2)
    with pytest.raises(ValueError, match="num_members"):
        downscale(oracle_prior(), STATS, g, VARS, coarse=coarse_grain(g, 2), num_members=1, steps=2)


def test_downscale_calibration_inflates_about_the_mean() -> None:
    """``calibration=s`` is the raw ensemble (same seed) with deviations from the mean scaled by s."""
    g = grid()
    kw = dict(coarse=coarse_grain(g, 2), num_members=4, steps=6, seed=2)
    raw = downscale(oracle_prior(), STATS, g, VARS, **kw)
    cal = downscale(oracle_prior(), STATS, g, VARS, calibration=1.7, **kw)
    assert raw.attrs["calibration"] == 0.0 and cal.attrs["calibration"] == 1.7
    for v in VARS:
        np.testing.assert_allclose(cal[f"{v}_mean"].values, raw[f"{v}_mean"].values, rtol=1e-6)
        np.testing.assert_allclose(cal[f"{v}_std"].values, 1.7 * raw[f"{v}_std"].values, rtol=1e-4)
    with pytest.raises(ValueError, match="calibration"):
        downscale(oracle_prior(), STATS, g, VARS, calibration=-1.0, **kw)


def test_build_observation_is_the_operator_downscale_uses() -> None:
    from sciddm.domains.atmos import build_observation

    g = grid()
    coarse = coarse_grain(g, 2)
    op_c, y_c, info_c = build_observation(g, VARS, STATS, coarse=coarse)
    op_s, y_s, info_s = build_observation(g, VARS, STATS, stations=stations())
    op_f, y_f, info_f = build_observation(g, VARS, STATS, coarse=coarse, stations=stations())
    assert info_c["coarse_factor"] == 2 and len(info_s["stations"]) == 2
    assert info_f["coarse_factor"] == 2 and list(info_f["station_variables"]) == list(info_s["station_variables"])
    # noiseless coarse data are the block means of the (normalised) grid itself
    x = torch.tensor(np.stack([(g[v].values - STATS.mean[v]) / STATS.std[v] for v in VARS]))[None]
    torch.testing.assert_close(op_c(x).reshape(-1), y_c.reshape(-1).to(x.dtype))
    # the fused operator and data are the two modalities side by side
    z = torch.randn(3, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op_f(z), torch.cat([op_c(z).reshape(3, -1), op_s(z).reshape(3, -1)], dim=1))
    torch.testing.assert_close(y_f.reshape(-1), torch.cat([y_c.reshape(-1), y_s.reshape(-1)]))
    with pytest.raises(ValueError, match="nothing to condition on"):
        build_observation(g, VARS, STATS)
    with pytest.raises(ValueError, match="weights"):
        build_observation(g, VARS, STATS, coarse=coarse, weights=[1.0, 2.0])
