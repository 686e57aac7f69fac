"""SparseSolver (supernodal Cholesky + supernodal selected inverse) against the dense
oracle, numpy, central finite differences, and under jit / vmap / scan / while_loop;
failure behaviour on matrices that are not positive definite; the factor cache and
concurrent host calls. The kernels themselves: test_supernodal.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import adelia  # noqa: F401  (float64)
from adelia.engine.dense import DenseSolver
from adelia.engine.pattern import SparsePattern
from adelia.engine.solver import make_solver
from adelia.engine.sparse import SparseSolver, _SupernodalKernels

TOL = 1e-10


def rel_err(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300))


def diagonally_dominant_values(pattern: SparsePattern, rng) -> np.ndarray:
    """Random off-diagonal values in (-1, 1), diagonal = row |sum| + U(0.5, 1.5): SPD."""
    values = rng.uniform(-1.0, 1.0, pattern.nnz)
    off = pattern.rows != pattern.cols
    row_sums = np.zeros(pattern.n)
    np.add.at(row_sums, pattern.rows[off], np.abs(values[off]))
    np.add.at(row_sums, pattern.cols[off], np.abs(values[off]))
    values[pattern.diag_index] = row_sums + rng.uniform(0.5, 1.5, pattern.n)
    return values


def grid_laplacian(side: int, shift: float = 0.05) -> tuple[SparsePattern, np.ndarray]:
    """2-D grid Laplacian (5-point stencil) + shift·I: an SPDE-like precision."""
    t = sp.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    q = sp.kron(sp.eye(side), t) + sp.kron(t, sp.eye(side)) + shift * sp.eye(side * side)
    pattern = SparsePattern.from_scipy(q)
    return pattern, pattern.values_from_scipy(q)


def random_sparse(rng, n: int = 60, density: float = 0.06) -> tuple[SparsePattern, np.ndarray]:
    s = sp.random(n, n, density=density, random_state=rng)
    pattern = SparsePattern.from_scipy(s + s.T)
    return pattern, diagonally_dominant_values(pattern, rng)


def make_problem(kind: str, rng):
    pattern, values = grid_laplacian(9) if kind == "grid" else random_sparse(rng)
    return pattern, values, SparseSolver(pattern), DenseSolver(pattern)


@pytest.fixture(params=["grid", "random"])
def problem(request, rng):
    return make_problem(request.param, rng)


@pytest.fixture
def random_problem(rng):
    """One problem for the (compile-heavy) transformation tests."""
    return make_problem("random", rng)


# -- forward values ----------------------------------------------------------------------------
def test_forward_matches_dense_and_numpy(problem, rng):
    pattern, values, sparse, dense = problem
    q = pattern.to_scipy(values).toarray()
    assert rel_err(sparse.logdet(values), np.linalg.slogdet(q)[1]) < TOL
    assert rel_err(sparse.logdet(values), dense.logdet(values)) < TOL
    for rhs in (rng.normal(size=pattern.n), rng.normal(size=(pattern.n, 3))):
        assert rel_err(sparse.solve(values, rhs), np.linalg.solve(q, rhs)) < TOL
        ld, x = sparse.logdet_and_solve(values, rhs)
        assert rel_err(ld, np.linalg.slogdet(q)[1]) < TOL
        assert rel_err(x, np.linalg.solve(q, rhs)) < TOL
    assert rel_err(sparse.selected_inverse(values), dense.selected_inverse(values)) < TOL
    assert rel_err(sparse.diag_inverse(values), np.diag(np.linalg.inv(q))) < TOL


# -- gradients -------------------------------------------------------------------------------------
def objectives(solver, rhs, weights):
    """Scalar functions of (values, rhs) covering logdet, solve and logdet_and_solve."""

    def quad(v, b):
        return weights.ravel() @ solver.solve(v, b).ravel()

    def joint(v, b):
        ld, x = solver.logdet_and_solve(v, b)
        return 0.3 * ld - 0.5 * b.ravel() @ x.ravel() + weights.ravel() @ x.ravel()

    return {"logdet": lambda v, b: solver.logdet(v), "quad": quad, "joint": joint}


@pytest.mark.parametrize("kind, k", [("grid", None), ("random", 2)])
def test_gradients_match_dense_ad_and_finite_differences(rng, kind, k):
    pattern, values, sparse, dense = make_problem(kind, rng)
    shape = (pattern.n,) if k is None else (pattern.n, k)
    rhs, weights = rng.normal(size=shape), rng.normal(size=shape)
    f_sparse, f_dense = objectives(sparse, rhs, weights), objectives(dense, rhs, weights)
    for name in f_sparse:
        f = jax.jit(f_sparse[name])
        gv, gb = jax.jit(jax.grad(f_sparse[name], (0, 1)))(values, rhs)
        gv0, gb0 = jax.jit(jax.grad(f_dense[name], (0, 1)))(values, rhs)
        assert rel_err(gv, gv0) < TOL, name
        if name != "logdet":
            assert rel_err(gb, gb0) < TOL, name
        # Central differences along random directions in (values, rhs).
        for _ in range(2):
            dv, db = rng.normal(size=pattern.nnz), rng.normal(size=shape)
            h = 1e-5
            plus, minus = f(values + h * dv, rhs + h * db), f(values - h * dv, rhs - h * db)
            fd = (plus - minus) / (2 * h)
            ad = float(gv @ dv + np.sum(np.asarray(gb) * db))
            assert abs(float(fd) - ad) <= 1e-6 * max(1.0, abs(ad)), name


def test_offdiagonal_cotangent_counts_both_triangles():
    # Q = [[a, b], [b, c]]: d log|Q| / db = -2b / (ac - b²) (b occurs twice in Q).
    pattern = SparsePattern.from_entries(2, [0, 1, 1], [0, 0, 1])
    a, b, c = 3.0, 1.0, 2.0
    grad = jax.grad(SparseSolver(pattern).logdet)(np.array([a, b, c]))
    det = a * c - b * b
    assert rel_err(grad, [c / det, -2 * b / det, a / det]) < 1e-14


# -- transformations -------------------------------------------------------------------------------
def test_jit_traces_values_once(random_problem):
    pattern, values, sparse, dense = random_problem
    traces = []

    @jax.jit
    def f(v):
        traces.append(1)
        return sparse.logdet(v)

    for scale in (1.0, 2.0, 3.0):
        assert rel_err(f(scale * values), dense.logdet(scale * values)) < TOL
    assert len(traces) == 1


def test_vmap(random_problem, rng):
    pattern, values, sparse, dense = random_problem
    batch = jnp.asarray(np.stack([values, 2.0 * values, diagonally_dominant_values(pattern, rng)]))
    rhs = jnp.asarray(rng.normal(size=(3, pattern.n)))
    assert rel_err(jax.vmap(sparse.logdet)(batch), jax.vmap(dense.logdet)(batch)) < TOL
    assert rel_err(jax.vmap(sparse.solve)(batch, rhs), jax.vmap(dense.solve)(batch, rhs)) < TOL
    # Shared matrix, batched right-hand sides; and batched matrices, shared right-hand side.
    q = pattern.to_scipy(values).toarray()
    assert rel_err(jax.vmap(sparse.solve, (None, 0))(values, rhs), np.linalg.solve(q, np.asarray(rhs).T).T) < TOL
    shared_rhs = (jax.vmap(sparse.solve, (0, None))(batch, rhs[0]), jax.vmap(dense.solve, (0, None))(batch, rhs[0]))
    assert rel_err(*shared_rhs) < TOL
    assert rel_err(jax.vmap(sparse.selected_inverse)(batch), jax.vmap(dense.selected_inverse)(batch)) < TOL
    grad_sparse = jax.jit(jax.vmap(jax.grad(lambda v, b: sparse.logdet(v) + b @ sparse.solve(v, b))))(batch, rhs)
    grad_dense = jax.vmap(jax.grad(lambda v, b: dense.logdet(v) + b @ dense.solve(v, b)))(batch, rhs)
    assert rel_err(grad_sparse, grad_dense) < TOL
    nested = jnp.stack([batch, 0.5 * batch])
    assert rel_err(jax.vmap(jax.vmap(sparse.logdet))(nested), jax.vmap(jax.vmap(dense.logdet))(nested)) < TOL


def test_scan_and_while_loop(random_problem):
    pattern, values, sparse, dense = random_problem
    scales = jnp.array([1.0, 1.5, 2.0])

    def total(solver, v):
        return jax.lax.scan(lambda acc, s: (acc + solver.logdet(s * v), None), 0.0, scales)[0]

    assert rel_err(jax.jit(total, static_argnums=0)(sparse, values), total(dense, values)) < TOL
    assert rel_err(jax.grad(lambda v: total(sparse, v))(values), jax.grad(lambda v: total(dense, v))(values)) < TOL

    def loop(v):
        body = lambda c: (c[0] + 1, c[1] + sparse.logdet(c[0] * v))
        return jax.lax.while_loop(lambda c: c[0] < 4, body, (1, 0.0))[1]

    expected = sum(float(dense.logdet(k * values)) for k in (1, 2, 3))
    assert rel_err(jax.jit(loop)(values), expected) < TOL


# -- sampling ---------------------------------------------------------------------------------------
def permuted_cholesky_draws(perm, chol, noise):
    """x = Pᵀ L⁻ᵀ z row by row, i.e. x[perm] = L⁻ᵀ z, with P Q Pᵀ = Q[perm][:, perm] = L Lᵀ."""
    noise = np.atleast_2d(np.asarray(noise))
    out = np.empty(noise.shape)
    out[:, perm] = np.linalg.solve(chol.T, noise.T).T
    return out


def test_sample_is_permuted_inverse_transpose_cholesky(problem, rng):
    pattern, values, sparse, _ = problem
    q = pattern.to_scipy(values).toarray()
    perm = sparse.fill_reducing_permutation(values)
    assert sorted(perm.tolist()) == list(range(pattern.n))
    chol = np.linalg.cholesky(q[np.ix_(perm, perm)])
    z = rng.normal(size=(3, pattern.n))
    assert rel_err(sparse.sample_from_noise(values, z), permuted_cholesky_draws(perm, chol, z)) < TOL
    assert rel_err(sparse.sample_from_noise(values, z[0]), permuted_cholesky_draws(perm, chol, z[0])[0]) < TOL
    # Identity noise: MᵀM = Pᵀ L⁻ᵀ L⁻¹ P = Q⁻¹ exactly.
    m = np.asarray(sparse.sample_from_noise(values, np.eye(pattern.n)))
    assert rel_err(m.T @ m, np.linalg.inv(q)) < TOL
    key = jax.random.PRNGKey(7)
    draws = jax.jit(lambda v: sparse.sample(v, key, n_samples=4))(values)
    assert draws.shape == (4, pattern.n)
    noise = jax.random.normal(key, (4, pattern.n), dtype=jnp.float64)
    assert rel_err(draws, permuted_cholesky_draws(perm, chol, noise)) < TOL


# -- failure convention ---------------------------------------------------------------------------
def test_not_positive_definite_is_detectable_without_raising(problem):
    pattern, values, sparse, dense = problem
    bad = values.copy()
    bad[pattern.diag_index[pattern.n // 2]] = -1.0
    assert float(sparse.logdet(bad)) == -np.inf == float(dense.logdet(bad))
    assert not bool(sparse.is_positive_definite(bad))
    assert bool(sparse.is_positive_definite(values))
    assert np.all(np.isnan(sparse.solve(bad, np.ones(pattern.n))))
    assert np.all(np.isnan(sparse.selected_inverse(bad)))
    assert np.all(np.isnan(sparse.sample_from_noise(bad, np.ones(pattern.n))))
    ld, x = sparse.logdet_and_solve(bad, np.ones(pattern.n))
    assert float(ld) == -np.inf and np.all(np.isnan(x))
    # Under jit and vmap only the failing batch element is flagged.
    lds = jax.jit(jax.vmap(sparse.logdet))(np.stack([values, bad, 2 * values]))
    assert np.isfinite(lds[0]) and lds[1] == -np.inf and np.isfinite(lds[2])
    # Non-finite input is a bug upstream, not indefiniteness: NaN, not -inf.
    assert np.isnan(float(sparse.logdet(np.where(np.arange(pattern.nnz) == 0, np.nan, values))))


def test_masked_failure_keeps_gradients_finite(random_problem):
    """`where(ok, f, fallback)` over a batch with a failed factorisation: the failing
    element gets a zero gradient, the others the exact one (a zero cotangent adds nothing)."""
    pattern, values, sparse, dense = random_problem
    bad = values.copy()
    bad[pattern.diag_index[0]] = -1.0
    rhs = np.ones(pattern.n)

    def masked(v):
        ld, x = sparse.logdet_and_solve(v, rhs)
        ok = jnp.isfinite(ld)
        return jnp.where(ok, ld + rhs @ sparse.solve(v, rhs) + rhs @ x, 0.0)

    grads = jax.vmap(jax.grad(masked))(np.stack([values, bad]))
    expected = jax.grad(lambda v: dense.logdet(v) + 2 * rhs @ dense.solve(v, rhs))(values)
    assert rel_err(grads[0], expected) < TOL
    assert np.array_equal(np.asarray(grads[1]), np.zeros(pattern.nnz))


def test_step_halving_loop_recovers_from_failed_factorisation(problem):
    """The pattern the inference's Newton iteration uses: try a step, halve while not PD."""
    pattern, values, sparse, _ = problem
    step = np.zeros(pattern.nnz)
    lam_min = np.linalg.eigvalsh(pattern.to_scipy(values).toarray())[0]
    step[pattern.diag_index] = -5.0 * lam_min  # PD exactly for step lengths below 1/5

    @jax.jit
    def halve_until_pd(v, d):
        def cond(c):
            return ~sparse.is_positive_definite(v + c * d)

        return jax.lax.while_loop(cond, lambda c: 0.5 * c, 1.0)

    assert float(halve_until_pd(values, step)) == 0.125


