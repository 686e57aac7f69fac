"""Static sparsity patterns of symmetric matrices.

A :class:`SparsePattern` is host data (numpy), fixed before tracing: the lower triangle
(row >= col) of a symmetric n×n matrix, every diagonal entry present, entries sorted by
(col, row) and unique. Matrix *values* travel separately as a JAX array of shape (nnz,)
aligned with ``rows``/``cols``; that array is what θ changes and what gradients flow to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


def _check_in_range(n: int, rows: np.ndarray, cols: np.ndarray) -> None:
    bad = (rows < 0) | (rows >= n) | (cols < 0) | (cols >= n)
    if np.any(bad):
        k = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(f"entry ({rows.ravel()[k]}, {cols.ravel()[k]}) is out of range for an {n}x{n} matrix")


def _unique_sorted(keys: np.ndarray) -> np.ndarray:
    """``np.unique`` of an int64 array by sort and compare. NumPy ≥ 2.3's ``np.unique`` goes
    through a hash table that is 20× slower than a sort on millions of spread-out keys (12.8 s
    against 0.6 s for 3·10⁶ keys below 10¹²): the patterns of 10⁶-node models hit it."""
    keys = np.sort(keys)
    if keys.size:
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    return keys


@dataclass(frozen=True, eq=False)
class SparsePattern:
    """Lower-triangular pattern of a symmetric matrix (host-side, static).

    Attributes:
        n: matrix dimension.
        rows, cols: int64 arrays (nnz,), ``rows >= cols``, sorted by (col, row), unique,
            all n diagonal entries present.
    """

    n: int
    rows: np.ndarray
    cols: np.ndarray
    _diag_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        rows = np.asarray(self.rows, dtype=np.int64)
        cols = np.asarray(self.cols, dtype=np.int64)
        if rows.shape != cols.shape or rows.ndim != 1:
            raise ValueError(f"rows and cols must be 1-D of equal length, got {rows.shape} and {cols.shape}")
        if np.any(rows < cols):
            raise ValueError("SparsePattern holds the lower triangle: every row index must be >= its column index")
        if rows.size and (rows.max() >= self.n or cols.min() < 0):
            raise ValueError(f"pattern indices out of range for n = {self.n}")
        key = cols * self.n + rows
        if np.any(np.diff(key) <= 0):
            raise ValueError("pattern entries must be unique and sorted by (col, row); use SparsePattern.from_entries")
        diag = np.flatnonzero(rows == cols)
        if diag.size != self.n:
            raise ValueError(f"pattern must contain all {self.n} diagonal entries, found {diag.size}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "_diag_index", diag)
        rows.setflags(write=False)
        cols.setflags(write=False)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_entries(cls, n: int, rows, cols) -> "SparsePattern":
        """Pattern from arbitrary (row, col) entries: symmetrised to the lower triangle,
        deduplicated, sorted, diagonal added."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        _check_in_range(n, rows, cols)  # the key encoding below would alias out-of-range entries
        lo = np.maximum(rows, cols)
        hi = np.minimum(rows, cols)
        d = np.arange(n, dtype=np.int64)
        lo = np.concatenate([lo, d])
        hi = np.concatenate([hi, d])
        key = _unique_sorted(hi * n + lo)
        return cls(n, key % n, key // n)

    @classmethod
    def from_scipy(cls, matrix) -> "SparsePattern":
        """Pattern of a (symmetric) scipy sparse matrix's structural nonzeros."""
        coo = sp.coo_matrix(matrix)
        if coo.shape[0] != coo.shape[1]:
            raise ValueError(f"a symmetric pattern needs a square matrix, got shape {coo.shape}")
        return cls.from_entries(coo.shape[0], coo.row, coo.col)

    # -- queries ----------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return int(self.rows.size)

    @property
    def diag_index(self) -> np.ndarray:
        """Positions of the diagonal entries (in order 0..n-1) within the values array."""
        return self._diag_index

    def index_of(self, rows, cols) -> np.ndarray:
        """Positions of entries (row, col) (either triangle) in the values array.

        Raises KeyError naming the first entry that is not in the pattern."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        try:
            _check_in_range(self.n, rows, cols)
        except ValueError as error:
            raise KeyError(f"{error}, so not in the sparsity pattern") from None
        lo = np.maximum(rows, cols)
        hi = np.minimum(rows, cols)
        keys = self.cols * self.n + self.rows
        want = hi * self.n + lo
        pos = np.searchsorted(keys, want)
        pos_c = np.minimum(pos, keys.size - 1)
        bad = keys[pos_c] != want
        if np.any(bad):
            k = int(np.flatnonzero(bad.ravel())[0])
            raise KeyError(f"entry ({lo.ravel()[k]}, {hi.ravel()[k]}) is not in the sparsity pattern")
        return pos_c

    def union(self, other: "SparsePattern") -> "SparsePattern":
        if other.n != self.n:
            raise ValueError(f"cannot merge patterns of sizes {self.n} and {other.n}")
        return SparsePattern.from_entries(
            self.n, np.concatenate([self.rows, other.rows]), np.concatenate([self.cols, other.cols])
        )

    def permuted(self, perm: np.ndarray) -> tuple["SparsePattern", np.ndarray]:
        """The pattern of P Q Pᵀ where new index i holds old index perm[i].

        Returns (new_pattern, take) with ``new_values = old_values[take]``."""
        perm = np.asarray(perm, dtype=np.int64)
        if perm.shape != (self.n,) or not np.array_equal(np.sort(perm), np.arange(self.n)):
            raise ValueError(f"perm must be a permutation of 0..{self.n - 1}, got shape {perm.shape}")
        inv = np.empty_like(perm)
        inv[perm] = np.arange(perm.size)
        r, c = inv[self.rows], inv[self.cols]
        new = SparsePattern.from_entries(self.n, r, c)
        take = np.empty(new.nnz, dtype=np.int64)
        take[new.index_of(r, c)] = np.arange(self.nnz)
        return new, take

    # -- values <-> matrices (host side, for tests and set-up) ------------------------------
    def to_scipy(self, values, full: bool = True) -> sp.csc_matrix:
        """Values on this pattern as a scipy matrix (full symmetric by default)."""
        values = np.asarray(values)
        low = sp.coo_matrix((values, (self.rows, self.cols)), shape=(self.n, self.n))
        if not full:
            return low.tocsc()
        off = self.rows != self.cols
        up = sp.coo_matrix((values[off], (self.cols[off], self.rows[off])), shape=(self.n, self.n))
        return (low + up).tocsc()

    def values_from_scipy(self, matrix) -> np.ndarray:
        """The values of a symmetric scipy matrix on this pattern (entries outside are dropped
        only if zero; a nonzero outside the pattern raises KeyError)."""
        coo = sp.tril(sp.coo_matrix(matrix)).tocoo()
        out = np.zeros(self.nnz, dtype=np.result_type(coo.data.dtype, np.float64))
        keep = coo.data != 0
        np.add.at(out, self.index_of(coo.row[keep], coo.col[keep]), coo.data[keep])
        return out

    def to_dense_jax(self, values):
        """Values as a dense symmetric JAX matrix (differentiable scatter; dense oracle)."""
        import jax.numpy as jnp

        m = jnp.zeros((self.n, self.n), dtype=values.dtype)
        m = m.at[self.rows, self.cols].add(values)
        off = jnp.asarray(self.rows != self.cols)
        return m.at[self.cols, self.rows].add(jnp.where(off, values, 0.0))
