"""Latency of small fits: fresh processes, first runs, second calls (issue 14).

For each small model (Seeds; Epil with two iid terms; Scotland and Germany bym2; a 200-row
rw2 model) the wall time of ``adelia.inla`` in four situations, each child a fresh Python
process with its own persistent compilation cache:

* (b) first run    — the very first fit on a machine: an empty compilation cache;
* (a) fresh, cache — a new process with the cache filled by (b): ``import adelia`` + the fit
                     (a user's second session);
* (c) other model  — a second ``inla()`` call in the same process with another formula (new
                     to the process); "new" when the cache has never seen it (in (b)'s
                     process), "cached" when it has (in (a)'s);
* (d) new data     — the same formula on new data of the same shape, in the same process;
* refit            — ``model.fit()`` on the compiled model.

and where the time of (b) and (a) goes (JAX's own monitoring events): tracing, lowering to
MLIR, XLA compilation or loading from the persistent cache, the rest (adelia's host code and
running the programs).

R-INLA's wall time per ``inla()`` call on this machine type (2 threads) from
../shared/reference (seeds_iid, scotland_bym2, tokyo_rw2_cyclic as the rw2 analogue;
P4_germany_bym2's median): the R-side Pre of the bym2 fits (~6–9 s) is R-INLA's tabulation
of the bym2 PC prior.

usage: python benchmarks/cold_start.py [seeds epil scotland germany rw2]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"

CHILD = r"""
import json, sys, time
t_start = time.perf_counter()
import adelia
t_import = time.perf_counter() - t_start
import collections, warnings
import numpy as np
import pandas as pd
from jax import monitoring

warnings.simplefilter("ignore")
events = collections.defaultdict(float)
monitoring.register_event_duration_secs_listener(lambda ev, dur, **kw: events.__setitem__(ev, events[ev] + dur))
case = json.loads(sys.argv[1])
shared = case["shared"]

def load(name):
    if name == "Seeds":
        return adelia.datasets.load("Seeds")
    if name == "rw2":
        rng = np.random.default_rng(7)
        t = np.arange(1, 201)
        return pd.DataFrame({"t": t, "x": rng.normal(size=200),
                             "y": np.sin(t / 20.0) + rng.normal(scale=0.3, size=200)})
    return pd.read_csv(f"{shared}/datasets/{name}.csv")

def new_data(df, response, family):
    rng = np.random.default_rng(11)
    out = df.copy()
    y = out[response].to_numpy(dtype=float)
    if family == "gaussian":
        out[response] = y + rng.normal(scale=0.1, size=y.size)
    else:  # counts: a thinned copy, same shape
        out[response] = rng.binomial(np.maximum(y, 0).astype(int), 0.9)
    return out

data = load(case["data"])
kw = dict(case["kw"])
context = {"g": f"{shared}/datasets/{case['graph']}"} if case.get("graph") else None
stages = {}

def fit(formula, df, label):
    events.clear()
    t = time.perf_counter()
    res = adelia.inla(formula, df, context=context, **kw)
    wall = time.perf_counter() - t
    trace = events["/jax/core/compile/jaxpr_trace_duration"]
    lower = events["/jax/core/compile/jaxpr_to_mlir_module_duration"]
    xla = events["/jax/core/compile/backend_compile_duration"]
    stages[label] = {"wall": wall, "trace": trace, "lower": lower, "xla": xla, "rest": wall - trace - lower - xla}
    return res, wall

