"""The linear PDE problems (Poisson, Helmholtz) with the EXACT prior: what is reachable, and which
part of the gap is the sampler's and which the trained prior's.

Their data pairs are exactly Gaussian (``sciddm.domains.pde.oracle``), so on the test pairs and
observations of ``benchmarks/pde.py`` (same cases, same 3 % points) this measures

* ``bayes``: the exact posterior mean (the lowest mean squared error any method can reach on
  average) and the coverage of the exact 90 % intervals;
* ``exact_draws``: an ideal sampler, ``--members`` exact posterior draws scored like every ensemble;
* ``diffusionpde``, ``diffusionpde_nopde``, ``dps``, ``daps``, ``tds``: the samplers of
  ``benchmarks/pde.py`` with the same settings, but on the exact denoiser of the Gaussian prior
  (in the trained prior's normalised state) instead of the trained network;
* ``diffusionpde_x<f>``: the paper's weights times ``f`` (50 Heun steps), and ``..._euler``:
  ``--euler-steps`` (199) Euler steps, one guidance push per denoiser call (a sweep of the guidance
  strength: ``--methods diffusionpde_x3,diffusionpde_x30,diffusionpde_euler_x3``);

with, per ensemble, its distance to the Bayes answer and the ratio of its spread to the exact
posterior's; and beside them the rows of the trained prior and of the regressors recorded in
``benchmarks/results/pde_<pde>.json`` for the same cases.

    python -m benchmarks.pde_oracle                       # both PDEs, 4 cases, about 5 minutes
    python -m benchmarks.pde_oracle --pde poisson --cases 16

``--few-step`` measures instead quality against denoiser calls (1 to 64) on the exact prior (issue
#9): DiffusionPDE's Euler step with the paper's weights and with them scaled to the full run's total
push, against the full run (199 Euler steps, x3) and the Bayes answer
(``pde_oracle_few_step.json/.png``, about 5 minutes).

Writes ``benchmarks/results/pde_oracle.json`` and ``pde_oracle.png`` (the wanted field's error of every
row, exact prior beside trained prior; ``--quick``: ``pde_oracle_quick.*``); ``--replot`` redraws them
from the recorded rows after ``benchmarks/pde.py`` has added trained rows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import machine_info, write_result
from benchmarks.pde import CACHE, DENSITY, RESULTS, _metrics, _observation, diffusionpde_weights
from sciddm.datasets.pde import PDEDataConfig, generate_pde
from sciddm.domains.pde import load_pairs
from sciddm.domains.pde.data import FieldStats
from sciddm.domains.pde.guidance import denoiser_calls, diffusion_pde_sample
from sciddm.domains.pde.oracle import LINEAR_PDES, LinearPDEOracle
from sciddm.inverse import sample_posterior

SAMPLERS = ("diffusionpde", "diffusionpde_nopde", "diffusionpde_euler", "diffusionpde_x10", "dps", "daps", "tds")
CORE = ("dps", "daps", "tds")
TRAINED = ("diffusionpde", "dps", "daps", "tds", "fno", "unet")  # rows of pde_<pde>.json shown beside
SIGMA_Y = 1e-2  # the core samplers' observation noise in normalised units, as solve_pde's default


def _stats(pde: str) -> FieldStats | None:
    """The trained prior's normalisation, so that the oracle's state is the network's."""
    path = CACHE / f"{pde}32" / "normalization.json"
    return FieldStats.from_json(path) if path.exists() else None


def _oracle_and_pairs(pde: str) -> tuple[LinearPDEOracle, torch.Tensor]:
    """The exact 32x32 oracle in the trained prior's state and the test pairs of ``benchmarks/pde.py``."""
    oracle = LinearPDEOracle(pde, 32, stats=_stats(pde))
    test, _ = load_pairs(generate_pde(CACHE / f"{pde}_32_test.zarr", PDEDataConfig(pde, num_samples=16, resolution=32, seed=1)))
    return oracle, test


def _rel(p: torch.Tensor, q: torch.Tensor) -> float:
    return float((p - q).norm() / q.norm())


