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

``--project P`` (no multi-GPU machine needed): the P-device time of one AD gradient of a large
model, projected from one-device timings (issue 13's 4-GPU goal: ≤ 10 s per gradient of a
≥ 1.9M-latent 3-variate coregional model, d = 15; the published code: 31.9 s on 4 GH200s).
Models: ``--preset paper``: coreg3 384×1673 (n ≈ 1.93M: the paper preset's 192×1673 with twice the nt) and
demf 250×4002, projected to P devices; ``--preset cpu``: demf 40×200 and coreg3 16×60, projected to
2 and P devices. The projection:

    T(P) = t_out + Σ_op n_op · [t_local,op(m) + t_reduced,op(2P)] + bytes(P) / BW + λ · n_coll(P)

* n_op — the BTA kernel calls of one gradient, counted in the jaxpr of the model's compiled
  value-and-gradient (a Gaussian likelihood: 3 ``cholesky``, 2 ``solve_from_factor``, 1
  ``selected_inverse_from_factor``, 1 ``logdet_from_factor``: the Newton solve, the log-det's
  factor and its selected-inverse VJP, the implicit-function solve);
* t_local,op(m) — the op of :mod:`adelia.engine.bta_distributed` on a one-device mesh for a
  matrix of m blocks (m = ⌈n_b/P⌉, one partition's blocks with its two boundary blocks): the
  same code one device of a P-device mesh runs — its interior elimination, boundary and arrow
  updates (and a 2-block reduced system, so slightly high). Where m blocks do not fit half
  the device's memory, measured at m = 4 and 8 and extrapolated linearly in m (a scan over
  blocks of one shape: constant cost per block);
* t_reduced,op(2P) — :mod:`adelia.engine.bta` on the reduced system of 2P blocks + arrow
  (replicated: every device factorises it);
* bytes(P), n_coll(P) — what each device receives per gradient by the kernels' collectives,
  from the shapes (:func:`collective_operands`; ring all_gather (P−1)·c, ring all-reduce
  2(P−1)/P·c elements of 8 bytes); BW: NVLink 4 (H100 SXM / GH200) 450 GB/s per direction
  (NVIDIA H100 datasheet: 900 GB/s bidirectional per GPU), and a PCIe-class 25 GB/s line;
  λ = 10 µs per collective (NCCL small-message latency, an assumption);
* t_out — everything outside the BTA kernels (likelihood, predictor A x, assembly of Q and
  Q_c values, the scatter into blocks): the model's measured one-device gradient minus its
  kernel calls, at nt_meas (all of nt on the CPU, 8 for the paper models), scaled by nt/nt_meas;
  *not* divided by P: in the current implementation it runs replicated on every device.

On the CPU with ``--host-devices 4`` (one XLA thread per host device) each child also runs the
same kernels on the P-device host mesh and prints projected against measured (CPU time summed
over the devices' threads, the honest comparison on 2 shared cores), and the collectives XLA
compiled into the model's whole gradient on P devices against the kernels' (see
benchmarks/README.md). On one GPU (2 minutes or so per model)::

    python benchmarks/scaling.py --project 4 --preset paper --limit 110 --budget 180

usage: python benchmarks/scaling.py [--preset cpu|paper] [--devices 1 2 4] [--host-devices 4]
                                    [--fit] [--weak] [--largest] [--budget 540] [--limit 240]
       python benchmarks/scaling.py --project 4 [--preset paper] [--bandwidth-GBs 450] [--latency-us 10]
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
# --project P: the P-device gradient time from one-device timings (see the module doc)
# ----------------------------------------------------------------------------------------------

#: (model, nt, ns) whose P-device gradient is projected
PROJECT_SIZES = {"paper": [("coreg3", 384, 1673), ("demf", 250, 4002)], "cpu": [("demf", 40, 200), ("coreg3", 16, 60)]}
#: nt of the model whose one-device gradient gives t_out (None: the whole model)
PROJECT_MEASURE_NT = {"paper": 8, "cpu": None}
#: NVLink 4 (H100 SXM, GH200): 900 GB/s bidirectional per GPU = 450 GB/s per direction (NVIDIA H100 datasheet)
NVLINK4_GBS = 450.0
#: a PCIe-class link (PCIe 4.0 x16: 32 GB/s theoretical, ~25 GB/s achieved)
PCIE_GBS = 25.0
#: per-collective latency, µs (NCCL small-message all_gather / all-reduce within a node; assumed)
COLLECTIVE_LATENCY_US = 10.0
GOAL_4GPU_S, PUBLISHED_4GPU_S = 10.0, 31.9
#: the kernels of a gradient, by the name of their jitted function (the same in bta and bta_distributed)
KERNELS = ("cholesky", "solve_from_factor", "selected_inverse_from_factor", "logdet_from_factor")
SHORT = {"cholesky": "F", "solve_from_factor": "S", "selected_inverse_from_factor": "SI", "logdet_from_factor": "LD"}


def collective_operands(b: int, a: int, k: int = 1) -> dict:
    """Per device and call of a :mod:`adelia.engine.bta_distributed` kernel: the element counts
    of the arrays its collectives take ({kernel: {"all_gather": [...], "psum": [...]}}).

    ``cholesky`` all_gathers a partition's boundary pieces — first and last diagonal blocks,
    the lower block (last, first), the arrow blocks of first and last, and the seam block B to
    the next partition — and psums its part of the tip (a × a); ``solve_from_factor`` gathers
    the two boundary right-hand sides (2, b, k) and psums the arrow's (a, k);
    ``logdet_from_factor`` psums one scalar; ``selected_inverse_from_factor`` has none (the
    reduced system's factor is replicated).
    """
    return {
        "cholesky": {"all_gather": [b * b, b * b, b * b, a * b, a * b, b * b], "psum": [a * a]},
        "solve_from_factor": {"all_gather": [2 * b * k], "psum": [a * k]},
        "selected_inverse_from_factor": {"all_gather": [], "psum": []},
        "logdet_from_factor": {"all_gather": [], "psum": [1]},
    }


def exchanged(b: int, a: int, partitions: int, k: int = 1, itemsize: int = 8) -> dict:
    """{kernel: (bytes one device receives, collectives)} for one call over P partitions, by
    ring algorithms: an all_gather of c elements per device receives (P−1)·c, an all-reduce
    of c elements 2(P−1)/P·c. P = 1: nothing."""
    if partitions <= 1:
        return {name: (0.0, 0) for name in KERNELS}
    p = partitions
    out = {}
    for name, ops in collective_operands(b, a, k).items():
        elements = (p - 1) * sum(ops["all_gather"]) + 2.0 * (p - 1) / p * sum(ops["psum"])
        out[name] = (elements * itemsize, len(ops["all_gather"]) + len(ops["psum"]))
    return out


def gradient_kernel_calls(model, theta) -> dict:
    """The BTA kernel calls of one value-and-gradient, counted in the jaxpr of the model's
    compiled function: every call of a jitted kernel is one equation (forward, custom-VJP
    backward and the implicit-function solve alike); a while loop's body counts once, which is
    the one Newton step of a Gaussian likelihood (other likelihoods iterate: a lower bound)."""
    import collections

    import jax
    import jax.numpy as jnp

    closed = jax.make_jaxpr(model._vg)(jnp.asarray(theta), jnp.asarray(model._x_warm))
    counts = collections.Counter()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("pjit", "jit") and eqn.params.get("name") in KERNELS:
                counts[eqn.params["name"]] += 1
            for value in eqn.params.values():
                for sub in value if isinstance(value, (list, tuple)) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(getattr(sub, "jaxpr", None), "eqns"):
                        walk(sub.jaxpr)

    walk(closed.jaxpr)
    return {name: counts.get(name, 0) for name in KERNELS}


def random_bta(n_b: int, b: int, a: int, seed: int = 0):
    """A random, safely positive definite BTA matrix (the kernels' cost depends only on the
    shapes): diagonal blocks 6I + a symmetric N(0, ¼/b) part (spectral norm ≈ 1), lower blocks
    N(0, ¼/b), small arrow, tip (6 + n_b/20) I."""
    import jax
    import jax.numpy as jnp

    from adelia.engine.bta import BTAMatrix

    k = jax.random.split(jax.random.key(seed), 3)
    s = 0.5 / b**0.5
    g = jax.random.normal(k[0], (n_b, b, b)) * s
    diag = 0.5 * (g + g.swapaxes(1, 2)) + 6.0 * jnp.eye(b)
    del g
    lower = jax.random.normal(k[1], (max(n_b - 1, 0), b, b)) * s
    arrow = jax.random.normal(k[2], (n_b, a, b)) * (0.1 / b**0.5)
    return BTAMatrix(diag, lower, arrow, (6.0 + 0.05 * n_b) * jnp.eye(a))


def timed_op(fn, reps: int = 3, max_reps: int = 9, min_total_s: float = 0.5) -> tuple[float, float]:
    """(wall s, process CPU s: all threads, i.e. all host devices) of one warm call: the
    minimum over at least ``reps`` calls (more, up to ``max_reps``, until ``min_total_s`` is
    spent), the least disturbed by other processes on shared cores; the first call compiles
    and is not counted."""
    import jax

    jax.block_until_ready(fn())
    walls, cpus = [], []
    while len(walls) < reps or (sum(walls) < min_total_s and len(walls) < max_reps):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def kernel_times(n_b: int, b: int, a: int, mesh=None, k: int = 1) -> dict:
    """{kernel: (wall, cpu)}: :mod:`adelia.engine.bta` on an n_b-block matrix (``mesh`` None),
    else :mod:`adelia.engine.bta_distributed` over the mesh's ``"time"`` axis (the matrix
    replicated on the mesh, as the model's jitted code holds it)."""
    import jax
    import jax.numpy as jnp

    from adelia.engine import bta
    from adelia.engine import bta_distributed as bd

    Q = random_bta(n_b, b, a)
    if mesh is None:
        kern = bta
        factor = bta.cholesky
    else:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as PS

        Q = jax.device_put(Q, NamedSharding(mesh, PS()))
        kern = bd

        def factor(Q):
            return bd.cholesky(Q, mesh)

    L = factor(Q)
    reps = 5 if jax.default_backend() == "cpu" else 3  # shared host cores: more calls for the minimum
    r = jnp.ones((n_b * b + a, k))
    if mesh is not None:
        r = jax.device_put(r, NamedSharding(mesh, PS()))
    return {
        "cholesky": timed_op(lambda: factor(Q), reps),
        "solve_from_factor": timed_op(lambda: kern.solve_from_factor(L, r), reps),
        "selected_inverse_from_factor": timed_op(lambda: kern.selected_inverse_from_factor(L), reps),
        "logdet_from_factor": timed_op(lambda: kern.logdet_from_factor(L), reps),
    }


def one_device_mesh():
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()[:1]), ("time",))


