"""Kernel efficiency of the BTA scans (adelia.engine.bta): per-step op counts, wall times
and, on a GPU, achieved fp64 TFLOP/s against the card's batched-GEMM rate.

    python benchmarks/bta_kernels.py                       # CPU: b 64 256, n_b 50 200, a 0 4
    python benchmarks/bta_kernels.py --before git:HEAD~1   # "before" = bta.py of a revision
    python benchmarks/bta_kernels.py --before old_bta.py   # ... or of a file
    python benchmarks/bta_kernels.py --unroll 1 2 4        # also time lax.scan unrolling
    python benchmarks/bta_kernels.py --b 256 1024 --n-blocks 100 --arrow 4 --repeats 5

One process measures everything, "before" (the kernels of ``--before``, default
``git:HEAD`` when the working tree's ``adelia/engine/bta.py`` differs from it; loaded as a
private module, never imported by the package) next to "after" (the working tree):

1. **Ops per step.** For each scan (cholesky, selected inverse, forward and back
   substitution, and the distributed kernels' interior scans on a one-device mesh) the
   number of instructions XLA runs per iteration of the compiled while loop: fusions,
   library calls (potrf, trsm, GEMM) and copies, parameters/tuples/bitcasts/constants
   excluded. On a GPU each is (at least) one kernel launch, so this is the per-block
   launch count of the scan.
2. **Times** (the fastest of at least ``--repeats`` wall times after two warm-up runs, more
   runs while they take under 10 s; the variants' runs interleaved: on a shared machine the
   run least stretched by other jobs) of ``cholesky``, ``value_and_grad(logdet)`` (factor + selected inverse,
   the custom VJP) and ``selected_inverse`` (factor + selected inverse without the logdet)
   for every (n_b, b, a).
3. **Rates** (GPU; printed on the CPU too): achieved GFLOP/s of each kernel from the flop
   model below, against (a) a batched fp64 GEMM of n_b (b×b)·(b×b) products (the "GEMM
   rate" the scans could reach), and (b) one b×b potrf, one b×b trsm and one b×b GEMM on
   their own (the sequential scan's ceiling when each step's ops run one after another).

Flop model per block (the kernels do this work; the tip is negligible):
cholesky b³/3 (potrf) + 2(b+a)b² (Schur update) + (b+a)b² (panel solve);
selected inverse 2(b+a)²b (P = S G) + 2(b+a)b² (GᵀP) + b³ + (2b+a)b² (two solves).

On a GPU the defaults are b 128 256 512 1024, n_b 64, a 4, unroll 1 4 (estimated at under
two minutes on an H100/H200 including compilation; not yet run on one). Results print as one table per part.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import adelia  # noqa: E402, F401  (float64)
from adelia.engine import bta, bta_distributed  # noqa: E402

_TRIVIAL = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}


# ----------------------------------------------------------------------------------------
# the "before" kernels
# ----------------------------------------------------------------------------------------
def _source(spec: str, path: str) -> str | None:
    """Text of ``path`` at git revision ``git:REV`` or of the file ``spec``."""
    if spec.startswith("git:"):
        try:
            return subprocess.run(["git", "show", f"{spec[4:]}:{path}"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
    return Path(spec).read_text()


def _load(name: str, text: str, package: str = "adelia.engine"):
    """A module from source text, as a private member of ``package`` (relative imports work)."""
    spec = importlib.util.spec_from_loader(f"{package}.{name}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = package
    sys.modules[spec.name] = module
    exec(compile(text, f"<{name}>", "exec"), module.__dict__)
    return module


def before_modules(spec: str):
    """(bta, bta_distributed) of ``spec``, or None when unavailable or equal to the tree."""
    if spec == "none":
        return None
    text = _source(spec, "adelia/engine/bta.py")
    if text is None:
        print(f"# before: {spec} is not readable here; only the working tree is measured")
        return None
    if spec == "git:HEAD" and text == (ROOT / "adelia/engine/bta.py").read_text():
        print("# before: the working tree's bta.py equals HEAD; pass --before git:REV or a file")
        return None
    old_bta = _load("_bta_before", text)
    dist_spec = spec if spec.startswith("git:") else str(Path(spec).with_name("bta_distributed.py"))
    dist_text = _source(dist_spec, "adelia/engine/bta_distributed.py") if (
        spec.startswith("git:") or Path(dist_spec).exists()) else None
    old_dist = None
    if dist_text is not None:  # its ``from . import bta`` must see the old bta
        dist_text = dist_text.replace("from . import bta\n", "from . import _bta_before as bta\n")
        dist_text = dist_text.replace("from .bta import", "from ._bta_before import")
        old_dist = _load("_bta_distributed_before", dist_text)
    return old_bta, old_dist


# ----------------------------------------------------------------------------------------
# problems, op counts, timing
# ----------------------------------------------------------------------------------------
def random_blocks(key, n_b: int, b: int, a: int):
    """Diagonally dominant SPD BTA blocks (Gershgorin: off-diagonal row sums < 2 < 4)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    noise = jax.random.uniform(k1, (n_b, b, b), minval=-0.5, maxval=0.5) / b
    diag = 4.0 * jnp.eye(b) + noise + jnp.swapaxes(noise, 1, 2)
    lower = jax.random.uniform(k2, (n_b - 1, b, b), minval=-0.5, maxval=0.5) / b
    arrow = jax.random.uniform(k3, (n_b, a, b), minval=-0.5, maxval=0.5) / (n_b * b)
    tip = jax.random.uniform(k4, (a, a), minval=-0.1, maxval=0.1) / max(a, 1)
    return diag, lower, arrow, 4.0 * jnp.eye(a) + 0.5 * (tip + tip.T)