def _diffusionpde_run(method: str, steps: int, euler_steps: int) -> tuple[str, str, int]:
    """``(weights variant, solver, steps)`` of a DiffusionPDE row name: ``_euler`` anywhere in it means
    ``euler_steps`` Euler steps, the rest names the weights as in ``benchmarks/pde.py``."""
    if "_euler" in method:
        return method.replace("_euler", ""), "euler", euler_steps
    return method, "heun", steps


def _sampler(oracle: LinearPDEOracle, method: str, obs: Any, *, members: int, steps: int, euler_steps: int,
             core_steps: int, seed: int) -> tuple[torch.Tensor, int]:
    g = torch.Generator().manual_seed(seed)
    D = oracle.denoiser()
    if method.startswith("diffusionpde"):
        variant, solver, k = _diffusionpde_run(method, steps, euler_steps)
        w = diffusionpde_weights(oracle.pde, variant, k)
        with torch.enable_grad():
            x = diffusion_pde_sample(D, oracle.process, obs, oracle.stats, pde=oracle.pde, weights=w,
                                     num_samples=members, steps=k, solver=solver, generator=g)
        return x, denoiser_calls(k, solver)
    n = oracle.n
    steps_m = {"dps": core_steps, "daps": 20, "tds": core_steps}[method]
    op, y = obs.operator(oracle.stats, SIGMA_Y)
    with torch.enable_grad():
        z = sample_posterior(method, D, oracle.process, op, y, num_samples=members, steps=steps_m, x_shape=(2, n, n),
                             generator=g)
    return oracle.stats.denormalize(z.double()), steps_m * (5 if method == "daps" else 1)