# -- factor cache and threads --------------------------------------------------------------------
def count_factorisations(kernels) -> list:
    """Count the factorisations of ``kernels`` from now on (its cached factors dropped first:
    solvers of one pattern share one kernel set, so other tests may have filled it)."""
    kernels._factors.clear()
    calls = []
    factorise = kernels.cholesky.factorise

    def counted(values):
        calls.append(1)
        return factorise(values)

    kernels.cholesky.factorise = counted
    return calls


def test_gradient_reuses_the_forward_factorisation(random_problem, rng):
    """logdet's VJP (selected inverse) and logdet_and_solve's reuse the forward factor,
    also across a vmapped batch (all forward factors are still cached for the backward)."""
    pattern, values, sparse, dense = random_problem
    calls = count_factorisations(sparse._kernels)
    grad = jax.block_until_ready(jax.jit(jax.grad(sparse.logdet))(values))  # the host kernels run asynchronously
    assert len(calls) == 1
    assert rel_err(grad, jax.grad(dense.logdet)(values)) < TOL
    batch = np.stack([values * (1.1 + 0.1 * k) for k in range(5)])
    rhs = rng.normal(size=pattern.n)
    def joint(v):
        logdet, x = sparse.logdet_and_solve(v, rhs)
        return logdet + x.sum()

    jax.block_until_ready(jax.jit(jax.vmap(jax.grad(joint)))(batch))
    assert len(calls) == 1 + 5


