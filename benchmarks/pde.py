"""DiffusionPDE benchmark (Huang et al. 2024) at 32x32 (``--resolution 64``: Darcy on the goal grid).

Darcy flow by default, ``--pde poisson``,
``--pde helmholtz`` (forward: a observed at 3%, u wanted; inverse: u observed at 3%, a wanted)
and ``--pde burgers`` (the (x, t) image; sensors: u seen at 5 fixed positions at every time, the
paper's problem; inverse: u at 3% of the image, u0 and u wanted) and ``--pde navier_stokes`` (the pairs
(w_0, w_T); no residual, so no joint prior: only the conditional model and the regressors), answered by

* DiffusionPDE guidance (EDM Heun + observation and PDE-residual guidance) with the paper's
  weights for that PDE (Darcy zeta_a=5, zeta_u=3000, zeta_pde=100; Poisson 0.8/40/1; Helmholtz
  0.8/60/1; Burgers 0.5/0.5/100 from their 320 / (128 x 5) normalised one; as given for 2000
  steps at 128x128, applied in its residual and state units: ``sciddm.domains.pde.guidance``), and
  the same without PDE guidance
  (``diffusionpde_nopde``), and with the weights times 2000 / steps (``diffusionpde_scaled``: the
  paper's total guidance push over its 2000 steps, given in 50) or times a factor
  (``diffusionpde_x10``);
* the core's posterior samplers DPS, DAPS and TDS on the same observation (core ``Mask``);
* an FNO and a UNet regressor trained on the same data, fed the masked fields + masks;
* ``conditional``: the amortised conditional diffusion model ``experiments/pde/<prior>_cond.yaml``
  (``sciddm.domains.pde.conditional``; fed what the regressors are fed, regression mean plus a
  diffusion model of the residual, sampled with its default 18 Heun steps, 35 evaluations; not in
  the default ``--methods``: it is a model of its own, trained by ``sciddm fit``);
  ``conditional_mu``: that model's regression mean ``mu(c)`` alone (no diffusion, no ensemble). A run
  of only these and ``fno`` and ``unet`` loads no prior (the regressors then use the conditional
  model's normalisation); ``--baseline-density`` trains the regressors for another density.

    python -m benchmarks.pde                     # Darcy, ~12 min on 2 busy CPU cores with a cached prior
    python -m benchmarks.pde --pde poisson       # likewise; also helmholtz, burgers
    python -m benchmarks.pde --quick             # 1 case, 8 members, writes pde_<pde>_quick.json only
    python -m benchmarks.pde --resolution 64 --cases 3 --threads 2   # Darcy 64x64 (full command: docs/pde.md)
    python -m benchmarks.pde --resolution 64 --prior darcy64_large   # another cached prior: pde_darcy64_large.json
    python -m benchmarks.pde ... --device cuda   # the prior's network on a GPU; samplers stay on the CPU

The prior is ``experiments/pde/<pde><resolution>.yaml`` trained by ``sciddm fit`` (32x32: about
10 minutes; ``darcy64``: 80 minutes; cached under ``benchmarks/cache/pde/``). Test pairs come from
a separate store (seed 1), never
seen in training. Metrics: relative L2 error of u and of a (ensemble mean), for Darcy the error
rate of the binary coefficient (mean thresholded at the midpoint of 3 and 12, as the paper's
code), the RMS PDE residual of the answer (Darcy: of the thresholded a; truth: ``resid_truth``),
coverage of the central 90% interval (``sciddm.uq.interval_coverage``, Weibull quantiles, exact
at 19 members) of the wanted field, denoiser evaluations and wall time. Writes
``benchmarks/results/pde.json`` (Darcy 32x32), ``pde_<pde>.json`` or, at 64x64,
``pde_<pde>64.json`` after every row, and uncertainty maps ``pde_<pde>[64]_<problem>.png``.
Burgers' baselines train on half sensor, half point masks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.common import machine_info, usable_device, write_result
from sciddm.datasets.pde import PDEDataConfig, generate_pde
from sciddm.domains.pde import load_pairs
from sciddm.domains.pde.baselines import FNO2d, UNetRegressor, sensor_problem_masks, train_regressor
from sciddm.domains.pde.conditional import observation_condition, solve_conditional
from sciddm.domains.pde.guidance import PAPER_STEPS, PAPER_WEIGHTS, GuidanceWeights, denoiser_calls
from sciddm.domains.pde.residuals import RESIDUALS, pde_residual
from sciddm.domains.pde.operators import FieldObservation, observe, sensor_mask
from sciddm.domains.pde.solve import load_prior, make_observation, solve_pde
from sciddm.uq import interval_coverage

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path("benchmarks/cache/pde")
RESULTS = Path("benchmarks/results")
PDE_CHOICES = ("darcy", "poisson", "helmholtz", "burgers", "navier_stokes")
DENSITY = 0.03  # the observed fraction of the issue and the paper (500 of 128x128); the baselines train at it
FIELD_NAMES = {"burgers": ("u0", "u"), "navier_stokes": ("w_0", "w_T")}  # the maps' row labels (else a, u)
SENSORS = 5  # DiffusionPDE's Burgers problem: u seen at 5 fixed positions x, at every time
# The paper's own code re-run at 128x128 with 2000 Heun steps (issue #5); no re-run numbers for
# Poisson / Helmholtz are recorded here.
PAPER = {"darcy forward u rel. L2 (128x128, 2000 steps)": 0.026, "darcy inverse a error rate": 0.035,
         "burgers": 0.081}


def _tag(pde: str, resolution: int) -> str:
    """``<pde>`` at 32x32 (the historical names), ``<pde><resolution>`` otherwise."""
    return pde if resolution == 32 else f"{pde}{resolution}"


def _out(pde: str, resolution: int = 32) -> Path:
    """Darcy at 32x32 keeps its historical ``pde.json``; the others write ``pde_<tag>.json``."""
    return RESULTS / ("pde.json" if (pde, resolution) == ("darcy", 32) else f"pde_{_tag(pde, resolution)}.json")


def latest_checkpoint(name: str) -> Path | None:
    """The newest ``last.ckpt`` of the cached prior ``name`` (e.g. ``darcy64``), or None."""
    ckpts = sorted((CACHE / name / "lightning_logs").glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpts[-1] if ckpts else None


def _checkpoint(name: str) -> Path:
    ckpt = latest_checkpoint(name)
    if ckpt is None:
        raise SystemExit(f"no checkpoint under {CACHE / name}: run `OMP_NUM_THREADS=1 sciddm fit --config "
                         f"experiments/pde/{name}.yaml` first (10-80 minutes, see the config)")
    return ckpt


def file_above(ckpt: Path, name: str) -> Path | None:
    """The file ``name`` in the nearest directory above a checkpoint (where sciddm fit writes a run's
    ``normalization.json`` and Lightning its ``config.yaml``), or None."""
    return next((d / name for d in ckpt.parents if (d / name).is_file()), None)


def conditional_checkpoint(name: str) -> tuple[Path, Path]:
    """The checkpoint and ``normalization.json`` of a conditional model: ``name`` a cached run under
    benchmarks/cache/pde (its newest ``last.ckpt``), or the path of one checkpoint (``*.ckpt``, e.g.
    ``.../checkpoints/step=2000.ckpt``; the normalisation is found in a directory above it).
    Raises ValueError, saying how to get one, when either is missing."""
    if name.endswith(".ckpt"):
        ckpt = Path(name)
        norm = file_above(ckpt, "normalization.json")
        if not ckpt.is_file() or norm is None:
            raise ValueError(f"--conditional-model {name}: no such checkpoint, or no normalization.json in a directory "
                             "above it (the run's root, where sciddm fit writes it)")
        return ckpt, norm
    found, norm = latest_checkpoint(name), CACHE / name / "normalization.json"
    if found is None or not norm.is_file():
        raise ValueError(f"method conditional: no model under {CACHE / name}; train it with `OMP_NUM_THREADS=1 sciddm "
                         f"fit --config experiments/pde/{name}.yaml` (or name another with --conditional-model)")
    return found, norm


def held_out_pairs(pde: str, res: int) -> torch.Tensor:
    """The 16 held-out test pairs of every PDE benchmark (their own store, seed 1; generated once)."""
    path = generate_pde(CACHE / f"{pde}_{res}_test.zarr", PDEDataConfig(pde, num_samples=16, resolution=res, seed=1))
    return load_pairs(path)[0]


def _baseline(pde: str, kind: str, res: int, stats: Any, steps: int, store: str | None = None,
              density: float = DENSITY) -> torch.nn.Module:
    """The FNO or UNet regressor, cached per PDE, grid, step count, training store and density; if
    missing, trained on the ``<pde>_<res>.zarr`` store (or ``store``, e.g. ``darcy_64_large``)
    normalised with ``stats``, on masks at ``density``."""
    default = f"{pde}_{res}"
    store = store or default
    name = f"{pde}{res}_{kind}_{steps}" if store == default else f"{store}_{kind}_{steps}"
    path = CACHE / (f"{name}.pt" if density == DENSITY else f"{name}_density{density:g}.pt")
    model = FNO2d() if kind == "fno" else UNetRegressor()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    train, _ = load_pairs(CACHE / f"{store}.zarr")
    train = stats.normalize(train[:-100].double()).float()
    t0 = time.time()
    masks = _burgers_masks if pde == "burgers" else None  # train on the patterns it is tested on
    train_regressor(model, train, density=density, steps=steps, batch_size=32, lr=1e-3, seed=0, progress=True, masks=masks)
    torch.save(model.state_dict(), path)
    print(f"trained {kind} for {steps} steps in {time.time() - t0:.0f} s")
    return model.eval()


def _burgers_masks(batch: int, n: int, density: float, g: torch.Generator) -> torch.Tensor:
    """Half random point masks of the three kinds, half the sensor pattern (on u) of the benchmark."""
    return sensor_problem_masks(batch, n, density, g, sensors=SENSORS)


def _observation(truth: torch.Tensor, problem: str, case: int, density: float = DENSITY) -> FieldObservation:
    g = torch.Generator().manual_seed(100 + case)
    if problem == "sensors":
        mask = torch.zeros_like(truth)
        mask[1] = sensor_mask(truth.shape[-1], SENSORS, generator=g)
        return observe(truth, mask)
    return make_observation(truth, problem, density, generator=g)


def kept_rows(old: dict[str, Any], methods: list[str], problems: list[str],
              cases: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What ``--append`` keeps of an earlier result ``old``: its rows that this run (``methods`` x
    ``problems`` x the first ``cases`` cases) does not replace, and the machines (with their dates)
    of the runs those rows come from, ``old``'s own last."""
    rows = [r for r in old["rows"] if not (r["method"] in methods and r["problem"] in problems and r["case"] < cases)]
    return rows, old.get("earlier_runs", []) + [old["machine"]]