def _trained_rows(pde: str, cases: int) -> list[dict[str, Any]]:
    """The trained prior's and the regressors' rows of ``pde_<pde>.json`` and of the 199-Euler-step
    run ``pde_<pde>_euler199.json`` (its rows renamed ``..._euler``), and the 199-Euler-step rows of
    the prior trained to its max_steps (``pde_<pde>32_long_euler199.json``, as ``trained_long/...``),
    for the first ``cases`` cases."""
    out = []
    sources = ((f"pde_{pde}.json", "", "trained"), (f"pde_{pde}_euler199.json", "_euler", "trained"),
               (f"pde_{pde}32_long_euler199.json", "_euler", "trained_long"))  # the prior trained to max_steps
    for name, suffix, prefix in sources:
        path = RESULTS / name
        if not path.exists():
            continue
        for r in json.loads(path.read_text())["rows"]:
            method = r["method"]
            if suffix:
                method = method.replace("diffusionpde", "diffusionpde_euler", 1)
            if r["case"] < cases and (method in TRAINED or method.startswith("diffusionpde")):
                out.append({**r, "pde": pde, "method": f"{prefix}/{method}"})
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """The wanted field's error (forward: u, inverse: a) of each row, exact prior beside trained prior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = result["summary"]
    panels = [(pde, prob) for pde in result["pdes"] for prob in ("forward", "inverse", "both")
              if f"{pde}/{prob}/bayes" in summary]
    if not panels:
        raise ValueError("no exact-posterior rows to draw: the result has no bayes rows")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 5.5), squeeze=False, sharey=True)
    order = ["exact_draws", "diffusionpde", "diffusionpde_nopde", "diffusionpde_x3", "diffusionpde_x10", "diffusionpde_x30",
             "diffusionpde_x100", "diffusionpde_scaled", "diffusionpde_euler", "diffusionpde_euler_x3",
             "diffusionpde_euler_x10", "dps", "daps", "tds", "unet", "fno"]
    drawn = {f"{pde}/{prob}/" for pde, prob in panels}
    methods = sorted({k.split("/", 2)[2].split("/")[-1] for k in summary
                      if "/bayes" not in k and any(k.startswith(d) for d in drawn)},
                     key=lambda m: (order.index(m) if m in order else len(order), m))
    kinds = (("", "tab:blue", "exact prior"), ("trained/", "tab:orange", "trained prior (10-min cap) / regressor"),
             ("trained_long/", "tab:green", "trained prior (6000 steps)"))
    for ax, (pde, prob) in zip(axes[0], panels):
        key = "u_rel_l2" if prob == "forward" else "a_rel_l2"
        for i, m in enumerate(methods):
            for j, (prefix, colour, label) in enumerate(kinds):
                s = summary.get(f"{pde}/{prob}/{prefix}{m}")
                if s and key in s:
                    ax.barh(i - 0.27 + 0.27 * j, min(s[key], 1.5), height=0.26, color=colour, label=label)
        ax.axvline(summary[f"{pde}/{prob}/bayes"][key], color="k", ls="--", lw=1, label="exact posterior mean")
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_xlim(0, 1.5)
        ax.set_title(f"{pde} {prob}: {'u' if prob == 'forward' else 'a'} rel. L2")  # both: a, as benchmarks/pde.py
    axes[0][0].invert_yaxis()  # once: the panels share the y axis, and each inversion would toggle it
    handles, labels = axes[0][0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(f"3 % observations, {result['cases']} cases, {result['members']} members (bars cut at 1.5)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Means over cases of each ``pde/problem/method``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['pde']}/{r['problem']}/{r['method']}", []).append(r)
    keys = ("u_rel_l2", "a_rel_l2", "coverage90", "to_bayes", "spread_ratio", "residual_rms", "seconds")
    out = {}
    for name, rs in groups.items():
        out[name] = {"cases": len(rs)}
        for k in keys:
            vals = [r[k] for r in rs if r.get(k) is not None]
            if vals:
                out[name][k] = sum(vals) / len(vals)
    return out


FEW_NFES = (1, 2, 4, 8, 16, 64)
FULL_FACTOR = 3.0  # the full run of the few-step comparison: 199 Euler steps, the paper's weights x3


def few_step(args: argparse.Namespace, pdes: list[str], problems: list[str], out: Path) -> dict[str, Any]:
    """Quality against denoiser calls on the exact prior (issue #9): DiffusionPDE's Euler step with
    ``k`` calls, with the paper's weights and with them scaled to the full run's total push
    (``x3`` over ``--euler-steps``, so ``x 3 * 199 / k``), against that full run and the Bayes answer."""
    rows: list[dict[str, Any]] = []
    full_steps = args.euler_steps
    result = {"mode": "few_step", "pdes": pdes, "cases": args.cases, "members": args.members, "density": DENSITY,
              "nfes": list(FEW_NFES), "full": {"solver": "euler", "steps": full_steps, "weights": f"paper x{FULL_FACTOR:g}"},
              "machine": machine_info(), "rows": rows}
    for pde in pdes:
        oracle, test = _oracle_and_pairs(pde)
        for case in range(args.cases):
            truth = test[case].double()
            for problem in problems:
                obs = _observation(truth, problem, case)
                c = 1 if problem == "forward" else 0
                bayes = oracle.posterior(obs).mean
                base = {"pde": pde, "case": case, "problem": problem, "bayes": _rel(bayes[c], truth[c])}
                runs = [("full", f"diffusionpde_euler_x{FULL_FACTOR:g}", full_steps)]
                runs += [(kind, name, k) for k in FEW_NFES
                         for kind, name in (("paper", "diffusionpde_euler"),
                                            ("scaled", f"diffusionpde_euler_x{FULL_FACTOR * full_steps / k:g}"))]
                for kind, name, k in runs:
                    t0 = time.time()
                    x, nfe = _sampler(oracle, name, obs, members=args.members, steps=args.steps, euler_steps=k,
                                      core_steps=args.core_steps, seed=case)
                    row = {**base, "method": kind, "weights": name, "nfe": nfe, "seconds": round(time.time() - t0, 2),
                           "error": _rel(x.mean(0)[c], truth[c]), "to_bayes": _rel(x.mean(0)[c], bayes[c])}
                    rows.append(row)
                    print(json.dumps(row))
                write_result(result, out)
    summary: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['pde']}/{r['problem']}/{r['method']}/{r['nfe']}", []).append(r)
    for key, rs in groups.items():
        summary[key] = {k: sum(r[k] for r in rs) / len(rs) for k in ("error", "to_bayes", "bayes")}
    result["summary"] = summary
    write_result(result, out)
    plot_few_step(result, out.with_suffix(".png"))
    return result


def plot_few_step(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    S = result["summary"]
    panels = sorted({tuple(k.split("/")[:2]) for k in S})
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, (pde, prob) in zip(axes[0], panels):
        for kind, colour, label in (("paper", "tab:orange", "Euler, paper's weights"),
                                    ("scaled", "tab:blue", "Euler, weights x 3 * full / k")):
            pts = sorted((int(k.split("/")[3]), v["error"]) for k, v in S.items() if k.startswith(f"{pde}/{prob}/{kind}/"))
            ax.plot([p[0] for p in pts], [min(p[1], 2.0) for p in pts], "o-", color=colour, label=label)
        full = next(v for k, v in S.items() if k.startswith(f"{pde}/{prob}/full/"))
        ax.axhline(full["error"], color="k", lw=1, label=f"full: {result['full']['steps']} Euler, x3")
        ax.axhline(full["bayes"], color="k", ls="--", lw=1, label="exact posterior mean")
        ax.axhspan(full["error"], 1.1 * full["error"], color="tab:green", alpha=0.2, label="within 10 % of full")
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 2.0)
        ax.set_xlabel("denoiser calls per sample")
        ax.set_title(f"{pde} {prob}: {'u' if prob == 'forward' else 'a'} rel. L2 (cut at 2)", fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pde", default="poisson,helmholtz", help=f"comma-separated, from {LINEAR_PDES}")
    p.add_argument("--cases", type=int, default=4, help="test pairs (1..16; benchmarks/pde.py ran 4)")
    p.add_argument("--members", type=int, default=19)
    p.add_argument("--steps", type=int, default=50, help="DiffusionPDE Heun steps (2 steps - 1 evaluations)")
    p.add_argument("--euler-steps", type=int, default=199, help="steps of the *_euler DiffusionPDE rows (one evaluation each)")
    p.add_argument("--core-steps", type=int, default=100, help="DPS and TDS steps (DAPS: 20 x 5)")
    p.add_argument("--methods", default=",".join(SAMPLERS))
    p.add_argument("--problems", default="forward,inverse")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="1 case, 8 members, 10 steps: pde_oracle_quick.json")
    p.add_argument("--out", default=None)
    p.add_argument("--few-step", action="store_true",
                   help="quality against calls on the exact prior (issue #9): pde_oracle_few_step.json/.png")
    p.add_argument("--replot", action="store_true",
                   help="no sampling: re-read the trained rows, summarise and draw the figure of an existing result")
    args = p.parse_args(argv)
    pdes = args.pde.split(",")
    bad = [x for x in pdes if x not in LINEAR_PDES]
    if bad:
        p.error(f"--pde {','.join(bad)}: the exact oracle covers {', '.join(LINEAR_PDES)}")
    methods = args.methods.split(",")
    for method in methods:
        try:
            if method not in CORE:
                if not method.startswith("diffusionpde"):
                    raise ValueError(f"unknown method {method!r}")
                diffusionpde_weights(pdes[0], _diffusionpde_run(method, 1, 1)[0], args.steps)
        except ValueError as e:
            p.error(f"--methods: {e}; the samplers are dps, daps, tds and diffusionpde[_nopde|_scaled|_x<factor>], "
                    "each DiffusionPDE one also with _euler")
    problems = args.problems.split(",")
    if set(problems) - {"forward", "inverse", "both"}:
        p.error("--problems: forward, inverse and/or both")
    if not 1 <= args.cases <= 16:
        p.error(f"--cases {args.cases}: the test store holds 16 pairs")
    for flag, value, least in (("--members", args.members, 2), ("--steps", args.steps, 2),
                               ("--euler-steps", args.euler_steps, 1), ("--core-steps", args.core_steps, 1)):
        if value < least:
            p.error(f"{flag} {value}: at least {least}")
    if args.quick:
        args.cases, args.members, args.steps, args.euler_steps, args.core_steps = 1, 8, 10, 10, 10
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else RESULTS / ("pde_oracle_quick.json" if args.quick else "pde_oracle.json")
    if args.few_step:
        few_step(args, pdes, problems, Path(args.out) if args.out else RESULTS / "pde_oracle_few_step.json")
        return
    if args.replot:
        if not out.exists():
            p.error(f"--replot: no result {out} to redraw")
        result = json.loads(out.read_text())
        rows = [r for r in result["rows"] if "/" not in r["method"]]  # drop every trained_*/ row read before
        for pde in result["pdes"]:
            rows.extend(_trained_rows(pde, result["cases"]))
        result["rows"], result["summary"] = rows, summarise(rows)
        write_result(result, out)
        plot(result, out.with_suffix(".png"))
        return
    rows: list[dict[str, Any]] = []
    result = {"pdes": pdes, "cases": args.cases, "members": args.members, "density": DENSITY,
              "diffusionpde_steps": args.steps, "euler_steps": args.euler_steps, "core_steps": args.core_steps, "sigma_y_core": SIGMA_Y,
              "machine": machine_info(), "oracles": {}, "rows": rows}
    for pde in pdes:
        t0 = time.time()
        oracle, test = _oracle_and_pairs(pde)
        result["oracles"][pde] = {**oracle.summary(), "build_seconds": round(time.time() - t0, 1)}
        for case in range(args.cases):
            truth = test[case].double()
            for problem in problems:
                obs = _observation(truth, problem, case)
                c = 1 if problem == "forward" else 0  # the wanted field (both: a, as benchmarks/pde.py)
                t0 = time.time()
                post = oracle.posterior(obs)
                bayes = post.mean
                base = {"pde": pde, "case": case, "problem": problem}
                row = {**base, "method": "bayes", "u_rel_l2": _rel(bayes[1], truth[1]), "a_rel_l2": _rel(bayes[0], truth[0]),
                       "coverage90": post.coverage(truth, c), "to_bayes": 0.0, "spread_ratio": 1.0,
                       "expected_u_rel_l2": float(post.std[1].norm() / truth[1].norm()),
                       "expected_a_rel_l2": float(post.std[0].norm() / truth[0].norm()),
                       "seconds": round(time.time() - t0, 2)}
                rows.append(row)
                print(json.dumps(row))
                exact_std = post.std[c].mean()
                draws = {"exact_draws": (lambda: (post.sample(args.members, generator=torch.Generator().manual_seed(case)), 0))}
                for method in methods:
                    draws[method] = (lambda m=method: _sampler(oracle, m, obs, members=args.members, steps=args.steps,
                                                               euler_steps=args.euler_steps, core_steps=args.core_steps,
                                                               seed=case))
                for method, run in draws.items():
                    t0 = time.time()
                    samples, evals = run()
                    row = {**base, "method": method, "denoiser_evals": evals, "seconds": round(time.time() - t0, 2),
                           **_metrics(samples.float(), truth.float(), problem, pde),
                           "to_bayes": float((samples.mean(0)[c] - bayes[c]).norm() / truth[c].norm()),
                           "spread_ratio": float(samples[:, c].std(0).mean() / exact_std)}
                    rows.append(row)
                    print(json.dumps(row))
                    write_result(result, out)
        rows.extend(_trained_rows(pde, args.cases) if not args.quick else [])
    result["summary"] = summarise(rows)
    write_result(result, out)
    plot(result, out.with_suffix(".png"))
    print(f"{'pde/problem/method':40s} {'u relL2':>8s} {'a relL2':>8s} {'cov90':>6s} {'->bayes':>8s} {'spread':>7s}")
    for k, s in result["summary"].items():
        f = lambda key: f"{s[key]:8.3f}" if key in s else f"{'-':>8s}"  # noqa: E731
        print(f"{k:40s} {f('u_rel_l2')} {f('a_rel_l2')} {f('coverage90')} {f('to_bayes')} {f('spread_ratio')}")


if __name__ == "__main__":
    main()
