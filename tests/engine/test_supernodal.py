"""Supernodal Cholesky factorisation and selected inverse (adelia.engine.supernodal)
against the dense oracle (numpy Cholesky / inverse of the permuted matrix), on
hypothesis-drawn small patterns, a grid Laplacian, a pattern with a dense trailing block,
an arrowhead and a space-time Kronecker pattern; and the fill-reducing ordering."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import adelia  # noqa: F401  (float64)
from adelia.engine import fill_ordering, supernodal
from adelia.engine.fill_ordering import amd_ordering, cholmod_ordering, fill_reducing_ordering
from adelia.engine.pattern import SparsePattern
from adelia.engine.supernodal import SupernodalCholesky
from adelia.engine.supernodal_symbolic import analyse, cholesky_flops

TOL = 1e-10


def rel_err(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300))


def diagonally_dominant(pattern: SparsePattern, rng, margin=(0.5, 1.5)) -> np.ndarray:
    values = rng.uniform(-1.0, 1.0, pattern.nnz)
    off = pattern.rows != pattern.cols
    row_sums = np.zeros(pattern.n)
    np.add.at(row_sums, pattern.rows[off], np.abs(values[off]))
    np.add.at(row_sums, pattern.cols[off], np.abs(values[off]))
    values[pattern.diag_index] = row_sums + rng.uniform(*margin, pattern.n)
    return values


def from_matrix(q) -> tuple[SparsePattern, np.ndarray]:
    pattern = SparsePattern.from_scipy(q)
    return pattern, pattern.values_from_scipy(q)


# -- test matrices ------------------------------------------------------------------------------
def grid_laplacian(side: int, shift: float = 0.05):
    t = sp.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    return from_matrix(sp.kron(sp.eye(side), t) + sp.kron(t, sp.eye(side)) + shift * sp.eye(side * side))


def dense_trailing_block(rng, n_iid: int = 150, n_rw2: int = 60, n_obs: int = 1500,
                         rw2_ridge: float = 0.1, fixed_prec: float = 0.01):
    """iid + rw2 + intercept observed together: eliminating the iid levels fills the rw2
    and fixed-effect block densely (a large last supernode: the BLAS code paths)."""
    n = n_iid + n_rw2 + 1
    rows = np.repeat(np.arange(n_obs), 3)
    cols = np.stack(
        [rng.integers(0, n_iid, n_obs), n_iid + rng.integers(0, n_rw2, n_obs), np.full(n_obs, n - 1)], axis=1
    ).ravel()
    a = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_obs, n))
    d = sp.diags([np.ones(n_rw2 - 2), -2 * np.ones(n_rw2 - 2), np.ones(n_rw2 - 2)], [0, 1, 2], shape=(n_rw2 - 2, n_rw2))
    prior = sp.block_diag([2.0 * sp.eye(n_iid), 5.0 * (d.T @ d) + rw2_ridge * sp.eye(n_rw2),
                           fixed_prec * sp.eye(1)])
    return from_matrix(prior + a.T @ sp.diags(rng.uniform(0.5, 2.0, n_obs)) @ a)


def arrowhead(rng, n: int = 40):
    """A hub connected to every node plus a path: the hub must be eliminated last."""
    hub = np.zeros(n - 1, dtype=np.int64)
    pattern = SparsePattern.from_entries(
        n, np.concatenate([np.arange(1, n), np.arange(2, n)]), np.concatenate([hub, np.arange(1, n - 1)])
    )
    return pattern, diagonally_dominant(pattern, rng)


def spacetime(rng, side: int = 6, steps: int = 5):
    """2-D grid ⊗ AR(1) chain plus one dense arrow row/column."""
    t = sp.diags([-np.ones(side - 1), 2 * np.ones(side), -np.ones(side - 1)], [-1, 0, 1])
    space = sp.kron(sp.eye(side), t) + sp.kron(t, sp.eye(side)) + 0.5 * sp.eye(side * side)
    ar1 = sp.diags([-0.8 * np.ones(steps - 1), 1.64 * np.ones(steps), -0.8 * np.ones(steps - 1)], [-1, 0, 1])
    q = sp.kron(ar1, space).tocsr()
    n = q.shape[0]
    arrow = sp.csr_matrix(0.01 * rng.normal(size=(1, n)))
    return from_matrix(sp.bmat([[q, arrow.T], [arrow, sp.csr_matrix([[2.0]])]]))


def random_sparse(rng, n: int = 80, density: float = 0.05):
    s = sp.random(n, n, density=density, random_state=rng)
    pattern = SparsePattern.from_scipy(s + s.T)
    return pattern, diagonally_dominant(pattern, rng)


CASES = {
    "grid": lambda rng: grid_laplacian(12),
    "dense_block": dense_trailing_block,
    "arrowhead": arrowhead,
    "spacetime": spacetime,
    "random": random_sparse,
}


def check_against_dense(pattern: SparsePattern, values: np.ndarray, perm: np.ndarray, rng) -> SupernodalCholesky:
    chol = SupernodalCholesky(pattern, perm)
    q = pattern.to_scipy(values).toarray()
    p = chol.perm
    assert np.array_equal(np.sort(p), np.arange(pattern.n))
    factor = chol.factorise(values)
    assert factor is not None
    inv = np.linalg.inv(q)
    # The factor itself: the stored blocks hold exactly numpy's Cholesky of Q[p][:, p].
    assert rel_err(dense_factor(chol, factor), np.linalg.cholesky(q[np.ix_(p, p)])) < TOL
    assert abs(chol.logdet(factor) - np.linalg.slogdet(q)[1]) <= TOL * max(1.0, abs(np.linalg.slogdet(q)[1]))
    assert rel_err(chol.selected_inverse(factor), inv[pattern.rows, pattern.cols]) < TOL
    for rhs in (rng.normal(size=pattern.n), rng.normal(size=(pattern.n, 3))):
        assert rel_err(chol.solve(factor, rhs), inv @ rhs) < TOL
    # x = Pᵀ L⁻ᵀ z:  M = [x for z = e_1..e_n] satisfies M Mᵀ = Q⁻¹.
    m = chol.backward(factor, np.eye(pattern.n))
    assert rel_err(m @ m.T, inv) < TOL
    return chol


def dense_factor(chol: SupernodalCholesky, factor: np.ndarray) -> np.ndarray:
    """Scatter the supernodal blocks into a dense lower-triangular L (factor positions)."""
    s = chol.structure
    out = np.zeros((s.n, s.n))
    for k in range(s.nsuper):
        f, ncol = s.super_start[k], s.super_start[k + 1] - s.super_start[k]
        rows = s.row_idx[s.row_ptr[k] : s.row_ptr[k + 1]]
        block = factor[s.lx_ptr[k] : s.lx_ptr[k + 1]].reshape(ncol, rows.size).T  # column-major
        out[np.ix_(rows, np.arange(f, f + ncol))] = block
    return np.tril(out)


# -- against the dense oracle --------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(CASES))
def test_matches_dense_with_amd_ordering(kind, rng):
    pattern, values = CASES[kind](rng)
    check_against_dense(pattern, values, fill_reducing_ordering(pattern), rng)


def test_code_paths_are_exercised(rng):
    """Together the test matrices reach both the loop kernels and the BLAS/LAPACK kernels
    of every step (the thresholds are supernodal._SMALL_UPDATE / _SMALL_PANEL)."""
    small, big = supernodal._SMALL_UPDATE, supernodal._SMALL_PANEL
    reached = set()
    for make in CASES.values():
        pattern, _ = make(rng)
        s = analyse(pattern, fill_reducing_ordering(pattern))
        ncol, nrow = np.diff(s.super_start), np.diff(s.row_ptr)
        update = ncol[s.chunk_owner] * (s.chunk_end - s.chunk_start) * (nrow[s.chunk_owner] - s.chunk_start)
        below = nrow - ncol
        for name, flops, limit in (
            ("update", update, small),
            ("panel", ncol, big),
            ("U", ncol * ncol * below, small),
            ("sigma", below * below * ncol, small),
        ):
            reached |= {(name, "loops")} if np.any(flops <= limit) else set()
            reached |= {(name, "blas")} if np.any(flops > limit) else set()
    assert len(reached) == 8, sorted(reached)


def test_natural_and_random_orderings(rng):
    """Any ordering gives the same numbers (only the fill changes)."""
    pattern, values = random_sparse(rng, n=50, density=0.08)
    for perm in (np.arange(pattern.n), rng.permutation(pattern.n)):
        check_against_dense(pattern, values, perm, rng)


@st.composite
def small_problems(draw):
    n = draw(st.integers(1, 12))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))
    pattern = SparsePattern.from_entries(n, [p[0] for p in pairs], [p[1] for p in pairs])
    seed = draw(st.integers(0, 2**32 - 1))
    use_amd = draw(st.booleans())
    return pattern, seed, use_amd


@settings(max_examples=60, deadline=None)
@given(small_problems())
def test_small_patterns_match_dense(case):
    pattern, seed, use_amd = case
    rng = np.random.default_rng(seed)
    perm = fill_reducing_ordering(pattern) if use_amd else rng.permutation(pattern.n)
    check_against_dense(pattern, diagonally_dominant(pattern, rng), perm, rng)


def test_ill_conditioned_matches_dense_to_conditioning(rng):
    """rw2-like precision with a tiny ridge: the error stays at cond·eps, like numpy's."""
    n = 120
    d = sp.diags([np.ones(n - 2), -2 * np.ones(n - 2), np.ones(n - 2)], [0, 1, 2], shape=(n - 2, n))
    pattern, values = from_matrix((d.T @ d) + 1e-6 * sp.eye(n))
    q = pattern.to_scipy(values).toarray()
    chol = SupernodalCholesky(pattern, fill_reducing_ordering(pattern))
    got = chol.selected_inverse(chol.factorise(values))
    exact = np.linalg.inv(q)[pattern.rows, pattern.cols]
    assert rel_err(got, exact) < 1e3 * np.finfo(float).eps * np.linalg.cond(q)


