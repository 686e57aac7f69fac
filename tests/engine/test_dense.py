"""DenseSolver (the oracle backend) against numpy closed forms, finite differences, and
under jit / vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import adelia  # noqa: F401  (float64)
from adelia.engine.dense import DenseSolver
from adelia.engine.pattern import SparsePattern
from adelia.engine.solver import make_solver

TOL = 1e-12


def rel_err(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300))


def random_problem(rng, n=12, density=0.3):
    """A random sparse pattern with diagonally dominant (hence SPD) values."""
    s = sp.random(n, n, density=density, random_state=rng)
    pattern = SparsePattern.from_scipy(s + s.T)
    values = rng.uniform(-1.0, 1.0, pattern.nnz)
    off = pattern.rows != pattern.cols
    row_sums = np.zeros(n)
    np.add.at(row_sums, pattern.rows[off], np.abs(values[off]))
    np.add.at(row_sums, pattern.cols[off], np.abs(values[off]))
    values[pattern.diag_index] = row_sums + rng.uniform(0.5, 1.5, n)
    return pattern, values


@pytest.fixture
def problem(rng):
    pattern, values = random_problem(rng)
    return pattern, values, pattern.to_scipy(values).toarray()


def test_logdet_solve_selinv_match_numpy(problem, rng):
    pattern, values, q = problem
    solver = DenseSolver(pattern)
    assert rel_err(solver.logdet(values), np.linalg.slogdet(q)[1]) < TOL
    b1, bk = rng.normal(size=pattern.n), rng.normal(size=(pattern.n, 3))
    assert rel_err(solver.solve(values, b1), np.linalg.solve(q, b1)) < TOL
    assert rel_err(solver.solve(values, bk), np.linalg.solve(q, bk)) < TOL
    inv = np.linalg.inv(q)
    assert rel_err(solver.selected_inverse(values), inv[pattern.rows, pattern.cols]) < TOL
    assert rel_err(solver.diag_inverse(values), np.diag(inv)) < TOL
    ld, x = solver.logdet_and_solve(values, bk)
    assert rel_err(ld, np.linalg.slogdet(q)[1]) < TOL and rel_err(x, np.linalg.solve(q, bk)) < TOL


def test_gradients_match_closed_forms(problem, rng):
    pattern, values, q = problem
    solver = DenseSolver(pattern)
    inv = np.linalg.inv(q)
    r, c = pattern.rows, pattern.cols
    twice_off = np.where(r == c, 1.0, 2.0)
    # d log|Q| / d v_k = (Q⁻¹)_rc counted once per occurrence of v_k in Q.
    assert rel_err(jax.grad(solver.logdet)(values), twice_off * inv[r, c]) < 1e-10
    # f = wᵀ Q⁻¹ b:  ∂f/∂b = Q⁻¹ w,  ∂f/∂Q_ij = −(Q⁻¹w)_i (Q⁻¹b)_j.
    b, w = rng.normal(size=pattern.n), rng.normal(size=pattern.n)
    g_values, g_rhs = jax.grad(lambda v, bb: w @ solver.solve(v, bb), (0, 1))(values, b)
    u, x = inv @ w, inv @ b
    expected = -(u[r] * x[c] + u[c] * x[r]) * np.where(r == c, 0.5, 1.0)
    assert rel_err(g_values, expected) < 1e-10
    assert rel_err(g_rhs, u) < 1e-10


def test_gradients_match_central_differences(problem, rng):
    pattern, values, _ = problem
    solver = DenseSolver(pattern)
    b, w = rng.normal(size=pattern.n), rng.normal(size=pattern.n)

    def objective(v):
        ld, x = solver.logdet_and_solve(v, b)
        return 0.7 * ld + w @ x

    grad = jax.grad(objective)(values)
    for _ in range(3):
        d = rng.normal(size=pattern.nnz)
        h = 1e-5
        fd = (objective(values + h * d) - objective(values - h * d)) / (2 * h)
        assert abs(float(fd) - float(grad @ d)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_sample_is_inverse_transpose_cholesky(problem, rng):
    pattern, values, q = problem
    solver = DenseSolver(pattern)
    z = rng.normal(size=(4, pattern.n))
    chol = np.linalg.cholesky(q)
    assert rel_err(solver.sample_from_noise(values, z), np.linalg.solve(chol.T, z.T).T) < TOL
    # Identity noise: row i is L⁻ᵀ e_i, so the rows form M = L⁻¹ and MᵀM = Q⁻¹ exactly.
    m = np.asarray(solver.sample_from_noise(values, np.eye(pattern.n)))
    assert rel_err(m.T @ m, np.linalg.inv(q)) < 1e-10
    key = jax.random.PRNGKey(3)
    draws = solver.sample(values, key, n_samples=5)
    assert draws.shape == (5, pattern.n)
    noise = jax.random.normal(key, (5, pattern.n), dtype=jnp.float64)
    assert rel_err(draws, solver.sample_from_noise(values, noise)) < TOL


def test_not_positive_definite_gives_minus_inf_and_nan(problem):
    pattern, values, _ = problem
    solver = DenseSolver(pattern)
    bad = values.copy()
    bad[pattern.diag_index[3]] = -1.0
    assert float(solver.logdet(bad)) == -np.inf
    assert not bool(solver.is_positive_definite(bad))
    assert bool(solver.is_positive_definite(values))
    assert np.all(np.isnan(solver.solve(bad, np.ones(pattern.n))))
    assert np.all(np.isnan(solver.selected_inverse(bad)))
    assert np.isnan(float(solver.logdet(np.where(np.arange(pattern.nnz) == 0, np.nan, values))))


def test_jit_and_vmap(problem, rng):
    pattern, values, q = problem
    solver = DenseSolver(pattern)
    scales = np.array([1.0, 2.0, 0.5])
    batch = scales[:, None] * values
    lds = jax.jit(jax.vmap(solver.logdet))(batch)
    expected = np.linalg.slogdet(q)[1] + pattern.n * np.log(scales)
    assert rel_err(lds, expected) < TOL
    bad = values.copy()
    bad[pattern.diag_index[0]] = -5.0
    flags = jax.vmap(solver.is_positive_definite)(np.stack([values, bad]))
    assert flags.tolist() == [True, False]


def test_make_solver_dense(problem):
    pattern, _, _ = problem
    assert isinstance(make_solver(pattern, backend="dense"), DenseSolver)