def loop_op_counts(compiled_text: str) -> list[collections.Counter]:
    """Per while loop of a compiled HLO module: the body's non-trivial instructions by kind
    (custom calls by target), in the order the loops appear."""
    comps, current = {}, None
    for line in compiled_text.splitlines():
        if line and not line.startswith(" ") and line.rstrip().endswith("{"):
            current = re.match(r"^(?:ENTRY )?%?([\w.\-]+)", line).group(1)
            comps[current] = []
        elif current and line.startswith("  "):
            comps[current].append(line.strip())
    counts = []
    for lines in comps.values():
        for line in lines:
            loop = re.search(r" while\(.*body=%?([\w.\-]+)", line)
            if not loop:
                continue
            ops = []
            for op in comps.get(loop.group(1), []):
                kind = re.search(r"= (?:\([^=]*?\)|\S+) ([a-z\-]+)\(", op)
                if kind and kind.group(1) not in _TRIVIAL:
                    name = kind.group(1)
                    if name == "custom-call":
                        target = re.search(r'custom_call_target="([^"]+)"', op)
                        name = target.group(1) if target else name
                    ops.append(name)
            counts.append(collections.Counter(ops))
    return counts


def describe(counts: list[collections.Counter]) -> str:
    return " | ".join(f"{sum(c.values())}: " + ", ".join(f"{k}×{v}" for k, v in sorted(c.items())) for c in counts)


def fastest_times(fns, args, repeats: int, budget_s: float = 10.0, max_rounds: int = 40) -> list[float]:
    """Per function, the fastest of its timed runs (wall time): at least ``repeats`` rounds,
    more (up to ``max_rounds``) while the rounds so far took under ``budget_s``. The runs are
    interleaved (round robin) so that a load change affects all alike; on a machine shared
    with other jobs the fastest run is the one least stretched by them, and cheap kernels
    get many runs to find it."""
    for fn in fns:  # compile, then the first runs allocate
        jax.block_until_ready(fn(*args))
        jax.block_until_ready(fn(*args))
    times = [[] for _ in fns]
    start = time.perf_counter()
    rounds = 0
    while rounds < repeats or (rounds < max_rounds and time.perf_counter() - start < budget_s):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            out.append(time.perf_counter() - t0)
        rounds += 1
    return [min(t) for t in times]


def flops(n_b: int, b: int, a: int) -> dict[str, float]:
    chol = n_b * (b**3 / 3 + 3 * (b + a) * b**2)
    selinv = n_b * (2 * (b + a) ** 2 * b + 2 * (b + a) * b**2 + b**3 + (2 * b + a) * b**2)
    return {"cholesky": chol, "logdet v&g": chol + selinv, "selected_inverse": chol + selinv}


