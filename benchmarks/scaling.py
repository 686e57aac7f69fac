"""Scale-out: space-time and coregional gradients and fits over 1, 2 and 4 devices (issue 13).

One prepared script for a GPU machine and for the CPU with several host devices
(``--host-devices 4`` sets ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` for the
children). Every configuration runs in a child process of its own, so that each measures its
own peak memory and a configuration that runs out of memory or time costs only itself; the
parent prints one table last.

The models (synthetic data with known truth, the BTA solver, ``control_inla={"solver": "bta",
"devices": k}``):

* ``demf nt×ns`` — a Gaussian DEMF(1,2,1) space-time field (d = 4: the noise precision and the
  field's spatial range, temporal range and σ) on a mesh of the unit square with ns nodes and
  nt time points; the truth is one draw of the field from its prior at θ_true, observed at
  ns/2 random locations per time with noise sd 0.2 around an intercept of 1;
* ``coreg3 nt×ns`` — the 3-variate coregional DEMF model of :func:`adelia.spde.coregional`
  (d = 15) on the same kind of mesh, 50 observations per variable and time.

The issue's sizes (``--preset paper``): demf 5×92, 100×812, 250×4002 and coreg3 8×354,
192×1673; ``--preset cpu`` uses small ones (minutes on 2 cores).

Per configuration (one child):

* ``f_s`` — one warm objective log π̃(θ|y) near θ_true;
* ``ad_s`` — one warm value-and-gradient by reverse-mode AD (``model.value_and_grad``);
* ``fd_s`` — R-INLA's gradient: the 2d+1 objective evaluations of central differences, as one
  batch of θ points over the k devices (``model.grad_log_posterior(method="fd")``, what a
  parallel finite-difference code does);
* ``fd/ad`` against the target (2d+1)/3, and ``ad/f`` (the cost of a gradient in objectives);
* ``peak_GiB`` — peak memory of the process's first device (``memory_stats()``; on the CPU the
  peak resident set size of the whole process);
* ``TFLOP/s`` — the flops of one gradient's factorisation and selected inversion by the BTA
  model n_b·(7/3 + 4)·b³ + n_b·(3a b² + a² b) (Cholesky b³/3, two panel solves and two
  updates ≈ 2b³ per block; selected inverse ≈ 4b³ per block), over ``ad_s``, against the
  card's fp64 GEMM rate when it is known (H100 SXM 67, H200 67 TFLOP/s tensor-core fp64);
* ``J/grad`` — GPU energy per AD gradient and per FD gradient (``nvidia-smi`` power samples
  every 50 ms integrated over repeated calls); empty on the CPU;
* with ``--fit``: the whole mode search and fit driven by AD gradients and by FD gradients
  (``control_inla={"gradient": "fd"}``): BFGS iterations, wall time, the largest difference of
  the final θ, and the fit's hyperparameter means against the truth.

Strong scaling: the same model over k = 1, 2, 4 devices; weak scaling (``--weak``): nt grows
with k. ``--largest`` then grows nt on one device until the fit's memory estimate or the
device refuses, and reports the largest that completes a gradient.

usage: python benchmarks/scaling.py [--preset cpu|paper] [--devices 1 2 4] [--host-devices 4]
                                    [--fit] [--weak] [--largest] [--budget 540] [--limit 240]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]

PRESETS = {
    "cpu": {"demf": [(5, 92), (8, 160)], "coreg3": [(3, 60)]},
    "paper": {"demf": [(5, 92), (100, 812), (250, 4002)], "coreg3": [(8, 354), (192, 1673)]},
}
#: fp64 GEMM (tensor core) peak rates, TFLOP/s, by a substring of the device kind
FP64_PEAK = {"H200": 67.0, "H100": 67.0, "GH200": 67.0, "A100": 19.5}


# ----------------------------------------------------------------------------------------------
# one configuration (in a child process)
# ----------------------------------------------------------------------------------------------


def unit_square_mesh(n_nodes: int, seed: int = 0):
    """A mesh of the unit square (plus an outer extension) with about ``n_nodes`` nodes: the
    inner max_edge is found by bisection on the node count."""
    import numpy as np

    import adelia

    rng = np.random.default_rng(seed)
    pts = rng.random((60, 2))

    def build(edge):
        return adelia.spde.mesh_2d(pts, max_edge=(edge, 2.5 * edge), offset=(0.15, 0.3), cutoff=edge / 4)

    lo, hi = 0.005, 1.0  # max_edge: small edge → many nodes
    mesh = build(hi)
    for _ in range(30):
        mid = (lo * hi) ** 0.5
        mesh = build(mid)
        if abs(mesh.n - n_nodes) <= max(2, 0.02 * n_nodes):
            break
        lo, hi = (mid, hi) if mesh.n > n_nodes else (lo, mid)
    return mesh


def demf_problem(nt: int, ns: int, seed: int = 1):
    """Gaussian DEMF data with known truth; (compile kwargs, θ_true on the internal scale)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import adelia
    from adelia.engine.ordering import time_major_block_structure
    from adelia.engine.solver import make_solver

    rng = np.random.default_rng(seed)
    mesh = unit_square_mesh(ns, seed)
    st = adelia.spde.spacetime_demf(mesh, nt, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(2.0, 0.05))
    prior = st.latent_model("st")
    theta_field = np.log([0.5, 4.0, 1.0])  # spatial range, temporal range, σ
    values = prior.precision_values(jnp.asarray(theta_field))
    solver = make_solver(prior.pattern(), "bta", time_major_block_structure(nt, mesh.n))
    x = np.asarray(solver.sample(values, jax.random.PRNGKey(seed)))[0]
    n_per_time = max(mesh.n // 2, 20)
    loc = rng.random((n_per_time * nt, 2))
    time_idx = np.repeat(np.arange(1, nt + 1), n_per_time)
    A = adelia.spde.make_A(mesh, loc, group=time_idx, n_group=nt)
    noise_sd = 0.2
    y = 1.0 + A @ x + noise_sd * rng.standard_normal(time_idx.size)
    stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * nt + 1)}, {"b0": np.ones(y.size)}])
    kw = dict(formula="y ~ 0 + b0 + f(st, model=demf)", data=adelia.spde.stack_data(stk),
              control_predictor={"A": adelia.spde.stack_A(stk)}, context={"demf": st})
    theta_true = np.concatenate([[np.log(1.0 / noise_sd**2)], theta_field])
    return (lambda control: adelia.compile(**kw, control_inla=control)), theta_true, mesh.n


