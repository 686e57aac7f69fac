"""NUTS over θ (``control_inla={"int.strategy": "nuts"}``) against the default integration design.

For each case, the same model fitted warm (compiled once, then timed) with the default design
(Seeds: the compact/auto design; Germany bym2: CCD) and with NUTS over θ; columns:

* ``design_s``: the default fit's total wall time; ``nuts_s``: the NUTS fit's (mode search,
  chain and the mixture over the thinned draws);
* ``chain_s``: the chain alone; ``min_ess``: the smallest multi-chain ESS over the
  hyperparameters; ``s_per_ess`` = chain_s / min_ess; ``rhat``: the largest split R-hat;
* ``sd_ratio``: the range of the random effect's posterior sds, NUTS / default design
  (Seeds: the 21 plate effects, Germany: the 544 region effects of the bym2 sum);
* ``corrected_s``: the NUTS fit with ``correction="importance"`` (the same chain; importance
  sampling of π(y | θ) and of x at ``--points`` thinned draws with ``--is-draws`` draws each);
  ``is_s`` the correction alone, ``corrected_s_per_ess`` = (chain_s + is_s) / min_ess (the
  weights are near-uniform where π̃ is good: ``is_ess_points`` ≈ points), ``is_min_ess`` the
  smallest within-point effective sample size of the weights.

Germany bym2 is a warning, not a result: under R-INLA's tabulated PC prior for φ (flat for
logit φ > 12, :mod:`adelia.models.pc_bym_phi`) π̃(θ | y) is improper in logit φ, so the chains
drift into the tail and R-hat is large; see tests/inference/test_nuts_theta.py.

usage: python benchmarks/nuts_theta.py [seeds germany] [--chains 4 --draws 1000 --warmup 500 --points 1000 --is-draws 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def _case(name: str):
    import adelia

    if name == "seeds":
        return ("r ~ x1 + x2 + f(plate, model='iid')", adelia.datasets.load("Seeds"),
                {"family": "binomial", "Ntrials": "n"}, "plate", {})
    if name == "germany":
        graph = str(DATASETS / "germany.graph")
        return (f"Y ~ 1 + x + f(region, model='bym2', graph='{graph}')", pd.read_csv(DATASETS / "Germany.csv"),
                {"family": "poisson", "E": "E"}, "region", {"int.strategy": "ccd"})
    raise SystemExit(f"unknown case {name!r}; choose from seeds, germany")


def run(name: str, chains: int, draws: int, warmup: int, seed: int, points: int = 1000, is_draws: int = 64) -> dict:
    import adelia

    formula, data, kw, term, design_ci = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adelia.inla(formula, data, control_inla=design_ci, **kw)  # compile (not timed)
        t = time.perf_counter()
        default = adelia.inla(formula, data, control_inla=design_ci, **kw)
        design_s = time.perf_counter() - t
        nuts_ci = {"int.strategy": "nuts", "nuts": {"chains": chains, "draws": draws, "warmup": warmup, "seed": seed}}
        t = time.perf_counter()
        nuts = adelia.inla(formula, data, control_inla=nuts_ci, **kw)
        nuts_s = time.perf_counter() - t
        t = time.perf_counter()
        corrected = adelia.inla(formula, data, control_inla={
            "int.strategy": "nuts", "nuts": {**nuts_ci["nuts"], "points": points, "correction": "importance",
                                             "importance.draws": is_draws}}, **kw)
        corrected_s = time.perf_counter() - t
    diag = nuts.diagnostics["nuts"]
    imp = corrected.diagnostics["nuts"]["importance"]
    cdiag = corrected.diagnostics["nuts"]
    ratio = nuts.summary_random[term]["sd"].to_numpy() / default.summary_random[term]["sd"].to_numpy()
    pooled = nuts.posterior.nuts.pooled()
    return {
        "case": name, "design": default.posterior.design.strategy, "design_points": int(default.posterior.design.size),
        "design_s": design_s, "nuts_s": nuts_s, "chain_s": diag["seconds"], "chains": chains, "draws": draws,
        "warmup": warmup, "min_ess": float(np.min(diag["ess"])), "s_per_ess": diag["seconds_per_effective_sample"],
        "rhat": float(np.max(diag["rhat"])), "divergent": diag["divergent"], "n_evaluations": diag["n_evaluations"],
        "sd_ratio_min": float(ratio.min()), "sd_ratio_max": float(ratio.max()),
        "theta_max": np.round(pooled.max(axis=0), 2).tolist(), "names": diag["names"],
        "corrected_s": corrected_s, "is_s": imp["seconds"], "is_points": imp["points"], "is_draws": imp["draws"],
        "is_ess_points": imp["ess_points"], "is_min_ess": imp["min_ess_within"],
        "corrected_s_per_ess": (cdiag["seconds"] + imp["seconds"]) / max(float(np.min(cdiag["ess"])), 1e-12),
    }


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*", default=["seeds", "germany"])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--is-draws", type=int, default=64)
    a = ap.parse_args(argv)
    rows = []
    for name in a.cases:
        r = run(name, a.chains, a.draws, a.warmup, a.seed, a.points, a.is_draws)
        print(json.dumps(r), flush=True)
        rows.append(r)
    print(f"\n{'case':8s} {'design':>12s} {'design s':>8s} {'NUTS s':>7s} {'chain s':>7s} {'min ESS':>7s} "
          f"{'s/ESS':>7s} {'R-hat':>6s} {'div':>4s} {'sd ratio NUTS/design':>21s}")
    for r in rows:
        print(f"{r['case']:8s} {r['design'] + ' ' + str(r['design_points']):>12s} {r['design_s']:8.3f} {r['nuts_s']:7.2f} "
              f"{r['chain_s']:7.2f} {r['min_ess']:7.0f} {r['s_per_ess']:7.4f} {r['rhat']:6.3f} {r['divergent']:4d} "
              f"{r['sd_ratio_min']:10.3f}–{r['sd_ratio_max']:.3f}")
    print(f"\n{'case':8s} {'corrected s':>11s} {'IS s':>6s} {'points':>6s} {'draws':>5s} {'ESS pts':>7s} {'min ESS x':>9s} "
          f"{'s/ESS':>7s}")
    for r in rows:
        print(f"{r['case']:8s} {r['corrected_s']:11.2f} {r['is_s']:6.2f} {r['is_points']:6d} {r['is_draws']:5d} "
              f"{r['is_ess_points']:7.0f} {r['is_min_ess']:9.0f} {r['corrected_s_per_ess']:7.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