def test_factor_cache_evicts_least_recently_used(random_problem):
    pattern, values, _, _ = random_problem
    kernels = _SupernodalKernels(pattern, cache_bytes=1)  # room for the newest factor only
    calls = count_factorisations(kernels)
    for v in (values, values, 2 * values, values):
        kernels.logdet(v)
    assert len(calls) == 3
    kernels = _SupernodalKernels(pattern)  # the default budget holds many small factors
    calls = count_factorisations(kernels)
    for v in (values, 2 * values, 3 * values, values, 2 * values):
        kernels.logdet(v)
    assert len(calls) == 3


def test_concurrent_host_calls_give_exact_results(rng):
    """Four threads, different values, a one-factor cache: the kernels release the GIL and
    must neither mix up factors nor share workspace."""
    pattern, values = grid_laplacian(15)
    kernels = _SupernodalKernels(pattern, cache_bytes=1)
    scales = [1.0, 1.5, 2.0, 3.0]
    expected = {s: np.linalg.inv(s * pattern.to_scipy(values).toarray())[pattern.rows, pattern.cols] for s in scales}

    def work(scale):
        worst = 0.0
        for _ in range(10):
            worst = max(worst, rel_err(kernels.selinv(scale * values)[0], expected[scale]))
        return worst

    with ThreadPoolExecutor(max_workers=4) as pool:
        errors = list(pool.map(work, scales * 2))
    assert max(errors) < TOL


