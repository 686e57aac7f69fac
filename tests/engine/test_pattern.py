"""SparsePattern: construction, lookup, permutation, union and the values <-> matrix maps,
checked against scipy/numpy set and matrix operations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import adelia  # noqa: F401  (float64)
from adelia.engine.pattern import SparsePattern


def lower_entry_set(n, rows, cols) -> set[tuple[int, int]]:
    """The expected pattern: both triangles folded to (max, min), plus the diagonal."""
    return {(max(r, c), min(r, c)) for r, c in zip(rows, cols)} | {(i, i) for i in range(n)}


@st.composite
def entry_lists(draw):
    n = draw(st.integers(1, 9))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))
    return n, [p[0] for p in pairs], [p[1] for p in pairs]


@settings(max_examples=60, deadline=None)
@given(entry_lists())
def test_from_entries_folds_dedups_sorts_and_adds_diagonal(case):
    n, rows, cols = case
    p = SparsePattern.from_entries(n, rows, cols)
    got = list(zip(p.rows.tolist(), p.cols.tolist()))
    assert set(got) == lower_entry_set(n, rows, cols)
    assert got == sorted(got, key=lambda rc: (rc[1], rc[0]))  # (col, row) order, unique
    assert len(got) == len(set(got)) == p.nnz
    assert np.array_equal(p.rows[p.diag_index], np.arange(n))
    assert np.array_equal(p.cols[p.diag_index], np.arange(n))
    # index_of finds every entry from either triangle.
    if rows:
        idx = p.index_of(rows, cols)
        assert np.array_equal(p.rows[idx], np.maximum(rows, cols))
        assert np.array_equal(p.cols[idx], np.minimum(rows, cols))
        assert np.array_equal(p.index_of(cols, rows), idx)


def test_constructor_validates():
    with pytest.raises(ValueError, match="lower triangle"):
        SparsePattern(2, np.array([0, 0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="diagonal"):
        SparsePattern(3, np.array([0, 1, 2]), np.array([0, 0, 2]))
    with pytest.raises(ValueError, match="sorted"):
        SparsePattern(2, np.array([1, 0, 1]), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        SparsePattern.from_entries(3, [0, 4], [1, 0])  # (4, 0) must not alias to (1, 1)
    with pytest.raises(ValueError, match="out of range"):
        SparsePattern.from_entries(3, [-1], [0])


def test_index_of_raises_for_missing_entries():
    p = SparsePattern.from_entries(4, [1, 3], [0, 2])
    with pytest.raises(KeyError, match=r"\(2, 0\)"):
        p.index_of([0], [2])
    with pytest.raises(KeyError):
        p.index_of([5], [0])  # out of range: must not alias to a stored entry


def test_index_of_keeps_shape():
    p = SparsePattern.from_entries(4, [1, 3], [0, 2])
    idx = p.index_of(np.array([[1, 3], [2, 0]]), np.array([[0, 2], [2, 0]]))
    assert idx.shape == (2, 2)
    assert p.rows[idx].tolist() == [[1, 3], [2, 0]] and p.cols[idx].tolist() == [[0, 2], [2, 0]]


@pytest.fixture
def random_pattern(rng):
    s = sp.random(15, 15, density=0.2, random_state=rng)
    p = SparsePattern.from_scipy(s + s.T)
    return p, rng.normal(size=p.nnz)


def test_to_scipy_and_values_from_scipy_roundtrip(random_pattern):
    p, values = random_pattern
    full = p.to_scipy(values).toarray()
    dense = np.zeros((p.n, p.n))
    dense[p.rows, p.cols] = values
    dense[p.cols, p.rows] = values
    assert np.array_equal(full, dense)
    assert np.array_equal(p.to_scipy(values, full=False).toarray(), np.tril(dense))
    assert np.array_equal(p.values_from_scipy(sp.csr_matrix(full)), values)


def test_values_from_scipy_drops_zeros_and_rejects_nonzeros_outside(random_pattern):
    p, values = random_pattern
    outside = next((i, j) for i in range(p.n) for j in range(i) if (i, j) not in set(zip(p.rows, p.cols)))
    m = p.to_scipy(values).tolil()
    m[outside] = 0.0  # an explicit zero outside the pattern is fine
    assert np.array_equal(p.values_from_scipy(m.tocsr()), values)
    m[outside] = 1.0
    m[outside[::-1]] = 1.0
    with pytest.raises(KeyError):
        p.values_from_scipy(m.tocsr())


def test_permuted_is_symmetric_permutation(random_pattern, rng):
    p, values = random_pattern
    perm = rng.permutation(p.n)
    new, take = p.permuted(perm)
    # new index i holds old index perm[i]:  (P Q Pᵀ)[i, j] = Q[perm[i], perm[j]]
    q = p.to_scipy(values).toarray()
    assert np.array_equal(new.to_scipy(values[take]).toarray(), q[np.ix_(perm, perm)])
    with pytest.raises(ValueError, match="permutation"):
        p.permuted(np.zeros(p.n, dtype=int))


def test_union(rng):
    a = SparsePattern.from_entries(6, [1, 4, 5], [0, 2, 4])
    b = SparsePattern.from_entries(6, [4, 3], [2, 1])
    u = a.union(b)
    expected = set(zip(a.rows.tolist(), a.cols.tolist())) | set(zip(b.rows.tolist(), b.cols.tolist()))
    assert set(zip(u.rows.tolist(), u.cols.tolist())) == expected and u.nnz == len(expected)
    with pytest.raises(ValueError, match="sizes"):
        a.union(SparsePattern.from_entries(5, [], []))


def test_to_dense_jax_matches_scipy_and_differentiates_both_triangles(random_pattern, rng):
    p, values = random_pattern
    assert np.array_equal(np.asarray(p.to_dense_jax(jnp.asarray(values))), p.to_scipy(values).toarray())
    w = rng.normal(size=(p.n, p.n))
    grad = jax.grad(lambda v: jnp.sum(w * p.to_dense_jax(v)))(jnp.asarray(values))
    off = p.rows != p.cols
    expected = np.where(off, w[p.rows, p.cols] + w[p.cols, p.rows], w[p.rows, p.cols])
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-14)