res, first = fit(case["formula"], data, "first")
res2, other = fit(case["other"], data, "other")
res3, newdata = fit(case["formula"], new_data(data, case["response"], kw["family"]), "newdata")
t = time.perf_counter()
res3.model.fit()
refit = time.perf_counter() - t
print(json.dumps({"import": t_import, "first": first, "other": other, "newdata": newdata, "refit": refit, "stages": stages}))
"""

CASES = {
    "seeds": dict(data="Seeds", formula="r ~ x1 + x2 + f(plate, model='iid')", other="r ~ x1 + f(plate, model='iid')",
                  response="r", kw={"family": "binomial", "Ntrials": "n"}, rinla="rinla_perf/P4_seeds"),
    "epil": dict(data="Epil", formula="y ~ log(Base/4) + Trt + I(Trt*log(Base/4)) + log(Age) + V4 + f(Ind, model='iid') + f(rand, model='iid')",
                 other="y ~ log(Base/4) + Trt + log(Age) + f(Ind, model='iid') + f(rand, model='iid')",
                 response="y", kw={"family": "poisson"}, rinla=None),
    "scotland": dict(data="Scotland", formula="Counts ~ 1 + I(X/10) + f(Region, model='bym2', graph=g)",
                     other="Counts ~ 1 + f(Region, model='bym2', graph=g)", graph="scotland.graph",
                     response="Counts", kw={"family": "poisson", "E": "E"}, rinla="rinla/scotland_bym2"),
    "germany": dict(data="Germany", formula="Y ~ 1 + x + f(region, model='bym2', graph=g)",
                    other="Y ~ 1 + f(region, model='bym2', graph=g)", graph="germany.graph",
                    response="Y", kw={"family": "poisson", "E": "E"}, rinla="rinla_perf/P4_germany_bym2"),
    "rw2": dict(data="rw2", formula="y ~ f(t, model='rw2')", other="y ~ x + f(t, model='rw2')",
                response="y", kw={"family": "gaussian"}, rinla="rinla/tokyo_rw2_cyclic"),
}


def rinla_wall(rel: str | None) -> float | None:
    """R-INLA's wall time per inla() call (2 threads where measured)."""
    if rel is None:
        return None
    folder = SHARED / "reference" / rel
    if (folder / "timings.json").exists():
        runs = json.loads((folder / "timings.json").read_text())
        runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
        walls = sorted(r["wall"] for r in runs if str(r.get("threads", "")).startswith("2"))
        if walls:
            return walls[len(walls) // 2]
    if (folder / "results.json").exists():
        return json.loads((folder / "results.json").read_text())["timing"]["wall_time_inla_call_s"]
    return None


def child(case: dict, cache_dir: str) -> dict:
    env = dict(os.environ, ADELIA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps({**case, "shared": str(SHARED)})],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(names: list[str]) -> None:
    rows = []
    for name in names:
        case = CASES[name]
        with tempfile.TemporaryDirectory() as cache:
            empty = child(case, cache)   # (b), and (c) with a formula new to the cache
            filled = child(case, cache)  # (a), and (c) with a cached formula
        r = rinla_wall(case["rinla"])
        row = {"case": name, "rinla": r, "empty": empty, "filled": filled}
        print(json.dumps(row), flush=True)
        rows.append(row)

    def ratio(x, r):
        return f"{x / r:6.2f}" if r else "     —"

    print("\nwall time (s); R-INLA = its inla() call, 2 threads; ratios to it")
    print(f"{'case':9s} {'R-INLA':>6s} | {'(b) 1st':>8s} {'import':>7s} {'(a) fit':>7s} {'(a) tot':>7s} "
          f"{'(c) new':>7s} {'(c) cch':>7s} {'(d) data':>8s} {'refit':>6s} | {'(a)/R':>6s} {'(c)/R':>6s} {'(d)/R':>6s}")
    for row in rows:
        e, f, r = row["empty"], row["filled"], row["rinla"]
        total = f["import"] + f["first"]
        print(f"{row['case']:9s} {r if r else float('nan'):6.2f} | {e['import'] + e['first']:8.2f} {f['import']:7.2f} {f['first']:7.2f} "
              f"{total:7.2f} {e['other']:7.2f} {f['other']:7.2f} {f['newdata']:8.2f} {f['refit']:6.3f} | "
              f"{ratio(total, r)} {ratio(f['other'], r)} {ratio(f['newdata'], r)}")
    print("\nwhere the time goes (s): trace / lower to MLIR / XLA compile or cache load / rest (host code, running)")
    for row in rows:
        for label, src, key in (("(b) first", "empty", "first"), ("(a) first", "filled", "first"),
                                ("(c) cached", "filled", "other"), ("(d) new data", "filled", "newdata")):
            s = row[src]["stages"][key]
            print(f"{row['case']:9s} {label:13s} {s['wall']:6.2f} = {s['trace']:5.2f} + {s['lower']:5.2f} + {s['xla']:5.2f} + {s['rest']:5.2f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(CASES))
