"""Block structures: RCM conversion of general sparse patterns, space-time layouts,
BlockStructure validation and the BTA solver's pattern check."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import adelia  # noqa: F401  (float64)
from adelia.engine.bta_solver import BTASolver
from adelia.engine.ordering import bandwidth, dense_rows, rcm_block_structure, time_major_block_structure
from adelia.engine.pattern import SparsePattern
from adelia.engine.solver import BlockStructure


def grid_laplacian(side: int, rng, shuffle: bool = True) -> sp.csc_matrix:
    """2-D grid Laplacian + I, nodes randomly relabelled (so the natural order is bad)."""
    path = sp.diags([-1.0, -1.0], [-1, 1], (side, side))
    lap = sp.kron(sp.eye(side), path) + sp.kron(path, sp.eye(side))
    lap = lap - sp.diags(np.asarray(lap.sum(axis=1)).ravel()) + sp.eye(side * side)
    if shuffle:
        p = rng.permutation(side * side)
        lap = lap[p][:, p]
    return sp.csc_matrix(lap)


def with_star_nodes(matrix: sp.spmatrix, n_star: int, rng) -> sp.csc_matrix:
    """Append ``n_star`` nodes coupled (weakly) to every other node: dense rows."""
    n = matrix.shape[0]
    coupling = sp.csr_matrix(0.01 * rng.normal(size=(n_star, n)))
    tip = sp.eye(n_star) * (n * 0.01 + 5.0)
    return sp.csc_matrix(sp.bmat([[matrix, coupling.T], [coupling, tip]]))


def block_of(bs: BlockStructure) -> np.ndarray:
    """Block index of each original node (n_blocks for the arrow)."""
    pos = bs.position
    return np.where(pos < bs.n_blocks * bs.block_size, pos // bs.block_size, bs.n_blocks)


def assert_fits_bta(pattern: SparsePattern, bs: BlockStructure):
    blk = block_of(bs)
    i, j = blk[pattern.rows], blk[pattern.cols]
    in_blocks = (i < bs.n_blocks) & (j < bs.n_blocks)
    assert np.all(np.abs(i - j)[in_blocks] <= 1)


def test_rcm_on_shuffled_grid_gives_a_narrow_block_tridiagonal_form(rng):
    side = 15
    lap = grid_laplacian(side, rng)
    pattern = SparsePattern.from_scipy(lap)
    assert bandwidth(pattern) > 3 * side  # the shuffled order is far from banded
    bs = rcm_block_structure(pattern, min_block_size=1)
    assert bs.arrow_size == 0 and bs.n == side * side
    real = bs.perm[bs.perm >= 0]
    np.testing.assert_array_equal(np.sort(real), np.arange(side * side))
    order = real  # RCM order of the block part (no arrow here)
    width = bandwidth(pattern, order)
    assert width <= 2 * side  # RCM on a grid: about the side length
    assert width <= bs.block_size <= 2 * side
    # padding only at the end of the block part
    assert np.all(bs.perm[: bs.n] >= 0) and np.all(bs.perm[bs.n :] == -1)
    assert_fits_bta(pattern, bs)
    # the default minimum block size applies (32 > bandwidth here)
    assert rcm_block_structure(pattern).block_size >= 32


def test_named_and_detected_dense_rows_go_to_the_arrow(rng):
    lap = with_star_nodes(grid_laplacian(12, rng), 2, rng)  # nodes 144, 145 are dense
    pattern = SparsePattern.from_scipy(lap)
    np.testing.assert_array_equal(dense_rows(pattern), [144, 145])  # degree 145 > max(16, 10·√146)
    bs = rcm_block_structure(pattern, arrow=[7], min_block_size=4)
    assert bs.arrow_size == 3
    np.testing.assert_array_equal(bs.perm[-3:], [7, 144, 145])  # named first, detected after
    assert_fits_bta(pattern, bs)
    assert bs.block_size <= 2 * 12 + 1  # the dense rows did not widen the band
    # without detection the dense rows stay in the band and force one huge block
    wide = rcm_block_structure(pattern, detect_dense_rows=False, min_block_size=4)
    assert wide.arrow_size == 0 and wide.block_size > 100
    # a threshold above every degree detects nothing
    assert dense_rows(pattern, threshold=1000).size == 0


def test_rcm_structure_gives_the_dense_logdet(rng):
    lap = with_star_nodes(grid_laplacian(9, rng), 2, rng)
    pattern = SparsePattern.from_scipy(lap)
    bs = rcm_block_structure(pattern, min_block_size=10)
    assert bs.size > bs.n  # padded
    solver = BTASolver(pattern, bs)
    values = pattern.values_from_scipy(lap)
    want = np.linalg.slogdet(lap.toarray())[1]
    assert abs(float(solver.logdet(values)) - want) <= 1e-10 * abs(want)


def test_everything_in_the_arrow():
    lap = sp.csc_matrix(np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 0.0], [0.5, 0.0, 1.5]]))
    pattern = SparsePattern.from_scipy(lap)
    bs = rcm_block_structure(pattern, arrow=[2, 0, 1])
    assert (bs.n_blocks, bs.block_size, bs.arrow_size) == (1, 1, 3)
    np.testing.assert_array_equal(bs.perm, [-1, 2, 0, 1])
    solver = BTASolver(pattern, bs)
    values = pattern.values_from_scipy(lap)
    assert abs(float(solver.logdet(values)) - np.linalg.slogdet(lap.toarray())[1]) <= 1e-12
    inverse = np.linalg.inv(lap.toarray())
    np.testing.assert_allclose(solver.selected_inverse(values), inverse[pattern.rows, pattern.cols])


def test_rcm_argument_errors(rng):
    pattern = SparsePattern.from_scipy(grid_laplacian(6, rng))
    with pytest.raises(ValueError, match="arrow indices must lie in 0..35"):
        rcm_block_structure(pattern, arrow=[36])
    with pytest.raises(ValueError, match="distinct"):
        rcm_block_structure(pattern, arrow=[3, 3])
    with pytest.raises(ValueError, match="block_size = 2 is below the RCM bandwidth"):
        rcm_block_structure(pattern, block_size=2)


def test_time_major_layout():
    bs = time_major_block_structure(3, 2, arrow=[0, 7])
    # field nodes 1..6 in order, time slice t = nodes 1+2t, 2+2t; arrow last
    np.testing.assert_array_equal(bs.perm, [1, 2, 3, 4, 5, 6, 0, 7])
    assert (bs.n_blocks, bs.block_size, bs.arrow_size, bs.n, bs.size) == (3, 2, 2, 8, 8)
    padded = time_major_block_structure(2, 3, n=5)
    np.testing.assert_array_equal(padded.perm, [0, 1, 2, 3, 4, -1])
    with pytest.raises(ValueError, match="do not fit"):
        time_major_block_structure(2, 2, arrow=[4], n=6)


def test_time_major_space_time_precision_fits_exactly(rng):
    """Q = Q_ar1 ⊗ Q_space + fixed effects: block t is time slice t."""
    n_t, n_s = 4, 5
    ar1 = sp.diags([-0.5, 1.25, -0.5], [-1, 0, 1], (n_t, n_t))
    space = sp.diags([-1.0, 3.0, -1.0], [-1, 0, 1], (n_s, n_s))
    q_field = sp.kron(ar1, space)
    lap = with_star_nodes(q_field, 1, rng)
    pattern = SparsePattern.from_scipy(lap)
    bs = time_major_block_structure(n_t, n_s, arrow=[n_t * n_s])
    solver = BTASolver(pattern, bs)
    values = pattern.values_from_scipy(lap)
    want = np.linalg.slogdet(lap.toarray())[1]
    assert abs(float(solver.logdet(values)) - want) <= 1e-10 * abs(want)


@pytest.mark.parametrize(
    "perm, args, needle",
    [
        ([0, 1, 2], (1, 2, 0), "length 3, expected"),
        ([0, 0, 1, 2], (2, 2, 0), "exactly once"),
        ([0, 1, -2, 2], (2, 2, 0), "exactly once"),
        ([0, 1, 2, 3], (0, 2, 4), "n_blocks >= 1"),
    ],
)
def test_block_structure_validation(perm, args, needle):
    with pytest.raises(ValueError, match=needle):
        BlockStructure(np.array(perm), *args)


def test_solver_rejects_entries_outside_the_bta_pattern():
    # a 6-node path with one extra long edge (0, 5): blocks of size 2 cannot hold it
    rows = [1, 2, 3, 4, 5, 5]
    cols = [0, 1, 2, 3, 4, 0]
    pattern = SparsePattern.from_entries(6, rows, cols)
    bs = BlockStructure(np.arange(6), 3, 2, 0)
    with pytest.raises(ValueError, match=r"1 pattern entries fall outside.*\(row 5, col 0\) maps to blocks 2 and 0"):
        BTASolver(pattern, bs)
    with pytest.raises(ValueError, match="covers 4 unknowns"):
        BTASolver(pattern, BlockStructure(np.arange(4), 2, 2, 0))
    # the same pattern with node 0 in the arrow fits
    BTASolver(pattern, BlockStructure(np.array([1, 2, 3, 4, 5, -1, 0]), 3, 2, 1))
