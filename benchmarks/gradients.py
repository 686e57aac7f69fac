"""Per-gradient time of the INLA objective: reverse-mode AD against R-INLA-style central
finite differences, side by side in one run, for d = 2, 4, 8, 15 hyperparameters.

Model family (issue 4): sums of ar1 / iid / rw1 components with a Poisson likelihood,
n_obs observations, each component of size m; d is the number of hyperparameters
(ar1 contributes 2, iid and rw1 one each). Every row reports the median over repeats of

* t(objective)   — one evaluation of log π̃(θ | y) (inner Newton included),
* t(AD gradient) — value and exact gradient by reverse-mode AD (custom VJPs),
* t(FD gradient) — 2d evaluations at θ ± h e_j (R-INLA's central differences; the centre
  value is extra), evaluated one after the other as R-INLA does per thread,
* the ratios t(AD)/t(objective) (target ≤ 3) and t(FD)/t(AD) (the speed-up; ideal (2d+1)/ratio),
* max |AD − FD| / max |FD| (agreement).

usage: python benchmarks/gradients.py [--n-obs 4000] [--size 200] [--reps 5] [--solver auto]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import pandas as pd

import adelia

TERMS = {
    2: ["ar1"],
    4: ["ar1", "ar1"],
    8: ["ar1", "ar1", "ar1", "iid", "rw1"],
    15: ["ar1", "ar1", "ar1", "ar1", "ar1", "iid", "iid", "rw1", "rw1", "iid"],
}


def make_data(d: int, n_obs: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    terms = TERMS[d]
    df = {"x": rng.normal(size=n_obs)}
    eta = 0.5 + 0.3 * df["x"]
    parts = []
    for j, model in enumerate(terms):
        idx = rng.integers(1, size + 1, n_obs)
        name = f"i{j}"
        df[name] = idx
        if model == "ar1":
            u = np.zeros(size)
            for t in range(1, size):
                u[t] = 0.8 * u[t - 1] + 0.3 * rng.normal()
        elif model == "rw1":
            u = np.cumsum(0.05 * rng.normal(size=size))
            u -= u.mean()
        else:
            u = 0.3 * rng.normal(size=size)
        eta = eta + u[idx - 1]
        parts.append(f"f({name}, model='{model}')")
    df["y"] = rng.poisson(np.exp(eta))
    return "y ~ 1 + x + " + " + ".join(parts), pd.DataFrame(df)


def timed(fn, reps):
    fn()  # compile / warm up
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return float(np.median(out))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-obs", type=int, default=4000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--d", type=int, nargs="*", default=[2, 4, 8, 15])
    args = ap.parse_args(argv)
    rows = []
    for d in args.d:
        formula, df = make_data(d, args.n_obs, args.size)
        model = adelia.compile(formula, df, family="poisson", control_inla={"solver": args.solver})
        assert len(model.theta_names) == d, (d, model.theta_names)
        theta = model.theta0 + 0.1
        model.log_posterior(theta)  # warm start of the inner mode
        t_obj = timed(lambda: model.log_posterior(theta), args.reps)
        t_ad = timed(lambda: model.value_and_grad(theta), args.reps)

        def fd():
            vals = [model.log_posterior(theta + s * h) for h in np.eye(d) * 0.005 for s in (1, -1)]
            return vals

        t_fd = timed(fd, max(1, args.reps // 2))
        g_ad = model.grad_log_posterior(theta)
        g_fd = model.grad_log_posterior(theta, method="fd", step=1e-4)
        rows.append(
            {
                "d": d,
                "n_latent": model.graph.n_latent,
                "n_obs": args.n_obs,
                "solver": type(model.graph.solver).__name__,
                "t_obj_ms": 1e3 * t_obj,
                "t_AD_ms": 1e3 * t_ad,
                "t_FD_ms": 1e3 * t_fd,
                "AD/obj": t_ad / t_obj,
                "FD/AD": t_fd / t_ad,
                "(2d+1)": 2 * d + 1,
                "rel_err": float(np.max(np.abs(g_ad - g_fd)) / np.max(np.abs(g_fd))),
            }
        )
        print(rows[-1], flush=True)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
