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
from jax.sharding import AxisType, Mesh, get_abstract_mesh

from ..errors import NotPositiveDefiniteError
from . import bta, bta_distributed
from .bta_partition import POINTS_AXIS, TIME_AXIS, split_mesh
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
        devices: ``control_inla["devices"]``: k > 1 devices are split into p groups for θ
            points × t time partitions (:func:`adelia.engine.bta_partition.split_mesh`; by
            default :func:`~adelia.engine.bta_partition.choose_split` for single evaluations;
            a fit sets its own split from the model's batches and the devices' memory with
            :meth:`use_split`); ``mesh`` is then the ``"time"`` mesh (p = 1) or the
            ``("points", "time")`` mesh, and the blocks are partitioned over the ``"time"``
            axis (:mod:`adelia.engine.bta_distributed`); None for t = 1 (the single-device
            kernels).

    Which devices run a point's kernels: inside a batch sharded over the ``"points"`` axis
    (:class:`adelia.engine.batching.ShardedPoints`, whose trace runs in a region manual over
    ``"points"``) the kernels span the ``"time"`` devices of the point's group (a nested
    ``jax.shard_map``: the mesh handed to the kernels marks ``"points"`` as manual).
    Outside one — a single evaluation, e.g. the mode search — they run on the same 2-D mesh
    replicated over ``"points"``: every group computes the point on its t devices. That
    spends no more time than one group would, and keeps one partition plan for every
    evaluation, so the mode search and the batches use the same arithmetic (spreading a
    single point over all p·t devices would need a second plan, a second compiled program
    and give the batches' values to rounding only).

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
        self.devices = devices
        self._build_maps()
        self._set_mesh(split_mesh(devices, block_structure.n_blocks) if devices is not None else None)

    @property
    def split(self) -> tuple[int, int]:
        """(groups of θ points, time partitions) of the solver's mesh; (1, 1) without one."""
        if self.mesh is None:
            return 1, 1
        shape = dict(self.mesh.shape)
        return int(shape.get(POINTS_AXIS, 1)), int(shape[TIME_AXIS])

    def use_split(self, points: int, partitions: int) -> None:
        """Put the solver on ``points`` × ``partitions`` of its ``devices``
        (:func:`adelia.engine.bta_partition.split_mesh`); a user's mesh is kept as given.
        Call before the solver's first use (its programs are made anew)."""
        if self.devices is None or self.split == (int(points), int(partitions)):
            return
        self._set_mesh(split_mesh(self.devices, self.block_structure.n_blocks, (int(points), int(partitions))))

    def _set_mesh(self, mesh) -> None:
        self.mesh = mesh
        self._kernels = _Kernels(mesh, self)
        self._jit_logdet = jax.jit(lambda v: self._kernels.logdet_values(v))
        self._jit_solve = jax.jit(self._solve_impl)
        self._jit_logdet_and_solve = jax.jit(self._logdet_and_solve_impl)
        self._jit_selected_inverse = jax.jit(lambda v: self._kernels.selected_inverse_values(v))
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

        # the same maps for the distributed kernels, which cut them per time partition so
        # that each device assembles only its own blocks
        self._scatter = bta_distributed.PatternScatter(
            pattern.nnz, n_b, b, a, (self._diag_src, self._diag_flat), (self._lower_src, self._lower_flat),
            (self._arrow_src, self._arrow_flat), (self._tip_src, self._tip_flat), n_diag, n_tip,
            self._pad_diag_flat, self._pad_tip_flat,
        )

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
        x = self._kernels.solve_values(values, self.to_bta_vector(rhs))
        return self.from_bta_vector(x)

    def solve(self, values, rhs):
        x = self._jit_solve(values, rhs)
        self._raise_if_failed(jnp.all(jnp.isfinite(x)), values)
        return x

    def _logdet_and_solve_impl(self, values, rhs):
        ld, x = self._kernels.logdet_and_solve_values(values, self.to_bta_vector(rhs))
        return ld, self.from_bta_vector(x)

    def logdet_and_solve(self, values, rhs):
        """(log|Q|, Q⁻¹ rhs) from one factorisation; (−inf, NaN) when not positive definite."""
        return self._jit_logdet_and_solve(values, rhs)

    def selected_inverse(self, values):
        out = self._jit_selected_inverse(values)
        self._raise_if_failed(jnp.all(jnp.isfinite(out)), values)
        return out

    def _sample_impl(self, values, key, n_samples):
        x = self._kernels.sample_values(values, key, n_samples)  # (n_samples, size) in BTA order
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
            + ("" if self.mesh is None else f", devices={self.split[0]} θ-point group(s) × {self.split[1]} time partitions")
            + ")"
        )


