"""``downscale``: an ensemble of high-resolution fields from coarse fields and/or station data.

Zero-shot conditioning of an unconditional prior (Chakraborty et al. 2025): the prior of the
normalised high-resolution field is a trained diffusion model; at sampling time a posterior
sampler of :mod:`sciddm.inverse` draws ``x ~ p(x | y_coarse, y_stations)``, the two modalities
fused by a :class:`~sciddm.inverse.Stack` whose likelihood is the product of the two (each with
its own noise level and an optional tempering weight), or either one alone. The members,
their mean, standard deviation and quantiles are returned as a CF-1.8 ``xarray.Dataset`` in
physical units, and optionally written (atomically) to netCDF and zarr with PNG maps and power
spectra beside them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor

from sciddm.datasets.atmosphere import Normalization, write_dataset
from sciddm.inverse import Operator
from sciddm.inverse.operators.concat import Concatenated
from sciddm.inverse.posterior import sample_posterior
from sciddm.process import Process

from .operators import Noise, coarse_observation, coarse_operator, grid_of, station_operator

__all__ = ["downscale", "build_observation", "load_prior", "ensemble_dataset", "write_ensemble", "DEFAULT_METHOD",
           "DEFAULT_STEPS", "default_hparams"]

#: the posterior sampler chosen by benchmarks/atmos_sr.py (see docs/atmos.md) and its steps
DEFAULT_METHOD = "dps"
DEFAULT_STEPS = 50


def default_hparams(method: str, modalities: Sequence[str]) -> dict[str, Any]:
    """Sampler settings chosen on validation times of the 32x32 benchmark (one per task, as DPS
    tunes its step per task). DPS's step ``zeta`` is a step length in x along the gradient of
    ``||y - A x0_hat||`` and trades data fit against spread. On the fused problem (two
    calibration times, 32 members, 50 steps; ``benchmarks/atmos_sr.py --zeta-sweep``,
    ``benchmarks/results/atmos_sr_zeta.json``) mean CRPS / RMSE / spread-skill were
    0.088 / 0.185 / 1.07 at ``zeta = 2``, 0.060 / 0.127 / 0.90 at 4, 0.056 / 0.113 / 0.71 at 8
    and 0.054 / 0.104 / 1.58 at 16 (spiky members, 90 % coverage 0.68). ``zeta = 8`` keeps the
    best CRPS of the well-behaved settings; its under-dispersion is corrected post hoc
    (``downscale(..., calibration=s)``) rather than by a smaller step that costs accuracy. The
    64x64/x8 EDM prior confirms it (``atmos_sr64_prior64_edm_zeta.json``: zeta 8 / 16 / 32 gave
    CRPS 0.054 / 0.056 / 0.057 and spread-skill 0.85 / 0.69 / 1.34 on its calibration times). With
    stations alone the gradient falls on a few pixels and large steps diverge, so the paper's
    ``zeta = 1`` is kept there. Other methods keep their papers' defaults."""
    if method == "dps":
        return {"zeta": 8.0 if "coarse" in modalities else 1.0}
    return {}


Prior = Any  # a DiffusionModule, a checkpoint path, or (denoiser, process, data_shape)


def load_prior(prior: Prior) -> tuple[Callable[..., Tensor], Process, tuple[int, ...]]:
    """``(denoiser, process, data_shape)`` from a checkpoint path, a DiffusionModule or such a tuple."""
    from sciddm.training import DiffusionModule, load_model

    if isinstance(prior, (str, os.PathLike)):
        prior = load_model(prior)
    if isinstance(prior, DiffusionModule):
        if prior.data_shape is None:
            raise ValueError("the model does not know its data shape: train it first or set data_shape")
        prior.eval()
        return prior.denoiser, prior.process, tuple(prior.data_shape)
    if isinstance(prior, tuple) and len(prior) == 3 and isinstance(prior[1], Process):
        return prior[0], prior[1], tuple(int(s) for s in prior[2])
    raise ValueError("prior must be a checkpoint path, a sciddm DiffusionModule, or (denoiser, process, data_shape)")


