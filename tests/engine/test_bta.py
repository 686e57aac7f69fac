"""BTA kernels against the dense oracle (numpy / jnp.linalg on ``to_dense()``), central
finite differences, plain AD, and under jit / vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import adelia  # noqa: F401  (float64)
from adelia.engine import bta

# (n_blocks, block_size, arrow_size): n_b = 1, b = 1, a = 0 edge cases included
SHAPES = [(1, 1, 0), (1, 3, 2), (4, 1, 1), (3, 4, 0), (5, 3, 2), (2, 2, 3)]
GRAD_SHAPES = [(1, 1, 0), (4, 1, 1), (3, 4, 0), (2, 3, 2)]
TOL = 1e-10


def random_bta(rng, n_b, b, a) -> bta.BTAMatrix:
    """A random SPD BTA matrix: N(0,1) blocks plus a Gershgorin shift (well conditioned)."""
    diag = rng.normal(size=(n_b, b, b))
    diag = diag + np.swapaxes(diag, 1, 2)
    tip = rng.normal(size=(a, a))
    tip = tip + tip.T
    q = bta.BTAMatrix(diag, rng.normal(size=(n_b - 1, b, b)), rng.normal(size=(n_b, a, b)), tip)
    shift = np.abs(np.asarray(q.to_dense())).sum(axis=1).max() + 1.0
    return bta.BTAMatrix(diag + shift * np.eye(b), q.lower, q.arrow, tip + shift * np.eye(a))


def pattern_mask(q: bta.BTAMatrix) -> np.ndarray:
    ones = bta.BTAMatrix(*(np.ones(x.shape) for x in (q.diag, q.lower, q.arrow, q.tip)))
    return np.asarray(ones.to_dense()) != 0


def rel_err(x, y) -> float:
    """max |x − y| / max |y| over all leaves of two pytrees (0 for empty arrays)."""
    num = max((float(np.max(np.abs(np.asarray(u) - np.asarray(v)), initial=0.0)) for u, v in zip(
        jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y))), default=0.0)
    den = max((float(np.max(np.abs(np.asarray(v)), initial=0.0)) for v in jax.tree_util.tree_leaves(y)), default=0.0)
    return num / max(den, 1e-300)


@jax.jit
def dense_logdet(q: bta.BTAMatrix):
    return jnp.linalg.slogdet(q.to_dense())[1]


def quad_form(solve_fn):
    """f(Q, r, c) = rᵀ Q⁻¹ r + cᵀ Q⁻¹ r: a scalar through a solve (both Q and r enter)."""

    def f(q, r, c):
        x = solve_fn(q, r)
        return jnp.vdot(r, x) + jnp.vdot(c, x)

    return f


dense_quad = quad_form(lambda q, r: jnp.linalg.solve(q.to_dense(), r))
bta_quad = quad_form(bta.solve)
grad_logdet = jax.jit(jax.grad(bta.logdet))


def dense_pair(q, r):
    return dense_logdet(q), jnp.linalg.solve(q.to_dense(), r)


def joint(solve_and_logdet, weight):
    """weight·log|Q| + Σ x∘r with (log|Q|, x) from ``solve_and_logdet``."""

    def f(q, r):
        ld, x = solve_and_logdet(q, r)
        return weight * ld + jnp.sum(x * r)

    return f


# Each check is one jitted program per shape (compilation dominates these small tests).
@jax.jit
def forward_pairs(q, r, rk):
    """(BTA result, dense oracle) pairs for the forward operations."""
    d = q.to_dense()
    inverse = jnp.linalg.inv(d)
    ld, x = bta.logdet_and_solve(q, rk)
    return {
        "factor": (bta.cholesky(q).to_dense(), jnp.linalg.cholesky(d)),
        "logdet": (bta.logdet(q), jnp.linalg.slogdet(d)[1]),
        "logdet_joint": (ld, jnp.linalg.slogdet(d)[1]),
        "solve": (bta.solve(q, r), jnp.linalg.solve(d, r)),
        "solve_k": (bta.solve(q, rk), jnp.linalg.solve(d, rk)),
        "solve_joint": (x, jnp.linalg.solve(d, rk)),
        "matvec": (q.matvec(rk), d @ rk),
        "selinv": (bta.selected_inverse(q).to_dense(), inverse),
        "pd": bta.is_positive_definite(q),
    }


@jax.jit
def gradient_pairs(q, r, c):
    """(custom-VJP gradient, dense AD gradient) for log|Q| and a quadratic form via solve."""
    return {
        "logdet": (jax.grad(bta.logdet)(q), jax.grad(dense_logdet)(q)),
        "quad": (jax.grad(bta_quad, argnums=(0, 1, 2))(q, r, c), jax.grad(dense_quad, argnums=(0, 1, 2))(q, r, c)),
    }


@jax.jit
def joint_gradient_pairs(q, rk):
    """logdet_and_solve gradients (both outputs used / only x used) against dense AD, and
    the custom logdet VJP against plain AD through the factorisation scan."""
    out = {"plain_ad": (jax.grad(bta.logdet)(q), jax.grad(bta.logdet_plain_ad)(q))}
    for weight in (0.7, 0.0):
        out[f"joint_{weight}"] = (
            jax.grad(joint(bta.logdet_and_solve, weight), argnums=(0, 1))(q, rk),
            jax.grad(joint(dense_pair, weight), argnums=(0, 1))(q, rk),
        )
    return out


# ----------------------------------------------------------------------------------------
# layout and validation
# ----------------------------------------------------------------------------------------
def test_to_dense_places_blocks_and_round_trips(rng):
    q = random_bta(rng, 3, 2, 1)
    d = np.asarray(q.to_dense())
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(d[2:4, 0:2], q.lower[0])  # block (1, 0)
    np.testing.assert_array_equal(d[0:2, 2:4], np.asarray(q.lower[0]).T)  # block (0, 1)
    np.testing.assert_array_equal(d[6:7, 4:6], q.arrow[2])  # block (arrow, 2)
    np.testing.assert_array_equal(d[0:2, 4:6], 0.0)  # outside the pattern
    np.testing.assert_array_equal(d[6:, 6:], q.tip)
    back = bta.BTAMatrix.from_dense(d, 3, 2)
    assert rel_err(back, q) == 0.0
    assert (q.n_blocks, q.block_size, q.arrow_size, q.n) == (3, 2, 1, 7)
    x = rng.normal(size=(7, 2))
    np.testing.assert_allclose(q.matvec(x), d @ x, rtol=1e-13)


@pytest.mark.parametrize(
    "shapes, needle",
    [
        (((3, 2, 2), (1, 2, 2), (3, 1, 2), (1, 1)), "lower must have shape (n_blocks-1, b, b) = (2, 2, 2)"),
        (((3, 2, 2), (2, 2, 2), (3, 1, 3), (1, 1)), "arrow must have shape (n_blocks, a, b) = (3, 1, 2)"),
        (((3, 2, 3), (2, 2, 2), (3, 1, 2), (1, 1)), "diag must have shape (n_blocks, b, b)"),
        (((3, 2, 2), (2, 2, 2), (3, 1, 2), (1, 2)), "tip must have shape (a, a)"),
        (((0, 2, 2), (0, 2, 2), (0, 1, 2), (1, 1)), "n_blocks >= 1"),
    ],
)
def test_shape_mismatch_raises_naming_shapes(shapes, needle):
    arrays = [np.zeros(s) for s in shapes]
    with pytest.raises(ValueError) as info:
        bta.BTAMatrix(*arrays)
    msg = str(info.value)
    assert needle in msg
    assert f"diag {shapes[0]}" in msg and f"tip {shapes[3]}" in msg


def test_rhs_shape_mismatch_raises(rng):
    q = random_bta(rng, 2, 2, 1)
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(n, k\) with n = 5, got \(4,\)"):
        bta.solve(q, np.ones(4))


# ----------------------------------------------------------------------------------------
# forward operations against the dense oracle
# ----------------------------------------------------------------------------------------
def check_forward(q: bta.BTAMatrix, rng):
    out = forward_pairs(q, rng.normal(size=q.n), rng.normal(size=(q.n, 3)))
    assert bool(out.pop("pd"))
    got, inverse = out.pop("selinv")
    mask = pattern_mask(q)
    assert rel_err(np.asarray(got)[mask], np.asarray(inverse)[mask]) <= TOL
    assert np.all(np.asarray(got)[~mask] == 0.0)
    for name, (got, want) in out.items():
        assert rel_err(got, want) <= TOL, name


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_dense(shape, rng):
    check_forward(random_bta(rng, *shape), rng)


# ----------------------------------------------------------------------------------------
# gradients: dense AD, plain AD through the scan, central finite differences
# ----------------------------------------------------------------------------------------
def check_gradients_vs_dense(q: bta.BTAMatrix, rng):
    out = gradient_pairs(q, rng.normal(size=q.n), rng.normal(size=q.n))
    for name, (got, want) in out.items():
        assert rel_err(got, want) <= TOL, name


@pytest.mark.parametrize("shape", GRAD_SHAPES)
def test_gradients_match_dense_ad(shape, rng):
    check_gradients_vs_dense(random_bta(rng, *shape), rng)


@pytest.mark.parametrize("shape", [(1, 2, 0), (3, 2, 2)])
def test_joint_kernel_and_plain_ad_gradients(shape, rng):
    q = random_bta(rng, *shape)
    for name, (got, want) in joint_gradient_pairs(q, rng.normal(size=(q.n, 2))).items():
        assert rel_err(got, want) <= TOL, name


def random_direction(q, rng):
    return jax.tree_util.tree_map(lambda x: rng.normal(size=x.shape), q)


def central_difference(f, x, v, h=1e-5):
    plus = jax.tree_util.tree_map(lambda a, b: a + h * b, x, v)
    minus = jax.tree_util.tree_map(lambda a, b: a - h * b, x, v)
    return (float(f(plus)) - float(f(minus))) / (2 * h)


def tree_dot(x, y):
    return sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y)))


@pytest.mark.parametrize("shape", [(1, 1, 0), (2, 3, 2)])
def test_gradients_match_finite_differences(shape, rng):
    q = random_bta(rng, *shape)
    r, c = rng.normal(size=q.n), rng.normal(size=q.n)
    g, (gq_matrix, gq_rhs, _) = gradient_pairs(q, r, c)["logdet"][0], gradient_pairs(q, r, c)["quad"][0]
    gq = (gq_matrix, gq_rhs)
    quad = jax.jit(bta_quad)
    for _ in range(3):
        v = random_direction(q, rng)
        fd = central_difference(bta.logdet, q, v)
        assert abs(tree_dot(g, v) - fd) <= 1e-6 * max(abs(fd), 1e-3)
        w = (v, rng.normal(size=q.n))
        fd = central_difference(lambda qr: quad(qr[0], qr[1], c), (q, r), w)
        assert abs(tree_dot(gq, w) - fd) <= 1e-6 * max(abs(fd), 1e-3)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    n_b=st.integers(1, 4),
    b=st.integers(1, 4),
    a=st.integers(0, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_hypothesis_shapes(n_b, b, a, seed):
    rng = np.random.default_rng(seed)
    q = random_bta(rng, n_b, b, a)
    check_forward(q, rng)
    got, want = gradient_pairs(q, rng.normal(size=q.n), rng.normal(size=q.n))["logdet"]
    assert rel_err(got, want) <= TOL


# ----------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1, 0), (3, 2, 2)])
def test_sample_is_back_substitution_of_the_noise(shape, rng):
    q = random_bta(rng, *shape)
    factor = bta.cholesky(q)
    dense_factor = np.linalg.cholesky(np.asarray(q.to_dense()))
    z = rng.normal(size=(q.n, 4))
    want = scipy.linalg.solve_triangular(dense_factor.T, z, lower=False)  # x = L⁻ᵀ z
    assert rel_err(bta.sample_from_noise(factor, z), want) <= TOL
    key = jax.random.key(3)
    draws = bta.sample(q, key, n_samples=4)
    assert draws.shape == (4, q.n)
    noise = jax.random.normal(key, (q.n, 4))
    assert rel_err(draws, scipy.linalg.solve_triangular(dense_factor.T, np.asarray(noise)).T) <= TOL


def test_sample_covariance_is_inverse(rng):
    q = random_bta(rng, 3, 2, 1)
    n_samples = 40_000
    draws = np.asarray(bta.sample(q, jax.random.key(11), n_samples=n_samples))
    cov = np.linalg.inv(np.asarray(q.to_dense()))
    emp = draws.T @ draws / n_samples
    # sd of an empirical second moment of a Gaussian: sqrt((Σ_ij² + Σ_ii Σ_jj) / N)
    sd = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n_samples)
    assert np.all(np.abs(emp - cov) <= 5 * sd)


# ----------------------------------------------------------------------------------------
# failure convention
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("failing_block", [0, 2, 3])
def test_not_positive_definite_is_detected(failing_block, rng):
    q = random_bta(rng, 3, 2, 2)
    if failing_block < 3:
        diag = np.asarray(q.diag).copy()
        diag[failing_block] = -diag[failing_block]
        q = bta.BTAMatrix(diag, q.lower, q.arrow, q.tip)
    else:  # the tip
        q = bta.BTAMatrix(q.diag, q.lower, q.arrow, -np.asarray(q.tip))
    assert float(bta.logdet(q)) == -np.inf
    assert float(jax.jit(bta.logdet)(q)) == -np.inf
    assert not bool(bta.is_positive_definite(q))
    assert int(bta.first_failed_block(bta.cholesky(q))) == failing_block
    assert np.all(np.isnan(np.asarray(bta.solve(q, np.ones(q.n)))))
    g = jax.grad(bta.logdet)(q)
    assert np.isnan(np.asarray(g.diag)).any()  # NaN gradient beside a −inf value, never a finite lie
    assert int(bta.first_failed_block(bta.cholesky(random_bta(rng, 3, 2, 2)))) == -1


# ----------------------------------------------------------------------------------------
# transformations
# ----------------------------------------------------------------------------------------
def test_vmap_over_a_batch_of_matrices(rng):
    mats = [random_bta(rng, 3, 2, 1) for _ in range(3)]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *mats)
    rhs = rng.normal(size=(3, mats[0].n))
    np.testing.assert_allclose(jax.vmap(bta.logdet)(batch), [float(bta.logdet(m)) for m in mats], rtol=1e-13)
    np.testing.assert_allclose(
        jax.vmap(bta.solve)(batch, rhs), np.stack([bta.solve(m, r) for m, r in zip(mats, rhs)]), rtol=1e-12
    )
    grads = jax.vmap(jax.grad(bta.logdet))(batch)
    for k, m in enumerate(mats):
        assert rel_err(jax.tree_util.tree_map(lambda x: x[k], grads), jax.grad(dense_logdet)(m)) <= TOL
    sel = jax.vmap(bta.selected_inverse)(batch)
    assert rel_err(jax.tree_util.tree_map(lambda x: x[1], sel), bta.selected_inverse(mats[1])) <= TOL


def test_unrolled_scans_match_dense(rng, monkeypatch):
    """Scans unrolled by 3 over 7 blocks (a remainder step) give the dense oracle's factor,
    solve, selected inverse and logdet gradient. The shape is used by no other test, so
    these programs are traced with the patched unroll (jit caches by shape, not by it)."""
    monkeypatch.setattr(bta, "_SCAN_UNROLL", 3)
    q = random_bta(rng, 7, 3, 3)
    check_forward(q, rng)
    check_gradients_vs_dense(q, rng)


def test_jit_traces_once_per_shape(rng):
    traces = []

    @jax.jit
    def objective(q, r):
        traces.append(1)
        return bta.logdet(q) - bta_quad(q, r, r)

    value_and_grad = jax.jit(jax.value_and_grad(objective))
    counts = []
    for _ in range(3):
        q = random_bta(rng, 3, 2, 1)
        r = rng.normal(size=q.n)
        v, g = value_and_grad(q, r)
        d = np.asarray(q.to_dense())
        want = np.linalg.slogdet(d)[1] - 2 * r @ np.linalg.solve(d, r)
        assert abs(float(v) - want) <= TOL * abs(want)
        assert abs(float(objective(q, r)) - want) <= TOL * abs(want)
        counts.append(len(traces))
    assert counts[0] >= 1 and counts[-1] == counts[0]  # no new trace for new values
