"""The BTA backend of the :class:`Solver` interface (DESIGN.md §4.1).

Host side, once: the pattern's entries are mapped through the block structure's
permutation (``perm[i]`` = original index at BTA position i, −1 for padding) to flat
positions in the four block arrays of a :class:`~adelia.engine.bta.BTAMatrix`; an entry
outside the BTA pattern (not in one diagonal block, two consecutive blocks or the arrow)
is a ValueError. In JAX, per call: one scatter of ``values`` into the blocks (a lower
entry of a diagonal block is written at (r, c) and (c, r); padding positions get a unit
diagonal), a gather of the right-hand side into BTA order, the kernels of
:mod:`adelia.engine.bta`, and a gather back. AD through the scatter gives exactly the
pattern convention of :mod:`adelia.engine.solver`: an off-diagonal value's cotangent is
the sum of its (i, j) and (j, i) cotangents.

Not positive definite. Under ``jit`` (values traced) only a value can signal it: the
kernels' convention holds, ``logdet = -inf``, NaN solves, ``is_positive_definite`` False.
On concrete values (outside ``jit``, also under an eager ``jax.grad``):

* ``logdet`` and ``logdet_and_solve`` still return ``-inf`` and do not raise — −inf is a
  meaningful objective value (a line search steps back), and the dense and sparse
  backends behave the same way;
* ``solve``, ``selected_inverse`` and ``sample``, whose output would be silently NaN, raise
  :class:`adelia.errors.NotPositiveDefiniteError` naming the failing block and its
  original indices (not when the NaN came from non-finite inputs);
* ``check_positive_definite(values)`` raises that error on demand.

Example:
    >>> import numpy as np, scipy.sparse as sp
    >>> lap = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], (100, 100))
    >>> pattern = SparsePattern.from_scipy(lap)
    >>> solver = BTASolver(pattern)                      # RCM block structure
    >>> values = pattern.values_from_scipy(lap)
    >>> bool(np.isclose(solver.logdet(values), np.linalg.slogdet(lap.toarray())[1]))
    True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import NotPositiveDefiniteError
from . import bta, bta_distributed
from .bta_partition import TIME_AXIS, time_mesh
from .pattern import SparsePattern
from .solver import BlockStructure, Solver

__all__ = ["BTASolver"]


class BTASolver(Solver):
    """Differentiable logdet / solve / selected inverse / sampling through BTA kernels.

    Args:
        pattern: static lower-triangular pattern of Q.
        block_structure: the BTA layout (e.g. from
            :func:`adelia.engine.ordering.time_major_block_structure`); derived by reverse
            Cuthill–McKee (:func:`adelia.engine.ordering.rcm_block_structure`) when None.
        devices: ``control_inla["devices"]``: with k > 1 devices and n_b ≥ 2k blocks, the
            blocks are partitioned over them (:mod:`adelia.engine.bta_distributed`, mesh
            axis ``"time"``, :func:`adelia.engine.bta_partition.time_mesh`); ``mesh`` is then
            that mesh, otherwise None (the single-device kernels).

    Raises:
        ValueError: the block structure does not cover the pattern's n unknowns, or a
            pattern entry falls outside the BTA pattern after the permutation.
    """

    def __init__(self, pattern: SparsePattern, block_structure: BlockStructure | None = None, devices=None):
        if block_structure is None:
            from .ordering import rcm_block_structure

            block_structure = rcm_block_structure(pattern)
        self.pattern = pattern
        self.block_structure = block_structure
        self.mesh = time_mesh(devices, block_structure.n_blocks) if devices is not None else None
        self._kernels = _Kernels(self.mesh)
        self._build_maps()
        self._jit_logdet = jax.jit(lambda v: self._kernels.logdet(self.bta_matrix(v)))
        self._jit_solve = jax.jit(self._solve_impl)
        self._jit_logdet_and_solve = jax.jit(self._logdet_and_solve_impl)
        self._jit_selected_inverse = jax.jit(
            lambda v: self.values_from_bta(self._kernels.selected_inverse(self.bta_matrix(v)))
        )
        self._jit_sample = jax.jit(self._sample_impl, static_argnames="n_samples")
        self._jit_factor = jax.jit(lambda v: bta.cholesky(self.bta_matrix(v)))

    # -- host-side index maps -------------------------------------------------------------
    def _build_maps(self):
        pattern, bs = self.pattern, self.block_structure
        if bs.n != pattern.n:
            raise ValueError(
                f"block structure covers {bs.n} unknowns (perm without padding) but the pattern has n = {pattern.n}"
            )
        n_b, b, a = bs.n_blocks, bs.block_size, bs.arrow_size
        nbb = n_b * b
        pos = bs.position
        pr, pc = pos[pattern.rows], pos[pattern.cols]
        p, q = np.maximum(pr, pc), np.minimum(pr, pc)  # BTA lower triangle: p >= q
        in_blocks = p < nbb
        is_diag = in_blocks & (p // b == q // b)
        is_lower = in_blocks & (p // b == q // b + 1)
        is_arrow = ~in_blocks & (q < nbb)
        is_tip = q >= nbb
        bad = in_blocks & ~is_diag & ~is_lower
        if np.any(bad):
            k = np.flatnonzero(bad)
            first = int(k[0])
            raise ValueError(
                f"{k.size} pattern entries fall outside the BTA pattern (block_size {b}, {n_b} blocks, arrow {a}); "
                f"e.g. entry (row {pattern.rows[first]}, col {pattern.cols[first]}) maps to blocks "
                f"{p[first] // b} and {q[first] // b}, which are neither equal nor adjacent. Use a larger block "
                f"size, put dense rows in the arrow, or let the solver derive the structure (block_structure=None)"
            )

        # scatter maps: (source value index, flat position); diagonal-block and tip entries
        # off the diagonal are written twice, at (r, c) and (c, r)
        def both(src, blk, r, c, stride, size):
            mirror = r != c
            flat = np.concatenate([blk * size + r * stride + c, (blk * size + c * stride + r)[mirror]])
            return np.concatenate([src, src[mirror]]), flat

        src = np.flatnonzero(is_diag)
        blk = p[src] // b
        self._diag_src, self._diag_flat = both(src, blk, p[src] % b, q[src] % b, b, b * b)
        src = np.flatnonzero(is_tip)
        self._tip_src, self._tip_flat = both(src, np.zeros_like(src), p[src] - nbb, q[src] - nbb, a, a * a)
        src = np.flatnonzero(is_lower)
        self._lower_src, self._lower_flat = src, (q[src] // b) * b * b + (p[src] % b) * b + q[src] % b
        src = np.flatnonzero(is_arrow)
        self._arrow_src, self._arrow_flat = src, (q[src] // b) * a * b + (p[src] - nbb) * b + q[src] % b

        # padding positions: unit diagonal
        pad = np.flatnonzero(bs.perm < 0)
        pad_blocks, pad_tip = pad[pad < nbb], pad[pad >= nbb] - nbb
        self._pad_diag_flat = (pad_blocks // b) * b * b + (pad_blocks % b) * (b + 1)
        self._pad_tip_flat = pad_tip * (a + 1)

        # gather map back to the pattern: the lower-triangle entries of each category
        order = np.concatenate(
            [np.flatnonzero(is_diag), np.flatnonzero(is_lower), np.flatnonzero(is_arrow), np.flatnonzero(is_tip)]
        )
        self._gather_back = np.empty(pattern.nnz, dtype=np.int64)
        self._gather_back[order] = np.arange(pattern.nnz)
        n_diag, n_tip = int(is_diag.sum()), int(is_tip.sum())
        self._diag_flat_lower = self._diag_flat[:n_diag]
        self._tip_flat_lower = self._tip_flat[:n_tip]

        # vector maps: BTA position -> original index (padding reads a zero appended at n)
        self._to_bta_index = np.where(bs.perm < 0, pattern.n, bs.perm)
        self._from_bta_index = pos

    # -- values <-> BTA (traceable) ---------------------------------------------------------
    def bta_matrix(self, values: jax.Array) -> bta.BTAMatrix:
        """The BTA matrix P Q Pᵀ (padding: unit diagonal) from pattern values (nnz,)."""
        bs = self.block_structure
        n_b, b, a = bs.n_blocks, bs.block_size, bs.arrow_size
        values = jnp.asarray(values)
        if values.shape != (self.pattern.nnz,):
            raise ValueError(f"values must have shape (nnz,) = ({self.pattern.nnz},), got {values.shape}")
        dtype = values.dtype

        def scatter(size, src, flat, pad_flat):
            data = jnp.concatenate([values[src], jnp.ones(pad_flat.size, dtype)])
            idx = np.concatenate([flat, pad_flat])
            return jnp.zeros(size, dtype).at[idx].set(data, unique_indices=True, mode="promise_in_bounds")

        diag = scatter(n_b * b * b, self._diag_src, self._diag_flat, self._pad_diag_flat).reshape(n_b, b, b)
        lower = scatter((n_b - 1) * b * b, self._lower_src, self._lower_flat, np.zeros(0, np.int64))
        arrow = scatter(n_b * a * b, self._arrow_src, self._arrow_flat, np.zeros(0, np.int64))
        tip = scatter(a * a, self._tip_src, self._tip_flat, self._pad_tip_flat)
        return bta.BTAMatrix(diag, lower.reshape(n_b - 1, b, b), arrow.reshape(n_b, a, b), tip.reshape(a, a))

    def values_from_bta(self, matrix: bta.BTAMatrix) -> jax.Array:
        """The entries of a BTA matrix (e.g. the selected inverse) on the pattern, (nnz,)."""
        parts = [
            matrix.diag.reshape(-1)[self._diag_flat_lower],
            matrix.lower.reshape(-1)[self._lower_flat],
            matrix.arrow.reshape(-1)[self._arrow_flat],
            matrix.tip.reshape(-1)[self._tip_flat_lower],
        ]
        return jnp.concatenate(parts)[self._gather_back]

    def to_bta_vector(self, x: jax.Array) -> jax.Array:
        """Vector(s) (n,) or (n, k) in original order -> BTA order (padding zero)."""
        x = jnp.asarray(x)
        if x.ndim not in (1, 2) or x.shape[0] != self.n:
            raise ValueError(f"right-hand side must have shape (n,) or (n, k) with n = {self.n}, got {x.shape}")
        padded = jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])
        return padded[self._to_bta_index]

    def from_bta_vector(self, x: jax.Array) -> jax.Array:
        """Vector(s) in BTA order -> original order (padding dropped)."""
        return x[self._from_bta_index]

    def factor(self, values: jax.Array) -> bta.BTACholesky:
        """The block Cholesky factor of P Q Pᵀ (reuse it with the ``bta.*_from_factor`` kernels)."""
        return self._jit_factor(values)

    # -- Solver interface -------------------------------------------------------------------
    def logdet(self, values):
        """log|Q|; −inf when not positive definite (never raises), NaN for non-finite values."""
        return self._jit_logdet(values)

    def _solve_impl(self, values, rhs):
        x = self._kernels.solve(self.bta_matrix(values), self.to_bta_vector(rhs))
        return self.from_bta_vector(x)

    def solve(self, values, rhs):
        x = self._jit_solve(values, rhs)
        self._raise_if_failed(jnp.all(jnp.isfinite(x)), values)
        return x

    def _logdet_and_solve_impl(self, values, rhs):
        ld, x = self._kernels.logdet_and_solve(self.bta_matrix(values), self.to_bta_vector(rhs))
        return ld, self.from_bta_vector(x)

    def logdet_and_solve(self, values, rhs):
        """(log|Q|, Q⁻¹ rhs) from one factorisation; (−inf, NaN) when not positive definite."""
        return self._jit_logdet_and_solve(values, rhs)

    def selected_inverse(self, values):
        out = self._jit_selected_inverse(values)
        self._raise_if_failed(jnp.all(jnp.isfinite(out)), values)
        return out

    def _sample_impl(self, values, key, n_samples):
        x = self._kernels.sample(self.bta_matrix(values), key, n_samples)  # (n_samples, size) in BTA order
        return x[:, self._from_bta_index]

    def sample(self, values, key, n_samples: int = 1):
        out = self._jit_sample(values, key, n_samples=n_samples)
        self._raise_if_failed(jnp.all(jnp.isfinite(out)), values)
        return out

    def is_positive_definite(self, values):
        return bta.is_positive_definite_factor(self._jit_factor(values))

    def check_positive_definite(self, values) -> None:
        """Raise NotPositiveDefiniteError (naming the failing block) unless Q is positive
        definite. Needs concrete values (outside ``jit``)."""
        self._raise_if_failed(False, values)

    # -- failure reporting (outside jit only) ---------------------------------------------------
    def _raise_if_failed(self, ok, values):
        """Raise NotPositiveDefiniteError on concrete values whose factorisation failed.

        Under ``jit`` ``ok`` is abstract and nothing is raised: the −inf / NaN convention
        is the signal there."""
        try:
            if bool(ok):
                return
            values = jax.lax.stop_gradient(values)
            if not bool(jnp.all(jnp.isfinite(values))):
                return  # NaN in, NaN out: not a statement about definiteness
            block = int(bta.first_failed_block(self._jit_factor(values)))
        except jax.errors.ConcretizationTypeError:
            return
        if block < 0:
            return  # positive definite: the non-finite output came from the inputs
        raise NotPositiveDefiniteError(self._failure_message(block))

    def _failure_message(self, block: int) -> str:
        bs = self.block_structure
        b = bs.block_size
        if block < bs.n_blocks:
            where = f"diagonal block {block} of {bs.n_blocks} (BTA positions {block * b}..{(block + 1) * b - 1}"
            idx = bs.perm[block * b : (block + 1) * b]
        else:
            where = f"the arrow block ({bs.arrow_size} unknowns"
            idx = bs.perm[bs.n_blocks * b :]
        idx = idx[idx >= 0]
        shown = ", ".join(str(i) for i in idx[:8]) + (", ..." if idx.size > 8 else "")
        return (
            f"the matrix is not positive definite: the block Cholesky factorisation failed at {where}; "
            f"original indices {shown}). A failure in one block can stem from the values of any earlier "
            f"block or of the arrow's coupling to them; check the precision values (hyperparameters, "
            f"a missing diagonal term, an intrinsic model without constraints)"
        )

    def __repr__(self):
        bs = self.block_structure
        return (
            f"BTASolver(n={self.n}, nnz={self.pattern.nnz}, n_blocks={bs.n_blocks}, "
            f"block_size={bs.block_size}, arrow_size={bs.arrow_size}, padding={bs.size - bs.n}"
            + ("" if self.mesh is None else f", time partitions={self.mesh.shape['time']}")
            + ")"
        )


class _Kernels:
    """The BTA kernels a solver uses: :mod:`adelia.engine.bta` on one device, or
    :mod:`adelia.engine.bta_distributed` over the ``"time"`` axis of ``mesh``. (The factor
    kept for failure reports, ``BTASolver.factor``, is always the single-device one.)"""

    def __init__(self, mesh):
        self.mesh = mesh

    def logdet(self, Q):
        return bta.logdet(Q) if self.mesh is None else bta_distributed.logdet(Q, self.mesh, TIME_AXIS)

    def solve(self, Q, rhs):
        return bta.solve(Q, rhs) if self.mesh is None else bta_distributed.solve(Q, rhs, self.mesh, TIME_AXIS)

    def logdet_and_solve(self, Q, rhs):
        if self.mesh is None:
            return bta.logdet_and_solve(Q, rhs)
        return bta_distributed.logdet_and_solve(Q, rhs, self.mesh, TIME_AXIS)

    def selected_inverse(self, Q):
        if self.mesh is None:
            return bta.selected_inverse(Q)
        return bta_distributed.selected_inverse(Q, self.mesh, TIME_AXIS)

    def sample(self, Q, key, n_samples):
        if self.mesh is None:
            return bta.sample(Q, key, n_samples)
        return bta_distributed.sample(Q, key, self.mesh, TIME_AXIS, n_samples=n_samples)