def local_partition_times(blocks: list[int], b: int, a: int, memory_bytes: float) -> tuple[dict, bool]:
    """{m: {kernel: (wall, cpu)}}: one partition's work — the distributed kernels on a
    one-device mesh for an m-block matrix. Measured at each m when 10·m·b(b+a)·8 bytes fit
    half of ``memory_bytes``, else at m = 4 and 8 and extrapolated linearly in m (the second
    value: True)."""
    def need(m):
        return 10.0 * m * b * (b + a) * 8

    mesh = one_device_mesh()
    if all(need(m) <= 0.5 * memory_bytes for m in blocks):
        return {m: kernel_times(m, b, a, mesh) for m in blocks}, False
    base = [m for m in (4, 8) if need(m) <= 0.5 * memory_bytes] or [3, 4]
    measured = {m: kernel_times(m, b, a, mesh) for m in base}
    m1, m2 = base[0], base[-1]
    out = {}
    for m in blocks:
        out[m] = {}
        for name in KERNELS:
            pair = []
            for j in range(2):
                t1, t2 = measured[m1][name][j], measured[m2][name][j]
                slope = (t2 - t1) / (m2 - m1) if m2 != m1 else t1 / m1
                pair.append(max(t1 + slope * (m - m1), 0.0))
            out[m][name] = tuple(pair)
    return out, True


