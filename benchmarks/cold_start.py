"""Seeds: cold-start and warm wall time of ``adelia.inla`` against R-INLA (issue 5).

Each measurement runs in a fresh Python process:

* cold, empty cache — a new, empty persistent compilation cache (first fit ever);
* cold, warm cache  — a fresh process with the cache filled by the previous run (a user's
  second session);
* warm              — a second ``adelia.inla`` call in the same process (new model, traced
  again, compiled code from the cache), and ``model.fit()`` on an already compiled model.

R-INLA's wall time for the same fit on this machine type: seeds_iid results.json
(``wall_time_inla_call_s`` ≈ 0.6 s) and the P4_seeds timings (2 threads ≈ 0.33 s).

usage: python benchmarks/cold_start.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, time
t0 = time.perf_counter()
import adelia
t1 = time.perf_counter()
seeds = adelia.datasets.load("Seeds")
f = "r ~ x1 + x2 + f(plate, model='iid')"
import warnings; warnings.simplefilter("ignore")
res = adelia.inla(f, seeds, family="binomial", Ntrials="n")
t2 = time.perf_counter()
res2 = adelia.inla(f, seeds, family="binomial", Ntrials="n")
t3 = time.perf_counter()
res2.model.fit()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_fit_s": t2 - t1, "second_inla_s": t3 - t2, "refit_s": t4 - t3}))
"""


def run(cache_dir: str) -> dict:
    env = dict(os.environ, ADELIA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "rinla" / "seeds_iid" / "results.json"
    r_wall = json.loads(shared.read_text())["timing"]["wall_time_inla_call_s"] if shared.exists() else 0.6
    with tempfile.TemporaryDirectory() as cache:
        cold = run(cache)
        warm_cache = run(cache)
    rows = [("cold, empty cache", cold), ("cold, warm cache", warm_cache)]
    print(f"R-INLA seeds_iid wall time: {r_wall:.3f} s")
    print(f"{'process':20s} {'import':>8s} {'1st fit':>8s} {'2nd inla()':>11s} {'model.fit()':>12s} {'1st/R':>6s} {'2nd/R':>6s}")
    for name, r in rows:
        print(
            f"{name:20s} {r['import_s']:8.2f} {r['first_fit_s']:8.2f} {r['second_inla_s']:11.3f} {r['refit_s']:12.4f} "
            f"{r['first_fit_s'] / r_wall:6.2f} {r['second_inla_s'] / r_wall:6.2f}"
        )


if __name__ == "__main__":
    main()
