"""The three Solver backends (BTA, sparse CHOLMOD, dense) agree on the same matrices:
logdet, solve, selected inverse, and the gradients of logdet and of a solve."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import adelia  # noqa: F401  (float64)
from adelia.errors import NotPositiveDefiniteError
from adelia.engine.ordering import time_major_block_structure
from adelia.engine.pattern import SparsePattern
from adelia.engine.solver import make_solver

TOL = 1e-10


def rel_err(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y))) / max(float(np.max(np.abs(y))), 1e-300)


def space_time_matrix(rng, n_t=4, n_s=5, n_fixed=2):
    """AR(1)-in-time ⊗ path-in-space field plus fixed effects coupled to every node
    (a BTA matrix in time-major order with the fixed effects as the arrow)."""
    ar1 = sp.diags([-0.45, 1.2, -0.45], [-1, 0, 1], (n_t, n_t))
    space = sp.diags([-1.0, 2.6, -1.0], [-1, 0, 1], (n_s, n_s))
    field = sp.kron(ar1, space) + sp.diags(rng.uniform(0.1, 0.5, n_t * n_s))
    coupling = sp.csr_matrix(0.05 * rng.normal(size=(n_fixed, n_t * n_s)))
    tip = sp.csr_matrix(np.eye(n_fixed) * 4.0 + 0.1)
    matrix = sp.csc_matrix(sp.bmat([[field, coupling.T], [coupling, tip]]))
    n = matrix.shape[0]
    return matrix, time_major_block_structure(n_t, n_s, arrow=np.arange(n - n_fixed, n))


def grid_with_dense_rows(rng, side=12, n_dense=2):
    """Shuffled 2-D grid Laplacian + diagonal, with a few dense rows: converted by RCM
    (the dense rows are detected and moved to the arrow)."""
    path = sp.diags([-1.0, -1.0], [-1, 1], (side, side))
    lap = sp.kron(sp.eye(side), path) + sp.kron(path, sp.eye(side))
    lap = lap - sp.diags(np.asarray(lap.sum(axis=1)).ravel()) + sp.diags(rng.uniform(0.5, 1.5, side * side))
    p = rng.permutation(side * side)
    lap = lap[p][:, p]
    coupling = sp.csr_matrix(0.02 * rng.normal(size=(n_dense, side * side)))
    tip = sp.csr_matrix(np.eye(n_dense) * 6.0)
    matrix = sp.csc_matrix(sp.bmat([[lap, coupling.T], [coupling, tip]]))
    # put the dense rows at the front so they are not simply "last"
    n = matrix.shape[0]
    order = np.r_[n - n_dense : n, 0 : n - n_dense]
    return sp.csc_matrix(matrix[order][:, order]), None


CASES = {"space_time": space_time_matrix, "rcm_grid": grid_with_dense_rows}


@pytest.fixture(params=sorted(CASES))
def case(request, rng):
    matrix, structure = CASES[request.param](rng)
    pattern = SparsePattern.from_scipy(matrix)
    solvers = {
        "bta": make_solver(pattern, "bta", structure),
        "sparse": make_solver(pattern, "sparse"),
        "dense": make_solver(pattern, "dense"),
    }
    return matrix, pattern, solvers


def test_backends_agree_on_values(case, rng):
    matrix, pattern, solvers = case
    values = jnp.asarray(pattern.values_from_scipy(matrix))
    rhs = rng.normal(size=pattern.n)
    rhs_k = rng.normal(size=(pattern.n, 3))
    want_logdet = np.linalg.slogdet(matrix.toarray())[1]
    results = {}
    for name, solver in solvers.items():
        ld, x = jax.jit(solver.logdet_and_solve)(values, rhs_k)
        results[name] = {
            "logdet": solver.logdet(values),
            "joint_logdet": ld,
            "joint_solve": x,
            "solve": solver.solve(values, rhs),
            "solve_k": solver.solve(values, rhs_k),
            "selinv": solver.selected_inverse(values),
            "diag_inverse": solver.diag_inverse(values),
        }
    assert abs(float(results["dense"]["logdet"]) - want_logdet) <= TOL * abs(want_logdet)
    for name in ("bta", "sparse"):
        for key, want in results["dense"].items():
            assert rel_err(results[name][key], want) <= TOL, (name, key)


def test_backends_agree_on_gradients(case, rng):
    matrix, pattern, solvers = case
    values = jnp.asarray(pattern.values_from_scipy(matrix))
    rhs = jnp.asarray(rng.normal(size=pattern.n))
    grads = {}
    for name, solver in solvers.items():

        def objective(v, r, solver=solver):
            # log|Q| − rᵀQ⁻¹r: both kernels' VJPs, cotangents on values and rhs
            return solver.logdet(v) - jnp.vdot(r, solver.solve(v, r))

        grads[name] = jax.jit(jax.grad(objective, argnums=(0, 1)))(values, rhs)
        grads[name + "_logdet"] = jax.grad(solver.logdet)(values)
    for name in ("bta", "sparse"):
        for suffix in ("", "_logdet"):
            leaves = zip(
                jax.tree_util.tree_leaves(grads[name + suffix]), jax.tree_util.tree_leaves(grads["dense" + suffix])
            )
            for got, want in leaves:
                assert rel_err(got, want) <= TOL, name + suffix


def test_backends_agree_on_failure(case):
    matrix, pattern, solvers = case
    values = jnp.asarray(pattern.values_from_scipy(matrix))
    indefinite = values.at[pattern.diag_index[5]].set(-50.0)
    for name, solver in solvers.items():
        assert float(jax.jit(solver.logdet)(indefinite)) == -np.inf, name
        assert not bool(solver.is_positive_definite(indefinite)), name
        assert bool(solver.is_positive_definite(values)), name

    # BTA on concrete values: logdet keeps the −inf convention, NaN-producing operations raise
    bta = solvers["bta"]
    assert float(bta.logdet(indefinite)) == -np.inf
    with pytest.raises(NotPositiveDefiniteError, match="not positive definite: the block Cholesky"):
        bta.solve(indefinite, np.ones(pattern.n))
    with pytest.raises(NotPositiveDefiniteError, match="original indices"):
        bta.check_positive_definite(indefinite)
    bta.check_positive_definite(values)  # no error
    assert np.all(np.isnan(np.asarray(jax.jit(bta.solve)(indefinite, np.ones(pattern.n)))))
    # NaN in, NaN out (not "not positive definite")
    assert np.isnan(float(bta.logdet(values.at[0].set(np.nan))))


def test_bta_and_dense_agree_under_vmap(case, rng):
    matrix, pattern, solvers = case
    values = jnp.asarray(pattern.values_from_scipy(matrix))
    batch = jnp.stack([values, 1.1 * values, 0.9 * values])
    rhs = jnp.asarray(rng.normal(size=pattern.n))

    def batched(solver):
        def objective(v):
            ld, x = solver.logdet_and_solve(v, rhs)
            return ld + jnp.sum(x**2)

        return jax.jit(jax.vmap(jax.value_and_grad(objective)))(batch), jax.vmap(solver.selected_inverse)(batch)

    got_all = jax.tree_util.tree_leaves(batched(solvers["bta"]))
    for got, want in zip(got_all, jax.tree_util.tree_leaves(batched(solvers["dense"]))):
        assert rel_err(got, want) <= TOL
