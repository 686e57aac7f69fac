"""Large models on the CPU: wall time and peak memory of whole fits against R-INLA (issue 12).

Cases (seeded data; x ~ N(0, 1), u_g ~ N(0, 1/τ) with τ = 4, η = 0.5 + 0.3 x + u_g):

* ``iid1e5`` / ``iid1e6`` — Poisson ``y ~ x + f(g, model="iid")``, one observation per group,
  10⁵ / 10⁶ groups (n_latent = groups + 2).
* ``iid_rw2`` — Poisson ``y ~ x + f(g, model="iid") + f(t, model="rw2")`` with 10⁶ observations,
  10⁵ levels of g and 1000 of t, η adding a smooth 0.5 sin(2π t/1000).

Each fit runs in a fresh Python process with an empty persistent compilation cache (so the
wall time includes tracing and compiling, as a user's first fit), one after the other. The
child times ``adelia.inla`` plus the summary tables (``summary_fixed``, ``summary_random``,
``summary_hyperpar``) and reports its own peak resident set size,
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the whole process: Python, JAX, data).
R-INLA's figures are the lead's measurements on the same data and machine type (R-INLA 25.07,
2 threads): 10⁵ groups 21.6 s / 1.5 GB; 10⁶ groups: segfault after 3 min at 5 GB.

usage: python benchmarks/scale_cpu.py [iid1e5 iid1e6 iid_rw2] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time, warnings
case = sys.argv[1]
t0 = time.perf_counter()
import numpy as np, pandas as pd
import adelia
rng = np.random.default_rng(2024)
if case.startswith("iid1e"):
    ng = int(float(case[3:]))
    x = rng.normal(size=ng)
    u = rng.normal(size=ng) / 2.0
    g = np.arange(1, ng + 1)
    eta = 0.5 + 0.3 * x + u
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g})
    formula = "y ~ x + f(g, model='iid')"
else:
    n, ng, nt = 1_000_000, 100_000, 1000
    x = rng.normal(size=n)
    u = rng.normal(size=ng) / 2.0
    g = rng.integers(1, ng + 1, size=n)
    t = rng.integers(1, nt + 1, size=n)
    eta = 0.5 + 0.3 * x + u[g - 1] + 0.5 * np.sin(2 * np.pi * t / nt)
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g, "t": t})
    formula = "y ~ x + f(g, model='iid') + f(t, model='rw2')"
t1 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    res = adelia.inla(formula, df, family="poisson", verbose="--verbose" in sys.argv)
    tables = (res.summary_fixed, res.summary_random, res.summary_hyperpar)
t2 = time.perf_counter()
print(json.dumps({
    "case": case, "n_obs": len(df), "n_latent": int(res.model.graph.n_latent), "data_s": t1 - t0, "fit_s": t2 - t1,
    "stages": {k: round(v, 2) for k, v in res.posterior.timings.items()},
    "hyper_mean": res.summary_hyperpar["mean"].round(4).tolist(),
    "fixed_mean": res.summary_fixed["mean"].round(4).tolist(),
    "warnings": sorted({str(w.message)[:120] for w in caught}),
    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
}))
"""

RINLA = {"iid1e5": (21.6, 1.5), "iid1e6": (None, None), "iid_rw2": (None, None)}
RINLA_NOTE = {"iid1e6": "segfault after 3 min at 5 GB", "iid_rw2": "not run"}


def run_case(case: str, verbose: bool) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, ADELIA_CACHE_DIR=cache)
        args = [sys.executable, "-c", CHILD, case] + (["--verbose"] if verbose else [])
        out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"case": case, "error": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]}
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    if verbose:
        print(out.stdout, file=sys.stderr)
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=["iid1e5", "iid1e6", "iid_rw2"])
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    rows = []
    for case in a.cases:
        rec = run_case(case, a.verbose)
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    print(f"\n{'case':8s} {'n_obs':>8s} {'n_latent':>9s} {'fit s':>7s} {'peak GB':>8s} {'R-INLA s':>9s} {'R-INLA GB':>10s}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:8s} failed: {r['error']}")
            continue
        rs, rg = RINLA.get(r["case"], (None, None))
        note = RINLA_NOTE.get(r["case"], "")
        rcol = f"{rs:9.1f} {rg:10.1f}" if rs else f"{note:>20s}"
        print(f"{r['case']:8s} {r['n_obs']:8d} {r['n_latent']:9d} {r['fit_s']:7.1f} {r['peak_rss_gb']:8.2f} {rcol}")


if __name__ == "__main__":
    main()