def coregional_problem(nt: int, ns: int, p: int = 3, n_per_time: int = 50, seed: int = 2):
    """The p-variate coregional DEMF model; responses are noise (the truth is 'no field'),
    which is enough for gradients and timings; (compile function, None, mesh size)."""
    import numpy as np

    import adelia

    rng = np.random.default_rng(seed)
    mesh = unit_square_mesh(ns, seed)
    locs = [rng.random((nt * n_per_time, 2)) for _ in range(p)]
    times = [np.repeat(np.arange(1, nt + 1), n_per_time) for _ in range(p)]
    ys = [rng.standard_normal(t.size) for t in times]
    cr = adelia.spde.coregional(mesh, nt, ys, locs, times, field="demf", prior_range_s=(0.3, 0.5),
                                prior_range_t=(2.0, 0.5), prior_sigma=(1.0, 0.05))
    return (lambda control: cr.compile(control_inla=control)), None, mesh.n


class PowerSampler:
    """GPU power draw sampled by ``nvidia-smi`` every 50 ms in a background thread; ``joules``
    integrates the samples taken between ``start()`` and ``stop()`` (None without a GPU)."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._proc = None

    def start(self):
        try:
            self._proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits", "-lms", "50"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None
            return self
        self.samples = []

        def read():
            for line in self._proc.stdout:
                try:
                    self.samples.append((time.perf_counter(), float(line.split(",")[0])))
                except ValueError:
                    pass

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.3)
        return self

    def joules(self, t0: float, t1: float) -> float | None:
        inside = [(t, w) for t, w in self.samples if t0 <= t <= t1]
        if len(inside) < 2:
            return None
        mean_watts = sum(w for _, w in inside) / len(inside)
        return mean_watts * (t1 - t0)

    def stop(self):
        if self._proc is not None:
            self._proc.terminate()


def peak_gib() -> float:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def gradient_flops(graph) -> float | None:
    """Flops of one factorisation + selected inversion by the BTA model (see the module doc)."""
    bs = getattr(graph, "block_structure", None)
    if bs is None:
        return None
    n_b, b, a = bs.n_blocks, bs.block_size, bs.arrow_size
    return n_b * ((7.0 / 3.0 + 4.0) * b**3 + 3.0 * a * b**2 + a**2 * b)


def run_one(cfg: dict) -> dict:
    import warnings

    import jax
    import numpy as np

    import adelia  # noqa: F401  (float64)

    warnings.simplefilter("ignore")
    t_setup = time.perf_counter()
    make = demf_problem if cfg["model"] == "demf" else coregional_problem
    build, theta_true, n_mesh = make(cfg["nt"], cfg["ns"])
    control = {"solver": "bta", "devices": cfg["devices"]}
    model = build(control)
    d = len(model.theta_names)
    theta = np.asarray(theta_true if theta_true is not None else model.theta0, dtype=float) + 0.05
    row = {"model": cfg["model"], "nt": cfg["nt"], "ns": n_mesh, "n_latent": int(model.graph.n_latent), "d": d,
           "devices": cfg["devices"], "platform": jax.devices()[0].platform,
           "device_kind": jax.devices()[0].device_kind, "setup_s": time.perf_counter() - t_setup}

    def timed(fn, *args, **kwargs):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*args, **kwargs))
        return out, time.perf_counter() - t

    _, row["first_ad_s"] = timed(model.value_and_grad, theta)  # compiles; the inner mode moves near θ
    _, row["first_fd_s"] = timed(model.grad_log_posterior, theta, method="fd")  # compiles the batch
    _, row["first_f_s"] = timed(model.log_posterior, theta)  # compiles the single objective
    shifts = [theta + 1e-3 * (k + 1) for k in range(3)]
    row["f_s"] = float(np.median([timed(model.log_posterior, t)[1] for t in shifts]))
    row["ad_s"] = float(np.median([timed(model.value_and_grad, t)[1] for t in shifts]))
    row["fd_s"] = float(np.median([timed(model.grad_log_posterior, t, method="fd")[1] for t in shifts]))
    g_ad = np.asarray(model.value_and_grad(theta)[1])
    g_fd = np.asarray(model.grad_log_posterior(theta, method="fd", step=1e-4))
    row["grad_rel_err"] = float(np.max(np.abs(g_ad - g_fd)) / max(np.max(np.abs(g_fd)), 1e-300))
    row["fd/ad"] = row["fd_s"] / row["ad_s"]
    row["target_fd/ad"] = (2 * d + 1) / 3
    row["ad/f"] = row["ad_s"] / row["f_s"]
    flops = gradient_flops(model.graph)
    row["TFLOP/s"] = flops / row["ad_s"] / 1e12 if flops else None
    peak = next((v for k, v in FP64_PEAK.items() if k in row["device_kind"]), None)
    row["fp64_peak_TFLOP/s"] = peak

    if row["platform"] == "gpu":
        power = PowerSampler().start()
        for method in ("ad", "fd"):
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < 2.0 or n < 2:
                jax.block_until_ready(model.value_and_grad(theta) if method == "ad" else model.grad_log_posterior(theta, method="fd"))
                n += 1
            joules = power.joules(t0, time.perf_counter())
            row[f"J/grad_{method}"] = joules / n if joules is not None else None
        power.stop()

    if cfg.get("fit"):
        for method in ("ad", "fd"):
            fit_model = build({**control, "gradient": method})
            t = time.perf_counter()
            res = fit_model.fit()
            row[f"fit_{method}_s"] = time.perf_counter() - t
            row[f"bfgs_iter_{method}"] = int(res.posterior.mode.iterations)
            row[f"theta_mode_{method}"] = [float(v) for v in res.posterior.theta_mode]
        row["mode_ad_vs_fd"] = float(np.max(np.abs(np.subtract(row["theta_mode_ad"], row["theta_mode_fd"]))))
        if theta_true is not None:
            row["mode_minus_truth"] = [float(v) for v in np.subtract(row["theta_mode_ad"], theta_true)]
    row["peak_GiB"] = peak_gib()
    return row


# ----------------------------------------------------------------------------------------------
# the parent: configurations, children, the table
# ----------------------------------------------------------------------------------------------


def configurations(args) -> list[dict]:
    sizes = PRESETS[args.preset]
    cfgs = []
    for model, shapes in sizes.items():
        for nt, ns in shapes:
            for k in args.devices:  # strong scaling: one model over k devices
                cfgs.append({"model": model, "nt": nt, "ns": ns, "devices": k, "fit": args.fit, "kind": "strong"})
    if args.weak:
        model, (nt, ns) = "demf", sizes["demf"][0]
        for k in args.devices:
            cfgs.append({"model": model, "nt": nt * k, "ns": ns, "devices": k, "fit": False, "kind": "weak"})
    return cfgs


def run_child(cfg: dict, limit: float, env: dict) -> dict:
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, str(HERE), "--one", json.dumps(cfg)], capture_output=True, text=True,
                             timeout=limit, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {**cfg, "error": f"over the {limit:.0f} s limit"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**cfg, "error": tail[0][:160], "wall_s": time.perf_counter() - t}
    return {**cfg, **json.loads(lines[-1]), "wall_s": time.perf_counter() - t}


def fmt(v, spec="8.3f"):
    if v is None:
        return " " * (int(spec.split(".")[0]) - 1) + "–"
    return format(v, spec)


def print_table(rows):
    print("\nscaling: per-gradient time AD vs FD (2d+1 evaluations batched over the devices), by configuration")
    head = (f"{'kind':6s} {'model':6s} {'nt×ns':>10s} {'n_latent':>9s} {'d':>3s} {'dev':>3s} {'f s':>8s} {'AD s':>8s} "
            f"{'FD s':>8s} {'FD/AD':>6s} {'goal':>5s} {'AD/f':>5s} {'TFLOP/s':>8s} {'peak GiB':>8s} {'J AD':>7s} {'J FD':>7s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        shape = f"{r['nt']}×{r.get('ns', '?')}"
        if "error" in r:
            print(f"{r.get('kind', ''):6s} {r['model']:6s} {shape:>10s} {'':>9s} {'':>3s} {r['devices']:>3} {r['error']}")
            continue
        print(f"{r['kind']:6s} {r['model']:6s} {shape:>10s} {r['n_latent']:9d} {r['d']:3d} {r['devices']:3d} "
              f"{fmt(r['f_s'])} {fmt(r['ad_s'])} {fmt(r['fd_s'])} {fmt(r['fd/ad'], '6.2f')} {fmt(r['target_fd/ad'], '5.1f')} "
              f"{fmt(r['ad/f'], '5.2f')} {fmt(r['TFLOP/s'], '8.3f')} {fmt(r['peak_GiB'], '8.2f')} "
              f"{fmt(r.get('J/grad_ad'), '7.1f')} {fmt(r.get('J/grad_fd'), '7.1f')}")
    fits = [r for r in rows if "fit_ad_s" in r]
    if fits:
        print("\nmode search driven by AD vs FD gradients")
        print(f"{'model':6s} {'nt×ns':>10s} {'dev':>3s} {'AD fit s':>9s} {'iter':>5s} {'FD fit s':>9s} {'iter':>5s} {'|Δθ|':>8s}")
        for r in fits:
            print(f"{r['model']:6s} {str(r['nt']) + '×' + str(r['ns']):>10s} {r['devices']:3d} {r['fit_ad_s']:9.2f} "
                  f"{r['bfgs_iter_ad']:5d} {r['fit_fd_s']:9.2f} {r['bfgs_iter_fd']:5d} {r['mode_ad_vs_fd']:8.4f}")
    for r in rows:
        if r.get("fp64_peak_TFLOP/s"):
            print(f"\ncard: {r['device_kind']}, fp64 GEMM peak {r['fp64_peak_TFLOP/s']} TFLOP/s")
            break


def largest_one_device(args, env, budget_end: float) -> list[dict]:
    """Grow nt of the largest demf size on one device until a gradient no longer completes."""
    nt, ns = PRESETS[args.preset]["demf"][-1]
    found = []
    while time.perf_counter() < budget_end:
        r = run_child({"model": "demf", "nt": nt, "ns": ns, "devices": 1, "fit": False, "kind": "largest"},
                      min(args.limit, budget_end - time.perf_counter()), env)
        found.append(r)
        print(json.dumps(r), flush=True)
        if "error" in r:
            break
        nt = int(nt * 1.5)
    return found


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--host-devices", type=int, default=0, help="CPU: fake this many host devices in the children")
    ap.add_argument("--fit", action="store_true", help="also the whole fit, AD- vs FD-driven")
    ap.add_argument("--weak", action="store_true", help="also weak scaling (nt grows with the device count)")
    ap.add_argument("--largest", action="store_true", help="then the largest demf model one device takes")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    ap.add_argument("--limit", type=float, default=240.0, help="seconds for one configuration")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))), flush=True)
        return 0
    env = dict(os.environ)
    if args.host_devices:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.host_devices}").strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
    start = time.perf_counter()
    budget_end = start + args.budget
    rows = []
    for cfg in configurations(args):
        left = budget_end - time.perf_counter()
        if left < 10:
            rows.append({**cfg, "error": "skipped: the run's time budget is spent"})
            continue
        r = run_child(cfg, min(args.limit, left), env)
        rows.append(r)
        print(json.dumps(r), flush=True)
    if args.largest:
        rows += largest_one_device(args, env, budget_end)
    print_table(rows)
    print(f"\nwhole run {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
