"""BTA kernels with the time blocks partitioned over the devices of a mesh axis.

The n_b diagonal blocks of a :class:`~adelia.engine.bta.BTAMatrix` are split into P
contiguous partitions of m blocks (:mod:`adelia.engine.bta_partition`; uneven n_b is padded
with decoupled identity blocks), one partition per device along the mesh axis ``axis``.
The factorisation is the nested-dissection scheme of distributed block-tridiagonal solvers
(Serinv's ``d_pobtaf`` / ``d_pobtas`` / ``d_pobtasi``, Gaedke-Merzhäuser et al. 2024),
in this form: every partition keeps its first block t_p and last block e_p as *boundary*
blocks and eliminates its interior blocks 1..m−2 on its own device, concurrently. In the
order (interiors of all partitions, boundaries, arrow) the permuted matrix Q' = Π Q Πᵀ has
the Cholesky factor

    interior i of partition p:  L_i = chol(A_i − M_{i−1}M_{i−1}ᵀ),
                                 [M_i; Y_i; F_i] = [B_i; Ŷ_i; Ĉ_i] L_i⁻ᵀ

with Ŷ_i = Q[t_p, i] − Y_{i−1}M_{i−1}ᵀ and Ĉ_i = C_i − F_{i−1}M_{i−1}ᵀ: the boundary block
t_p acts as an extra arrow row of the interior chain (its coupling to the interior is
fill, Y), and M_{m−2} couples the last interior block to e_p. What is left is the
*reduced* BTA system on the blocks (t_0, e_0, t_1, e_1, …, t_{P−1}, e_{P−1}) and the
arrow — the Schur complement of the interiors:

    diag  t_p: A_t − Σ_i Y_iY_iᵀ        e_p: A_e − M_{m−2}M_{m−2}ᵀ
    lower (e_p, t_p): Q[e_p, t_p] − M_{m−2}Y_{m−2}ᵀ     (t_{p+1}, e_p): B at the partition seam
    arrow t_p: C_t − Σ_i F_iY_iᵀ        e_p: C_e − F_{m−2}M_{m−2}ᵀ
    tip   T − Σ_p Σ_i F_iF_iᵀ            (a ``psum`` over the axis)

which is gathered to every device (``all_gather``) and factorised there with
:func:`adelia.engine.bta.cholesky` (2P blocks: small). The operations then reuse the factor:

* ``logdet``: 2 Σ log diag L_i summed over the devices (``psum``) + log|reduced|.
* ``solve``: each device forward-substitutes its interior and reduces its boundary
  right-hand sides; the gathered reduced system is solved on every device (bta); each
  device back-substitutes its interior from its boundary and arrow values.
* ``sample``: x = Πᵀ L'⁻ᵀ Π z for z ~ N(0, I) in BTA order (Cov x = Πᵀ Q'⁻¹ Π = Q⁻¹). The
  factor is the permuted one, so for the same z the draw differs from
  :func:`adelia.engine.bta.sample`'s x = L⁻ᵀ z; the law is the same.
* ``selected_inverse``: Σ = Q⁻¹ on the BTA pattern: the reduced system's selected inverse
  (bta), then on each device the block Takahashi recursion backward over its interior,
  started from Σ on (e_p, t_p, arrow) — bta's recursion with [t_p; arrow] as the arrow.

Reverse mode follows :mod:`adelia.engine.bta` exactly (same cotangent conventions:
symmetric diag/tip, lower and arrow blocks counting both of their entries):

    d log|Q| = tr(Q⁻¹ dQ)        ->  Q̄ = ḡ·Σ on the pattern (the distributed selected inverse)
    d (Q⁻¹ r) = Q⁻¹ (dr − dQ x)  ->  r̄ = Q⁻¹ x̄ (distributed solve),  Q̄ = −r̄ xᵀ on the pattern

``selected_inverse`` and ``sample`` are differentiated by AD through the shard_map (as bta's
are through their scans). All kernels are jit-compatible: the collectives run inside
``jax.shard_map``, there is no host round trip. Inputs and outputs are ordinary replicated
arrays (a :class:`BTAMatrix`, vectors in BTA order); only the factor
(:class:`DistributedBTACholesky`) holds arrays sharded over the axis.

Two entry points. The kernels on a :class:`BTAMatrix` (``logdet``, ``solve``, …) take the
blocks replicated, as every device would hold all n_b blocks (and, in reverse mode, the
whole Q̄) unless XLA happens to partition the program around them. The kernels on the
values of a sparse pattern (``logdet_values``, ``solve_values``, ``logdet_and_solve_values``,
``selected_inverse_values``, ``sample_values``; what :class:`adelia.engine.bta_solver.
BTASolver` uses on a mesh) take the replicated values (nnz numbers, a few per row where the
blocks hold b² per block row) and a :class:`PatternScatter` (host-side index maps, cut per
partition on the host): inside the shard_map each device scatters only its own m blocks;
in reverse mode each device forms Q̄ = ḡ·Σ − r̄xᵀ on its own blocks (its local selected
inverse; Σ never leaves the device) and reads its entries out, and one ``psum`` of nnz
numbers joins the values' cotangent. Per-device memory then falls with P (measured with
XLA's memory analysis: tests/engine/test_bta_sharded_assembly.py).

Example:
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> from jax.sharding import Mesh
    >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
    >>> Q = bta.BTAMatrix(jnp.broadcast_to(4.0 * jnp.eye(2), (5, 2, 2)), -0.5 * jnp.ones((4, 2, 2)),
    ...                   0.1 * jnp.ones((5, 1, 2)), 3.0 * jnp.eye(1))
    >>> bool(jnp.allclose(logdet(Q, mesh), bta.logdet(Q)))
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from . import bta
from .bta import BTACholesky, BTAMatrix, _add, _all_finite, _as_matrix, _scaled_pattern_inverse, _split, _sym
from .bta import _symmetric_outer, _trsm
from .bta_partition import PartitionPlan, partition_mesh, partition_plan

__all__ = [
    "DistributedBTACholesky",
    "cholesky",
    "logdet",
    "logdet_from_factor",
    "solve",
    "solve_from_factor",
    "logdet_and_solve",
    "selected_inverse",
    "selected_inverse_from_factor",
    "sample",
    "sample_from_noise",
    "is_positive_definite_factor",
    "PatternScatter",
    "logdet_values",
    "solve_values",
    "logdet_and_solve_values",
    "selected_inverse_values",
    "sample_values",
]


@dataclass(frozen=True)
class _Layout:
    """Static: the mesh (cut to the partitions used), its axis and the partition plan."""

    mesh: Mesh
    axis: str
    plan: PartitionPlan
    block_size: int
    arrow_size: int


def _layout(Q, mesh: Mesh, axis: str) -> _Layout:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"distributed BTA: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if axis not in mesh.axis_names:
        raise ValueError(f"distributed BTA: axis {axis!r} is not an axis of the mesh; its axes are {tuple(mesh.axis_names)}")
    plan = partition_plan(Q.n_blocks, mesh.shape[axis])
    return _Layout(partition_mesh(mesh, axis, plan.partitions), axis, plan, Q.block_size, Q.arrow_size)


@jax.tree_util.register_pytree_node_class
class DistributedBTACholesky:
    """The permuted Cholesky factor L' (Π Q Πᵀ = L' L'ᵀ) of a partitioned BTA matrix.

    ``interior_diag`` (P, m−2, b, b): the L_i of every partition's interior (sharded over
    the axis); ``interior_panel`` (P, m−2, 2b+a, b): [M_i; Y_i; F_i] below each L_i (M_i: the
    next block, Y_i: the partition's first block, F_i: the arrow); ``reduced``: the
    :class:`~adelia.engine.bta.BTACholesky` of the reduced system (replicated). The layout
    (mesh, axis, partition plan) is static pytree data.
    """

    __slots__ = ("interior_diag", "interior_panel", "reduced", "layout")

    def __init__(self, interior_diag, interior_panel, reduced: BTACholesky, layout: _Layout):
        self.interior_diag = interior_diag
        self.interior_panel = interior_panel
        self.reduced = reduced
        self.layout = layout

    def tree_flatten(self):
        return (self.interior_diag, self.interior_panel, self.reduced), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(*children, layout)

    # the shape attributes bta's vector helpers read
    @property
    def n_blocks(self) -> int:
        return self.layout.plan.n_blocks

    @property
    def block_size(self) -> int:
        return self.layout.block_size

    @property
    def arrow_size(self) -> int:
        return self.layout.arrow_size

    @property
    def n(self) -> int:
        return self.n_blocks * self.block_size + self.arrow_size

    @property
    def dtype(self):
        return self.reduced.dtype

    def __repr__(self):
        plan = self.layout.plan
        return (
            f"DistributedBTACholesky(n_blocks={plan.n_blocks}, block_size={self.block_size}, "
            f"arrow_size={self.arrow_size}, partitions={plan.partitions}, per_partition={plan.per_partition}, "
            f"axis={self.layout.axis!r})"
        )


# ----------------------------------------------------------------------------------------
# partitioned layout of the arrays
# ----------------------------------------------------------------------------------------
def _pad_chain(x, plan: PartitionPlan, fill):
    """Blocks (n_b, ...) -> (P, m, ...): ``fill`` blocks before and after, then split."""
    front = jnp.broadcast_to(fill, (plan.pad_front,) + fill.shape)
    back = jnp.broadcast_to(fill, (plan.pad_back,) + fill.shape)
    return jnp.concatenate([front, x, back]).reshape((plan.partitions, plan.per_partition) + x.shape[1:])


def _partitioned_matrix(Q: BTAMatrix, plan: PartitionPlan):
    """diag (P, m, b, b), lower (P, m, b, b), arrow (P, m, a, b) with decoupled padding.

    ``lower[p, k]`` couples local blocks k+1 and k for k < m−1; ``lower[p, m−1]`` is the
    seam block B between partition p's last block and partition p+1's first (zero for p = P−1).
    """
    b, a = Q.block_size, Q.arrow_size
    dtype = Q.dtype
    diag = _pad_chain(_sym(Q.diag), plan, jnp.eye(b, dtype=dtype))
    # the padded chain's couplings: zero next to padding, then one zero for the last seam
    zeros = jnp.zeros((b, b), dtype)
    lower = jnp.concatenate(
        [jnp.broadcast_to(zeros, (plan.pad_front, b, b)), Q.lower, jnp.broadcast_to(zeros, (plan.pad_back + 1, b, b))]
    ).reshape(plan.partitions, plan.per_partition, b, b)
    arrow = _pad_chain(Q.arrow, plan, jnp.zeros((a, b), dtype))
    return diag, lower, arrow


def _partitioned_vector(x, plan: PartitionPlan, block_size: int):
    """(n, k) in BTA order -> blocks (P, m, b, k) (padding zero) and arrow (a, k)."""
    nbb = plan.n_blocks * block_size
    xb = x[:nbb].reshape(plan.n_blocks, block_size, x.shape[1])
    return _pad_chain(xb, plan, jnp.zeros((block_size, x.shape[1]), x.dtype)), x[nbb:]


def _unpartitioned_vector(xb, xa, plan: PartitionPlan):
    """Blocks (P, m, b, k) and arrow (a, k) -> (n, k), padding dropped."""
    xb = xb.reshape((plan.padded_blocks,) + xb.shape[2:])[plan.pad_front : plan.pad_front + plan.n_blocks]
    return jnp.concatenate([xb.reshape(-1, xb.shape[-1]), xa])


def _shard_map(layout: _Layout, f, in_specs, out_specs):
    return jax.shard_map(f, mesh=layout.mesh, in_specs=in_specs, out_specs=out_specs)


def _local_boundary(x, p):
    """From replicated reduced-system blocks (2P, ...): this partition's (first, last)."""
    pair = lax.dynamic_slice_in_dim(x, 2 * p, 2)
    return pair[0], pair[1]


# ----------------------------------------------------------------------------------------
# factorisation
# ----------------------------------------------------------------------------------------
def _eliminate_interior(diag, lower, arrow, b, axis):
    """One partition (local blocks 0..m−1): factor its interior 1..m−2 with the first block
    as an extra arrow row, and the Schur complement left on its boundary.

    Returns the interior factor (L_i, [M_i; Y_i; F_i]) and the boundary pieces
    (first diag, last diag, lower (last, first), arrow first, arrow last, tip part)."""
    m = diag.shape[0]
    a = arrow.shape[1]
    n_int = m - 2
    # extended arrow rows of the interior: [Q[first, i]; C_i]; Q[first, 1] = B_0ᵀ
    first_rows = jnp.zeros((n_int, b, b), diag.dtype)
    if n_int:
        first_rows = first_rows.at[0].set(lower[0].T)
    ext = jnp.concatenate([first_rows, arrow[1 : m - 1]], axis=1)  # (n_int, b+a, b)

    def step(g_prev, xs):
        a_i, e_i, b_i = xs
        update = g_prev @ g_prev[:b].T  # [M_{i−1}; Y_{i−1}; F_{i−1}] M_{i−1}ᵀ (as bta._factor_scan)
        l_i = lax.linalg.cholesky(a_i - update[:b])
        g_i = _trsm(l_i, jnp.concatenate([b_i, e_i - update[b:]], axis=0), left=False, transpose=True)
        return g_i, (l_i, g_i)

    g0 = lax.pcast(jnp.zeros((2 * b + a, b), diag.dtype), (axis,), to="varying")  # scan carries vary per device
    g_last, (l_int, g_int) = lax.scan(step, g0, (diag[1 : m - 1], ext, lower[1 : m - 1]), unroll=bta._SCAN_UNROLL)
    # Schur complement of the interior on [first; arrow]: − Σ_i [Y_i; F_i][Y_i; F_i]ᵀ
    e = g_int[:, b:]
    schur = -jnp.einsum("ixb,iyb->xy", e, e)
    first_diag = diag[0] + schur[:b, :b]
    first_arrow = arrow[0] + schur[b:, :b]
    tip_part = schur[b:, b:]
    # ... and on the last block, through M_{m−2} (g_last = 0 when there is no interior)
    m_last, y_last, f_last = g_last[:b], g_last[b : 2 * b], g_last[2 * b :]
    last_diag = diag[m - 1] - m_last @ m_last.T
    last_first = (lower[0] if n_int == 0 else jnp.zeros((b, b), diag.dtype)) - m_last @ y_last.T
    last_arrow = arrow[m - 1] - f_last @ m_last.T
    return (l_int, g_int), (first_diag, last_diag, last_first, first_arrow, last_arrow, tip_part)


def _reduced_matrix(gathered, seams, tip):
    """The reduced BTA matrix from the gathered boundary pieces (each (P, ...))."""
    first_diag, last_diag, last_first, first_arrow, last_arrow = gathered
    partitions, b = first_diag.shape[0], first_diag.shape[1]
    a = tip.shape[0]
    diag = jnp.stack([first_diag, last_diag], axis=1).reshape(2 * partitions, b, b)
    lower = jnp.stack([last_first, seams], axis=1).reshape(2 * partitions, b, b)[:-1]
    arrow = jnp.stack([first_arrow, last_arrow], axis=1).reshape(2 * partitions, a, b)
    return BTAMatrix._unchecked(diag, lower, arrow, tip)


def _local_factor(diag, lower, arrow, tip, axis, b):
    """Inside the shard_map, one partition's blocks (m, ...) and the (replicated) tip: its
    interior factor and the factor of the gathered reduced system (replicated)."""
    (l_int, g_int), pieces = _eliminate_interior(diag, lower, arrow, b, axis)
    *boundary, tip_part = pieces
    gathered = [lax.all_gather(x, axis, to="invarying") for x in boundary]
    seams = lax.all_gather(lower[-1], axis, to="invarying")
    reduced = _reduced_matrix(gathered, seams, _sym(tip) + lax.psum(tip_part, axis))
    return l_int[None], g_int[None], bta.cholesky(reduced)


def _cholesky(Q: BTAMatrix, layout: _Layout) -> DistributedBTACholesky:
    plan, axis, b = layout.plan, layout.axis, layout.block_size
    diag, lower, arrow = _partitioned_matrix(Q, plan)

    def local(diag, lower, arrow, tip):
        return _local_factor(diag[0], lower[0], arrow[0], tip, axis, b)

    spec = P(axis)
    l_int, g_int, reduced = _shard_map(layout, local, (spec, spec, spec, P()), (spec, spec, P()))(
        diag, lower, arrow, Q.tip
    )
    return DistributedBTACholesky(l_int, g_int, reduced, layout)


def cholesky(Q: BTAMatrix, mesh: Mesh, axis: str = "time") -> DistributedBTACholesky:
    """The partitioned (permuted) Cholesky factor of Q over the devices of ``mesh``'s ``axis``.

    Args:
        Q: the BTA matrix (replicated arrays).
        mesh: a ``jax.sharding.Mesh``; the blocks are split over its axis ``axis`` (and
            replicated over any other axes).
        axis: the mesh axis name.

    Raises:
        ValueError: ``axis`` is not an axis of ``mesh``.
        TypeError: ``mesh`` is not a Mesh.

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> Q = bta.BTAMatrix(4 * jnp.ones((4, 1, 1)), -jnp.ones((3, 1, 1)), jnp.ones((4, 1, 1)), 5 * jnp.eye(1))
        >>> bool(jnp.allclose(logdet_from_factor(cholesky(Q, mesh)), bta.logdet(Q)))
        True
    """
    return _jit_cholesky(Q, _layout(Q, mesh, axis))


_jit_cholesky = jax.jit(_cholesky, static_argnums=1)


def is_positive_definite_factor(L: DistributedBTACholesky) -> jax.Array:
    """True when every diagonal of the factor is finite and positive."""
    d = jnp.diagonal(L.interior_diag, axis1=-2, axis2=-1)
    return jnp.all(jnp.isfinite(d) & (d > 0)) & bta.is_positive_definite_factor(L.reduced)


@jax.jit
def logdet_from_factor(L: DistributedBTACholesky) -> jax.Array:
    """log|Q| = 2 Σ log diag L_i (interiors, summed over the devices) + log|reduced|;
    −inf when the factorisation failed."""
    layout = L.layout

    def local(l_int):
        d = jnp.diagonal(l_int[0], axis1=-2, axis2=-1)
        return lax.psum(2.0 * jnp.sum(jnp.log(d)), layout.axis)

    interior = _shard_map(layout, local, (P(layout.axis),), P())(L.interior_diag)
    value = interior + bta.logdet_from_factor(L.reduced)
    return jnp.where(is_positive_definite_factor(L), value, -jnp.inf)


def _logdet_value(Q, L):
    return jnp.where(_all_finite(Q), logdet_from_factor(L), jnp.nan)


# ----------------------------------------------------------------------------------------
# solves and sampling
# ----------------------------------------------------------------------------------------
def _back_substitute_interior(l_int, g_int, y_int, x_first, x_last, x_a, b):
    """x_i = L_i⁻ᵀ (y_i − M_iᵀ x_{i+1} − Y_iᵀ x_first − F_iᵀ x_a), i = m−2..1, x_{m−1} = x_last."""
    v = y_int - jnp.einsum("ixb,xk->ibk", g_int[:, b:], jnp.concatenate([x_first, x_a]))

    def step(x_next, xs):
        l_i, g_i, v_i = xs
        x_i = _trsm(l_i, v_i - g_i[:b].T @ x_next, left=True, transpose=True)
        return x_i, x_i

    return lax.scan(step, x_last, (l_int, g_int, v), reverse=True, unroll=bta._SCAN_UNROLL)[1]


def _local_solve(L: DistributedBTACholesky, rb, ra, *, noise: bool):
    """x = Q⁻¹ r (``noise`` False) or x = Πᵀ L'⁻ᵀ Π z (``noise`` True) on partitioned blocks."""
    layout = L.layout
    axis, b, partitions = layout.axis, layout.block_size, layout.plan.partitions

    def local(l_int, g_int, reduced, rb, ra):
        l_int, g_int, rb = l_int[0], g_int[0], rb[0]
        m = rb.shape[0]
        r_int = rb[1 : m - 1]
        if noise:
            y_int, r_first, r_last, r_a = r_int, rb[0], rb[m - 1], ra
        else:
            # forward: y_i = L_i⁻¹ (r_i − M_{i−1} y_{i−1}); boundary and arrow right-hand sides
            # lose the interior's contributions − Σ Y_i y_i, − M_{m−2} y_{m−2}, − Σ F_i y_i
            def step(y_prev, xs):
                l_i, m_prev, r_i = xs
                y_i = _trsm(l_i, r_i - m_prev @ y_prev, left=True)
                return y_i, y_i

            m_prev = jnp.concatenate([jnp.zeros((1, b, b), rb.dtype), g_int[:, :b]])[: m - 2]
            y0 = lax.pcast(jnp.zeros(rb.shape[1:], rb.dtype), (axis,), to="varying")
            y_last, y_int = lax.scan(step, y0, (l_int, m_prev, r_int), unroll=bta._SCAN_UNROLL)
            r_first = rb[0] - jnp.einsum("ixb,ibk->xk", g_int[:, b : 2 * b], y_int)
            m_last = g_int[-1, :b] if m > 2 else jnp.zeros((b, b), rb.dtype)
            r_last = rb[m - 1] - m_last @ y_last
            r_a = ra - lax.psum(jnp.einsum("ixb,ibk->xk", g_int[:, 2 * b :], y_int), axis)
        pairs = lax.all_gather(jnp.stack([r_first, r_last]), axis, to="invarying")  # (P, 2, b, k)
        r_red = jnp.concatenate([pairs.reshape(-1, pairs.shape[-1]), r_a])
        if noise:
            x_red = bta.sample_from_noise(reduced, r_red)
        else:
            x_red = bta.solve_from_factor(reduced, r_red)
        nbb = 2 * partitions * b
        x_blocks, x_a = x_red[:nbb].reshape(2 * partitions, b, -1), x_red[nbb:]
        x_first, x_last = _local_boundary(x_blocks, lax.axis_index(axis))
        x_int = _back_substitute_interior(l_int, g_int, y_int, x_first, x_last, x_a, b)
        return jnp.concatenate([x_first[None], x_int, x_last[None]])[None], x_a

    spec = P(axis)
    return _shard_map(layout, local, (spec, spec, P(), spec, P()), (spec, P()))(
        L.interior_diag, L.interior_panel, L.reduced, rb, ra
    )


def _apply(L: DistributedBTACholesky, rhs, noise: bool):
    _, _, vector = _split(L, rhs)  # validates the shape
    x = _as_matrix(jnp.asarray(rhs))
    rb, ra = _partitioned_vector(x, L.layout.plan, L.block_size)
    xb, xa = _local_solve(L, rb, ra, noise=noise)
    out = _unpartitioned_vector(xb, xa, L.layout.plan)
    return out[:, 0] if vector else out


@jax.jit
def solve_from_factor(L: DistributedBTACholesky, rhs: jax.Array) -> jax.Array:
    """Q⁻¹ rhs (rhs (n,) or (n, k) in BTA order) from the partitioned factor."""
    return _apply(L, rhs, noise=False)


@jax.jit
def sample_from_noise(L: DistributedBTACholesky, z: jax.Array) -> jax.Array:
    """x = Πᵀ L'⁻ᵀ Π z (z (n,) or (n, k) in BTA order): for z ~ N(0, I), x ~ N(0, Q⁻¹)."""
    return _apply(L, z, noise=True)


def sample(Q: BTAMatrix, key: jax.Array, mesh: Mesh, axis: str = "time", n_samples: int = 1) -> jax.Array:
    """``n_samples`` draws from N(0, Q⁻¹), shape (n_samples, n), with the noise z of
    :func:`adelia.engine.bta.sample` (same key: same z; a different, permuted factor).

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> Q = bta.BTAMatrix(4 * jnp.ones((4, 1, 1)), -jnp.ones((3, 1, 1)), jnp.ones((4, 1, 1)), 5 * jnp.eye(1))
        >>> sample(Q, jax.random.key(0), mesh, n_samples=3).shape
        (3, 5)
    """
    return _jit_sample(Q, key, n_samples, _layout(Q, mesh, axis))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _jit_sample(Q, key, n_samples, layout):
    L = _cholesky(Q, layout)
    z = jax.random.normal(key, (L.n, n_samples), dtype=L.dtype)
    return _apply(L, z, noise=True).T


# ----------------------------------------------------------------------------------------
# selected inversion
# ----------------------------------------------------------------------------------------
def _interior_takahashi(l_int, g_int, col_last, sigma_ext, b):
    """Σ on one partition's interior, backward from the last block (Takahashi recursion
    with the extended arrow [first; arrow], whose Σ is ``sigma_ext``).

    ``col_last`` = [Σ_{e,e}; Σ_{t,e}; Σ_{a,e}] for the last block e. Per step i
    (``bta._takahashi_step``, the body of ``bta.selected_inverse_from_factor``, with
    M_i ≠ 0 at the last interior block): P_i = S_{i+1} G_i,
    [Σ_{i+1,i}; Σ_{t,i}; Σ_{a,i}] = −P_i L_i⁻¹, Σ_ii = L_i⁻ᵀ (I + G_iᵀ P_i) L_i⁻¹, where
    S_{i+1} = [[Σ_{i+1,i+1}, Σ_{x,i+1}ᵀ], [Σ_{x,i+1}, Σ_xx]] on (block i+1, x = [t; arrow]).

    Returns Σ_ii, Σ_{i+1,i} and Σ_{a,i} stacked over i = 1..m−2, and Σ_{t,1} (b, b). The fill
    Σ_{t,i} is needed only at i = 1 (it is Σ(0, 1)): read from the last carry S_1 instead of
    stacked, which keeps b² numbers per block off the device's memory."""
    below = col_last[b:]
    s_last = jnp.concatenate(
        [jnp.concatenate([col_last[:b], below.T], axis=1), jnp.concatenate([below, sigma_ext], axis=1)], axis=0
    )

    def step(s_next, xs):
        l_i, g_i = xs
        s_i, s_ii, off = bta._takahashi_step(s_next, l_i, g_i)
        return s_i, (s_ii, off[:b], off[2 * b :])

    s_1, (s_int, off_next, off_arrow) = lax.scan(step, s_last, (l_int, g_int), reverse=True, unroll=bta._SCAN_UNROLL)
    return s_int, off_next, off_arrow, s_1[b : 2 * b, :b]


def _local_selected_inverse(l_int, g_int, reduced, axis, b, m):
    """Inside the shard_map: Σ on one partition's blocks — diag (m, b, b), lower (m, b, b)
    (``lower[m−1]``: the seam to the next partition, zero for the last), arrow (m, a, b) —
    and Σ on the tip (replicated)."""
    s_red = bta.selected_inverse_from_factor(reduced)
    p = lax.axis_index(axis)
    s_first, s_last = _local_boundary(s_red.diag, p)
    a_first, a_last = _local_boundary(s_red.arrow, p)
    seams = jnp.concatenate([s_red.lower, jnp.zeros((1, b, b), s_red.tip.dtype)])
    last_first, seam = _local_boundary(seams, p)  # Σ(e_p, t_p), Σ(t_{p+1}, e_p)
    sigma_ext = jnp.block([[s_first, a_first.T], [a_first, s_red.tip]])
    col_last = jnp.concatenate([s_last, last_first.T, a_last])
    s_int, off_next, off_arrow, sigma_t1 = _interior_takahashi(l_int, g_int, col_last, sigma_ext, b)
    diag = jnp.concatenate([s_first[None], s_int, s_last[None]])
    if m > 2:  # Σ(1, 0) = Σ(t, 1)ᵀ, then Σ(i+1, i) for i = 1..m−2
        lower = jnp.concatenate([sigma_t1.T[None], off_next, seam[None]])
    else:
        lower = jnp.stack([last_first, seam])
    arrow = jnp.concatenate([a_first[None], off_arrow, a_last[None]])
    return diag, lower, arrow, s_red.tip


def _selected_inverse(L: DistributedBTACholesky) -> BTAMatrix:
    layout = L.layout
    axis, b, plan = layout.axis, layout.block_size, layout.plan

    def local(l_int, g_int, reduced):
        diag, lower, arrow, tip = _local_selected_inverse(l_int[0], g_int[0], reduced, axis, b, plan.per_partition)
        return diag[None], lower[None], arrow[None], tip

    spec = P(axis)
    diag, lower, arrow, tip = _shard_map(layout, local, (spec, spec, P()), (spec, spec, spec, P()))(
        L.interior_diag, L.interior_panel, L.reduced
    )
    start, n_b = plan.pad_front, plan.n_blocks

    def cut(x, count):
        return x.reshape((plan.padded_blocks,) + x.shape[2:])[start : start + count]

    return BTAMatrix._unchecked(cut(diag, n_b), cut(lower, n_b - 1), cut(arrow, n_b), tip)


selected_inverse_from_factor = jax.jit(_selected_inverse)
selected_inverse_from_factor.__doc__ = """Σ = Q⁻¹ on the BTA pattern (a replicated BTAMatrix) from the
partitioned factor: the reduced system's selected inverse, then each device's Takahashi
recursion over its interior."""


def selected_inverse(Q: BTAMatrix, mesh: Mesh, axis: str = "time") -> BTAMatrix:
    """Q⁻¹ on the BTA pattern, computed over the devices of ``mesh``'s ``axis``
    (as :func:`adelia.engine.bta.selected_inverse`; differentiable by AD).

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> Q = bta.BTAMatrix(4 * jnp.ones((4, 1, 1)), -jnp.ones((3, 1, 1)), jnp.ones((4, 1, 1)), 5 * jnp.eye(1))
        >>> bool(jnp.allclose(selected_inverse(Q, mesh).diag, bta.selected_inverse(Q).diag))
        True
    """
    return _jit_selected_inverse(Q, _layout(Q, mesh, axis))


@functools.partial(jax.jit, static_argnums=1)
def _jit_selected_inverse(Q, layout):
    return _selected_inverse(_cholesky(Q, layout))


# ----------------------------------------------------------------------------------------
# differentiable kernels (custom VJPs, as in bta.py)
# ----------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _logdet(layout, Q):
    return _logdet_value(Q, _cholesky(Q, layout))


def _logdet_fwd(layout, Q):
    L = _cholesky(Q, layout)
    return _logdet_value(Q, L), L


def _logdet_bwd(layout, L, g):
    # d log|Q| = tr(Q⁻¹ dQ): Q⁻¹ on the pattern only -> the distributed selected inversion
    return (_scaled_pattern_inverse(_selected_inverse(L), g),)


_logdet.defvjp(_logdet_fwd, _logdet_bwd)


def logdet(Q: BTAMatrix, mesh: Mesh, axis: str = "time") -> jax.Array:
    """log|Q| over the devices of ``mesh``'s ``axis``; −inf when not positive definite,
    NaN when Q holds NaN/inf. VJP: ḡ·Σ on the pattern (distributed selected inversion).

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> Q = bta.BTAMatrix(4 * jnp.ones((4, 1, 1)), -jnp.ones((3, 1, 1)), jnp.ones((4, 1, 1)), 5 * jnp.eye(1))
        >>> bool(jnp.allclose(jax.grad(logdet)(Q, mesh).diag, jax.grad(bta.logdet)(Q).diag))
        True
    """
    return _jit_logdet(_layout(Q, mesh, axis), Q)


_jit_logdet = jax.jit(_logdet, static_argnums=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _solve(layout, Q, rhs):
    return _apply(_cholesky(Q, layout), rhs, noise=False)


def _solve_fwd(layout, Q, rhs):
    L = _cholesky(Q, layout)
    x = _apply(L, rhs, noise=False)
    return x, (L, x)


def _solve_bwd(layout, res, x_bar):
    # x = Q⁻¹ r, dx = Q⁻¹ (dr − dQ x):  r̄ = Q⁻¹ x̄,  Q̄ = −r̄ xᵀ on the pattern
    L, x = res
    r_bar = _apply(L, x_bar, noise=False)
    return _symmetric_outer(-_as_matrix(r_bar), _as_matrix(x), L), r_bar


_solve.defvjp(_solve_fwd, _solve_bwd)


def solve(Q: BTAMatrix, rhs: jax.Array, mesh: Mesh, axis: str = "time") -> jax.Array:
    """Q⁻¹ rhs (rhs (n,) or (n, k) in BTA order) over the devices of ``mesh``'s ``axis``;
    differentiable in Q and rhs (r̄ = Q⁻¹ x̄, Q̄ = −r̄ xᵀ on the pattern).

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> Q = bta.BTAMatrix(4 * jnp.ones((4, 1, 1)), -jnp.ones((3, 1, 1)), jnp.ones((4, 1, 1)), 5 * jnp.eye(1))
        >>> bool(jnp.allclose(Q.matvec(solve(Q, jnp.ones(5), mesh)), 1.0))
        True
    """
    return _jit_solve(_layout(Q, mesh, axis), Q, rhs)


_jit_solve = jax.jit(_solve, static_argnums=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _logdet_and_solve(layout, Q, rhs):
    L = _cholesky(Q, layout)
    return _logdet_value(Q, L), _apply(L, rhs, noise=False)


def _logdet_and_solve_fwd(layout, Q, rhs):
    Q, rhs = jax.tree_util.tree_map(lambda p: p.value, (Q, rhs))
    L = _cholesky(Q, layout)
    x = _apply(L, rhs, noise=False)
    return (_logdet_value(Q, L), x), (L, x)


def _logdet_and_solve_bwd(layout, res, cotangents):
    # Q̄ = ḡ Σ|pattern − r̄ xᵀ|pattern, r̄ = Q⁻¹ x̄; each part only when its cotangent is used
    L, x = res
    g, x_bar = cotangents
    q_bar = None
    r_bar = jnp.zeros_like(x)
    if not isinstance(x_bar, SymbolicZero):
        r_bar = _apply(L, x_bar, noise=False)
        q_bar = _symmetric_outer(-_as_matrix(r_bar), _as_matrix(x), L)
    if not isinstance(g, SymbolicZero):
        q_g = _scaled_pattern_inverse(_selected_inverse(L), g)
        q_bar = q_g if q_bar is None else _add(q_bar, q_g)
    if q_bar is None:
        n_b, b, a = L.n_blocks, L.block_size, L.arrow_size
        zeros = (jnp.zeros(s, x.dtype) for s in ((n_b, b, b), (n_b - 1, b, b), (n_b, a, b), (a, a)))
        q_bar = BTAMatrix._unchecked(*zeros)
    return q_bar, r_bar


_logdet_and_solve.defvjp(_logdet_and_solve_fwd, _logdet_and_solve_bwd, symbolic_zeros=True)


def logdet_and_solve(Q: BTAMatrix, rhs: jax.Array, mesh: Mesh, axis: str = "time") -> tuple[jax.Array, jax.Array]:
    """(log|Q|, Q⁻¹ rhs) from one distributed factorisation, jointly differentiable (the
    selected inversion runs only when the log-determinant's cotangent is used)."""
    return _jit_logdet_and_solve(_layout(Q, mesh, axis), Q, rhs)


_jit_logdet_and_solve = jax.jit(_logdet_and_solve, static_argnums=0)


# ----------------------------------------------------------------------------------------
# kernels on the values of a sparse pattern: every device assembles only its own blocks
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PatternScatter:
    """Host-side, static: how the values (nnz,) of a sparse pattern fill the four block
    arrays of a BTA matrix (as :meth:`adelia.engine.bta_solver.BTASolver.bta_matrix`).

    Each of ``diag``, ``lower``, ``arrow``, ``tip`` is a pair (src, flat): value ``src[k]``
    is written at flat position ``flat[k]`` of the array (diag (n_b·b·b), lower
    ((n_b−1)·b·b), arrow (n_b·a·b), tip (a·a)); for ``diag`` and ``tip`` the first
    ``diag_once`` / ``tip_once`` pairs are the lower-triangle entries, the rest their mirrors
    (c, r). ``pad_diag`` / ``pad_tip``: flat positions of padding unknowns (unit diagonal).
    Compared by identity (a jit cache key): build it once per pattern."""

    nnz: int
    n_blocks: int
    block_size: int
    arrow_size: int
    diag: tuple
    lower: tuple
    arrow: tuple
    tip: tuple
    diag_once: int
    tip_once: int
    pad_diag: object
    pad_tip: object


@dataclass(frozen=True, eq=False)
class _PartitionMaps:
    """The maps of a :class:`PatternScatter` cut per partition, each (P, L) int32, padded
    with (src = nnz: an appended zero, flat = the partition's array size: a dropped slot).
    Flat positions are into the partition's diag (m·b·b), lower (m·b·b; ``lower[m−1]`` the
    seam) and arrow (m·a·b); ``unit``: unit diagonals (padding unknowns and padding blocks);
    ``diag_once``: the lower-triangle diag entries only (read-out of Σ on the pattern)."""

    diag: tuple
    diag_once: tuple
    lower: tuple
    arrow: tuple
    unit: np.ndarray


@functools.lru_cache(maxsize=32)
def _partition_maps(scatter: PatternScatter, plan: PartitionPlan) -> _PartitionMaps:
    b, a, m, parts = scatter.block_size, scatter.arrow_size, plan.per_partition, plan.partitions

    def cut(src, flat, block, dummy_src):
        """Global (src, flat) of blocks of ``block`` numbers -> per partition, padded."""
        src, flat = np.asarray(src, np.int64), np.asarray(flat, np.int64)
        local_block = flat // block + plan.pad_front  # index in the padded chain
        owner, k = local_block // m, local_block % m
        rows = [(src[owner == p], k[owner == p] * block + flat[owner == p] % block) for p in range(parts)]
        width = max([r[0].size for r in rows] + [1])
        out_src = np.full((parts, width), dummy_src, np.int32)
        out_flat = np.full((parts, width), m * block, np.int32)
        for p, (s, f) in enumerate(rows):
            out_src[p, : s.size], out_flat[p, : f.size] = s, f
        return out_src, out_flat

    nnz = scatter.nnz
    diag = cut(*scatter.diag, b * b, nnz)
    diag_once = cut(scatter.diag[0][: scatter.diag_once], scatter.diag[1][: scatter.diag_once], b * b, nnz)
    lower = cut(*scatter.lower, b * b, nnz)
    arrow = cut(*scatter.arrow, a * b, nnz)
    # unit diagonals: padding unknowns inside the blocks, then every entry of the padding blocks
    pad_blocks = np.r_[0 : plan.pad_front, plan.pad_front + plan.n_blocks : plan.padded_blocks]
    chain = (pad_blocks[:, None] - plan.pad_front) * b * b + np.arange(b) * (b + 1)
    positions = np.concatenate([np.asarray(scatter.pad_diag, np.int64), chain.reshape(-1)])
    _, unit = cut(np.zeros(positions.size, np.int64), positions, b * b, nnz)
    return _PartitionMaps(diag, diag_once, lower, arrow, unit)


def _values_layout(scatter: PatternScatter, mesh: Mesh, axis: str):
    if not isinstance(mesh, Mesh):
        raise TypeError(f"distributed BTA: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if axis not in mesh.axis_names:
        raise ValueError(f"distributed BTA: axis {axis!r} is not an axis of the mesh; its axes are {tuple(mesh.axis_names)}")
    plan = partition_plan(scatter.n_blocks, mesh.shape[axis])
    layout = _Layout(partition_mesh(mesh, axis, plan.partitions), axis, plan, scatter.block_size, scatter.arrow_size)
    return layout, _partition_maps(scatter, plan)


def _map_arrays(maps: _PartitionMaps):
    """The partition maps in the order the shard_maps take them (sharded over the axis)."""
    return (*maps.diag, *maps.lower, *maps.arrow, maps.unit)


def _tip(values, scatter: PatternScatter):
    """The tip block (a, a) from the values (replicated: a² numbers)."""
    a, dtype = scatter.arrow_size, values.dtype
    src, flat = scatter.tip
    tip = jnp.zeros(a * a, dtype).at[flat].set(values[src]).at[np.asarray(scatter.pad_tip)].set(1.0)
    return tip.reshape(a, a)


def _assemble_local(values, m, b, a, diag_src, diag_flat, lower_src, lower_flat, arrow_src, arrow_flat, unit):
    """Inside the shard_map: this partition's diag (m, b, b), lower (m, b, b), arrow (m, a, b)
    from the (replicated) values, through the partition's maps (each (1, L))."""
    ext = jnp.concatenate([values, jnp.zeros(1, values.dtype)])  # the padding maps read ext[nnz] = 0

    def fill(size, src, flat):
        # distinct positions but the out-of-range `size` of the padding entries (dropped)
        if not size:
            return jnp.zeros(0, values.dtype)
        return jnp.zeros(size, values.dtype).at[flat[0]].add(ext[src[0]], mode="drop")

    diag = fill(m * b * b, diag_src, diag_flat).at[unit[0]].add(1.0, mode="drop")
    lower = fill(m * b * b, lower_src, lower_flat)
    arrow = fill(m * a * b, arrow_src, arrow_flat)
    return diag.reshape(m, b, b), lower.reshape(m, b, b), arrow.reshape(m, a, b)


def _read_local(nnz, blocks_and_maps):
    """Inside the shard_map: Σ_k block_flat[flat[k]] added at src[k], (nnz,) on this
    partition's entries (zero elsewhere; a ``psum`` over the axis completes it)."""
    out = jnp.zeros(nnz, blocks_and_maps[0][0].dtype)
    for block, src, flat in blocks_and_maps:
        if block.size:  # (no arrow: its maps hold padding entries only)
            entries = block.reshape(-1).at[flat[0]].get(mode="fill", fill_value=0)  # padding entries read 0
            out = out.at[src[0]].add(entries, mode="drop")
    return out


def _cholesky_values(values, scatter: PatternScatter, layout: _Layout, maps: _PartitionMaps):
    axis, b, a, m = layout.axis, layout.block_size, layout.arrow_size, layout.plan.per_partition

    def local(values, tip, *map_arrays):
        diag, lower, arrow = _assemble_local(values, m, b, a, *map_arrays)
        return _local_factor(diag, lower, arrow, tip, axis, b)

    spec = P(axis)
    l_int, g_int, reduced = _shard_map(layout, local, (P(), P()) + (spec,) * 7, (spec, spec, P()))(
        values, _tip(values, scatter), *_map_arrays(maps)
    )
    return DistributedBTACholesky(l_int, g_int, reduced, layout)


def _logdet_value_values(values, L):
    return jnp.where(jnp.all(jnp.isfinite(values)), logdet_from_factor(L), jnp.nan)


def _values_cotangent(scatter, layout, maps, L, g, u, v):
    """The values' cotangent for Q̄ = ḡ·Σ|pattern + u vᵀ|pattern (either part may be None),
    with bta's symmetric counting (``_scaled_pattern_inverse``, ``_symmetric_outer``) and the
    scatter's (an off-diagonal value gets its (i, j) and (j, i) cotangents): each device
    forms Q̄ on its own blocks only and reads its entries out; a ``psum`` (nnz numbers)
    joins them. ``u``, ``v``: (n, k) in BTA order."""
    axis, b, a, plan = layout.axis, layout.block_size, layout.arrow_size, layout.plan
    m, nnz = plan.per_partition, scatter.nnz
    spec = P(axis)
    args, specs = [L.interior_diag, L.interior_panel, L.reduced], [spec, spec, P()]
    if u is not None:
        (ub, ua), (vb, va) = (_partitioned_vector(_as_matrix(x), plan, b) for x in (u, v))
        # each partition's seam block couples its last block with the next partition's first
        u_next, v_next = (jnp.concatenate([x[1:, 0], jnp.zeros_like(x[:1, 0])]) for x in (ub, vb))
        args += [ub, vb, u_next, v_next, ua, va]
        specs += [spec] * 4 + [P(), P()]
    args += [g if g is not None else jnp.zeros((), L.dtype), *maps.diag, *maps.lower, *maps.arrow]
    specs += [P()] + [spec] * 6

    def local(l_int, g_int, reduced, *rest):
        q_diag = q_lower = q_arrow = q_tip = 0.0
        if u is not None:
            ub, vb, u_next, v_next, ua, va, *rest = rest
            ub, vb = ub[0], vb[0]
            u_up, v_up = (jnp.concatenate([x[1:], nxt]) for x, nxt in ((ub, u_next), (vb, v_next)))
            q_diag = _sym(jnp.einsum("ibk,ick->ibc", ub, vb))
            q_lower = jnp.einsum("ibk,ick->ibc", u_up, vb) + jnp.einsum("ibk,ick->ibc", v_up, ub)
            q_arrow = jnp.einsum("ak,ibk->iab", ua, vb) + jnp.einsum("ak,ibk->iab", va, ub)
            q_tip = _sym(ua @ va.T)
        g_value, d_src, d_flat, l_src, l_flat, a_src, a_flat = rest
        if g is not None:
            s_diag, s_lower, s_arrow, s_tip = _local_selected_inverse(l_int[0], g_int[0], reduced, axis, b, m)
            q_diag = q_diag + g_value * s_diag
            q_lower = q_lower + 2.0 * g_value * s_lower
            q_arrow = q_arrow + 2.0 * g_value * s_arrow
            q_tip = q_tip + g_value * s_tip
        blocks = [(q_diag, d_src, d_flat), (q_lower, l_src, l_flat), (q_arrow, a_src, a_flat)]
        return lax.psum(_read_local(nnz, blocks), axis), q_tip

    values_bar, tip_bar = _shard_map(layout, local, tuple(specs), (P(), P()))(*args)
    src, flat = scatter.tip
    return values_bar.at[src].add(jnp.reshape(tip_bar, -1)[flat])


def _zero_cotangent(scatter, dtype):
    return jnp.zeros(scatter.nnz, dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _logdet_values(scatter, layout, maps, values):
    return _logdet_value_values(values, _cholesky_values(values, scatter, layout, maps))


def _logdet_values_fwd(scatter, layout, maps, values):
    L = _cholesky_values(values, scatter, layout, maps)
    return _logdet_value_values(values, L), L


def _logdet_values_bwd(scatter, layout, maps, L, g):
    # d log|Q| = tr(Q⁻¹ dQ): Σ on the pattern, each device on its own blocks
    return (_values_cotangent(scatter, layout, maps, L, g, None, None),)


_logdet_values.defvjp(_logdet_values_fwd, _logdet_values_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _solve_values(scatter, layout, maps, values, rhs):
    return _apply(_cholesky_values(values, scatter, layout, maps), rhs, noise=False)


def _solve_values_fwd(scatter, layout, maps, values, rhs):
    L = _cholesky_values(values, scatter, layout, maps)
    x = _apply(L, rhs, noise=False)
    return x, (L, x)


def _solve_values_bwd(scatter, layout, maps, res, x_bar):
    # x = Q⁻¹ r, dx = Q⁻¹ (dr − dQ x):  r̄ = Q⁻¹ x̄,  Q̄ = −r̄ xᵀ on the pattern
    L, x = res
    r_bar = _apply(L, x_bar, noise=False)
    return _values_cotangent(scatter, layout, maps, L, None, -_as_matrix(r_bar), _as_matrix(x)), r_bar


_solve_values.defvjp(_solve_values_fwd, _solve_values_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _logdet_and_solve_values(scatter, layout, maps, values, rhs):
    L = _cholesky_values(values, scatter, layout, maps)
    return _logdet_value_values(values, L), _apply(L, rhs, noise=False)


def _logdet_and_solve_values_fwd(scatter, layout, maps, values, rhs):
    values, rhs = values.value, rhs.value
    L = _cholesky_values(values, scatter, layout, maps)
    x = _apply(L, rhs, noise=False)
    return (_logdet_value_values(values, L), x), (L, x)


def _logdet_and_solve_values_bwd(scatter, layout, maps, res, cotangents):
    # Q̄ = −r̄ xᵀ|pattern + ḡ Σ|pattern, r̄ = Q⁻¹ x̄; each part only when its cotangent is used
    L, x = res
    g, x_bar = cotangents
    g = None if isinstance(g, SymbolicZero) else g
    r_bar, u, v = jnp.zeros_like(x), None, None
    if not isinstance(x_bar, SymbolicZero):
        r_bar = _apply(L, x_bar, noise=False)
        u, v = -_as_matrix(r_bar), _as_matrix(x)
    if g is None and u is None:
        return _zero_cotangent(scatter, x.dtype), r_bar
    return _values_cotangent(scatter, layout, maps, L, g, u, v), r_bar


_logdet_and_solve_values.defvjp(_logdet_and_solve_values_fwd, _logdet_and_solve_values_bwd, symbolic_zeros=True)


def _selected_inverse_values(scatter, layout, maps, values):
    L = _cholesky_values(values, scatter, layout, maps)
    axis, b, m, nnz = layout.axis, layout.block_size, layout.plan.per_partition, scatter.nnz

    def local(l_int, g_int, reduced, l_src, l_flat, a_src, a_flat, d_src, d_flat):
        s_diag, s_lower, s_arrow, s_tip = _local_selected_inverse(l_int[0], g_int[0], reduced, axis, b, m)
        blocks = [(s_diag, d_src, d_flat), (s_lower, l_src, l_flat), (s_arrow, a_src, a_flat)]
        return lax.psum(_read_local(nnz, blocks), axis), s_tip

    spec = P(axis)
    out, tip = _shard_map(layout, local, (spec, spec, P()) + (spec,) * 6, (P(), P()))(
        L.interior_diag, L.interior_panel, L.reduced, *maps.lower, *maps.arrow, *maps.diag_once
    )
    src, flat = scatter.tip
    once = scatter.tip_once
    return out.at[src[:once]].set(jnp.reshape(tip, -1)[flat[:once]])


def _sample_values(scatter, layout, maps, values, key, n_samples):
    L = _cholesky_values(values, scatter, layout, maps)
    z = jax.random.normal(key, (L.n, n_samples), dtype=L.dtype)
    return _apply(L, z, noise=True).T


_jit_values = {
    name: jax.jit(f, static_argnums=(0, 1, 2) + ((5,) if name == "sample" else ()))
    for name, f in (("logdet", _logdet_values), ("solve", _solve_values), ("logdet_and_solve", _logdet_and_solve_values),
                    ("selected_inverse", _selected_inverse_values), ("sample", _sample_values))
}


def _check_values(values, scatter: PatternScatter):
    values = jnp.asarray(values)
    if values.shape != (scatter.nnz,):
        raise ValueError(f"values must have shape (nnz,) = ({scatter.nnz},), got {values.shape}")
    return values


def logdet_values(values, scatter: PatternScatter, mesh: Mesh, axis: str = "time") -> jax.Array:
    """log|Q| for Q given by its pattern ``values`` (nnz,) and ``scatter`` (as :func:`logdet`
    of the assembled BTA matrix), each device assembling only its partition's blocks: the
    per-device memory holds m = ⌈n_b/P⌉ blocks, not n_b. VJP: the values' cotangent
    ḡ·Σ on the pattern, formed per partition and joined by a ``psum`` of nnz numbers.

    Example:
        >>> import numpy as np; from jax.sharding import Mesh
        >>> mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
        >>> s = PatternScatter(2, 2, 1, 0, (np.array([0, 1]), np.array([0, 1])), (np.array([], int), np.array([], int)),
        ...                    (np.array([], int), np.array([], int)), (np.array([], int), np.array([], int)), 2, 0,
        ...                    np.array([], int), np.array([], int))
        >>> float(logdet_values(jnp.array([2.0, 3.0]), s, mesh))  # log 6
        1.791759469228055
    """
    layout, maps = _values_layout(scatter, mesh, axis)
    return _jit_values["logdet"](scatter, layout, maps, _check_values(values, scatter))


def solve_values(values, rhs, scatter: PatternScatter, mesh: Mesh, axis: str = "time") -> jax.Array:
    """Q⁻¹ rhs (rhs (n,) or (n, k) in BTA order) for Q given by its pattern values (see
    :func:`logdet_values`); differentiable in the values and rhs."""
    layout, maps = _values_layout(scatter, mesh, axis)
    return _jit_values["solve"](scatter, layout, maps, _check_values(values, scatter), rhs)


def logdet_and_solve_values(values, rhs, scatter: PatternScatter, mesh: Mesh, axis: str = "time"):
    """(log|Q|, Q⁻¹ rhs) from one distributed factorisation of Q given by its pattern values
    (see :func:`logdet_values`), jointly differentiable."""
    layout, maps = _values_layout(scatter, mesh, axis)
    return _jit_values["logdet_and_solve"](scatter, layout, maps, _check_values(values, scatter), rhs)


def selected_inverse_values(values, scatter: PatternScatter, mesh: Mesh, axis: str = "time") -> jax.Array:
    """Σ = Q⁻¹ on the pattern, (nnz,) in the order of the values (each device reads out its
    own blocks; a ``psum`` joins them); differentiable by AD."""
    layout, maps = _values_layout(scatter, mesh, axis)
    return _jit_values["selected_inverse"](scatter, layout, maps, _check_values(values, scatter))


def sample_values(values, key, scatter: PatternScatter, mesh: Mesh, axis: str = "time", n_samples: int = 1):
    """``n_samples`` draws from N(0, Q⁻¹) in BTA order, shape (n_samples, n), as :func:`sample`."""
    layout, maps = _values_layout(scatter, mesh, axis)
    return _jit_values["sample"](scatter, layout, maps, _check_values(values, scatter), key, int(n_samples))
