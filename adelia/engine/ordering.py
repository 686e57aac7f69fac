"""Block structures for the BTA backend: from a general sparse pattern or a space-time layout.

A general sparse SPD pattern becomes block-tridiagonal-with-arrowhead (DESIGN.md §4) by

1. moving the *arrow* nodes out: the ones the caller names (fixed effects, small dense
   components) plus automatically detected dense rows, i.e. nodes whose number of
   off-diagonal neighbours exceeds ``max(16, 10·√n)`` — AMD's default dense-row rule
   (Amestoy, Davis & Duff 2004, "Algorithm 837: AMD"), which keeps a few dense rows from
   blowing up the bandwidth;
2. ordering the rest by reverse Cuthill–McKee (Cuthill & McKee 1969; George & Liu 1981),
   which makes the bandwidth w = max |pos(i) − pos(j)| over edges small;
3. cutting the RCM order into n_b blocks of size b = max(w, min_block_size), capped at the
   number of non-arrow nodes (then lowered to ⌈m/n_b⌉ for the same n_b when that stays
   ≥ both bounds, to cut padding). Any entry (i, j) then has |pos(i) − pos(j)| ≤ w ≤ b, so it
   lies in one block or in two consecutive ones: the block-tridiagonal pattern. The last
   block is padded (``perm = -1``, unit diagonal) when b does not divide the node count.

A minimum block size keeps each scan step large enough that it is not dominated by per-step
overhead (a b×b Cholesky and a few b×b products per step).

Example:
    >>> import scipy.sparse as sp
    >>> lap = sp.kron(sp.eye(20), sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], (20, 20))) + sp.eye(400)
    >>> bs = rcm_block_structure(SparsePattern.from_scipy(lap), min_block_size=8)
    >>> bs.block_size >= 8 and bs.arrow_size == 0
    True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from .pattern import SparsePattern
from .solver import BlockStructure

__all__ = ["rcm_block_structure", "time_major_block_structure", "interleaved_time_blocks", "dense_rows", "bandwidth"]


def _adjacency(pattern: SparsePattern) -> sp.csr_matrix:
    """Symmetric off-diagonal adjacency (CSR, unit weights)."""
    off = pattern.rows != pattern.cols
    r, c = pattern.rows[off], pattern.cols[off]
    ones = np.ones(2 * r.size, dtype=np.int8)
    return sp.csr_matrix((ones, (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(pattern.n, pattern.n))


def dense_rows(pattern: SparsePattern, threshold: float | None = None) -> np.ndarray:
    """Nodes with more than ``threshold`` off-diagonal neighbours (sorted).

    The default threshold is AMD's dense-row rule, max(16, 10·√n)."""
    if threshold is None:
        threshold = max(16.0, 10.0 * np.sqrt(pattern.n))
    degree = np.diff(_adjacency(pattern).indptr)
    return np.flatnonzero(degree > threshold)


def bandwidth(pattern: SparsePattern, order: np.ndarray | None = None) -> int:
    """max |pos(i) − pos(j)| over the entries, with ``pos`` the inverse of ``order``."""
    if pattern.nnz == 0:
        return 0
    if order is None:
        return int(np.max(pattern.rows - pattern.cols))
    pos = np.empty(pattern.n, dtype=np.int64)
    pos[np.asarray(order)] = np.arange(pattern.n)
    return int(np.max(np.abs(pos[pattern.rows] - pos[pattern.cols])))


