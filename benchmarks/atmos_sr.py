"""Atmospheric super-resolution benchmark: bicubic, CorrDiff-style, and diffusion posteriors
conditioned on coarse fields, stations, or both (Chakraborty et al. 2025's setting).

    python -m benchmarks.atmos_sr                          # 32x32, x4; ~40 min on 2 busy CPU cores (cached models)
    python -m benchmarks.atmos_sr --resolution 64          # 64x64, x8 -> benchmarks/results/atmos_sr64.json
    python -m benchmarks.atmos_sr --zeta-sweep 2 4 8 16    # DPS step sizes on calibration times only
    python -m benchmarks.atmos_sr --quick                  # 1 time, 8 members (smoke test)

Priors come from ``experiments/atmos/quick32.yaml`` / ``prior64.yaml`` and the CorrDiff-style
baseline from ``corrdiff32.yaml`` (trained through ``sciddm fit``, bounded by ``--train-minutes``,
cached in ``benchmarks/cache/atmos/``; no 64x64 CorrDiff is trained: its row is left out there
unless ``benchmarks/cache/atmos/corrdiff64/prior.ckpt`` exists). Stations: 2 % of the grid points
at random positions, reporting all four variables. Observations are simulated from held-out
truths (the validation period, never seen in training) with the noise levels the samplers assume.

Two disjoint sets of validation-period times: ``--times`` TEST times (the rows) and
``--calibration-times`` CALIBRATION times between them. On the calibration times each
probabilistic configuration draws ensembles, and one spread-inflation factor per configuration is
fitted (``sciddm.uq.fit_spread_inflation``, spread-skill objective); each test row is then
reported twice: raw, and ``+cal`` (the same members inflated about their mean by that factor).
The ``--zeta-sweep`` mode only runs the fused DPS posterior on the calibration times for each
step size (``atmos_sr_zeta.json``): a knob is chosen there, never on test times.

Metrics, in normalised units (each variable divided by its climatological std, then averaged
over variables): RMSE of the ensemble mean, fair CRPS, spread-skill ratio (1 = calibrated),
coverage of the central 90 % interval (nominal 0.9), mean |log10| power-spectrum error of the
members (``spectra.spectrum_error``), and wall time of one ensemble. Writes the JSON after
every row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from benchmarks.atmos_demo import CACHE, ROOT, VARIABLES, data_name, train_prior
from benchmarks.common import write_result

RESULTS = ROOT / "benchmarks" / "results" / "atmos_sr.json"
#: per grid size: prior cache name, CorrDiff cache name, data store, start of the validation period
SETUPS = {32: ("quick32", "corrdiff32", "qg32.zarr", "2002-09-01"),
          64: ("prior64", "corrdiff64", "qg64.zarr", "2005-01-01")}
DEFAULT_FACTOR = {32: 4, 64: 8}  # coarse-graining factor per grid size
COARSE_NOISE = 0.05  # fraction of each variable's std
STATION_NOISE = 0.1


def make_case(ds: xr.Dataset, stats: Any, index: int, factor: int, fraction: float, seed: int
              ) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame]:
    """Truth (one time), its noisy x``factor`` coarse field and a noisy station table."""
    from sciddm.domains.atmos import coarse_grain, sample_stations

    truth = ds[VARIABLES].isel(time=index).load()
    rng = np.random.default_rng(seed)
    coarse = coarse_grain(truth, factor)
    for v in VARIABLES:
        coarse[v] = coarse[v] + COARSE_NOISE * stats.std[v] * rng.standard_normal(coarse[v].shape)
    noise = {v: STATION_NOISE * stats.std[v] for v in VARIABLES}
    stations = sample_stations(truth, fraction, VARIABLES, time=truth["time"].values, truth=truth, noise=noise, seed=seed)
    return truth, coarse, stations


def normalize(fields: np.ndarray, stats: Any) -> torch.Tensor:
    """``(..., C, H, W)`` physical -> normalised float64 tensor."""
    m = np.array([stats.mean[v] for v in VARIABLES])[:, None, None]
    s = np.array([stats.std[v] for v in VARIABLES])[:, None, None]
    return torch.from_numpy((np.asarray(fields, dtype=np.float64) - m) / s)


def evaluate(members: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Metrics of an ensemble ``(N, C, H, W)`` (``N = 1``: a deterministic field) against ``(C, H, W)``."""
    from sciddm.domains.atmos import spectrum_error
    from sciddm.uq import crps, interval_coverage, spread_skill_ratio

    mean = members.mean(0)
    out = {"rmse": float((mean - truth).pow(2).mean().sqrt()),
           "crps": float(crps(members, truth)) if members.shape[0] > 1 else float((mean - truth).abs().mean()),
           "spread_skill": float(spread_skill_ratio(members, truth)) if members.shape[0] > 1 else float("nan"),
           "coverage90": float(interval_coverage(members, truth, 0.9)) if members.shape[0] > 1 else float("nan"),
           "spectrum_error": float(np.mean([spectrum_error(members[:, c].numpy(), truth[c].numpy())
                                            for c in range(truth.shape[0])]))}
    return out


