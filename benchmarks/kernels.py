"""Benchmark of the BTA kernels (adelia.engine.bta): log|Q|, its gradient with the custom
VJP (selected inversion) and with plain reverse-mode AD through the factorisation scan.

    python benchmarks/kernels.py              # CPU: sizes scaled down by 4 (b and n_b)
    python benchmarks/kernels.py --full       # the unscaled sizes (the default on a GPU)
    python benchmarks/kernels.py --scale 8 --repeats 3

For each (n_b, b, a) it prints the median wall time of ``logdet``, of
``value_and_grad(logdet)`` (custom VJP) and of ``value_and_grad`` of the same Cholesky
scan without the custom VJP (plain AD), the ratios vjp/logdet and plainAD/vjp, and XLA's
temporary-buffer size of each compiled program (``compiled.memory_analysis()
.temp_size_in_bytes``: the scratch memory the program allocates beyond its inputs and
outputs; on a GPU the device's peak bytes in use are printed too). Every program is
compiled and run twice before timing; the timed runs of the three programs are
interleaved. Matrices are random, diagonally dominant, generated on the device.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import adelia  # noqa: E402, F401  (float64)
from adelia.engine import bta  # noqa: E402

SIZES = [(64, 256, 8), (64, 1024, 8), (32, 2048, 8), (400, 512, 8)]


def random_bta(key, n_b: int, b: int, a: int) -> bta.BTAMatrix:
    """Diagonally dominant SPD BTA matrix (Gershgorin: off-diagonal row sums < 2 < 4)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    noise = jax.random.uniform(k1, (n_b, b, b), minval=-0.5, maxval=0.5) / b
    diag = 4.0 * jnp.eye(b) + noise + jnp.swapaxes(noise, 1, 2)
    lower = jax.random.uniform(k2, (n_b - 1, b, b), minval=-0.5, maxval=0.5) / b
    arrow = jax.random.uniform(k3, (n_b, a, b), minval=-0.5, maxval=0.5) / (n_b * b)
    tip = 4.0 * jnp.eye(a) + jax.random.uniform(k4, (a, a), minval=-0.1, maxval=0.1) / max(a, 1)
    return bta.BTAMatrix(diag, lower, arrow, _sym(tip))


def _sym(x):
    return 0.5 * (x + x.T)


def median_times(fns, arg, repeats: int) -> list[float]:
    """Median wall time of each function, the runs interleaved (round robin) so that a
    load change on a shared machine affects all of them alike."""
    for fn in fns:  # warm-up: compiled already, the first runs allocate
        jax.block_until_ready(fn(arg))
        jax.block_until_ready(fn(arg))
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(arg))
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def temp_mib(compiled) -> float:
    try:
        return compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # memory_analysis is not available on every backend
        return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run the unscaled sizes")
    parser.add_argument("--scale", type=int, default=None, help="divide b and n_b by this (default: 4 on CPU, 1 else)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--skip-plain", action="store_true", help="skip the plain-AD baseline")
    args = parser.parse_args(argv)

    device = jax.devices()[0]
    on_cpu = device.platform == "cpu"
    scale = 1 if args.full else (args.scale or (4 if on_cpu else 1))
    print(f"device: {device.platform} / {device.device_kind} ({jax.device_count()} device(s)), jax {jax.__version__}")
    print(f"sizes {'unscaled' if scale == 1 else f'scaled down: b and n_b divided by {scale}'}; "
          f"median of {args.repeats} runs after warm-up; memory = XLA temp buffer of the compiled program")

    logdet = jax.jit(bta.logdet)
    vjp = jax.jit(jax.value_and_grad(bta.logdet))
    plain = jax.jit(jax.value_and_grad(bta.logdet_plain_ad))

    header = (f"{'n_b':>5} {'b':>5} {'a':>3} {'n':>8} | {'logdet ms':>10} {'v&g vjp ms':>11} {'v&g plainAD ms':>15}"
              f" | {'vjp/logdet':>10} {'plainAD/vjp':>11} | {'temp MiB: logdet':>16} {'vjp':>8} {'plainAD':>8}")
    print(header)
    print("-" * len(header))
    for n_b0, b0, a in SIZES:
        n_b, b = max(n_b0 // scale, 2), max(b0 // scale, 1)
        q = random_bta(jax.random.key(0), n_b, b, a)
        jax.block_until_ready(q)
        mem = [temp_mib(logdet.lower(q).compile()), temp_mib(vjp.lower(q).compile())]
        if args.skip_plain:
            t_logdet, t_vjp = median_times([logdet, vjp], q, args.repeats)
            t_plain, mem_plain = float("nan"), float("nan")
        else:
            mem_plain = temp_mib(plain.lower(q).compile())
            t_logdet, t_vjp, t_plain = median_times([logdet, vjp, plain], q, args.repeats)
            # sanity: both gradients agree
            g1, g2 = vjp(q)[1], plain(q)[1]
            err = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)))
            assert err < 1e-8, f"custom VJP and plain AD gradients differ by {err}"
        print(f"{n_b:>5} {b:>5} {a:>3} {n_b * b + a:>8} | {1e3 * t_logdet:>10.2f} {1e3 * t_vjp:>11.2f}"
              f" {1e3 * t_plain:>15.2f} | {t_vjp / t_logdet:>10.2f} {t_plain / t_vjp:>11.2f}"
              f" | {mem[0]:>16.1f} {mem[1]:>8.1f} {mem_plain:>8.1f}", flush=True)
        del q
    if not on_cpu:
        stats = device.memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            print(f"device peak bytes in use over the run: {stats['peak_bytes_in_use'] / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