def kernels(module):
    """The three timed programs of one version of bta."""
    return {
        "cholesky": jax.jit(module.cholesky),
        "logdet v&g": jax.jit(jax.value_and_grad(module.logdet)),
        "selected_inverse": jax.jit(module.selected_inverse),
    }


def set_unroll(module, unroll: int) -> bool:
    """Set the module's scan unrolling (new kernels only) and drop compiled programs."""
    if not hasattr(module, "_SCAN_UNROLL"):
        return unroll == 1
    module._SCAN_UNROLL = unroll
    jax.clear_caches()
    return True


# ----------------------------------------------------------------------------------------
# parts
# ----------------------------------------------------------------------------------------
def part_op_counts(versions, n_b=8, b=16, a=2):
    print(f"\n## ops per loop iteration (compiled while-loop bodies; n_b={n_b}, b={b}, a={a}; "
          f"one entry per loop: total: kinds)")
    blocks = random_blocks(jax.random.key(0), n_b, b, a)
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("time",))
    for label, (module, dist) in versions.items():
        q = module.BTAMatrix(*blocks)
        factor = module.cholesky(q)
        rows = {
            "cholesky": jax.jit(module.cholesky).lower(q),
            "selected inverse (from factor)": jax.jit(module.selected_inverse_from_factor).lower(factor),
            "solve (forward | back)": jax.jit(module.solve_from_factor).lower(factor, jnp.ones(q.n)),
        }
        if dist is not None:
            dq = bta.BTAMatrix(*blocks)
            rows["distributed cholesky (loops in program order)"] = jax.jit(
                lambda m: dist.cholesky(m, mesh)).lower(dq)
            rows["distributed selected inverse (loops in order)"] = jax.jit(
                lambda m: dist.selected_inverse(m, mesh)).lower(dq)
        for name, lowered in rows.items():
            print(f"{label:>7} {name:<42} {describe(loop_op_counts(lowered.compile().as_text()))}", flush=True)


def part_times(versions, sizes, unrolls, repeats):
    print(f"\n## times (ms, fastest of >= {repeats} runs, more within 10 s) and achieved GFLOP/s (flop model in the docstring)")
    variants = []  # (label, module, unroll)
    for label, (module, _) in versions.items():
        for u in unrolls:
            if u == 1 or hasattr(module, "_SCAN_UNROLL"):
                variants.append((label if u == 1 else f"{label}/u{u}", module, u))
    names = ["cholesky", "logdet v&g", "selected_inverse"]
    header = f"{'n_b':>4} {'b':>5} {'a':>2} {'variant':>10} | " + " ".join(f"{n + ' ms':>21}" for n in names) + \
        " | " + " ".join(f"{'GF/s ' + n[:8]:>14}" for n in names)
    print(header)
    print("-" * len(header))
    results = {}
    for n_b, b, a in sizes:
        blocks = random_blocks(jax.random.key(1), n_b, b, a)
        jax.block_until_ready(blocks)
        fl = flops(n_b, b, a)
        # one round per unroll value (a new value needs new compilations); within a round the
        # variants' programs are timed interleaved, so "before" and "after" see the same load
        per_variant = {}
        for u in unrolls:
            group = [(label, module) for label, module, uu in variants if uu == u]
            for _, module in group:
                set_unroll(module, u)
            progs, keys = [], []
            for label, module in group:
                q = module.BTAMatrix(*blocks)
                for name, prog in kernels(module).items():
                    progs.append(functools.partial(prog, q))
                    keys.append((label, name))
            for (label, name), t in zip(keys, fastest_times(progs, (), repeats)):
                per_variant.setdefault(label, {})[name] = t
            for _, module in group:
                set_unroll(module, 1)
        for label, t in per_variant.items():
            print(f"{n_b:>4} {b:>5} {a:>2} {label:>10} | " + " ".join(f"{1e3 * t[n]:>21.2f}" for n in names) +
                  " | " + " ".join(f"{fl[n] / t[n] / 1e9:>14.1f}" for n in names), flush=True)
        results[(n_b, b, a)] = per_variant
        del blocks
    return results


