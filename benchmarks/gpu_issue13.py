"""The GPU checks of issue 13 in one call (a lent GPU's 15 minutes, one `run`).

Runs, each in its own process with its own time limit, and prints their tables in order:

1. ``bta_kernels.py --before none``: ops per scan step, the BTA kernels' achieved fp64 rate
   against a batched GEMM and single b×b potrf/trsm/GEMM on this card (~2 min);
2. ``scaling.py --project 4 --preset paper``: the 4-GPU gradient time of the ≈1.9M-latent
   3-variate coregional model and of DEMF 250 × 4002 projected from one-GPU timings (~3 min);
3. ``scaling.py --preset paper --devices 1 --fit --largest``: AD vs FD per gradient, the
   whole fit AD- vs FD-driven, the largest DEMF model one GPU takes (what is left).

Total under ``--budget`` seconds (default 540: a 600 s call with time to spare). A part that
runs out of its time is cut and the next one starts; what it printed is kept.

usage (device tool): python benchmarks/gpu_issue13.py [--budget 540]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (name, arguments, share of the budget)
PARTS = [
    ("BTA kernel efficiency", ["bta_kernels.py", "--before", "none"], 0.22),
    ("4-GPU projection", ["scaling.py", "--project", "4", "--preset", "paper", "--limit", "110"], 0.35),
    ("one-GPU scaling table", ["scaling.py", "--preset", "paper", "--devices", "1", "--fit", "--largest"], 1.0),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for all parts together")
    args = ap.parse_args(argv)
    end = time.monotonic() + args.budget
    failed = []
    for name, part, share in PARTS:
        left = end - time.monotonic()
        if left < 30:
            print(f"\n=== {name}: skipped ({left:.0f} s left) ===", flush=True)
            failed.append(name)
            continue
        limit = max(30.0, min(left, share * args.budget))
        cmd = [sys.executable, str(HERE / part[0]), *part[1:]]
        if part[0] == "scaling.py":
            cmd += ["--budget", f"{limit - 10:.0f}"]
        print(f"\n=== {name}: {' '.join(cmd[1:])} (limit {limit:.0f} s) ===", flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.run(cmd, timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        print(f"=== {name}: exit {rc} after {time.monotonic() - t0:.0f} s ===", flush=True)
        if rc != 0:
            failed.append(name)
    print("\nparts that did not finish: " + (", ".join(failed) if failed else "none"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
