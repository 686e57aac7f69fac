"""All GPU checks and timings in one run, for a short lease on an accelerator machine.

Runs each stage in its own process with its own time limit, so that a stage that fails or
runs long does not cost the others; every stage's output goes to ``<out>/<stage>.log``, and
its exit status, time and last lines to stdout. The stages:

1. ``env``       — the card, the driver, JAX's version and devices.
2. ``oracle``    — BTA kernels on the device against dense float64 NumPy on the host:
                   logdet, solve, selected inverse, the custom-VJP gradient of logdet
                   against the dense one (rel. error printed; the test tolerances apply).
3. ``kernels``   — ``benchmarks/kernels.py --full`` (issue 2's sizes; target on a GPU:
                   value_and_grad(logdet) ≤ 3× logdet at b ≥ 1024).
4. ``gradients`` — ``benchmarks/spde.py gradients --solvers bta``: AD vs central differences
                   on a DEMF field and a 3-variate coregional model (d = 15).
5. ``P3``        — ``benchmarks/spde.py P3 --solvers bta``: R-INLA's SPDE ⊗ AR1 perf case
                   (needs ../shared/reference/rinla_perf/P3_spacetime_large beside the
                   repository; on a device machine copy it there first).
6. ``bta_tests`` — the BTA test module on the device.

usage: python benchmarks/gpu.py [--out DIR] [--only oracle kernels ...]
       [--limits kernels=120 P3=150 ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ORACLE = r"""
import numpy as np, jax, jax.numpy as jnp
import adelia  # noqa: F401  (float64)
from adelia.engine import bta

print("backend", jax.default_backend(), jax.devices())
worst = {}
for (n_b, b, a) in [(1, 1, 0), (6, 5, 0), (8, 64, 4), (16, 256, 8)]:
    rng = np.random.default_rng(n_b * 1000 + b)
    n = n_b * b + a
    # a random SPD BTA matrix: dense lower triangle on the pattern, made diagonally dominant
    D = np.zeros((n, n))
    for i in range(n_b):
        s = slice(i * b, (i + 1) * b)
        D[s, s] = rng.normal(size=(b, b))
        if i + 1 < n_b:
            D[(i + 1) * b:(i + 2) * b, s] = rng.normal(size=(b, b))
        D[n_b * b:, s] = rng.normal(size=(a, b))
    D[n_b * b:, n_b * b:] = rng.normal(size=(a, a))
    D = np.tril(D)
    Q = D + D.T
    Q += np.diag(np.abs(Q).sum(1) + 1.0)
    blk = lambda i, j: Q[i * b:(i + 1) * b, j * b:(j + 1) * b]
    M = bta.BTAMatrix(jnp.asarray(np.stack([blk(i, i) for i in range(n_b)])),
                      jnp.asarray(np.array([blk(i + 1, i) for i in range(n_b - 1)]).reshape(n_b - 1, b, b)),
                      jnp.asarray(np.stack([Q[n_b * b:, i * b:(i + 1) * b] for i in range(n_b)]).reshape(n_b, a, b)),
                      jnp.asarray(Q[n_b * b:, n_b * b:]))
    rhs = rng.normal(size=(n, 3))
    ld_ref = np.linalg.slogdet(Q)[1]
    Qi = np.linalg.inv(Q)
    err = {}
    err["logdet"] = abs(float(jax.jit(bta.logdet)(M)) - ld_ref) / abs(ld_ref)
    x = np.asarray(jax.jit(bta.solve)(M, jnp.asarray(rhs)))
    err["solve"] = np.abs(x - np.linalg.solve(Q, rhs)).max() / np.abs(x).max()
    S = np.asarray(jax.jit(lambda m: bta.selected_inverse(m).to_dense())(M))
    mask = np.asarray(M.to_dense()) != 0
    err["selinv"] = np.abs(S - Qi)[mask].max() / np.abs(Qi).max()
    g = jax.jit(jax.grad(bta.logdet))(M)
    Gd = np.asarray(g.to_dense())
    # d logdet / d Q_ij on the stored (lower) blocks = (2 - δ_ij) Q⁻¹_ij; compare the diagonal blocks
    gdiag = np.asarray(g.diag)
    ref = np.stack([Qi[i * b:(i + 1) * b, i * b:(i + 1) * b] for i in range(n_b)])
    err["grad_diag"] = np.abs(gdiag - ref).max() / np.abs(ref).max()
    print((n_b, b, a), {k: f"{v:.2e}" for k, v in err.items()}, flush=True)
    for k, v in err.items():
        worst[k] = max(worst.get(k, 0.0), v)
print("worst", {k: f"{v:.2e}" for k, v in worst.items()})
bad = {k: v for k, v in worst.items() if v > 1e-9}
print("ORACLE", "FAIL" if bad else "OK", bad)
sys.exit(1 if bad else 0)
"""


def stages() -> dict[str, list[str]]:
    py = sys.executable
    return {
        "env": ["bash", "-c", "nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; "
                f"{py} -c 'import jax, jaxlib; print(jax.__version__, jaxlib.__version__, jax.devices())'"],
        "oracle": [py, "-c", "import sys\n" + ORACLE],
        "kernels": [py, "benchmarks/kernels.py", "--full", "--repeats", "3"],
        "gradients": [py, "benchmarks/spde.py", "gradients", "--solvers", "bta", "--grad-max-edge", "0.1", "--reps", "3"],
        "P3": [py, "benchmarks/spde.py", "P3", "--solvers", "bta", "--reps", "1"],
        "bta_tests": [py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/engine/test_bta.py"],
    }


DEFAULT_LIMITS = {"env": 20, "oracle": 60, "kernels": 120, "gradients": 130, "P3": 150, "bta_tests": 60}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_out"))
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--limits", nargs="*", default=[], help="stage=seconds")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    limits = dict(DEFAULT_LIMITS)
    for item in args.limits:
        k, v = item.split("=")
        limits[k] = int(v)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=f"{ROOT}:{os.environ.get('PYTHONPATH', '')}",
               XLA_PYTHON_CLIENT_PREALLOCATE="false")
    for name, cmd in stages().items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        with open(out / f"{name}.log", "w") as log:
            try:
                rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=limits[name]).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        dt = time.perf_counter() - t
        tail = (out / f"{name}.log").read_text().strip().splitlines()[-12:]
        print(f"=== {name}: rc={rc} in {dt:.0f} s (limit {limits[name]} s)", flush=True)
        print("\n".join(tail), flush=True)


if __name__ == "__main__":
    main()
