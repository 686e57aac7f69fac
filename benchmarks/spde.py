"""SPDE and space-time fits on the CPU: scaling with the mesh, sparse vs BTA, and R-INLA's
perf cases P2 / P3 (issue 7).

Three parts (each optional):

* ``scaling`` — whole-fit wall time of a simulated DEMF(1,2,1) space-time model
  (``y ~ 0 + b0 + f(st, model=demf)``, 8 time points, 50 observations per time) for 3–4 mesh
  sizes, the CHOLMOD-style sparse backend and the BTA backend side by side: cold fit
  (first fit: tracing + XLA compilation), warm fit (``model.fit()`` again), one warm
  value-and-gradient, one warm objective, BFGS iterations and evaluations, design points.
* ``P2`` / ``P3`` — R-INLA's perf cases from ../shared/reference/rinla_perf with their own
  mesh (loc.csv/tv.csv), built by :func:`benchmarks.fits.build`: cold and warm whole-fit
  wall time next to R-INLA's recorded 2-thread wall time, and the agreement with R-INLA's
  results.json (hyperparameter posterior means in R-INLA posterior sds, internal scale;
  fixed effects likewise; mlik differences).
* ``--profile CASE`` — where one fit's time goes: the kernels on Q_c(θ) at R-INLA's mode
  (factorisation = ``logdet``, ``solve``, ``selected_inverse``, each on fresh values so no
  cached factor is reused), one warm objective and one warm value-and-gradient, then a fit
  with its stage timings and counts (BFGS evaluations, Hessian/skewness evaluations,
  integration points) and the stage costs those counts predict.

usage: python benchmarks/spde.py [scaling] [P2] [P3] [--solvers sparse bta] [--reps 1]
                                 [--max-edge 0.2 0.14 0.1] [--profile P3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import adelia  # noqa: E402
from adelia.engine.solver import make_solver  # noqa: E402
from adelia.inference.run import hessian_method  # noqa: E402
from fits import CASES, PERF, _rinla_wall, build  # noqa: E402

N_TIMES = 8
N_PER_TIME = 50


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = _quiet(fn, *args, **kwargs)
    return out, time.perf_counter() - t


def _median_time(fn, args_list) -> float:
    """Median wall time of fn(*args) over args_list (results blocked until ready)."""
    ts = []
    for args in args_list:
        t = time.perf_counter()
        jax.block_until_ready(_quiet(fn, *args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def _fit_counts(res) -> dict:
    post = res.posterior
    d = len(post.theta_mode)
    trace = np.asarray(post.mode.trace, dtype=float)
    # BFGS iterations after which log π̃ is within 0.01 / 0.001 of its final value (what looser,
    # R-INLA-like stopping rules would have needed)
    within = {tol: int(np.argmax(trace >= trace[-1] - tol)) for tol in (1e-2, 1e-3)} if trace.size else {}
    return {
        "bfgs_iter": int(post.mode.iterations),
        "bfgs_iter_to_0.01": within.get(1e-2),
        "bfgs_iter_to_0.001": within.get(1e-3),
        "bfgs_evals": int(post.mode.n_evaluations),
        "d": d,
        "design_points": int(post.design.size),
        "timings": {k: round(float(v), 2) for k, v in post.timings.items()},
    }


# ------------------------------------------------------------------------------------------
# (a) scaling with the mesh: DEMF space-time, sparse vs BTA
# ------------------------------------------------------------------------------------------


def demf_problem(max_edge: float, seed: int = 1):
    """Simulated DEMF data on a mesh of the unit square with inner max_edge; returns the
    arguments of adelia.compile and the mesh size."""
    rng = np.random.default_rng(seed)
    mesh = adelia.spde.mesh_2d(rng.random((60, 2)), max_edge=(max_edge, 2.5 * max_edge), offset=(0.15, 0.3), cutoff=max_edge / 4)
    st = adelia.spde.spacetime_demf(mesh, N_TIMES, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(2.0, 0.05))
    prior = st.latent_model("st")
    values = prior.precision_values(jnp.log(jnp.array([0.5, 4.0, 1.0])))
    solver = make_solver(prior.pattern(), "sparse")
    x = np.asarray(solver.sample(values, jax.random.PRNGKey(seed)))[0]
    loc = rng.random((N_PER_TIME * N_TIMES, 2))
    time_idx = np.repeat(np.arange(1, N_TIMES + 1), N_PER_TIME)
    A = adelia.spde.make_A(mesh, loc, group=time_idx, n_group=N_TIMES)
    y = 1.0 + A @ x + rng.standard_normal(time_idx.size) / 5.0
    stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * N_TIMES + 1)}, {"b0": np.ones(y.size)}])
    kw = dict(formula="y ~ 0 + b0 + f(st, model=demf)", data=adelia.spde.stack_data(stk),
              control_predictor={"A": adelia.spde.stack_A(stk)}, context={"demf": st})
    return kw, mesh.n


def scaling(max_edges, solvers, reps: int) -> list[dict]:
    rows = []
    for me in max_edges:
        kw, n_mesh = demf_problem(me)
        for solver in solvers:
            model, t_compile = _timed(adelia.compile, **kw, control_inla={"solver": solver})
            res, cold = _timed(model.fit)
            warm = [_timed(model.fit)[1] for _ in range(reps)]
            theta = res.posterior.theta_mode
            shifts = [theta + 0.01 * (k + 1) for k in range(3)]
            t_vg = _median_time(model.value_and_grad, [(t,) for t in shifts])
            t_f = _median_time(model.log_posterior, [(t + 0.005,) for t in shifts])
            row = {
                "n_mesh": n_mesh,  # = the BTA block size (one DEMF field, N_TIMES blocks)
                "n_latent": model.graph.n_latent,
                "solver": solver,
                "compile_s": t_compile,
                "cold_fit_s": cold,
                "warm_fit_s": float(np.median(warm)),
                "vg_s": t_vg,
                "f_s": t_f,
                **{k: v for k, v in _fit_counts(res).items() if k != "timings"},
            }
            rows.append(row)
            print(json.dumps({**row, "timings": _fit_counts(res)["timings"]}), flush=True)
    return rows


# ------------------------------------------------------------------------------------------
# (a') gradients on space-time models: AD against R-INLA-style central differences
# ------------------------------------------------------------------------------------------


def coregional_problem(max_edge: float, n_times: int, p: int = 3, n_per_time: int = 50, seed: int = 2):
    """A p-variate coregional DEMF model (d = 3p + p(p−1)/2 + p: 15 for p = 3) on a mesh of the
    unit square with inner max_edge; the responses are noise around the intercepts (timings
    and gradient agreement do not depend on the data). Returns the compiled-model kwargs."""
    rng = np.random.default_rng(seed)
    mesh = adelia.spde.mesh_2d(rng.random((60, 2)), max_edge=(max_edge, 2.5 * max_edge), offset=(0.15, 0.3), cutoff=max_edge / 4)
    locs = [rng.random((n_times * n_per_time, 2)) for _ in range(p)]
    times = [np.repeat(np.arange(1, n_times + 1), n_per_time) for _ in range(p)]
    ys = [rng.standard_normal(t.size) for t in times]
    cr = adelia.spde.coregional(mesh, n_times, ys, locs, times, field="demf", prior_range_s=(0.3, 0.5),
                                prior_range_t=(2.0, 0.5), prior_sigma=(1.0, 0.05))
    return cr, mesh.n


def spacetime_gradients(max_edges, n_times: int, solvers, reps: int, models=("demf", "coregional3")) -> list[dict]:
    """One value-and-gradient of log π̃(θ|y) by reverse-mode AD against the 2d objective
    evaluations of R-INLA's central differences (one after the other, as R-INLA does per
    thread, and as one vmapped batch), with the agreement of the two gradients."""
    rows = []
    for me in max_edges:
        for name in models:
            if name == "demf":
                kw, n_mesh = demf_problem(me)
                build_model = lambda solver: adelia.compile(**kw, control_inla={"solver": solver})  # noqa: E731
            else:
                cr, n_mesh = coregional_problem(me, n_times, p=int(name[-1]))
                build_model = lambda solver: cr.compile(control_inla={"solver": solver})  # noqa: E731
            for solver in solvers:
                model, t_compile = _timed(build_model, solver)
                d = len(model.theta_names)
                theta = np.asarray(model.theta0, dtype=float) + 0.05
                _, t_first = _timed(model.value_and_grad, theta)  # compiles; moves the inner mode near θ
                _quiet(model.log_posterior, theta)
                shifts = [theta + 1e-3 * (k + 1) for k in range(max(reps, 3))]
                t_f = _median_time(model.log_posterior, [(t,) for t in shifts])
                t_vg = _median_time(model.value_and_grad, [(t,) for t in shifts])
                E = np.eye(d) * 0.005

                def fd_sequential():
                    return [model.log_posterior(theta + s * e) for e in E for s in (1.0, -1.0)]

                _, t_fd = _timed(fd_sequential)
                g_ad = np.asarray(model.value_and_grad(theta)[1])
                g_fd, _ = _timed(model.grad_log_posterior, theta, method="fd", step=1e-4)  # compiles the batch
                _, t_fd_batch = _timed(model.grad_log_posterior, theta, method="fd", step=1e-4)
                row = {
                    "model": name, "n_mesh": n_mesh, "n_latent": model.graph.n_latent, "d": d,
                    "solver": type(model.graph.solver).__name__, "compile_s": t_compile, "first_vg_s": t_first,
                    "f_s": t_f, "vg_s": t_vg, "fd_seq_s": t_fd, "fd_batch_s": t_fd_batch,
                    "vg/f": t_vg / t_f, "fd_seq/vg": t_fd / t_vg, "fd_batch/vg": t_fd_batch / t_vg,
                    "rel_err": float(np.max(np.abs(g_ad - g_fd)) / np.max(np.abs(g_fd))),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


# ------------------------------------------------------------------------------------------
# (b) R-INLA's perf cases P2 / P3
# ------------------------------------------------------------------------------------------


def _agreement(res, ref) -> dict:
    hy = ref["internal_summary_hyperpar"]
    ours = res.internal_summary_hyperpar
    dev = {n: (float(ours.loc[n, "mean"]) - m) / s for n, m, s in zip(hy["name"], hy["mean"], hy["sd"])}
    fx = ref["summary_fixed"]
    devf = {n: (float(res.summary_fixed.loc[n, "mean"]) - m) / s for n, m, s in zip(fx["name"], fx["mean"], fx["sd"])}
    return {
        "max_hyper_dev_sd": max(abs(v) for v in dev.values()),
        "max_fixed_dev_sd": max(abs(v) for v in devf.values()),
        "mlik_int_diff": float(res.mlik.iloc[0] - ref["mlik"]["integration"]),
        "mlik_gauss_diff": float(res.mlik.iloc[1] - ref["mlik"]["gaussian"]),
        "hyper_dev_sd": {k: round(v, 3) for k, v in dev.items()},
    }


def perf_case(case: str, solvers, reps: int) -> list[dict]:
    folder = CASES.get(case, case)
    formula, data, kw, ref = build(folder)
    rows = []
    for solver in solvers:
        res, cold = _timed(adelia.inla, formula, data, control_inla={"solver": solver}, **kw)
        warm = [_timed(res.model.fit)[1] for _ in range(reps)]
        row = {
            "case": case,
            "solver": solver,
            "n_latent": res.model.graph.n_latent,
            "d": len(res.model.theta_names),
            "cold_fit_s": cold,
            "warm_fit_s": float(np.median(warm)) if warm else float("nan"),
            "rinla_2thr_s": _rinla_wall(folder),
            **{k: v for k, v in _agreement(res, ref).items() if k != "hyper_dev_sd"},
        }
        rows.append(row)
        print(json.dumps({**row, **_fit_counts(res), "hyper_dev_sd": _agreement(res, ref)["hyper_dev_sd"]}), flush=True)
    return rows


# ------------------------------------------------------------------------------------------
# (c) profile: where a fit's time goes
# ------------------------------------------------------------------------------------------


def profile(case: str, solver: str) -> dict:
    folder = CASES.get(case, case)
    formula, data, kw, ref = build(folder)
    model, t_compile = _timed(adelia.compile, formula, data, control_inla={"solver": solver}, **kw)
    graph = model.graph
    theta = np.asarray(ref["internal_summary_hyperpar"]["mode"], dtype=float)
    full = model.layout.expand(jnp.asarray(theta))
    qcv = model.laplace.gaussian_approximation(full, jnp.asarray(model._x_warm)).precision_values
    s = graph.solver
    # fresh values per call: the sparse backend caches factors by value
    fresh = [(qcv * (1.0 + 1e-9 * k),) for k in range(1, 4)]
    kernels = {"logdet": jax.jit(s.logdet), "solve": jax.jit(lambda v: s.solve(v, jnp.ones(s.n))),
               "selected_inverse": jax.jit(s.selected_inverse)}
    out = {"case": case, "solver": solver, "n_latent": graph.n_latent, "nnz_Qc": int(graph.posterior_pattern.nnz),
           "compile_s": round(t_compile, 2)}
    for name, fn in kernels.items():
        jax.block_until_ready(fn(qcv * (1.0 + 1e-6)))
        out[f"t_{name}_s"] = round(_median_time(fn, fresh), 3)
    _, out["vg_cold_s"] = _timed(model.value_and_grad, theta)
    out["vg_warm_s"] = round(_median_time(model.value_and_grad, [(theta + 0.01 * k,) for k in range(1, 4)]), 3)
    _, out["f_cold_s"] = _timed(model.log_posterior, theta)
    out["f_warm_s"] = round(_median_time(model.log_posterior, [(theta + 0.005 * k,) for k in range(1, 4)]), 3)
    res, out["fit_s"] = _timed(model.fit)
    counts = _fit_counts(res)
    out.update(counts)
    d = counts["d"]
    by_values = hessian_method(d, graph.n_latent) == "values"
    # values: 2d² objectives; gradients: 2d value-and-gradients; then 2d skewness objectives
    hess_cost = 2 * d * d * out["f_warm_s"] if by_values else 2 * d * out["vg_warm_s"]
    out["predicted"] = {
        "mode = bfgs_evals × vg": round(counts["bfgs_evals"] * out["vg_warm_s"], 1),
        "hessian (+ 2d skewness objectives)": round(hess_cost + 2 * d * out["f_warm_s"], 1),
        "integration per point": round(counts["timings"].get("integration", 0.0) / max(counts["design_points"], 1), 2),
    }
    print(json.dumps(out), flush=True)
    return out


# ------------------------------------------------------------------------------------------


def _print_table(rows, title):
    if not rows:
        return
    print(f"\n== {title}")
    with pd.option_context("display.width", 220, "display.max_columns", 30):
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="*", default=["scaling", "P2", "P3"], help="scaling, gradients, P2, P3")
    ap.add_argument("--solvers", nargs="+", default=["sparse", "bta"])
    ap.add_argument("--reps", type=int, default=1, help="warm fits per case")
    ap.add_argument("--max-edge", nargs="+", type=float, default=[0.2, 0.14, 0.1, 0.07], help="inner max_edge per mesh (scaling)")
    ap.add_argument("--grad-max-edge", nargs="+", type=float, default=[0.14], help="inner max_edge per mesh (gradients)")
    ap.add_argument("--grad-models", nargs="+", default=["demf", "coregional3"], help="demf, coregional2, coregional3")
    ap.add_argument("--profile", default=None, help="profile one case (e.g. P3) with the first solver")
    args = ap.parse_args(argv)
    needs_perf = args.profile or any(p in ("P2", "P3") for p in args.parts)
    if needs_perf and not PERF.exists():
        sys.exit(f"needs the shared reference material at {PERF}")
    print(json.dumps({"jax_backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}))
    if args.profile:
        profile(args.profile, args.solvers[0])
        return
    if "scaling" in args.parts:
        _print_table(scaling(args.max_edge, args.solvers, args.reps), f"DEMF fit time vs mesh size ({N_TIMES} times)")
    if "gradients" in args.parts:
        _print_table(spacetime_gradients(args.grad_max_edge, N_TIMES, args.solvers, args.reps, args.grad_models),
                     f"AD gradient vs central differences on space-time models ({N_TIMES} times)")
    perf = [r for p in args.parts if p in ("P2", "P3") for r in perf_case(p, args.solvers, args.reps)]
    _print_table(perf, "R-INLA perf cases (R-INLA: 2-thread wall time on this machine type)")


if __name__ == "__main__":
    main()