def needs_prior(methods: list[str]) -> bool:
    """Whether a run of ``methods`` samples the joint prior: DiffusionPDE and the core's samplers do
    (and the maps, DiffusionPDE's); the conditional model and the regressors do not, and a run of
    them alone takes its normalisation from the conditional model (fitted on the same training pairs)
    or, with only regressors, from the prior's ``normalization.json``."""
    amortised = ("conditional", "conditional_mu")
    return not any(m in amortised for m in methods) or any(m not in ("fno", "unet", *amortised) for m in methods)


def diffusionpde_weights(pde: str, method: str, steps: int) -> GuidanceWeights:
    """The guidance weights of a DiffusionPDE row: ``diffusionpde`` the paper's, ``diffusionpde_nopde``
    without the residual term, ``diffusionpde_scaled`` times ``2000 / steps`` (the paper's total push
    over its 2000 steps), ``diffusionpde_x<f>`` times ``f`` (e.g. ``diffusionpde_x10``)."""
    w = PAPER_WEIGHTS[pde]
    variant = method.removeprefix("diffusionpde").removeprefix("_")
    if variant == "":
        return w
    if variant == "nopde":  # ablation: observation guidance only
        return GuidanceWeights(w.zeta_obs_a, w.zeta_obs_u, 0.0)
    if variant == "scaled":  # fixed-size pushes: keep the paper's total over 2000 steps
        return w.scaled(PAPER_STEPS / steps)
    if variant.startswith("x"):
        try:
            factor = float(variant[1:])
        except ValueError:
            factor = -1.0
        if factor > 0:
            return w.scaled(factor)
    raise ValueError(f"unknown DiffusionPDE variant {method!r}: diffusionpde, diffusionpde_nopde, diffusionpde_scaled "
                     "or diffusionpde_x<factor> (a positive number)")