# -- small patterns drawn by hypothesis ------------------------------------------------------------
@st.composite
def small_problems(draw):
    n = draw(st.integers(1, 7))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=12))
    pattern = SparsePattern.from_entries(n, [p[0] for p in pairs], [p[1] for p in pairs])
    seed = draw(st.integers(0, 2**32 - 1))
    return pattern, diagonally_dominant_values(pattern, np.random.default_rng(seed)), seed


@settings(max_examples=15, deadline=None)
@given(small_problems())
def test_small_patterns_match_numpy(case):
    """Every drawn pattern against numpy closed forms (no JAX oracle: no recompilation)."""
    pattern, values, seed = case
    sparse = SparseSolver(pattern)
    q = pattern.to_scipy(values).toarray()
    inv = np.linalg.inv(q)
    rhs = np.random.default_rng(seed + 1).normal(size=pattern.n)
    logdet = np.linalg.slogdet(q)[1]
    assert abs(float(sparse.logdet(values)) - logdet) <= TOL * max(1.0, abs(logdet))
    assert rel_err(sparse.solve(values, rhs), inv @ rhs) < TOL
    r, c = pattern.rows, pattern.cols
    assert rel_err(sparse.selected_inverse(values), inv[r, c]) < TOL
    # f = log|Q| + rhsᵀ Q⁻¹ rhs:  ∂f/∂v_k = w_k ((Q⁻¹)_rc − x_r x_c),  x = Q⁻¹ rhs,
    # w_k = 2 for off-diagonal values (they occur twice in Q), 1 on the diagonal.
    x = inv @ rhs
    w = np.where(r == c, 1.0, 2.0)
    grad = jax.grad(lambda v: sparse.logdet(v) + rhs @ sparse.solve(v, rhs))(values)
    assert rel_err(grad, w * (inv[r, c] - x[r] * x[c])) < TOL


# -- construction ---------------------------------------------------------------------------------
def test_make_solver_and_argument_checks(problem):
    pattern, values, sparse, _ = problem
    assert isinstance(make_solver(pattern, backend="sparse"), SparseSolver)
    with pytest.raises(ValueError, match="rhs must have shape"):
        sparse.solve(values, np.ones(pattern.n + 1))
    with pytest.raises(ValueError, match="noise must have shape"):
        sparse.sample_from_noise(values, np.ones((2, pattern.n + 1)))