def host_copy_GBs() -> float:
    """Memory copy rate of the host (bytes copied per second, 256 MB arrays), GB/s."""
    import numpy as np

    src = np.ones(2**25)
    dst = np.empty_like(src)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t)
    return src.nbytes / min(times) / 1e9


def collective_latency_s(mesh) -> float:
    """Time of a one-element psum over the mesh's ``"time"`` axis, less the same program
    without the psum (median of 30 calls)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as PS

    def program(f, out):
        return jax.jit(jax.shard_map(f, mesh=mesh, in_specs=PS("time"), out_specs=out))

    with_psum = program(lambda x: jax.lax.psum(x, "time"), PS())
    without = program(lambda x: 2.0 * x, PS("time"))
    x = jnp.ones(mesh.shape["time"])

    def median(f):
        jax.block_until_ready(f(x))
        ts = []
        for _ in range(30):
            t = time.perf_counter()
            jax.block_until_ready(f(x))
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    return max(median(with_psum) - median(without), 0.0)


def compiled_collectives(fn, args, partitions: int) -> dict:
    """The collectives XLA compiled into ``jax.jit(fn)(*args)`` (the whole gradient, with the
    transfers XLA adds around the kernels' shard_maps): {op: [count, bytes one device receives]}
    by ring algorithms (all-gather and all-to-all: (P−1)/P of the result, all-reduce: 2(P−1)/P of it,
    collective-permute: its result). A while loop's body counts once."""
    import re

    import jax
    import numpy as np

    text = jax.jit(fn).lower(*args).compile().as_text()
    p = partitions
    share = {"all-gather": (p - 1) / p, "all-reduce": 2.0 * (p - 1) / p, "all-to-all": (p - 1) / p}
    found: dict = {}
    pattern = re.compile(r"=\s*(\(?[^=]*?\)?)\s+(all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)(?:-start)?\(")
    sizes = {"f64": 8, "f32": 4, "s32": 4, "s64": 8, "pred": 1, "u32": 4}
    for line in text.splitlines():
        m = pattern.search(line)
        if not m:
            continue
        nbytes = 0
        for dtype, dims in re.findall(r"(f64|f32|s32|s64|pred|u32)\[([\d,]*)\]", m.group(1)):
            nbytes += sizes[dtype] * int(np.prod([int(x) for x in dims.split(",") if x] or [1]))
        entry = found.setdefault(m.group(2), [0, 0.0])
        entry[0] += 1
        entry[1] += share.get(m.group(2), 1.0) * nbytes
    return found


def whole_gradient_collectives(cfg: dict, partitions: int) -> dict | None:
    """The collectives compiled into the model's whole gradient with its time blocks over
    ``partitions`` host devices (:func:`compiled_collectives`); None where the solver cannot be
    put on that split."""
    import jax.numpy as jnp
    import numpy as np

    make = demf_problem if cfg["model"] == "demf" else coregional_problem
    build, theta_true, _ = make(cfg["nt"], cfg["ns"])
    model = build({"solver": "bta", "devices": partitions})
    solver = model.graph.solver
    if hasattr(solver, "use_split"):
        solver.use_split(1, partitions)  # all devices on the time partitions
    if getattr(solver, "mesh", None) is None or dict(solver.mesh.shape).get("time", 1) != partitions:
        return None
    theta = np.asarray(theta_true if theta_true is not None else model.theta0, dtype=float) + 0.05
    return compiled_collectives(model._vg.fun, (jnp.asarray(theta), jnp.asarray(model._x_warm)), partitions)


def project_one(cfg: dict) -> dict:
    """One model's projection (a child process): see the module doc."""
    import warnings

    import jax
    import numpy as np

    import adelia  # noqa: F401  (float64)
    from adelia.engine.bta_partition import partition_plan

    warnings.simplefilter("ignore")
    nt, nt_meas = cfg["nt"], cfg.get("nt_meas") or cfg["nt"]
    make = demf_problem if cfg["model"] == "demf" else coregional_problem
    t_setup = time.perf_counter()
    build, theta_true, n_mesh = make(nt_meas, cfg["ns"])
    model = build({"solver": "bta"})
    bs = model.graph.block_structure
    if bs.n_blocks != nt_meas:
        raise RuntimeError(f"{cfg['model']}: expected {nt_meas} time blocks, the BTA layout has {bs.n_blocks}")
    b, a = bs.block_size, bs.arrow_size
    dev = jax.devices()[0]
    row = {"model": cfg["model"], "nt": nt, "ns": n_mesh, "b": b, "a": a, "n_latent": nt * b + a,
           "d": len(model.theta_names), "nt_meas": nt_meas, "platform": dev.platform, "device_kind": dev.device_kind,
           "setup_s": time.perf_counter() - t_setup}
    theta = np.asarray(theta_true if theta_true is not None else model.theta0, dtype=float) + 0.05

    # the kernel calls of one gradient, and the time outside them (one device, nt_meas blocks)
    calls = gradient_kernel_calls(model, theta)
    row["calls"] = calls
    shifts = iter(range(1, 100))
    row["grad_meas_s"] = timed_op(lambda: model.value_and_grad(theta + 1e-3 * next(shifts)))[0]
    del model
    by_blocks = {}

    def bta_times(n_b):
        if n_b not in by_blocks:
            by_blocks[n_b] = kernel_times(n_b, b, a)
        return by_blocks[n_b]

    meas = bta_times(nt_meas)
    row["kernels_meas_s"] = sum(calls[k] * meas[k][0] for k in KERNELS)
    row["t_out_meas_s"] = max(row["grad_meas_s"] - row["kernels_meas_s"], 0.0)
    row["t_out_s"] = row["t_out_meas_s"] * nt / nt_meas

    stats = dev.memory_stats() or {}
    memory = float(stats.get("bytes_limit", cfg.get("host_memory_gib", 4.0) * 2**30))
    plans = {p: partition_plan(nt, p) for p in cfg["partitions"]}
    local, row["local_extrapolated"] = local_partition_times(sorted({pl.per_partition for pl in plans.values()}), b, a, memory)
    bw = cfg["bandwidth_GBs"] * 1e9
    lam = cfg["latency_us"] * 1e-6
    on_host_mesh = dev.platform == "cpu" and len(jax.devices()) >= max(cfg["partitions"])
    if on_host_mesh:
        row["host_copy_GBs"] = host_copy_GBs()
    row["projections"] = []
    for p, plan in plans.items():
        m, used = plan.per_partition, plan.partitions
        red = bta_times(2 * used)
        ex = exchanged(b, a, used)
        pr = {"P": used, "m": m,
              "local_s": {k: local[m][k][0] for k in KERNELS}, "reduced_s": {k: red[k][0] for k in KERNELS},
              "bytes": sum(calls[k] * ex[k][0] for k in KERNELS), "collectives": sum(calls[k] * ex[k][1] for k in KERNELS)}
        pr["t_local_s"] = sum(calls[k] * local[m][k][0] for k in KERNELS)
        pr["t_reduced_s"] = sum(calls[k] * red[k][0] for k in KERNELS)
        pr["t_comm_s"] = pr["bytes"] / bw + lam * pr["collectives"]
        pr["t_comm_pcie_s"] = pr["bytes"] / (PCIE_GBS * 1e9) + lam * pr["collectives"]
        kern = pr["t_local_s"] + pr["t_reduced_s"]
        pr["projected_s"] = row["t_out_s"] + kern + pr["t_comm_s"]
        pr["projected_pcie_s"] = row["t_out_s"] + kern + pr["t_comm_pcie_s"]
        if on_host_mesh:  # validation: the same kernels on the P-device host mesh
            from jax.sharding import Mesh

            mesh = Mesh(np.array(jax.devices()[:used]), ("time",))
            lam_host = collective_latency_s(mesh)
            bw_host = row["host_copy_GBs"] * 1e9
            measured = kernel_times(nt, b, a, mesh)
            comm_host = pr["bytes"] / bw_host + lam_host * pr["collectives"]
            compiled = whole_gradient_collectives(cfg, used)
            pr["validate"] = {
                "compiled_collectives": compiled,
                "latency_us": lam_host * 1e6,
                "projected_kernels_wall_s": kern + comm_host,
                "projected_work_cpu_s": used * sum(calls[k] * (local[m][k][1] + red[k][1]) for k in KERNELS) + comm_host,
                "measured_wall_s": sum(calls[k] * measured[k][0] for k in KERNELS),
                "measured_cpu_s": sum(calls[k] * measured[k][1] for k in KERNELS),
                "per_kernel": {SHORT[k]: {"local_cpu": local[m][k][1], "reduced_cpu": red[k][1],
                                          "measured_cpu": measured[k][1], "measured_wall": measured[k][0]} for k in KERNELS},
            }
        row["projections"].append(pr)
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
        lines = (out.stderr or out.stdout).strip().splitlines()
        # the exception's own line, not JAX's note on filtered traceback frames
        errors = [ln for ln in lines if ("Error" in ln or "Exception" in ln) and "JAX_TRACEBACK" not in ln]
        tail = (errors or lines)[-1:] or ["no output"]
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


def project_configurations(args) -> list[dict]:
    # the CPU preset validates P = 2 and P on host devices; the paper preset projects P only (GPU time)
    partitions = sorted({2, args.project}) if args.preset == "cpu" and args.project > 2 else [args.project]
    return [{"mode": "project", "model": model, "nt": nt, "ns": ns, "partitions": partitions,
             "nt_meas": PROJECT_MEASURE_NT[args.preset], "bandwidth_GBs": args.bandwidth_GBs,
             "latency_us": args.latency_us, "kind": "project", "devices": args.project}
            for model, nt, ns in PROJECT_SIZES[args.preset]]


def print_projection(rows, args):
    print(f"\nprojected time of one AD gradient on P devices, from one-device timings (--project {args.project})")
    print("T(P) = t_out + Σ_op n_op·[t_local,op(⌈n_b/P⌉ blocks) + t_reduced,op(2P blocks)] + bytes/BW + λ·collectives;"
          f" λ = {args.latency_us:g} µs; BW = {args.bandwidth_GBs:g} GB/s (NVLink 4, H100/GH200) or {PCIE_GBS:g} GB/s (PCIe)")
    head = (f"{'model':6s} {'nt×ns':>9s} {'n_latent':>9s} {'b':>5s} {'a':>2s} {'calls F/S/SI':>12s} {'P':>2s} {'m':>4s} "
            f"{'t_out s':>8s} {'local s':>8s} {'reduced s':>9s} {'MB/grad':>8s} {'coll':>5s} "
            f"{'T@' + format(args.bandwidth_GBs, 'g'):>9s} {'T@' + format(PCIE_GBS, 'g'):>9s} {'goal':>5s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        shape = f"{r['nt']}×{r.get('ns', '?')}"
        if "error" in r:
            print(f"{r['model']:6s} {shape:>9s} {r['error']}")
            continue
        c = r["calls"]
        calls = f"{c['cholesky']}/{c['solve_from_factor']}/{c['selected_inverse_from_factor']}"
        for p in r["projections"]:
            goal = f"{GOAL_4GPU_S:g}" if r["model"] == "coreg3" and p["P"] == 4 and r["n_latent"] >= 1.9e6 else ""
            m = f"{p['m']}{'*' if r['local_extrapolated'] else ''}"
            print(f"{r['model']:6s} {shape:>9s} {r['n_latent']:9d} {r['b']:5d} {r['a']:2d} {calls:>12s} {p['P']:2d} {m:>4s} "
                  f"{r['t_out_s']:8.3f} {p['t_local_s']:8.3f} {p['t_reduced_s']:9.3f} {p['bytes'] / 1e6:8.1f} "
                  f"{p['collectives']:5d} {p['projected_s']:9.3f} {p['projected_pcie_s']:9.3f} {goal:>5s}")
    print("(* local times measured at m = 4 and 8 blocks and extrapolated linearly in m; t_out: the one-device gradient "
          "minus its kernels at nt_meas, × nt/nt_meas, not divided by P: it runs replicated on every device)")
    if any(r.get("model") == "coreg3" and r.get("n_latent", 0) >= 1.9e6 for r in rows):
        print(f"goal for the ≥ 1.9M-latent coreg3 model on 4 GPUs: ≤ {GOAL_4GPU_S:g} s per gradient; "
              f"the published code: {PUBLISHED_4GPU_S:g} s on 4 GH200s")
    checks = [(r, p) for r in rows if "projections" in r for p in r["projections"] if "validate" in p]
    if checks:
        print("\nvalidation on the host mesh: the gradient's kernel calls (Σ n_op × kernel) projected from one-device "
              "timings vs run over P host devices")
        print("(host devices share the machine's cores, so the P partitions do not run in parallel: the honest check is "
              "total work = CPU time over all threads, projected P·Σ n_op·(local + reduced) + comm vs measured)")
        head = (f"{'model':6s} {'nt×ns':>9s} {'P':>2s} {'copy GB/s':>9s} {'λ µs':>6s} {'proj work s':>11s} "
                f"{'meas CPU s':>10s} {'ratio':>6s} {'proj wall s':>11s} {'meas wall s':>11s} "
                f"{'kern MB':>8s} {'coll':>4s} {'HLO MB':>7s} {'coll':>4s}")
        print(head)
        print("-" * len(head))
        for r, p in checks:
            v = p["validate"]
            hlo = v.get("compiled_collectives")
            hlo_mb = f"{sum(b for _, b in hlo.values()) / 1e6:7.3f}" if hlo is not None else f"{'–':>7s}"
            hlo_n = f"{sum(n for n, _ in hlo.values()):4d}" if hlo is not None else f"{'–':>4s}"
            print(f"{r['model']:6s} {str(r['nt']) + '×' + str(r['ns']):>9s} {p['P']:2d} {r['host_copy_GBs']:9.1f} "
                  f"{v['latency_us']:6.0f} {v['projected_work_cpu_s']:11.3f} {v['measured_cpu_s']:10.3f} "
                  f"{v['measured_cpu_s'] / v['projected_work_cpu_s']:6.2f} {v['projected_kernels_wall_s']:11.3f} "
                  f"{v['measured_wall_s']:11.3f} {p['bytes'] / 1e6:8.3f} {p['collectives']:4d} {hlo_mb} {hlo_n}")
        print("(kern MB / coll: what one device receives per gradient by the kernels' collectives, from the shapes; HLO MB / "
              "coll: every collective XLA compiled into the whole gradient with devices = P, by kind in the JSON lines — "
              "the difference is the traffic around the kernels: the factor and Σ moved between replicated and "
              "partitioned layouts)")
        print("(proj wall: the critical path P real devices would take — local + reduced + comm; on shared host devices the "
              "measured wall time is the total work spread over the free cores instead)")


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
    ap.add_argument("--project", type=int, nargs="?", const=4, default=None, metavar="P",
                    help="instead: project the P-device gradient time (P = 4 by default) from one-device timings")
    ap.add_argument("--bandwidth-GBs", type=float, default=NVLINK4_GBS,
                    help="interconnect bandwidth per direction per device for --project, GB/s (NVLink 4: 450)")
    ap.add_argument("--latency-us", type=float, default=COLLECTIVE_LATENCY_US, help="latency per collective for --project, µs")
    args = ap.parse_args(argv)
    if args.one:
        cfg = json.loads(args.one)
        print(json.dumps(project_one(cfg) if cfg.get("mode") == "project" else run_one(cfg)), flush=True)
        return 0
    env = dict(os.environ)
    if args.host_devices:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.host_devices}").strip()
        if args.project:  # one thread per host device: a device's CPU time is then its work
            env["XLA_FLAGS"] += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env.setdefault("JAX_PLATFORMS", "cpu")
    start = time.perf_counter()
    budget_end = start + args.budget
    rows = []
    if args.project:
        for cfg in project_configurations(args):
            left = budget_end - time.perf_counter()
            r = run_child(cfg, min(args.limit, left), env) if left >= 10 else {**cfg, "error": "skipped: the run's time budget is spent"}
            rows.append(r)
            print(json.dumps(r), flush=True)
        print_projection(rows, args)
        print(f"\nwhole run {time.perf_counter() - start:.0f} s")
        return 0
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