def build_observation(
    grid: xr.Dataset,
    variables: Sequence[str],
    normalization: Normalization | str | os.PathLike[str],
    *,
    coarse: xr.Dataset | None = None,
    stations: pd.DataFrame | str | None = None,
    time: Any = None,
    coarse_noise: Noise = 0.05,
    station_noise: Noise = 0.05,
    weights: Sequence[float] | None = None,
) -> tuple[Operator, Tensor, dict[str, Any]]:
    """The observation :func:`downscale` conditions on, for use with any sampler of :mod:`sciddm.inverse`.

    Returns ``(operator, y, info)``: the coarse-graining operator, the station operator, or both
    fused into one Gaussian likelihood (a flat concatenation, each modality with its own noise
    and optional tempering ``weights``); ``y`` in normalised model units (float64); ``info``
    with ``coarse_factor``, ``stations`` (the table used) and ``station_variables``. Arguments
    are those of :func:`downscale`. This is the way to call
    ``sample_posterior(method, denoiser, process, operator, y.float(), ...)`` with settings
    ``downscale`` does not expose (a custom time grid, a distilled student, a warm start).
    """
    stats = normalization if isinstance(normalization, Normalization) else Normalization.load(normalization)
    stats.check(list(variables))
    parts: list[Operator] = []
    ys: list[Tensor] = []
    info: dict[str, Any] = {}
    if coarse is not None:
        if time is not None and "time" in coarse.dims:
            coarse = coarse.sel(time=np.datetime64(pd.Timestamp(time), "ns"))
        factor, y = coarse_observation(coarse, grid, variables, stats)
        parts.append(coarse_operator(len(variables), factor, coarse_noise, variables, stats))
        ys.append(y)
        info["coarse_factor"] = factor
    if stations is not None:
        obs = station_operator(stations, grid, variables, stats, station_noise, time=time)
        parts.append(obs.operator)
        ys.append(obs.y)
        info["stations"] = obs.stations
        info["station_variables"] = obs.variables
    if not parts:
        raise ValueError("nothing to condition on: pass coarse=, stations= or both")
    if len(parts) == 1:
        if weights is not None and len(weights) != 1:
            raise ValueError(f"weights {list(weights)} given for {len(parts)} modality")
        return parts[0], ys[0], info
    # the exact joint Gaussian likelihood as one flat observation (Stack's tuple y is not accepted
    # by sample_posterior); weights temper each modality's likelihood
    joint = Concatenated(parts, _x_like(grid, variables), weights)
    return joint, joint.join(ys), info


def _x_like(grid: xr.Dataset, variables: Sequence[str]) -> Tensor:
    lat, lon = grid_of(grid)
    return torch.zeros(1, len(variables), lat.size, lon.size, dtype=torch.float64)