class _Kernels:
    """The BTA kernels a solver uses: :mod:`adelia.engine.bta` on one device, or
    :mod:`adelia.engine.bta_distributed` over the ``"time"`` axis of ``mesh``, on a
    :class:`~adelia.engine.bta.BTAMatrix` or (the ``*_values`` methods, which the solver
    uses) on its pattern values: on one device the values are assembled into the solver's
    :meth:`BTASolver.bta_matrix`; over the mesh each
    device assembles only its partition's blocks from the (nnz,) values, so that the
    per-device memory shrinks with the partitions, and the gradient's Q̄ (ḡ·Σ and −r̄xᵀ on
    the pattern) is formed per partition and joined by a ``psum`` of nnz numbers. (The
    factor kept for failure reports, ``BTASolver.factor``, is always the single-device one.)

    A mesh with a ``"points"`` axis has a twin whose ``"points"`` axis is typed manual: traced
    inside a region already manual over ``"points"`` (a points shard of a batch), the kernels'
    ``jax.shard_map`` must be handed a mesh equal to that context's, and then makes only
    ``"time"`` manual (JAX's partial-manual nesting); outside, the mesh itself."""

    def __init__(self, mesh, solver: BTASolver | None = None):
        self.mesh = mesh  # the *_values methods need the solver (its pattern maps)
        self.solver = solver
        self.nested = None
        if mesh is not None and POINTS_AXIS in mesh.axis_names:
            types = tuple(
                AxisType.Manual if name == POINTS_AXIS else kind for name, kind in zip(mesh.axis_names, mesh.axis_types)
            )
            self.nested = Mesh(mesh.devices, mesh.axis_names, axis_types=types)

    def _mesh(self):
        if self.nested is not None:
            context = get_abstract_mesh()
            if not context.empty and POINTS_AXIS in context.manual_axes:
                return self.nested
        return self.mesh

    # -- on a BTAMatrix (replicated blocks) --
    def logdet(self, Q):
        return bta.logdet(Q) if self.mesh is None else bta_distributed.logdet(Q, self._mesh(), TIME_AXIS)

    def solve(self, Q, rhs):
        return bta.solve(Q, rhs) if self.mesh is None else bta_distributed.solve(Q, rhs, self._mesh(), TIME_AXIS)

    def logdet_and_solve(self, Q, rhs):
        if self.mesh is None:
            return bta.logdet_and_solve(Q, rhs)
        return bta_distributed.logdet_and_solve(Q, rhs, self._mesh(), TIME_AXIS)

    def selected_inverse(self, Q):
        if self.mesh is None:
            return bta.selected_inverse(Q)
        return bta_distributed.selected_inverse(Q, self._mesh(), TIME_AXIS)

    def sample(self, Q, key, n_samples):
        if self.mesh is None:
            return bta.sample(Q, key, n_samples)
        return bta_distributed.sample(Q, key, self._mesh(), TIME_AXIS, n_samples=n_samples)

    # -- on the solver's pattern values (what BTASolver uses) --
    def logdet_values(self, values):
        if self.mesh is None:
            return bta.logdet(self.solver.bta_matrix(values))
        return bta_distributed.logdet_values(values, self.solver._scatter, self._mesh(), TIME_AXIS)

    def solve_values(self, values, rhs):
        if self.mesh is None:
            return bta.solve(self.solver.bta_matrix(values), rhs)
        return bta_distributed.solve_values(values, rhs, self.solver._scatter, self._mesh(), TIME_AXIS)

    def logdet_and_solve_values(self, values, rhs):
        if self.mesh is None:
            return bta.logdet_and_solve(self.solver.bta_matrix(values), rhs)
        return bta_distributed.logdet_and_solve_values(values, rhs, self.solver._scatter, self._mesh(), TIME_AXIS)

    def selected_inverse_values(self, values):
        """Σ on the pattern, (nnz,)."""
        if self.mesh is None:
            return self.solver.values_from_bta(bta.selected_inverse(self.solver.bta_matrix(values)))
        return bta_distributed.selected_inverse_values(values, self.solver._scatter, self._mesh(), TIME_AXIS)

    def sample_values(self, values, key, n_samples):
        if self.mesh is None:
            return bta.sample(self.solver.bta_matrix(values), key, n_samples)
        return bta_distributed.sample_values(values, key, self.solver._scatter, self._mesh(), TIME_AXIS, n_samples)