# -- failure ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["grid", "dense_block"])
def test_not_positive_definite_returns_none(kind, rng):
    pattern, values = CASES[kind](rng)
    chol = SupernodalCholesky(pattern, fill_reducing_ordering(pattern))
    for position in (0, pattern.n // 2, pattern.n - 1):  # a small and the big supernodes
        bad = values.copy()
        bad[pattern.diag_index[chol.perm[position]]] = -1.0
        assert chol.factorise(bad) is None
    assert chol.factorise(values) is not None


# -- symbolic analysis -----------------------------------------------------------------------------
def test_symbolic_structure_invariants(rng):
    pattern, _ = spacetime(rng)
    s = analyse(pattern, fill_reducing_ordering(pattern))
    assert s.super_start[0] == 0 and s.super_start[-1] == pattern.n and np.all(np.diff(s.super_start) > 0)
    for k in range(s.nsuper):
        rows = s.row_idx[s.row_ptr[k] : s.row_ptr[k + 1]]
        cols = np.arange(s.super_start[k], s.super_start[k + 1])
        assert np.array_equal(rows[: cols.size], cols) and np.all(np.diff(rows) > 0)
    # Every stored entry of Q lands on a distinct slot of the lower-triangular storage.
    assert np.unique(s.value_pos).size == pattern.nnz


def test_arrowhead_without_relaxation_has_no_fill():
    """Hub last: L has the pattern of Q (one fundamental supernode per leaf, no zeros)."""
    n = 30
    pattern = SparsePattern.from_entries(n, np.arange(1, n), np.zeros(n - 1, dtype=np.int64))
    perm = fill_reducing_ordering(pattern)
    assert perm[-1] == 0
    s = analyse(pattern, perm)
    # Relaxed amalgamation may merge the leaves (stored zeros), but the true column counts
    # are 2 (leaf + hub) and 1 (hub): the hub is the last row of every supernode.
    assert np.all(s.row_idx[s.row_ptr[1:] - 1] == n - 1)


def test_amd_ordering_and_cholmod_fallback_agree_on_fill(rng, monkeypatch):
    pattern, _ = grid_laplacian(20)
    amd = amd_ordering(pattern)
    cholmod = cholmod_ordering(pattern)
    for perm in (amd, cholmod):
        assert np.array_equal(np.sort(perm), np.arange(pattern.n))
    fill = [analyse(pattern, p).factor_size for p in (amd, cholmod, rng.permutation(pattern.n))]
    assert fill[0] <= 1.2 * fill[1] and fill[0] < 0.5 * fill[2]  # AMD beats a random order
    monkeypatch.setattr(fill_ordering, "_AMD_ORDER", None)
    assert np.array_equal(fill_reducing_ordering(pattern), cholmod)


def test_cholesky_flops_counts_the_factor_columns(rng):
    pattern, values = random_sparse(rng, n=60, density=0.08)
    perm = fill_reducing_ordering(pattern)
    q = pattern.to_scipy(values).toarray()
    chol = np.linalg.cholesky(q[np.ix_(perm, perm)])
    counts = np.count_nonzero(np.abs(chol) > 1e-300, axis=0)  # no exact cancellation here
    assert cholesky_flops(pattern, perm) == (float(np.sum(counts**2)), int(counts.sum()))
    # Capped: a random ordering fills far more; the count stops at the cap.
    assert cholesky_flops(pattern, rng.permutation(pattern.n), max_nnz=counts.sum()) == (np.inf, counts.sum() + 1)


def test_metis_is_chosen_when_it_saves_flops(monkeypatch):
    pytest.importorskip("pymetis")
    pattern, _ = grid_laplacian(75)  # n = 5625, above the METIS threshold
    dissection = fill_ordering.metis_ordering(pattern)
    amd = amd_ordering(pattern)
    assert np.array_equal(np.sort(dissection), np.arange(pattern.n))
    chosen = fill_reducing_ordering(pattern)
    flops = {name: cholesky_flops(pattern, p)[0] for name, p in (("metis", dissection), ("amd", amd))}
    expected = dissection if flops["metis"] < 0.9 * flops["amd"] else amd
    assert np.array_equal(chosen, expected)
    monkeypatch.setattr(fill_ordering, "_METIS_MIN_N", 10**9)
    assert np.array_equal(fill_reducing_ordering(pattern), amd)


# -- subtree parallelism -------------------------------------------------------------------------
def _descendants_closed(st, parent, members: np.ndarray) -> bool:
    inside = np.zeros(st.nsuper, bool)
    inside[members] = True
    return all(inside[c] for c in range(st.nsuper) if parent[c] >= 0 and inside[parent[c]])


@pytest.mark.parametrize("n_parts", [2, 3, 4])
def test_subtree_schedule_splits_the_tree_into_independent_parts(n_parts):
    from adelia.engine.supernodal_symbolic import subtree_schedule, supernode_flops

    pattern, _ = grid_laplacian(40)
    st = analyse(pattern, fill_reducing_ordering(pattern))
    plan = subtree_schedule(st, n_parts)
    assert plan is not None and len(plan.parts) == n_parts
    parent = st.super_parent
    everything = np.concatenate([plan.top, *plan.parts])
    assert np.array_equal(np.sort(everything), np.arange(st.nsuper))  # a partition
    for part in plan.parts:
        assert np.all(np.diff(part) > 0) and _descendants_closed(st, parent, part)
    # top holds ancestors only: nothing in top has a parent in a part
    in_part = np.zeros(st.nsuper, bool)
    in_part[np.concatenate(plan.parts)] = True
    assert not np.any(in_part[parent[plan.top][parent[plan.top] >= 0]])
    flops = supernode_flops(st)
    assert plan.flops[0] == pytest.approx(flops[plan.top].sum())
    assert plan.flops[0] + max(plan.flops[1:]) < 0.8 * flops.sum()  # worth splitting
    # the flop model is at least the column-count formula Σ_j |L_j|²/2; more by the explicit
    # zeros of relaxed supernodes, which the dense blocks compute too
    exact = cholesky_flops(pattern, st.perm)[0] / 2
    assert 0.95 * exact <= flops.sum() <= 2.5 * exact


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("kind", ["grid", "spacetime", "dense_block"])
def test_parallel_kernels_match_dense(kind, threads, rng, monkeypatch):
    """The factorisation and selected inverse split over subtrees (forced on for these small
    patterns) give the dense oracle's numbers, as the sequential kernels do."""
    monkeypatch.setattr(supernodal, "_PARALLEL_FLOPS", 0.0)
    monkeypatch.setenv("ADELIA_NUM_THREADS", str(threads))
    pattern, values = grid_laplacian(30) if kind == "grid" else CASES[kind](rng)
    chol = check_against_dense(pattern, values, fill_reducing_ordering(pattern), rng)
    assert chol.schedule(threads) is not None
    # not positive definite inside a part or in top: None, as sequentially
    bad = values.copy()
    bad[pattern.diag_index] *= -1.0
    assert chol.factorise(bad) is None


def test_claimed_cores_never_exceed_the_workers(monkeypatch):
    import threading
    import time

    from adelia.engine import host_cores

    monkeypatch.setenv("ADELIA_NUM_THREADS", "3")
    held, peak, lock = [0], [0], threading.Lock()

    def kernel():
        with host_cores.claim_cores(3) as cores:
            with lock:
                held[0] += cores
                peak[0] = max(peak[0], held[0])
            time.sleep(0.01)
            with lock:
                held[0] -= cores

    threads = [threading.Thread(target=kernel) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= 3 and held[0] == 0
    assert host_cores.kernel_threads() == 3
    with host_cores.points_in_parallel():
        assert host_cores.kernel_threads() == 1
    assert host_cores.run_concurrently([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
