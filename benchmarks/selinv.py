"""Benchmark of the selected inverse on the sparse (CPU) backend: CHOLMOD + sparsax's
scalar Takahashi recursion against adelia's supernodal kernels (adelia.engine.supernodal).

    python benchmarks/selinv.py              # all patterns, median of 7 runs
    python benchmarks/selinv.py --repeats 15 --only spde grid

Patterns (synthetic, built here; values SPD, changed on every call so no factor cache hits):

* spde:      2-D triangulated lattice 50×50 (7-point Laplacian G), Q = κ⁴I + 2κ²G + GG
             plus a data diagonal: the 2-ring pattern of an SPDE posterior precision;
* grid:      2-D 5-point grid Laplacian 70×70 + 0.05 I (n = 4900);
* iid+rw2:   Poisson-like posterior precision of iid(2000) + rw2(500) + 2 fixed effects,
             Q = prior + Aᵀ W A with a random 20 000 × 2502 A (one iid level, one rw2
             knot, intercept, covariate per row): a dense ~500 block after elimination;
* spacetime: 2-D lattice Laplacian (+0.1 I) of 32×32 nodes ⊗ AR(1) tridiagonal of 20 steps
             (n = 20 480) plus one dense arrow row/column (a fixed effect).

Columns: n, nnz of Q's lower triangle, entries stored for the supernodal factor (with
its dense diagonal blocks); CHOLMOD factorisation (sparsax ``logdet_np`` on fresh
values), sparsax ``selinv_np`` after it (factor cached: the recursion only), the
supernodal factorisation, its selected inverse, and the ratios selinv / CHOLMOD
factorisation. Then the maximum relative error
(max |error| / max |Q⁻¹|) of the new and the old selected inverse against the dense
inverse (numpy) where n <= 5000, else of the new one against the old one. The iid+rw2
precision has cond ≈ 3·10⁸, so there even two dense inverses (LU, Cholesky) differ by
about 2·10⁻¹⁰. Last: the ordering used (AMD, or METIS nested dissection when pymetis is
installed and it saves flops; CHOLMOD always uses AMD here) and the setup time,
ordering + symbolic analysis (the first row includes loading numba's compiled kernels
from its on-disk cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import adelia  # noqa: E402, F401
from adelia.engine.pattern import SparsePattern  # noqa: E402
from adelia.engine.fill_ordering import amd_ordering, fill_reducing_ordering  # noqa: E402
from adelia.engine.supernodal import SupernodalCholesky  # noqa: E402

import sparsax_cpp  # noqa: E402


def lattice_laplacian(side: int) -> sp.csr_matrix:
    """Graph Laplacian of a triangulated side×side lattice (right, up and one diagonal)."""
    idx = np.arange(side * side).reshape(side, side)
    edges = [
        (idx[:, :-1].ravel(), idx[:, 1:].ravel()),
        (idx[:-1, :].ravel(), idx[1:, :].ravel()),
        (idx[:-1, :-1].ravel(), idx[1:, 1:].ravel()),
    ]
    i = np.concatenate([e[0] for e in edges])
    j = np.concatenate([e[1] for e in edges])
    n = side * side
    a = sp.coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    a = (a + a.T).tocsr()
    return (sp.diags(np.asarray(a.sum(axis=1)).ravel()) - a).tocsr()


def spde_precision(side: int, kappa: float = 0.3) -> sp.csr_matrix:
    g = lattice_laplacian(side)
    eye = sp.eye(side * side)
    return (kappa**4 * eye + 2 * kappa**2 * g + g @ g).tocsr()


def pattern_spde(rng):
    q = spde_precision(50) + sp.diags(rng.uniform(0.5, 2.0, 2500))
    return q


def pattern_grid(rng):
    side = 70
    t = sp.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    return (sp.kron(sp.eye(side), t) + sp.kron(t, sp.eye(side)) + 0.05 * sp.eye(side * side)).tocsr()


def rw2_structure(m: int) -> sp.csr_matrix:
    d = sp.diags([np.ones(m - 2), -2 * np.ones(m - 2), np.ones(m - 2)], [0, 1, 2], shape=(m - 2, m))
    return (d.T @ d).tocsr()


def pattern_iid_rw2(rng):
    n_obs, n_iid, n_rw2 = 20_000, 2000, 500
    n = n_iid + n_rw2 + 2
    rows = np.repeat(np.arange(n_obs), 4)
    cols = np.stack(
        [rng.integers(0, n_iid, n_obs), n_iid + rng.integers(0, n_rw2, n_obs),
         np.full(n_obs, n - 2), np.full(n_obs, n - 1)], axis=1,
    ).ravel()  # fmt: skip
    vals = np.stack([np.ones(n_obs), np.ones(n_obs), np.ones(n_obs), rng.normal(size=n_obs)], axis=1).ravel()
    a = sp.csr_matrix((vals, (rows, cols)), shape=(n_obs, n))
    w = sp.diags(rng.uniform(0.5, 3.0, n_obs))  # Poisson weights exp(η)
    prior = sp.block_diag([2.0 * sp.eye(n_iid), 5.0 * rw2_structure(n_rw2) + 1e-4 * sp.eye(n_rw2), 1e-3 * sp.eye(2)])
    return (prior + a.T @ w @ a).tocsr()


def pattern_spacetime(rng):
    space = lattice_laplacian(32) + 0.1 * sp.eye(32 * 32)
    steps, rho = 20, 0.8
    ar1 = sp.diags([-rho * np.ones(steps - 1), (1 + rho**2) * np.ones(steps), -rho * np.ones(steps - 1)], [-1, 0, 1])
    q = sp.kron(ar1, space).tocsr() + sp.diags(rng.uniform(0.5, 2.0, steps * space.shape[0]))
    n = q.shape[0]
    arrow = rng.normal(size=n) * 0.01
    corner = np.array([[float(n) * 1e-4 + 1.0]])
    return sp.bmat([[q, sp.csr_matrix(arrow[:, None])], [sp.csr_matrix(arrow[None, :]), corner]]).tocsr()


PATTERNS = {"spde": pattern_spde, "grid": pattern_grid, "iid+rw2": pattern_iid_rw2, "spacetime": pattern_spacetime}


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", nargs="*", choices=list(PATTERNS), default=list(PATTERNS))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    header = (
        f"{'pattern':>10} {'n':>6} {'nnz(Q)':>8} {'L stored':>9} | {'CHOLMOD fact':>12} {'sparsax selinv':>14}"
        f" | {'new fact':>9} {'new selinv':>10} | {'old/fact':>8} {'new/fact':>8} {'old/new':>7} | {'err new':>8} {'err old':>8}"
    )
    print("times in ms (median of", args.repeats, "runs); ratios against the CHOLMOD factorisation")
    print(header)
    print("-" * len(header))
    for name in args.only:
        q = PATTERNS[name](rng)
        pattern = SparsePattern.from_scipy(q)
        values = pattern.values_from_scipy(q)
        ai = np.ascontiguousarray(pattern.cols, dtype=np.int32)  # sparsax reads the upper triangle
        aj = np.ascontiguousarray(pattern.rows, dtype=np.int32)
        t0 = time.perf_counter()
        perm = fill_reducing_ordering(pattern)
        chol = SupernodalCholesky(pattern, perm)
        t_setup = time.perf_counter() - t0
        ordering = "AMD" if np.array_equal(perm, amd_ordering(pattern)) else "METIS"
        # Alternate two value sets so that no call finds its factor cached.
        value_sets = [values, values * 1.01]
        state = {"i": 0}

        def fresh():
            state["i"] ^= 1
            return value_sets[state["i"]]

        t_cholmod = median_ms(lambda: sparsax_cpp.logdet_np(ai, aj, fresh(), pattern.n), args.repeats)

        def old_selinv():
            v = fresh()
            sparsax_cpp.logdet_np(ai, aj, v, pattern.n)
            return sparsax_cpp.selinv_np(ai, aj, v, pattern.n)

        t_old = median_ms(old_selinv, args.repeats) - t_cholmod
        t_fact = median_ms(lambda: chol.factorise(fresh()), args.repeats)
        factor = chol.factorise(values)
        t_new = median_ms(lambda: chol.selected_inverse(factor), args.repeats)
        new = chol.selected_inverse(factor)
        old = np.asarray(sparsax_cpp.selinv_np(ai, aj, values, pattern.n))
        err_new = np.max(np.abs(new - old)) / np.max(np.abs(old))  # against each other when n is large
        err_old = float("nan")
        if pattern.n <= 5000:
            exact = np.linalg.inv(q.toarray())[pattern.rows, pattern.cols]
            err_new = np.max(np.abs(new - exact)) / np.max(np.abs(exact))
            err_old = np.max(np.abs(old - exact)) / np.max(np.abs(exact))
        print(
            f"{name:>10} {pattern.n:>6} {pattern.nnz:>8} {chol.structure.factor_size:>9} | {t_cholmod:>12.2f}"
            f" {t_old:>14.2f} | {t_fact:>9.2f} {t_new:>10.2f} | {t_old / t_cholmod:>8.1f} {t_new / t_cholmod:>8.1f}"
            f" {t_old / t_new:>7.1f} | {err_new:>8.1e} {err_old:>8.1e}   ({ordering}, setup {1e3 * t_setup:.0f} ms)",
            flush=True,
        )


if __name__ == "__main__":
    main()