def part_reference_rates(sizes, repeats):
    print("\n## reference fp64 rates (GFLOP/s): batched GEMM (n_b products) and single b×b ops")
    print(f"{'n_b':>4} {'b':>5} | {'batched GEMM':>12} {'GEMM b×b':>9} {'trsm b×b':>9} {'potrf b×b':>9}")
    gemm = jax.jit(jnp.matmul)
    trsm = jax.jit(lambda l, x: jax.lax.linalg.triangular_solve(l, x, left_side=False, lower=True, transpose_a=True))
    potrf = jax.jit(jax.lax.linalg.cholesky)
    seen = set()
    for n_b, b, _ in sizes:
        if (n_b, b) in seen:
            continue
        seen.add((n_b, b))
        x = jax.random.normal(jax.random.key(2), (n_b, b, b))
        spd = x[0] @ x[0].T / b + 4.0 * jnp.eye(b)
        low = jnp.linalg.cholesky(spd)
        t_batch, t_gemm, t_trsm, t_potrf = fastest_times(
            [lambda: gemm(x, x), lambda: gemm(x[0], x[1]), lambda: trsm(low, x[1]), lambda: potrf(spd)], (), repeats)
        print(f"{n_b:>4} {b:>5} | {2 * n_b * b**3 / t_batch / 1e9:>12.2f} {2 * b**3 / t_gemm / 1e9:>9.2f}"
              f" {b**3 / t_trsm / 1e9:>9.2f} {b**3 / 3 / t_potrf / 1e9:>9.2f}", flush=True)


def check_agreement(versions, n_b=6, b=5, a=2):
    """The versions give the same factor, log-determinant gradient and selected inverse."""
    if len(versions) < 2:
        return
    blocks = random_blocks(jax.random.key(3), n_b, b, a)
    out = []
    for module, _ in versions.values():
        q = module.BTAMatrix(*blocks)
        out.append([module.cholesky(q), jax.grad(module.logdet)(q), module.selected_inverse(q)])
    err = max(float(jnp.max(jnp.abs(u - v))) for x, y in zip(*out)
              for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y)))
    print(f"# before vs after: max |difference| of factor, logdet gradient, selected inverse = {err:.2e}")
    assert err < 1e-10, err


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="git:HEAD", help="git:REV, a path to an old bta.py, or none")
    parser.add_argument("--b", type=int, nargs="+", default=None, help="block sizes")
    parser.add_argument("--n-blocks", type=int, nargs="+", default=None, help="numbers of blocks")
    parser.add_argument("--arrow", type=int, nargs="+", default=None, help="arrow sizes")
    parser.add_argument("--unroll", type=int, nargs="+", default=None, help="lax.scan unroll values to time")
    parser.add_argument("--repeats", type=int, default=None, help="at least this many timed runs per measurement (the fastest is reported)")
    parser.add_argument("--skip-times", action="store_true", help="op counts only")
    args = parser.parse_args(argv)

    device = jax.devices()[0]
    on_cpu = device.platform == "cpu"
    b_list = args.b or ([64, 256] if on_cpu else [128, 256, 512, 1024])
    nb_list = args.n_blocks or ([50, 200] if on_cpu else [64])
    a_list = args.arrow or ([0, 4] if on_cpu else [4])
    unrolls = args.unroll or ([1] if on_cpu else [1, 4])
    repeats = args.repeats or 3
    print(f"device: {device.platform} / {device.device_kind} ({jax.device_count()} device(s)), jax {jax.__version__}")

    versions = {}
    old = before_modules(args.before)
    if old is not None:
        versions["before"] = old
    versions["after"] = (bta, bta_distributed)
    check_agreement(versions)
    part_op_counts(versions)
    if args.skip_times:
        return
    sizes = [(n_b, b, a) for b in b_list for n_b in nb_list for a in a_list]
    part_times(versions, sizes, unrolls, repeats)
    part_reference_rates(sizes, repeats)


if __name__ == "__main__":
    main()
