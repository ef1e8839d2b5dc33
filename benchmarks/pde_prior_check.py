"""Do the cached joint PDE priors tie the coefficient to the solution? (issue #5 diagnosis)

DiffusionPDE answers an inverse problem by moving the coefficient ``a`` until the solution ``u``
fits the observations; that only works if the joint prior ``p(a, u)`` has learned that ``u`` is
the PDE's solution for ``a``. This draws ``--samples`` unconditional samples from each cached
prior of ``benchmarks/pde.py`` (its own sampler: Heun, 18 steps on the Karras grid), solves the
PDE for each sample's coefficient with the data's solver
(:func:`sciddm.domains.pde.joint_consistency`; Darcy's coefficient thresholded at 7.5 as the
benchmark scores it) and reports the relative L2 distance of the sample's ``u`` from that
solution ("self"), against its distance from the solution of another sample's coefficient
("other", the level of no coupling). ``ratio = self / other``: 0 for pairs that obey the PDE,
about 1 for a prior whose ``u`` knows nothing of its ``a``. Also: the spread of the training
solutions (the distance between two training ``u``), and for Darcy the fraction of coefficient
pixels within 1.5 of the data's two values 3 and 12 (the data: 1).

Run: ``python -m benchmarks.pde_prior_check`` (a few minutes with the priors cached; writes
``benchmarks/results/pde_prior_check.json``; ``--priors darcy64_large`` runs one and keeps the
other priors' rows; each row records the machine and device it ran on; ``--device cuda`` samples
on a GPU, whose noise draws differ from the CPU's).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from benchmarks.common import machine_info, usable_device, write_result
from benchmarks.pde import CACHE, latest_checkpoint
from sciddm.domains.pde import joint_consistency, load_pairs, load_prior

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "pde_prior_check.json"
PRIORS = {"darcy32": ("darcy", "darcy_32.zarr"), "darcy64": ("darcy", "darcy_64.zarr"),
          "darcy64_large": ("darcy", "darcy_64_large.zarr"),
          "poisson32": ("poisson", "poisson_32.zarr"), "helmholtz32": ("helmholtz", "helmholtz_32.zarr"),
          "poisson32_long": ("poisson", "poisson_32.zarr"), "helmholtz32_long": ("helmholtz", "helmholtz_32.zarr")}


def check(name: str, samples: int, seed: int, device: str = "cpu") -> dict[str, Any]:
    pde, store = PRIORS[name]
    ckpt = latest_checkpoint(name)
    if ckpt is None or not (CACHE / store).exists():
        print(f"{name}: skipped (no prior or data under {CACHE}; train it with `sciddm fit --config "
              f"experiments/pde/{name}.yaml`)")
        return {"skipped": f"missing prior or data for {name}"}
    prior, stats = load_prior(ckpt, CACHE / name / "normalization.json")
    prior.to(device)
    t0 = time.perf_counter()
    with torch.no_grad():  # the noise is drawn where the network runs (a CUDA draw differs from a CPU one)
        z = prior.generate(samples, generator=torch.Generator(device).manual_seed(seed))
    fields = stats.denormalize(z.double().cpu())
    sample_s = time.perf_counter() - t0
    out = joint_consistency(fields, pde)
    train, _ = load_pairs(CACHE / store)
    u = train[:samples, 1].double()
    spread = ((u - u.roll(-1, 0)).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)).mean()
    row = {"pde": pde, "checkpoint": str(ckpt.resolve().relative_to(ROOT.parent)), "samples": samples,
           "sampler": prior.sampling_defaults(), "sample_s": sample_s, **out,
           "train_u_spread": float(spread)}
    if pde == "darcy":
        a = fields[:, 0]
        row["a_near_two_values"] = float(((a - 3).abs().le(1.5) | (a - 12).abs().le(1.5)).double().mean())
    print(f"{name}: u vs the solution for its own a {out['self_mean']:.3f}, for another sample's a "
          f"{out['other_mean']:.3f} (ratio {out['ratio']:.2f}); training u differ by {float(spread):.3f}"
          + (f"; a pixels near 3 or 12: {row['a_near_two_values']:.3f}" if pde == "darcy" else ""))
    return row


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--priors", default=",".join(PRIORS), help=f"comma-separated, from {sorted(PRIORS)}")
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the priors' networks sample (e.g. cuda)")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    try:
        a.device = str(usable_device(a.device))
    except ValueError as e:
        p.error(str(e))
    names = [n for n in a.priors.split(",") if n]
    unknown = [n for n in names if n not in PRIORS]
    if unknown or not names:
        p.error(f"unknown prior(s) {unknown}; choose from {sorted(PRIORS)}")
    if a.samples < 2:
        p.error("--samples must be >= 2 (the 'other' comparison pairs samples)")
    torch.set_num_threads(a.threads)
    machine = machine_info()
    rows = {n: check(n, a.samples, a.seed, a.device) for n in names}
    for row in rows.values():  # each row records its own run: a record mixes runs
        row["run"] = {"machine": machine["platform"], "torch": machine["torch"], "device": a.device,
                      "date": machine["date"]}
    old = json.loads(a.out.read_text()).get("priors", {}) if a.out.exists() else {}
    result = {"machine": machine, "args": {k: str(v) for k, v in vars(a).items()},
              "priors": {**{n: r for n, r in old.items() if n not in rows}, **rows}}  # the priors not run are kept
    write_result(result, a.out)
    print(f"wrote {a.out}")
    return result


if __name__ == "__main__":
    main()