def rcm_block_structure(
    pattern: SparsePattern,
    arrow=(),
    *,
    min_block_size: int = 32,
    block_size: int | None = None,
    dense_row_threshold: float | None = None,
    detect_dense_rows: bool = True,
) -> BlockStructure:
    """BTA block structure of a general sparse pattern by reverse Cuthill–McKee.

    Args:
        pattern: the symmetric sparsity pattern (lower triangle).
        arrow: original indices to put in the arrow (e.g. fixed effects), kept in this order.
        min_block_size: smallest block size b (default 32); b = max(bandwidth, this),
            capped at the number of non-arrow nodes.
        block_size: force b (must be >= the RCM bandwidth); overrides ``min_block_size``.
        dense_row_threshold: degree above which a node is a dense row moved to the arrow;
            default max(16, 10·√n) (AMD's rule).
        detect_dense_rows: set False to move only the given ``arrow`` nodes.

    Returns:
        A :class:`BlockStructure`, blocks first in RCM order, then the arrow: given arrow
        nodes first, detected dense rows after them (ascending).

    Raises:
        ValueError: an arrow index out of range or repeated, or a ``block_size`` below the
            bandwidth.
    """
    n = pattern.n
    arrow = np.asarray(arrow, dtype=np.int64).ravel()
    if arrow.size and (arrow.min() < 0 or arrow.max() >= n):
        raise ValueError(f"arrow indices must lie in 0..{n - 1}, got {arrow.tolist()}")
    if np.unique(arrow).size != arrow.size:
        raise ValueError(f"arrow indices must be distinct, got {arrow.tolist()}")
    if min_block_size < 1:
        raise ValueError(f"min_block_size must be >= 1, got {min_block_size}")
    if detect_dense_rows:
        extra = np.setdiff1d(dense_rows(pattern, dense_row_threshold), arrow)
        arrow = np.concatenate([arrow, extra])

    rest = np.setdiff1d(np.arange(n), arrow)
    adj = _adjacency(pattern)[rest][:, rest].tocsr()
    local = reverse_cuthill_mckee(adj, symmetric_mode=True) if rest.size else np.zeros(0, np.int64)
    order = rest[np.asarray(local, dtype=np.int64)]

    # bandwidth of the block part in the RCM order
    coo = sp.tril(adj[local][:, local]).tocoo()
    width = int(np.max(coo.row - coo.col)) if coo.nnz else 0
    m = rest.size
    if block_size is None:
        b = min(max(width, min_block_size), max(m, 1))
        # same number of blocks, less padding: shrink b to ceil(m / n_blocks) when allowed
        balanced = -(-m // max(-(-m // b), 1))
        if balanced >= max(width, min(min_block_size, m), 1):
            b = balanced
    else:
        b = int(block_size)
        if b < max(width, 1):
            raise ValueError(
                f"block_size = {b} is below the RCM bandwidth {width} of the non-arrow part; "
                f"use block_size >= {width} or leave it None"
            )
    n_blocks = max(-(-m // b), 1)
    pad = np.full(n_blocks * b - m, -1, dtype=np.int64)
    perm = np.concatenate([order, pad, arrow])
    return BlockStructure(perm=perm, n_blocks=int(n_blocks), block_size=int(b), arrow_size=int(arrow.size))


def time_major_block_structure(n_blocks: int, block_size: int, arrow=(), n: int | None = None) -> BlockStructure:
    """Block structure of a space-time field laid out time-major, plus arrow nodes.

    The non-arrow indices, in increasing order, are the field x[t·block_size + s] for time
    t < n_blocks and space s < block_size: block t is time slice t. The ``arrow`` indices
    (in the given order) form the arrow. By default n = n_blocks·block_size + len(arrow);
    a larger n is an error (every node needs a place), a smaller one pads the last block.

    Example:
        >>> bs = time_major_block_structure(3, 4, arrow=[12, 13])
        >>> bs.perm.tolist()
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
        >>> time_major_block_structure(2, 2, arrow=[0]).perm.tolist()   # arrow first in x
        [1, 2, 3, 4, 0]
    """
    arrow = np.asarray(arrow, dtype=np.int64).ravel()
    if n is None:
        n = n_blocks * block_size + arrow.size
    capacity = n_blocks * block_size + arrow.size
    if n > capacity:
        raise ValueError(
            f"n = {n} nodes do not fit in n_blocks*block_size + len(arrow) = "
            f"{n_blocks}*{block_size} + {arrow.size} = {capacity}"
        )
    if arrow.size and (arrow.min() < 0 or arrow.max() >= n or np.unique(arrow).size != arrow.size):
        raise ValueError(f"arrow indices must be distinct and lie in 0..{n - 1}, got {arrow.tolist()}")
    field = np.setdiff1d(np.arange(n), arrow)
    pad = np.full(n_blocks * block_size - field.size, -1, dtype=np.int64)
    return BlockStructure(
        perm=np.concatenate([field, pad, arrow]),
        n_blocks=int(n_blocks),
        block_size=int(block_size),
        arrow_size=int(arrow.size),
    )


def interleaved_time_blocks(n_blocks: int, fields, arrow) -> BlockStructure:
    """Block structure of several space-time fields laid out time-major, interleaved by time.

    ``fields`` lists (offset, block_size) per field: field f holds x[offset + t·block_size + s]
    for time t < n_blocks. Block t gathers time slice t of every field, in the given order
    (block size = Σ block sizes); the ``arrow`` indices, in the given order, form the arrow.

    Example:
        >>> bs = interleaved_time_blocks(2, [(0, 2), (4, 1)], arrow=[6])
        >>> bs.perm.tolist(), bs.block_size
        ([0, 1, 4, 2, 3, 5, 6], 3)
    """
    arrow = np.asarray(arrow, dtype=np.int64).ravel()
    blocks = [np.concatenate([o + t * b + np.arange(b) for o, b in fields]) for t in range(n_blocks)]
    return BlockStructure(
        perm=np.concatenate(blocks + [arrow]).astype(np.int64),
        n_blocks=int(n_blocks),
        block_size=int(sum(b for _, b in fields)),
        arrow_size=int(arrow.size),
    )