def _metrics(samples: torch.Tensor, truth: torch.Tensor, problem: str, pde: str) -> dict[str, Any]:
    mean = samples.mean(0)
    rel = lambda p, q: float((p - q).norm() / q.norm())  # noqa: E731
    row = {"u_rel_l2": rel(mean[1], truth[1]), "a_rel_l2": rel(mean[0], truth[0])}
    if pde == "darcy":  # binary coefficient: the paper thresholds the mean midway between 3 and 12
        a = torch.where(mean[0] > 7.5, 12.0, 3.0).double()
        row["a_error_rate"] = float((a != truth[0]).double().mean())
    else:
        a = mean[0].double()
    if pde in RESIDUALS:  # Navier-Stokes pairs (w_0, w_T) have no local residual (docs/pde.md)
        row["residual_rms"] = float(pde_residual(pde, a[None], mean[1][None].double()).pow(2).mean().sqrt())
    if samples.shape[0] > 1:
        c = 1 if problem in ("forward", "sensors") else 0  # the wanted field
        row["coverage90"] = float(interval_coverage(samples[:, c], truth[c], 0.9))
        row["coverage90_u"] = float(interval_coverage(samples[:, 1], truth[1], 0.9))
    return row


def plot_maps(prior: Any, stats: Any, truth: torch.Tensor, pde: str, problems: list[str], *, members: int,
              steps: int, tag: str | None = None, density: float = DENSITY, solver: str = "heun",
              conditional: bool = False) -> None:
    """Uncertainty maps of one test pair, ``pde_<tag>_<problem>.png``: DiffusionPDE with the paper's
    weights on the joint ``prior``, or with ``conditional`` the conditional model ``prior`` (its
    default sampler; ``steps`` and ``solver`` are then not used)."""
    from sciddm.domains.pde.plots import plot_solution

    res = truth.shape[-1]
    for problem in problems:
        obs = _observation(truth, problem, 0, density)
        seen = f"u at {SENSORS} fixed positions" if problem == "sensors" else f"{100 * density:.3g}% observed"
        g = torch.Generator().manual_seed(0)
        if conditional:
            sol, who = solve_conditional(prior, stats, obs, num_samples=members, generator=g), "conditional model"
        else:
            sol, who = solve_pde(prior, stats, obs, pde=pde, num_samples=members, steps=steps, generator=g,
                                 solver=solver), "DiffusionPDE"
        plot_solution(truth, sol, obs, RESULTS / f"pde_{tag or _tag(pde, res)}_{problem}.png",
                      f"{who}, {pde} {res}x{res}, {problem}, {seen}, {members} members",
                      names=FIELD_NAMES.get(pde, ("a", "u")))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pde", choices=PDE_CHOICES, default="darcy")
    p.add_argument("--cases", type=int, default=6)
    p.add_argument("--members", type=int, default=19)
    p.add_argument("--resolution", type=int, choices=(32, 64), default=32,
                   help="grid of the prior experiments/pde/<pde><resolution>.yaml (64: Darcy only)")
    p.add_argument("--steps", type=int, default=50, help="steps of DiffusionPDE (Heun: 2 steps - 1 evaluations)")
    p.add_argument("--solver", choices=("heun", "euler"), default="heun",
                   help="DiffusionPDE's ODE step: the paper's Heun, or Euler (one evaluation and one guidance push a "
                        "step); euler writes pde_<tag>_euler<steps>.json")
    p.add_argument("--core-steps", type=int, default=100, help="steps of DPS and TDS (one evaluation each; DAPS: 20 x 5)")
    p.add_argument("--baseline-steps", type=int, default=600)
    p.add_argument("--baseline-data", default=None,
                   help="training store of the regressors under benchmarks/cache/pde (default <pde>_<resolution>, "
                        "e.g. darcy_64_large for the pairs the large prior was trained on)")
    p.add_argument("--methods", default="diffusionpde,diffusionpde_nopde,dps,daps,tds,fno,unet")
    p.add_argument("--conditional-model", default=None,
                   help="cached conditional model of the 'conditional' method (default <prior>_cond, e.g. darcy32_cond; "
                        "its last checkpoint), or the path of one checkpoint (*.ckpt) of such a run")
    p.add_argument("--problems", default=None, help="default forward,inverse (Burgers: sensors,inverse)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: leaves a core to training beside it)")
    p.add_argument("--prior", default=None,
                   help="cached prior experiments/pde/NAME.yaml (default <pde><resolution>; e.g. darcy64_large); "
                        "results go to pde_NAME.json")
    p.add_argument("--density", type=float, default=DENSITY,
                   help=f"fraction of the grid observed (default {DENSITY}); another value writes pde_<tag>_density<d>.json")
    p.add_argument("--baseline-density", type=float, default=DENSITY,
                   help=f"fraction observed in the regressors' training masks (default {DENSITY} whatever --density is, "
                        "as the older results; give --density's value to train them for the problem they are asked)")
    p.add_argument("--device", default="cpu",
                   help="where the prior's network runs (e.g. cuda); samplers and baselines stay on the CPU")
    p.add_argument("--no-maps", dest="maps", action="store_false",
                   help="skip the uncertainty maps (another ensemble per problem, DiffusionPDE's or else the "
                        "conditional model's)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None, help="result JSON (default benchmarks/results/pde.json, pde_<pde>.json)")
    p.add_argument("--append", action="store_true",
                   help="add these rows to the existing results (replacing rows of the same case, problem and method; "
                        "the maps, DiffusionPDE's, are drawn only when diffusionpde is among the methods); 'machine' "
                        "is then this run's, the earlier runs' are kept under 'earlier_runs', and each row has its date")
    args = p.parse_args(argv)
    try:
        args.device = str(usable_device(args.device))
    except ValueError as e:
        p.error(str(e))
    if args.quick:
        args.cases, args.members = 1, 8
    torch.set_num_threads(args.threads)
    pde, res = args.pde, args.resolution
    name = args.prior or f"{pde}{res}"
    methods = args.methods.split(",")
    config = ROOT / "experiments" / "pde" / f"{name}.yaml"
    if needs_prior(methods) or config.is_file():  # Navier-Stokes has no prior: its conditional runs need none
        if not config.is_file():
            p.error(f"no prior config experiments/pde/{name}.yaml for --pde {pde} --resolution {res}"
                    + (" (Navier-Stokes: --methods conditional,conditional_mu,fno,unet)" if pde == "navier_stokes" else ""))
        made = yaml.safe_load(config.read_text())["data"]["init_args"].get("generate") or {}
        if (made.get("pde"), made.get("resolution")) != (pde, res):
            p.error(f"prior {name} is trained on {made.get('pde')} at {made.get('resolution')}x{made.get('resolution')} "
                    f"(experiments/pde/{name}.yaml), not --pde {pde} --resolution {res}")
    out, tag = _out(pde, res), _tag(pde, res)
    if args.prior is not None:
        out, tag = RESULTS / f"pde_{name}.json", name
    for flag, value in (("--density", args.density), ("--baseline-density", args.baseline_density)):
        if not 0.0 < value <= 1.0:
            p.error(f"{flag} {value}: a fraction in (0, 1]")
    if args.density != DENSITY:
        tag = f"{tag}_density{args.density:g}"
        out = RESULTS / f"pde_{tag}.json"
    if args.solver != "heun":
        tag = f"{tag}_{args.solver}{args.steps}"
        out = RESULTS / f"pde_{tag}.json"
    if args.quick:  # a smoke run never overwrites the recorded results or figures
        out = RESULTS / f"pde_{tag}_quick.json"
    if args.out is not None:  # the maps follow the result's name: pde_X.json -> pde_X_<problem>.png
        out = Path(args.out)
        tag = out.stem.removeprefix("pde_")
    if args.problems is None:
        args.problems = "sensors,inverse" if pde == "burgers" else "forward,inverse"
    problems = args.problems.split(",")
    for method in methods:
        if method.startswith("diffusionpde"):
            try:
                diffusionpde_weights(pde, method, args.steps)
            except ValueError as e:
                p.error(str(e))
        elif method not in ("dps", "daps", "tds", "fno", "unet", "conditional", "conditional_mu"):
            p.error(f"unknown method {method!r}: diffusionpde[_nopde|_scaled|_x<factor>], dps, daps, tds, fno, unet, "
                    "conditional, conditional_mu")
    if args.baseline_data is not None and not (CACHE / f"{args.baseline_data}.zarr").exists():
        p.error(f"--baseline-data {args.baseline_data}: no store {CACHE / (args.baseline_data + '.zarr')}")
    conditional = None
    if "conditional" in methods or "conditional_mu" in methods:
        try:
            cckpt, norm = conditional_checkpoint(args.conditional_model or f"{name}_cond")
        except ValueError as e:
            p.error(str(e))
        conditional = load_prior(cckpt, norm)
        conditional[0].to(args.device)
    prior = None
    if needs_prior(methods):
        prior, stats = load_prior(_checkpoint(name), CACHE / name / "normalization.json")
        prior.to(args.device)
    else:
        stats = conditional[1]
    test = held_out_pairs(pde, res)
    rows, earlier = kept_rows(json.loads(out.read_text()), methods, problems, args.cases) \
        if args.append and out.exists() else ([], [])
    result = {"pde": pde, "resolution": res, "density": args.density, "members": args.members, "cases": args.cases,
              "diffusionpde_steps": args.steps, "diffusionpde_solver": args.solver,
              "paper_weights": vars(PAPER_WEIGHTS[pde]) if pde in PAPER_WEIGHTS else None,
              "baseline_steps": args.baseline_steps, "baseline_data": args.baseline_data or f"{pde}_{res}",
              "baseline_density": args.baseline_density,
              "core_steps": args.core_steps, "threads": args.threads,
              "guidance_units": "DiffusionPDE's residual and state units (paper_residual_scale, PAPER_STATE_SCALE)",
              "paper_reference": PAPER, "machine": machine_info(), "rows": rows, "prior": name,
              "device": str(args.device), **({"earlier_runs": earlier} if earlier else {})}
    result["scaled_factor"] = PAPER_STEPS / args.steps
    baselines = {k: _baseline(pde, k, res, stats, args.baseline_steps, args.baseline_data, args.baseline_density)
                 for k in ("fno", "unet") if k in methods}
    for case in range(args.cases):
        truth = test[case].double()
        for problem in problems:
            obs = _observation(truth, problem, case, args.density)
            for method in methods:
                g = torch.Generator().manual_seed(case)
                t0 = time.time()
                if method in baselines:
                    with torch.no_grad():
                        z = baselines[method](observation_condition(obs, stats))
                    samples, evals = stats.denormalize(z.double()), 0
                elif method == "conditional_mu":  # its regression mean alone: one network call, no ensemble
                    cmodel, cstats = conditional
                    with torch.no_grad():
                        z = cmodel.regress(observation_condition(obs, cstats).to(next(cmodel.parameters()).device))
                    samples, evals = cstats.denormalize(z.double().cpu()), 0
                elif method == "conditional":
                    cmodel, cstats = conditional
                    samples = solve_conditional(cmodel, cstats, obs, num_samples=args.members, generator=g).samples
                    csteps = int(cmodel.hparams.sample_steps)  # Heun: no correction on the last step, to sigma = 0
                    evals = 2 * csteps - 1 if cmodel.hparams.sample_solver == "heun" else csteps
                elif method.startswith("diffusionpde"):
                    w = diffusionpde_weights(pde, method, args.steps)
                    samples = solve_pde(prior, stats, obs, pde=pde, method="diffusionpde", weights=w,
                                        num_samples=args.members, steps=args.steps, generator=g,
                                        solver=args.solver).samples
                    evals = denoiser_calls(args.steps, args.solver)
                else:
                    steps = {"dps": args.core_steps, "daps": 20, "tds": args.core_steps}[method]
                    samples = solve_pde(prior, stats, obs, pde=pde, method=method, num_samples=args.members,
                                        steps=steps, generator=g).samples
                    evals = steps * (5 if method == "daps" else 1)
                row = {"case": case, "problem": problem, "method": method, "date": result["machine"]["date"],
                       "denoiser_evals": evals,
                       "seconds": round(time.time() - t0, 1), **_metrics(samples.float(), truth.float(), problem, pde)}
                rows.append(row)
                print(json.dumps(row))
                write_result(result, out)
    cases = max(r["case"] for r in rows) + 1
    if pde in RESIDUALS:
        result["resid_truth"] = [float(pde_residual(pde, test[i][0:1].double(), test[i][1:2].double()).pow(2).mean().sqrt())
                                 for i in range(cases)]
    summary: dict[str, dict[str, float]] = {}
    count = {}
    for r in rows:
        key = f"{r['problem']}/{r['method']}"
        count[key] = count.get(key, 0) + 1
    for r in rows:  # means over the cases each (problem, method) has
        key = f"{r['problem']}/{r['method']}"
        s = summary.setdefault(key, {})
        for k in ("u_rel_l2", "a_error_rate", "a_rel_l2", "residual_rms", "coverage90", "seconds"):
            if k in r and r[k] is not None:
                s[k] = s.get(k, 0.0) + r[k] / count[key]
    result["summary"] = summary
    write_result(result, out)
    if not args.quick and args.maps and "diffusionpde" in methods:  # the maps are DiffusionPDE's, or else
        plot_maps(prior, stats, test[0].double(), pde, problems, members=args.members, steps=args.steps, tag=tag,
                  density=args.density, solver=args.solver)
    elif not args.quick and args.maps and "conditional" in methods:  # the conditional model's; others draw none
        plot_maps(conditional[0], conditional[1], test[0].double(), pde, problems, members=args.members,
                  steps=args.steps, tag=tag, density=args.density, conditional=True)
    print(f"{'problem/method':28s} {'u relL2':>8s} {'a err':>7s} {'a relL2':>8s} {'resid':>9s} {'cov90':>6s} {'sec':>6s}")
    for k, s in summary.items():
        print(f"{k:28s} {s['u_rel_l2']:8.4f} {s.get('a_error_rate', float('nan')):7.4f} {s['a_rel_l2']:8.4f} "
              f"{s.get('residual_rms', float('nan')):9.3g} "
              f"{s.get('coverage90', float('nan')):6.3f} {s['seconds']:6.1f}")


if __name__ == "__main__":
    main()