def downscale(
    prior: Prior,
    normalization: Normalization | str | os.PathLike[str],
    grid: xr.Dataset,
    variables: Sequence[str],
    *,
    coarse: xr.Dataset | None = None,
    stations: pd.DataFrame | str | None = None,
    time: Any = None,
    coarse_noise: Noise = 0.05,
    station_noise: Noise = 0.05,
    weights: Sequence[float] | None = None,
    method: str = DEFAULT_METHOD,
    num_members: int = 32,
    steps: int = DEFAULT_STEPS,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    seed: int = 0,
    batch_size: int | None = None,
    out: str | os.PathLike[str] | None = None,
    plot: bool = True,
    truth: xr.Dataset | None = None,
    progress: bool = False,
    calibration: float | None = None,
    **hparams: Any,
) -> xr.Dataset:
    """Draw a ``num_members`` ensemble of the high-resolution field given the observations.

    Args:
        prior: the unconditional prior (checkpoint path, ``DiffusionModule``, or
            ``(denoiser, process, (C, H, W))``), trained on normalised ``variables``.
        normalization: its statistics (or the JSON path written beside it).
        grid: a dataset whose ``lat``/``lon`` are the target grid (e.g. the training store);
            its variables' attributes (units, standard names) are copied to the output.
        variables: the model's channels in order.
        coarse: one time of every model variable on the block centres of ``grid`` (see
            :func:`coarse_grain`); ``None`` for stations only.
        stations: a station table (or its file) of one time, or several times with ``time``.
        time: the time to downscale (selects from ``coarse`` and ``stations``).
        coarse_noise, station_noise: noise of each modality: a float is a fraction of each
            variable's standard deviation, a mapping gives physical units per variable.
        weights: tempering weights of the two likelihoods when both are given (default 1, 1).
        method, steps, **hparams: the posterior sampler of :func:`sample_posterior`.
        num_members, seed, batch_size, progress: ensemble size, seed, memory bound, progress bar.
        quantiles: levels of the ``<var>_quantile`` fields.
        out: if given, ``<out>.nc`` and ``<out>.zarr`` are written atomically (suffix ignored),
            and with ``plot`` PNG maps and spectra beside them.
        truth: optional high-resolution truth of that time, for the error map of the plots.
        calibration: optional spread-inflation factor ``s`` (off by default): the members'
            deviations from the ensemble mean are multiplied by ``s`` (in model units, before
            the statistics are computed; :func:`sciddm.uq.inflate_spread`). Fit ``s`` with
            :func:`sciddm.uq.fit_spread_inflation` on ensembles and truths of validation times
            drawn with the same prior, sampler and observation setup, never on the times you
            evaluate (see ``benchmarks/atmos_sr.py``). The mean is unchanged; the dataset's
            ``calibration`` attribute records ``s`` (0 when off).

    Returns:
        A dataset with ``<var>`` (member, lat, lon), ``<var>_mean``, ``<var>_std`` (lat, lon)
        and ``<var>_quantile`` (quantile, lat, lon), in physical units, CF attributes.
    """
    stats = normalization if isinstance(normalization, Normalization) else Normalization.load(normalization)
    variables = list(variables)
    stats.check(variables)
    denoiser, process, shape = load_prior(prior)
    lat, lon = grid_of(grid)
    if shape != (len(variables), lat.size, lon.size):
        raise ValueError(f"the prior models fields of shape {shape} but the grid and variables give "
                         f"{(len(variables), lat.size, lon.size)}: use the grid and variables the prior was trained on")
    if not isinstance(num_members, int) or num_members < 2:
        raise ValueError(f"num_members must be an integer >= 2 (an ensemble); got {num_members!r}")
    if calibration is not None and (isinstance(calibration, bool) or not isinstance(calibration, (int, float))
                                    or not calibration > 0):
        raise ValueError(f"calibration is a positive spread-inflation factor (fit it with "
                         f"sciddm.uq.fit_spread_inflation) or None; got {calibration!r}")
    if any(not 0.0 < q < 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie in (0, 1); got {list(quantiles)}")
    operator, y, info = build_observation(grid, variables, stats, coarse=coarse, stations=stations, time=time,
                                          coarse_noise=coarse_noise, station_noise=station_noise, weights=weights)
    y32 = y.float()
    generator = torch.Generator().manual_seed(seed)
    modalities = [k for k, v in (("coarse", coarse), ("stations", stations)) if v is not None]
    settings = {**default_hparams(method, modalities), **hparams}
    members = sample_posterior(method, denoiser, process, operator, y32, num_samples=num_members, steps=steps,
                               x_shape=shape, generator=generator, progress=progress, batch_size=batch_size, **settings)
    if calibration is not None:
        from sciddm.uq import inflate_spread

        members = inflate_spread(members, float(calibration))
    if time is None and coarse is not None and "time" in coarse.coords and coarse["time"].size == 1:
        time = coarse["time"].values.reshape(-1)[0]
    if time is None and isinstance(stations, pd.DataFrame) and stations["time"].nunique() == 1:
        time = stations["time"].iloc[0]
    attrs = {"method": method, "steps": steps, "seed": seed, "num_members": num_members,
             "modalities": ",".join(modalities),
             "coarse_factor": info.get("coarse_factor", 0),
             "station_count": 0 if "stations" not in info else len(info["stations"]),
             "station_variables": ",".join(info.get("station_variables", [])),
             "noise": json.dumps({"coarse": _jsonable(coarse_noise), "stations": _jsonable(station_noise)}),
             "sampler_hparams": json.dumps({k: _jsonable(v) for k, v in settings.items()}),
             "calibration": float(calibration) if calibration is not None else 0.0}
    ds = ensemble_dataset(members, variables, stats, grid, time=time, quantiles=quantiles, attrs=attrs)
    if out is not None:
        write_ensemble(ds, out)
        if plot:
            from .plots import plot_downscaled, plot_spectra

            base = Path(out).with_suffix("")
            for v in variables:
                plot_downscaled(ds, v, base.with_name(f"{base.name}_{v}.png"), truth=truth, coarse=coarse,
                                stations=info.get("stations"))
            plot_spectra(ds, variables, base.with_name(f"{base.name}_spectra.png"), truth=truth)
    return ds


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


def ensemble_dataset(members: Tensor, variables: Sequence[str], stats: Normalization, grid: xr.Dataset, *,
                     time: Any = None, quantiles: Sequence[float] = (0.05, 0.5, 0.95),
                     attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
    """A CF-1.8 dataset of an ensemble ``(N, C, H, W)`` in model units, with its statistics."""
    lat, lon = grid_of(grid)
    x = members.detach().double().cpu().numpy()
    if x.ndim != 4 or x.shape[1:] != (len(variables), lat.size, lon.size):
        raise ValueError(f"members must be (N, {len(variables)}, {lat.size}, {lon.size}); got {x.shape}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x).reshape(x.shape[0], -1).all(1)).sum())
        raise ValueError(f"{bad} ensemble members contain NaN/Inf (the sampler diverged): lower its step size or "
                         "raise the observation noise")
    q = np.asarray(list(quantiles), dtype=np.float64)
    coords: dict[str, Any] = {
        "member": ("member", np.arange(x.shape[0], dtype=np.int32), {"long_name": "ensemble member"}),
        "lat": ("lat", lat, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", lon, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"}),
        "quantile": ("quantile", q, {"long_name": "quantile level of the ensemble", "units": "1"}),
    }
    if time is not None:
        coords["time"] = ((), np.datetime64(pd.Timestamp(time), "ns"), {"standard_name": "time", "axis": "T"})
    data: dict[str, Any] = {}
    for c, v in enumerate(variables):
        base = dict(grid[v].attrs) if v in grid.data_vars else {}
        base = {k: base[k] for k in ("units", "standard_name", "long_name") if k in base}
        long = base.get("long_name", v)
        phys = (x[:, c] * stats.std[v] + stats.mean[v]).astype(np.float32)
        data[v] = (("member", "lat", "lon"), phys, {**base, "long_name": f"{long}, downscaled ensemble member"})
        data[f"{v}_mean"] = (("lat", "lon"), phys.mean(0, dtype=np.float64).astype(np.float32),
                             {**base, "long_name": f"{long}, ensemble mean", "cell_methods": "member: mean"})
        data[f"{v}_std"] = (("lat", "lon"), phys.std(0, ddof=1, dtype=np.float64).astype(np.float32),
                            {**{k: b for k, b in base.items() if k == "units"}, "long_name": f"{long}, ensemble standard deviation",
                             "cell_methods": "member: standard_deviation"})
        data[f"{v}_quantile"] = (("quantile", "lat", "lon"), np.quantile(phys.astype(np.float64), q, axis=0).astype(np.float32),
                                 {**base, "long_name": f"{long}, ensemble quantiles"})
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    global_attrs = {"Conventions": "CF-1.8",
                    "title": "sciddm downscaled ensemble (score-based super-resolution)",
                    "source": "sciddm.domains.atmos.downscale: unconditional diffusion prior conditioned zero-shot "
                              "on coarse fields and station observations",
                    "references": "Chakraborty et al. (2025) Multimodal Atmospheric Super-Resolution With Deep "
                                  "Generative Models",
                    "history": f"{now} created by sciddm.domains.atmos.downscale"}
    global_attrs.update({k: v for k, v in (attrs or {}).items()})
    return xr.Dataset({k: xr.Variable(*v) for k, v in data.items()},
                      coords={k: xr.Variable(*v) for k, v in coords.items()}, attrs=global_attrs)


def write_ensemble(ds: xr.Dataset, out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<out>.nc`` and ``<out>.zarr`` atomically (each to a temporary name, then renamed)."""
    base = Path(out)
    if base.suffix in (".nc", ".zarr"):
        base = base.with_suffix("")
    if not base.parent.is_dir():
        raise ValueError(f"output directory {str(base.parent)!r} does not exist: create it first")
    ds = ds.copy()
    if "time" in ds.coords:
        ds["time"].encoding.update(units="hours since 1970-01-01 00:00:00", calendar="proleptic_gregorian", dtype="float64")
    nc = write_dataset(ds, base.with_name(base.name + ".nc"))
    zr = write_dataset(ds, base.with_name(base.name + ".zarr"))
    return nc, zr


def main(argv: Sequence[str] | None = None) -> int:
    """``sciddm downscale`` (for the lead to register in ``sciddm.cli.SUBCOMMANDS``): returns an exit code."""
    import argparse
    import sys

    from sciddm.datasets.atmosphere import open_gridded

    p = argparse.ArgumentParser(prog="sciddm downscale", description="Downscaled ensemble from coarse fields and/or stations.")
    p.add_argument("--ckpt", required=True, help="prior checkpoint written by `sciddm fit`")
    p.add_argument("--stats", required=True, help="normalisation JSON written beside the model")
    p.add_argument("--grid", required=True, help="store whose lat/lon are the target grid (e.g. the training store)")
    p.add_argument("--variables", nargs="+", required=True, help="the model's channels in order")
    p.add_argument("--coarse", default=None, help="coarse fields (*.nc / *.zarr) on the grid's block centres")
    p.add_argument("--stations", default=None, help="station table (*.csv / *.nc, read_stations layout)")
    p.add_argument("--time", default=None, help="time to downscale (ISO date)")
    p.add_argument("--out", required=True, help="output base name: <out>.nc, <out>.zarr and PNGs")
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--method", default=DEFAULT_METHOD)
    p.add_argument("--coarse-noise", type=float, default=0.05, help="fraction of each variable's std")
    p.add_argument("--station-noise", type=float, default=0.05, help="fraction of each variable's std")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibration", type=float, default=None,
                   help="spread-inflation factor fitted on validation times (sciddm.uq.fit_spread_inflation); off by default")
    a = p.parse_args(list(argv) if argv is not None else None)
    try:
        grid = open_gridded(a.grid)
        coarse = open_gridded(a.coarse) if a.coarse else None
        downscale(a.ckpt, a.stats, grid, a.variables, coarse=coarse, stations=a.stations, time=a.time,
                  coarse_noise=a.coarse_noise, station_noise=a.station_noise, method=a.method,
                  num_members=a.members, steps=a.steps, seed=a.seed, out=a.out, progress=True,
                  calibration=a.calibration)
    except ValueError as err:
        print(f"sciddm downscale: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {a.out}.nc, {a.out}.zarr and PNG figures")
    return 0