def split_times(times: np.ndarray, val_start: str, n_test: int, n_cal: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``n_test`` test and ``n_cal`` calibration times, evenly spread over the
    validation period and disjoint (calibration times fall between test times)."""
    val = np.flatnonzero(times >= np.datetime64(val_start))
    if val.size < n_test + n_cal:
        raise ValueError(f"only {val.size} validation times for {n_test} test + {n_cal} calibration times")
    test = val[np.linspace(0, val.size - 1, n_test).round().astype(int)]
    pos = np.linspace(0, val.size - 1, 2 * max(n_cal, 1) + 1)[1::2]
    cal = np.array([i for i in val[pos.round().astype(int)] if i not in set(test)], dtype=int)[:n_cal]
    return test, cal


def plot_summary(report: dict[str, Any], path: Path) -> Path:
    """Bars of RMSE (relative to bicubic), spread-skill and 90 % coverage per configuration, raw
    next to ``+cal``, with the goals drawn in (the figure of ``docs/atmos.md`` section 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciddm.io import save_figure

    summary = report["summary"]
    names = [c for c in summary if c != "bicubic"]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (("rmse", "RMSE / bicubic RMSE", [0.6], lambda v: v / summary["bicubic"]["rmse"]),
              ("spread_skill", "spread / skill", [0.8, 1.0, 1.2], lambda v: v),
              ("coverage90", "90 % interval coverage", [0.85, 0.9, 0.95], lambda v: v))
    for ax, (key, label, goals, f) in zip(axes, panels):
        vals = [f(summary[n][key]) for n in names]
        ax.bar(x, vals, color=["tab:orange" if n.endswith("+cal") else "tab:blue" for n in names])
        for g in goals:
            ax.axhline(g, color="k", lw=0.8, ls="--" if g != 1.0 and g != 0.9 else "-")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
    grid = "x".join(str(n) for n in report["config"]["grid"])
    fig.suptitle(f"atmos_sr {grid}, x{report['config']['factor']} coarse + stations; orange: +cal (inflation fitted "
                 f"on calibration times); dashed: goals", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 time, 8 members, 50 steps (fewer diverge with these priors)")
    p.add_argument("--resolution", type=int, choices=sorted(SETUPS), default=32, help="grid size (32 or 64)")
    p.add_argument("--times", type=int, default=None, help="held-out test times (default 4; quick 1)")
    p.add_argument("--calibration-times", type=int, default=None,
                   help="validation times for the inflation fit (default 3; quick 1; 0: no calibrated rows)")
    p.add_argument("--members", type=int, default=None, help="ensemble size (default 32; quick 8)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default 50)")
    p.add_argument("--factor", type=int, default=None, help="coarsening factor (default 4 at 32x32, 8 at 64x64)")
    p.add_argument("--fraction", type=float, default=0.02, help="fraction of grid points with a station")
    p.add_argument("--methods", nargs="+", default=["dps", "reddiff", "daps"],
                   help="posterior samplers compared on the fused problem (first time only)")
    p.add_argument("--default-method", default=None, help="sampler of the coarse/stations/fused rows (default: "
                   "sciddm.domains.atmos.DEFAULT_METHOD)")
    p.add_argument("--zeta-sweep", type=float, nargs="+", default=None,
                   help="only sweep DPS's zeta on the fused problem at the calibration times")
    p.add_argument("--modalities", nargs="*", choices=["coarse", "stations", "fused"],
                   default=["coarse", "stations", "fused"],
                   help="posterior rows to run (default all three; none: only the bicubic and CorrDiff baselines)")
    p.add_argument("--zeta", type=float, default=None,
                   help="DPS step of the rows with a coarse field (default: downscale's default_hparams)")
    p.add_argument("--prior", default=None,
                   help="prior config in experiments/atmos/ without .yaml (default quick32 at 32x32, prior64 at 64x64; "
                        "e.g. prior64_edm); cached under its own name")
    p.add_argument("--train-minutes", type=float, default=12.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    n_times = a.times or (1 if a.quick else 4)
    n_cal = a.calibration_times if a.calibration_times is not None else (1 if a.quick else 3)
    members = a.members or (8 if a.quick else 32)
    steps = a.steps or 50
    factor = a.factor or DEFAULT_FACTOR[a.resolution]
    prior_name, corr_name, store, val_start = SETUPS[a.resolution]
    if a.prior is not None:
        if data_name(a.prior) != store:
            raise ValueError(f"--prior {a.prior} is not a {a.resolution}x{a.resolution} config (its data: {data_name(a.prior)})")
        if not (ROOT / "experiments" / "atmos" / f"{a.prior}.yaml").is_file():
            raise ValueError(f"--prior {a.prior}: no experiments/atmos/{a.prior}.yaml")
        prior_name = a.prior
    stem = "atmos_sr" if a.resolution == 32 else f"atmos_sr{a.resolution}"
    if prior_name != SETUPS[a.resolution][0]:
        stem += f"_{prior_name}"
    if a.zeta_sweep:
        stem += "_zeta"
    out = a.out or RESULTS.with_name(f"{stem}_quick.json" if a.quick else f"{stem}.json")

    from sciddm.datasets.atmosphere import Normalization, open_gridded
    from sciddm.domains.atmos import DEFAULT_METHOD, bicubic, corrdiff_sample, downscale
    from sciddm.training import load_model
    from sciddm.uq import fit_spread_inflation, inflate_spread

    method = a.default_method or DEFAULT_METHOD
    prior_ckpt = train_prior(f"{prior_name}.yaml", prior_name, a.train_minutes)
    prior = load_model(prior_ckpt)
    corr = None
    if not a.zeta_sweep and (a.resolution == 32 or (CACHE / corr_name / "prior.ckpt").is_file()):
        corr = load_model(train_prior(f"corrdiff{a.resolution}.yaml", corr_name, a.train_minutes,
                                      extra=["--model.init_args.factor", str(factor)]))
        if corr.factor != factor:
            raise ValueError(f"the cached CorrDiff model was trained for x{corr.factor}, not x{factor}: "
                             f"delete {CACHE / corr_name} to retrain it")
    stats = Normalization.load(CACHE / prior_name / "normalization.json")
    ds = open_gridded(CACHE / store)
    picks, cal_picks = split_times(ds["time"].values, val_start, n_times, n_cal)
    info = {k: json.loads((CACHE / n / "prior.json").read_text()) for k, n in (("prior", prior_name), ("corrdiff", corr_name))
            if (CACHE / n / "prior.json").is_file()}
    date = lambda i: str(ds["time"].values[i])[:10]  # noqa: E731
    report: dict[str, Any] = {
        "benchmark": stem,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "config": {"grid": list(ds["z250"].shape[1:]), "variables": VARIABLES, "factor": factor,
                   "station_fraction": a.fraction, "coarse_noise": COARSE_NOISE, "station_noise": STATION_NOISE,
                   "members": members, "steps": steps, "times": [date(i) for i in picks],
                   "calibration_times": [date(i) for i in cal_picks],
                   "default_method": method, "zeta": a.zeta, "modalities": a.modalities, "prior_steps_trained": info.get("prior", {}).get("global_step"),
                   "corrdiff_steps_trained": info.get("corrdiff", {}).get("global_step") if corr is not None else None,
                   "corrdiff_sampler": None if corr is None else {k: corr.hparams[f"sample_{k}"] for k in ("solver", "steps", "grid")},
                   "prior_params": sum(q.numel() for q in prior.net.parameters()), "quick": a.quick},
        "rows": [],
    }
    # a cheap health check of the prior: 8 unconditional 20-step DDIM draws should have the
    # normalised fields' standard deviation ~1 per variable (an eps prior undertrained at high
    # noise draws ~7)
    with torch.no_grad():
        draws = prior.generate(8, solver="ddim", steps=20, generator=torch.Generator().manual_seed(a.seed)).double()
    report["prior_check"] = {"ddim20_std": {v: round(float(s), 3) for v, s in zip(VARIABLES, draws.std(dim=(0, 2, 3)))},
                             "samples": 8}
    print("prior check, std of 8 unconditional DDIM-20 draws (want ~1):", report["prior_check"]["ddim20_std"])

    def record(name: str, t: int, ens: torch.Tensor, truth: torch.Tensor, seconds: float, key: str = "rows") -> None:
        row = {"config": name, "time": date(t), **evaluate(ens, truth), "seconds": round(seconds, 2)}
        report.setdefault(key, []).append(row)
        write_result(report, out)
        print(f"{row['config']:<22} {row['time']}  rmse {row['rmse']:.3f}  crps {row['crps']:.3f}  "
              f"ssr {row['spread_skill']:.2f}  cov90 {row['coverage90']:.2f}  spec {row['spectrum_error']:.3f}  "
              f"{row['seconds']:.1f}s", flush=True)

    def case(t: int, seed: int) -> tuple[xr.Dataset, xr.Dataset, pd.DataFrame, torch.Tensor, torch.Tensor]:
        truth_ds, coarse, stations = make_case(ds, stats, int(t), factor, a.fraction, seed)
        truth = normalize(np.stack([truth_ds[v].values for v in VARIABLES]), stats)
        yc = normalize(np.stack([coarse[v].values for v in VARIABLES]), stats)
        return truth_ds, coarse, stations, truth, yc

    def posterior(m: str, truth_ds: xr.Dataset, obs: dict[str, Any], **hp: Any) -> tuple[torch.Tensor, float]:
        if m == "dps" and "coarse" in obs and a.zeta is not None and "zeta" not in hp:
            hp = {**hp, "zeta": a.zeta}
        t0 = time.time()
        res = downscale(prior, stats, truth_ds, VARIABLES, method=m, num_members=members, steps=steps,
                        coarse_noise=COARSE_NOISE, station_noise=STATION_NOISE, seed=a.seed, plot=False, **obs, **hp)
        return normalize(np.stack([res[v].values for v in VARIABLES], 1), stats), time.time() - t0

    def corrdiff(yc: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, float]:
        t0 = time.time()
        g = torch.Generator().manual_seed(a.seed)
        ens = corrdiff_sample(corr, yc.float(), tuple(truth.shape[-2:]), members, generator=g).double()
        return ens, time.time() - t0

    def modalities(coarse: xr.Dataset, stations: pd.DataFrame) -> list[tuple[str, dict[str, Any]]]:
        rows = [("coarse", dict(coarse=coarse)), ("stations", dict(stations=stations)),
                ("fused", dict(coarse=coarse, stations=stations))]
        return [r for r in rows if r[0] in a.modalities]

    # calibration seeds differ from the test seeds (10_000 + k): new observation noise and stations
    if a.zeta_sweep:
        report["zeta_sweep"] = {}
        for k, t in enumerate(cal_picks):
            truth_ds, coarse, stations, truth, _ = case(int(t), 10_000 + k)
            for z in a.zeta_sweep:
                ens, sec = posterior("dps", truth_ds, dict(coarse=coarse, stations=stations), zeta=z)
                record(f"fused/dps zeta={z:g}", t, ens, truth, sec)
        table = pd.DataFrame(report["rows"]).groupby("config", sort=False).mean(numeric_only=True)
        report["summary"] = {c: {k: round(float(v), 4) for k, v in r.items()} for c, r in table.iterrows()}
        write_result(report, out)
        print(table.round(3).to_string())
        return report

    cal_ens: dict[str, list[torch.Tensor]] = {}
    cal_truth: dict[str, list[torch.Tensor]] = {}
    for k, t in enumerate(cal_picks):
        truth_ds, coarse, stations, truth, yc = case(int(t), 10_000 + k)
        runs: list[tuple[str, torch.Tensor, float]] = []
        if corr is not None:
            runs.append(("corrdiff", *corrdiff(yc, truth)))
        for name, obs in modalities(coarse, stations):
            runs.append((f"{name}/{method}", *posterior(method, truth_ds, obs)))
        for name, ens, sec in runs:
            record(name, t, ens, truth, sec, key="calibration_rows")
            cal_ens.setdefault(name, []).append(ens)
            cal_truth.setdefault(name, []).append(truth)
    factors = {name: fit_spread_inflation(cal_ens[name], cal_truth[name]) for name in cal_ens}
    report["calibration"] = {name: {"factor": round(f, 4), "factor_crps": round(fit_spread_inflation(
        cal_ens[name], cal_truth[name], "crps"), 4), "fitted_on": [date(i) for i in cal_picks]} for name, f in factors.items()}
    write_result(report, out)
    if factors:
        print("spread-inflation factors (fitted on calibration times):",
              ", ".join(f"{k} {v:.3f}" for k, v in factors.items()), flush=True)

    for k, t in enumerate(picks):
        truth_ds, coarse, stations, truth, yc = case(int(t), a.seed + k)
        t0 = time.time()
        record("bicubic", t, bicubic(yc[None], tuple(truth.shape[-2:])), truth, time.time() - t0)
        runs = []
        if corr is not None:
            runs.append(("corrdiff", *corrdiff(yc, truth)))
        runs += [(f"{name}/{method}", *posterior(method, truth_ds, obs)) for name, obs in modalities(coarse, stations)]
        if k == 0 and "fused" in a.modalities:
            runs += [(f"fused/{m}", *posterior(m, truth_ds, dict(coarse=coarse, stations=stations)))
                     for m in a.methods if m != method]
        for name, ens, sec in runs:
            record(name, t, ens, truth, sec)
            if name in factors:
                record(f"{name}+cal", t, inflate_spread(ens, factors[name]), truth, sec)

    # averages over times per configuration
    table = pd.DataFrame(report["rows"]).groupby("config", sort=False).mean(numeric_only=True)
    report["summary"] = {c: {k: round(float(v), 4) for k, v in r.items()} for c, r in table.iterrows()}
    write_result(report, out)
    print(table.round(3).to_string())
    print(f"wrote {out} and {plot_summary(report, out.with_suffix('.png'))}")
    return report


if __name__ == "__main__":
    main()
