"""Block-tridiagonal-with-arrowhead (BTA) matrices and their differentiable kernels.

A symmetric BTA matrix orders its n = n_b·b + a unknowns as n_b diagonal blocks of size b
(time slices of a space-time field, or bands of an RCM-ordered sparse matrix) followed by
an arrow of size a (fixed effects, small dense components)::

        ┌ A₀  B₀ᵀ             C₀ᵀ ┐      A_i = diag[i]    (b, b)  symmetric
        │ B₀  A₁  B₁ᵀ         C₁ᵀ │      B_i = lower[i]   (b, b)  block (i+1, i)
    Q = │     B₁  A₂  ⋱       ⋮   │      C_i = arrow[i]   (a, b)  block (arrow, i)
        │          ⋱  ⋱       ⋮   │      T   = tip        (a, a)  symmetric
        └ C₀  C₁  …  C_{n_b-1} T  ┘

Its Cholesky factor Q = L Lᵀ keeps the pattern (no fill outside it)::

    L_i    = chol(A_i − M_{i−1} M_{i−1}ᵀ)                  diag factor (lower triangular)
    M_i    = B_i L_i⁻ᵀ                                       factor block (i+1, i)
    F_i    = (C_i − F_{i−1} M_{i−1}ᵀ) L_i⁻ᵀ                  factor block (arrow, i)
    L_T    = chol(T − Σ_i F_i F_iᵀ)                           tip factor

one ``lax.scan`` over the blocks, each step a b×b Cholesky, one triangular solve of the
(b+a)×b panel [B_i; Ĉ_i] and one matmul (Petersen & Li; Gaedke-Merzhäuser et al. 2024,
"Serinv"). Everything else reuses the factor:

* ``logdet``  : 2 Σ log diag L_i + 2 Σ log diag L_T.
* ``solve``   : forward then backward block substitution (two scans).
* ``sample``  : x = L⁻ᵀ z, z ~ N(0, I), so Cov x = L⁻ᵀ L⁻¹ = Q⁻¹ (one scan).
* ``selected_inverse`` : Σ = Q⁻¹ on the BTA pattern by the block Takahashi recursion
  (Takahashi et al. 1973; Rue & Martino 2007), backward over the blocks from Σ_T.

Reverse-mode derivatives use structured VJPs (DESIGN.md §3), never AD through the scan:

    d log|Q| = tr(Q⁻¹ dQ)                 ->  Q̄ = ḡ·Σ on the pattern (selected inverse)
    d (Q⁻¹ r) = Q⁻¹ (dr − dQ Q⁻¹ r)        ->  r̄ = Q⁻¹ x̄,  Q̄ = −r̄ xᵀ on the pattern

so a gradient costs one factorisation plus one selected inversion (or one more solve),
and the backward pass stores only the factor (and x): memory O(n_b·b²).

Conventions:

* **Symmetric blocks.** ``diag`` blocks and ``tip`` are read through their symmetric part
  ½(A + Aᵀ) (``to_dense`` does the same), so the gradient with respect to them is
  symmetric. ``lower`` and ``arrow`` blocks each stand for two entries of Q, (i+1, i) and
  (i, i+1): their cotangents count both, e.g. lower̄_i = 2ḡ Σ_{i+1,i} for ``logdet``.
  This is exactly what plain AD through ``to_dense()`` and a dense log-determinant gives.
* **Not positive definite.** The Cholesky factor of a failed block is NaN and NaN
  propagates to every later block (XLA's Cholesky returns NaN on failure on CPU and GPU).
  ``logdet`` then returns ``-inf`` (NaN only when Q itself holds NaN/inf: "NaN in, NaN
  out", as the dense backend), ``is_positive_definite`` returns False, ``first_failed_block``
  names the block, ``solve`` / ``sample`` / ``selected_inverse`` return NaN and gradients are
  NaN. Under ``jit`` a value is all that can be returned; on concrete values the
  :class:`~adelia.engine.bta_solver.BTASolver` wrapper raises
  :class:`adelia.errors.NotPositiveDefiniteError` from the operations whose output would
  otherwise be silently NaN (see its docstring).
* Vectors are ordered blocks first (block 0 … n_b−1), arrow last; ``rhs`` may be (n,) or
  (n, k).

Example:
    >>> import jax, jax.numpy as jnp
    >>> eye = jnp.broadcast_to(4.0 * jnp.eye(3), (5, 3, 3))
    >>> Q = BTAMatrix(eye, -jnp.ones((4, 3, 3)) * 0.5, 0.1 * jnp.ones((5, 2, 3)), 3.0 * jnp.eye(2))
    >>> bool(jnp.allclose(logdet(Q), jnp.linalg.slogdet(Q.to_dense())[1]))
    True
    >>> g = jax.grad(logdet)(Q)          # a BTAMatrix of cotangents, same shapes as Q
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "BTAMatrix",
    "BTACholesky",
    "cholesky",
    "logdet",
    "logdet_plain_ad",
    "logdet_from_factor",
    "solve",
    "solve_from_factor",
    "logdet_and_solve",
    "selected_inverse",
    "selected_inverse_from_factor",
    "sample",
    "sample_from_factor",
    "sample_from_noise",
    "is_positive_definite",
    "is_positive_definite_factor",
    "first_failed_block",
]


# ----------------------------------------------------------------------------------------
# containers
# ----------------------------------------------------------------------------------------
class _BTABlocks:
    """Four block arrays in BTA layout (shared by the matrix and its Cholesky factor)."""

    __slots__ = ("diag", "lower", "arrow", "tip")

    def __init__(self, diag, lower, arrow, tip):
        diag, lower, arrow, tip = (jnp.asarray(x) for x in (diag, lower, arrow, tip))
        _check_shapes(type(self).__name__, diag, lower, arrow, tip)
        self._set(diag, lower, arrow, tip)

    def _set(self, diag, lower, arrow, tip):
        object.__setattr__(self, "diag", diag)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "arrow", arrow)
        object.__setattr__(self, "tip", tip)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    @classmethod
    def _unchecked(cls, diag, lower, arrow, tip):
        """Build without validation (JAX tree unflattening may pass non-array leaves)."""
        obj = object.__new__(cls)
        obj._set(diag, lower, arrow, tip)
        return obj

    # pytree protocol: the four arrays are the leaves, no static data
    def tree_flatten(self):
        return (self.diag, self.lower, self.arrow, self.tip), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls._unchecked(*children)

    @property
    def n_blocks(self) -> int:
        return self.diag.shape[0]

    @property
    def block_size(self) -> int:
        return self.diag.shape[1]

    @property
    def arrow_size(self) -> int:
        return self.tip.shape[0]

    @property
    def n(self) -> int:
        return self.n_blocks * self.block_size + self.arrow_size

    @property
    def dtype(self):
        return self.diag.dtype

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_blocks={self.n_blocks}, block_size={self.block_size}, "
            f"arrow_size={self.arrow_size}, dtype={self.diag.dtype})"
        )

    def _dense(self, diag, upper: bool):
        """Dense (n, n) array from block arrays; ``upper`` mirrors off-diagonal blocks."""
        n_b, b, a = self.n_blocks, self.block_size, self.arrow_size
        nbb = n_b * b
        idx = jnp.arange(n_b)
        blocks = jnp.zeros((n_b, b, n_b, b), dtype=diag.dtype)
        blocks = blocks.at[idx, :, idx, :].set(diag)
        if n_b > 1:
            blocks = blocks.at[idx[1:], :, idx[:-1], :].set(self.lower)
            if upper:
                blocks = blocks.at[idx[:-1], :, idx[1:], :].set(jnp.swapaxes(self.lower, 1, 2))
        out = jnp.zeros((self.n, self.n), dtype=diag.dtype)
        out = out.at[:nbb, :nbb].set(blocks.reshape(nbb, nbb))
        arrow_rows = jnp.transpose(self.arrow, (1, 0, 2)).reshape(a, nbb)
        out = out.at[nbb:, :nbb].set(arrow_rows)
        if upper:
            out = out.at[:nbb, nbb:].set(arrow_rows.T)
        return out


def _check_shapes(name, diag, lower, arrow, tip):
    """ValueError naming every shape when the four arrays do not form a BTA layout."""
    shapes = f"diag {diag.shape}, lower {lower.shape}, arrow {arrow.shape}, tip {tip.shape}"
    if diag.ndim != 3 or diag.shape[1] != diag.shape[2] or diag.shape[0] < 1 or diag.shape[1] < 1:
        raise ValueError(
            f"{name}: diag must have shape (n_blocks, b, b) with n_blocks >= 1 and b >= 1; got {shapes}"
        )
    n_b, b = diag.shape[0], diag.shape[1]
    if tip.ndim != 2 or tip.shape[0] != tip.shape[1]:
        raise ValueError(f"{name}: tip must have shape (a, a) (a may be 0); got {shapes}")
    a = tip.shape[0]
    if lower.shape != (n_b - 1, b, b):
        raise ValueError(f"{name}: lower must have shape (n_blocks-1, b, b) = {(n_b - 1, b, b)}; got {shapes}")
    if arrow.shape != (n_b, a, b):
        raise ValueError(f"{name}: arrow must have shape (n_blocks, a, b) = {(n_b, a, b)}; got {shapes}")


@jax.tree_util.register_pytree_node_class
class BTAMatrix(_BTABlocks):
    """A symmetric block-tridiagonal-with-arrowhead matrix (a JAX pytree).

    Args:
        diag:  (n_b, b, b) diagonal blocks A_i (read through their symmetric part).
        lower: (n_b−1, b, b) sub-diagonal blocks B_i = Q[block i+1, block i].
        arrow: (n_b, a, b) arrow blocks C_i = Q[arrow, block i].
        tip:   (a, a) arrow tip T (symmetric part); a may be 0.

    Raises:
        ValueError: naming all four shapes when they do not fit together.

    Example:
        >>> Q = BTAMatrix(jnp.ones((2, 1, 1)) * 2, -jnp.ones((1, 1, 1)), jnp.zeros((2, 0, 1)), jnp.zeros((0, 0)))
        >>> Q.to_dense().tolist()
        [[2.0, -1.0], [-1.0, 2.0]]
    """

    __slots__ = ()

    def to_dense(self) -> jax.Array:
        """The dense symmetric (n, n) matrix (differentiable; the test oracle)."""
        return _matrix_to_dense(self)

    @classmethod
    def from_dense(cls, matrix, n_blocks: int, block_size: int) -> "BTAMatrix":
        """The BTA blocks of a dense symmetric matrix (entries outside the pattern dropped)."""
        matrix = jnp.asarray(matrix)
        nbb = n_blocks * block_size
        a = matrix.shape[0] - nbb
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or a < 0:
            raise ValueError(
                f"from_dense: need a square matrix of size >= n_blocks*block_size = {nbb}, got {matrix.shape}"
            )
        blocks = matrix[:nbb, :nbb].reshape(n_blocks, block_size, n_blocks, block_size)
        idx = jnp.arange(n_blocks)
        diag = blocks[idx, :, idx, :]
        lower = blocks[idx[1:], :, idx[:-1], :]
        arrow = jnp.transpose(matrix[nbb:, :nbb].reshape(a, n_blocks, block_size), (1, 0, 2))
        return cls(diag, lower, arrow, matrix[nbb:, nbb:])

    def matvec(self, x: jax.Array) -> jax.Array:
        """Q x for x of shape (n,) or (n, k), with batched block products (no dense Q)."""
        xb, xa, vector = _split(self, x)
        diag, tip = _sym(self.diag), _sym(self.tip)
        yb = jnp.einsum("ibc,ick->ibk", diag, xb) + jnp.einsum("iab,iak->ibk", self.arrow, xa[None])
        if self.n_blocks > 1:
            yb = yb.at[1:].add(jnp.einsum("ibc,ick->ibk", self.lower, xb[:-1]))
            yb = yb.at[:-1].add(jnp.einsum("icb,ick->ibk", self.lower, xb[1:]))
        ya = jnp.einsum("iab,ibk->ak", self.arrow, xb) + tip @ xa
        return _join(yb, ya, vector)


@jax.tree_util.register_pytree_node_class
class BTACholesky(_BTABlocks):
    """The Cholesky factor L (Q = L Lᵀ) of a :class:`BTAMatrix`, in the same layout:
    ``diag`` L_i (lower triangular), ``lower`` M_i = L[i+1, i], ``arrow`` F_i = L[arrow, i],
    ``tip`` L_T = chol(T − Σ F_i F_iᵀ)."""

    __slots__ = ()

    def to_dense(self) -> jax.Array:
        """The dense lower-triangular (n, n) factor."""
        return _factor_to_dense(self)


@jax.jit
def _matrix_to_dense(m: BTAMatrix) -> jax.Array:
    nbb = m.n_blocks * m.block_size
    return m._dense(_sym(m.diag), upper=True).at[nbb:, nbb:].set(_sym(m.tip))


@jax.jit
def _factor_to_dense(m: BTACholesky) -> jax.Array:
    nbb = m.n_blocks * m.block_size
    return m._dense(jnp.tril(m.diag), upper=False).at[nbb:, nbb:].set(jnp.tril(m.tip))


def _sym(x):
    return 0.5 * (x + jnp.swapaxes(x, -1, -2))


def _split(m: _BTABlocks, x):
    """Vector(s) of length n -> (blocks (n_b, b, k), arrow (a, k), was_vector)."""
    x = jnp.asarray(x)
    if x.ndim not in (1, 2) or x.shape[0] != m.n:
        raise ValueError(f"right-hand side must have shape (n,) or (n, k) with n = {m.n}, got {x.shape}")
    vector = x.ndim == 1
    x2 = x[:, None] if vector else x
    nbb = m.n_blocks * m.block_size
    return x2[:nbb].reshape(m.n_blocks, m.block_size, x2.shape[1]), x2[nbb:], vector


def _join(xb, xa, vector):
    x = jnp.concatenate([xb.reshape(-1, xb.shape[-1]), xa], axis=0)
    return x[:, 0] if vector else x


# Blocks per iteration of the XLA while loop behind every scan over the blocks (lax.scan's
# ``unroll``). Each loop iteration costs a fixed overhead on top of its kernels (on a GPU
# the trip-count check is a device-to-host round trip); unrolling trades that for a
# longer program and compile time. 1: one block per iteration. benchmarks/bta_kernels.py
# times the alternatives.
_SCAN_UNROLL = 1


def _coupling_block(lower, i):
    """lower[i] for 0 <= i < n_b−1 and a zero block for i = −1 or n_b−1 (M_{−1} = M_{n_b−1} = 0):
    the end steps of a scan see no coupling, without a zero-padded copy of ``lower``."""
    count = lower.shape[0]
    if count == 0:
        return jnp.zeros(lower.shape[1:], lower.dtype)
    block = lax.dynamic_index_in_dim(lower, jnp.clip(i, 0, count - 1), keepdims=False)
    return jnp.where((i >= 0) & (i < count), block, jnp.zeros_like(block))


def _trsm(a, b, *, left, transpose=False):
    """Triangular solve with the lower-triangular ``a``: op(a) X = b (left) or X op(a) = b."""
    return lax.linalg.triangular_solve(a, b, left_side=left, lower=True, transpose_a=transpose)


# ----------------------------------------------------------------------------------------
# factorisation
# ----------------------------------------------------------------------------------------
@jax.jit
def cholesky(Q: BTAMatrix) -> BTACholesky:
    """Block Cholesky factor of a BTA matrix (one scan over the blocks).

    Step i takes the panel of column block i, [A_i; C_i], subtracts the previous column's
    contribution G_{i−1} M_{i−1}ᵀ (G = [M; F]), factors its top (b×b) part and solves the
    panel [B_i; Ĉ_i] against L_iᵀ. The tip Schur complement T − Σ F_i F_iᵀ is one batched
    product after the scan. Not positive definite: NaN from the failing block onwards.

    Example:
        >>> Q = BTAMatrix(4 * jnp.ones((2, 1, 1)), -jnp.ones((1, 1, 1)), jnp.ones((2, 1, 1)), 3 * jnp.eye(1))
        >>> L = cholesky(Q)
        >>> bool(jnp.allclose(L.to_dense() @ L.to_dense().T, Q.to_dense()))
        True
    """
    l_diag, g = _factor_scan(Q, keep_factor=True)
    f = g[:, Q.block_size :]
    tip_factor = lax.linalg.cholesky(Q.tip - jnp.einsum("iab,icb->ac", f, f))
    return BTACholesky._unchecked(l_diag, g[:-1, : Q.block_size], f, tip_factor)


def _factor_scan(Q: BTAMatrix, keep_factor: bool):
    """The block Cholesky scan. ``keep_factor``: outputs (L_i, G_i = [M_i; F_i]) stacked (M
    with a zero last block; one output array for the whole panel, split once after the
    scan, rather than one per-step copy per part); otherwise only (Σ log diag L_i, block
    succeeded, F_i) per block, so that a bare log-determinant does not store the O(n_b·b²)
    factor. Per step: one matmul, one b×b Cholesky, one triangular solve of the stacked
    (b+a)×b panel, and the fused elementwise/copy work around them."""
    n_b, b, a = Q.n_blocks, Q.block_size, Q.arrow_size

    def step(g_prev, xs):
        a_i, c_i, i = xs
        # Schur update by column i−1: [Â_i; Ĉ_i] = [A_i; C_i] − [M_{i−1}; F_{i−1}] M_{i−1}ᵀ, one
        # matmul; the two parts are subtracted where they are used (no stacked copy of [A_i; C_i])
        update = g_prev @ g_prev[:b].T
        l_i = lax.linalg.cholesky(a_i - update[:b])  # reads ½(Â_i + Â_iᵀ)
        # [M_i; F_i] = [B_i; Ĉ_i] L_i⁻ᵀ: one solve for the stacked panel
        rhs = jnp.concatenate([_coupling_block(Q.lower, i), c_i - update[b:]], axis=0)
        g_i = _trsm(l_i, rhs, left=False, transpose=True)
        if keep_factor:
            return g_i, (l_i, g_i)
        d = jnp.diagonal(l_i)
        return g_i, (jnp.sum(jnp.log(d)), jnp.all(jnp.isfinite(d) & (d > 0)), g_i[b:])

    g0 = jnp.zeros((b + a, b), Q.dtype)
    return lax.scan(step, g0, (Q.diag, Q.arrow, jnp.arange(n_b)), unroll=_SCAN_UNROLL)[1]


def _logdet_lean(Q: BTAMatrix) -> jax.Array:
    """log|Q| by the factorisation scan without storing the factor (−inf / NaN as documented)."""
    log_diag, ok, f = _factor_scan(Q, keep_factor=False)
    tip_factor = lax.linalg.cholesky(Q.tip - jnp.einsum("iab,icb->ac", f, f))
    t = jnp.diagonal(tip_factor)
    ok = jnp.all(ok) & jnp.all(jnp.isfinite(t) & (t > 0))
    value = 2.0 * (jnp.sum(log_diag) + jnp.sum(jnp.log(t)))
    return jnp.where(_all_finite(Q), jnp.where(ok, value, -jnp.inf), jnp.nan)


def is_positive_definite_factor(L: BTACholesky) -> jax.Array:
    """True when every diagonal of the factor is finite and positive (factorisation succeeded)."""
    d = jnp.diagonal(L.diag, axis1=1, axis2=2)
    ok = jnp.all(jnp.isfinite(d) & (d > 0))
    if L.arrow_size:
        t = jnp.diagonal(L.tip)
        ok = ok & jnp.all(jnp.isfinite(t) & (t > 0))
    return ok


def first_failed_block(L: BTACholesky) -> jax.Array:
    """Index of the first block whose factor failed: 0..n_b−1, n_b for the tip, −1 if none."""
    d = jnp.diagonal(L.diag, axis1=1, axis2=2)
    bad = ~jnp.all(jnp.isfinite(d) & (d > 0), axis=1)
    t = jnp.diagonal(L.tip)
    bad = jnp.concatenate([bad, ~jnp.all(jnp.isfinite(t) & (t > 0), keepdims=True)])
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1)


@jax.jit
def is_positive_definite(Q: BTAMatrix) -> jax.Array:
    """Whether the block Cholesky factorisation of Q succeeds (boolean scalar)."""
    return jnp.isfinite(_logdet_lean(Q))


@jax.jit
def logdet_from_factor(L: BTACholesky) -> jax.Array:
    """log|Q| = 2 Σ log diag L; −inf when the factorisation failed (never NaN)."""
    d = jnp.diagonal(L.diag, axis1=1, axis2=2)
    value = 2.0 * (jnp.sum(jnp.log(d)) + jnp.sum(jnp.log(jnp.diagonal(L.tip))))
    return jnp.where(is_positive_definite_factor(L), value, -jnp.inf)


# ----------------------------------------------------------------------------------------
# solves and sampling
# ----------------------------------------------------------------------------------------
def _forward_substitute(L: BTACholesky, rb, ra):
    """y = L⁻¹ r: y_i = L_i⁻¹ (r_i − M_{i−1} y_{i−1}),  y_a = L_T⁻¹ (r_a − Σ F_i y_i)."""

    def step(y_prev, xs):
        l_i, r_i, i = xs
        y_i = _trsm(l_i, r_i - _coupling_block(L.lower, i - 1) @ y_prev, left=True)
        return y_i, y_i

    y0 = jnp.zeros(rb.shape[1:], rb.dtype)
    _, yb = lax.scan(step, y0, (L.diag, rb, jnp.arange(L.n_blocks)), unroll=_SCAN_UNROLL)
    ya = _trsm(L.tip, ra - jnp.einsum("iab,ibk->ak", L.arrow, yb), left=True)
    return yb, ya


def _back_substitute(L: BTACholesky, yb, ya):
    """x = L⁻ᵀ y: x_a = L_T⁻ᵀ y_a,  x_i = L_i⁻ᵀ (y_i − M_iᵀ x_{i+1} − F_iᵀ x_a), i = n_b−1..0."""
    xa = _trsm(L.tip, ya, left=True, transpose=True)
    vb = yb - jnp.einsum("iab,ak->ibk", L.arrow, xa)  # the arrow terms for all i at once

    def step(x_next, xs):
        l_i, v_i, i = xs
        x_i = _trsm(l_i, v_i - _coupling_block(L.lower, i).T @ x_next, left=True, transpose=True)
        return x_i, x_i

    x0 = jnp.zeros(yb.shape[1:], yb.dtype)
    _, xb = lax.scan(step, x0, (L.diag, vb, jnp.arange(L.n_blocks)), reverse=True, unroll=_SCAN_UNROLL)
    return xb, xa


@jax.jit
def solve_from_factor(L: BTACholesky, rhs: jax.Array) -> jax.Array:
    """Q⁻¹ rhs from the factor (rhs (n,) or (n, k)); not differentiated in L by a custom rule."""
    rb, ra, vector = _split(L, rhs)
    xb, xa = _back_substitute(L, *_forward_substitute(L, rb, ra))
    return _join(xb, xa, vector)


@jax.jit
def sample_from_noise(L: BTACholesky, z: jax.Array) -> jax.Array:
    """x = L⁻ᵀ z (z (n,) or (n, k)): for z ~ N(0, I), x ~ N(0, Q⁻¹)."""
    zb, za, vector = _split(L, z)
    return _join(*_back_substitute(L, zb, za), vector)


@functools.partial(jax.jit, static_argnames="n_samples")
def sample_from_factor(L: BTACholesky, key: jax.Array, n_samples: int = 1) -> jax.Array:
    """``n_samples`` draws from N(0, Q⁻¹), shape (n_samples, n)."""
    z = jax.random.normal(key, (L.n, n_samples), dtype=L.dtype)
    return sample_from_noise(L, z).T


@functools.partial(jax.jit, static_argnames="n_samples")
def sample(Q: BTAMatrix, key: jax.Array, n_samples: int = 1) -> jax.Array:
    """``n_samples`` draws x = L⁻ᵀ z from N(0, Q⁻¹), shape (n_samples, n).

    Example:
        >>> Q = BTAMatrix(4 * jnp.ones((2, 1, 1)), -jnp.ones((1, 1, 1)), jnp.ones((2, 1, 1)), 3 * jnp.eye(1))
        >>> sample(Q, jax.random.key(0), n_samples=4).shape
        (4, 3)
    """
    return sample_from_factor(cholesky(Q), key, n_samples)


# ----------------------------------------------------------------------------------------
# selected inversion
# ----------------------------------------------------------------------------------------
@jax.jit
def selected_inverse_from_factor(L: BTACholesky) -> BTAMatrix:
    """Σ = Q⁻¹ on the BTA pattern by the block Takahashi recursion.

    From Σ L = L⁻ᵀ (upper triangular, diagonal blocks L_i⁻ᵀ), column block i of L being
    G_i = [M_i; F_i] below L_i, for rows j ∈ {i+1, arrow}:

        Σ_{j,i} L_i + Σ_{j,i+1} M_i + Σ_{j,a} F_i = 0
            =>  [Σ_{i+1,i}; Σ_{a,i}] = −P_i L_i⁻¹,   P_i = S_{i+1} G_i
        Σ_{i,i} = L_i⁻ᵀ L_i⁻¹ − Σ_{i,·} G_i L_i⁻¹ = L_i⁻ᵀ (I + G_iᵀ P_i) L_i⁻¹

    with S_{i+1} = [[Σ_{i+1,i+1}, Σ_{a,i+1}ᵀ], [Σ_{a,i+1}, Σ_aa]] and Σ_aa = L_T⁻ᵀ L_T⁻¹.
    One backward scan i = n_b−1..0 (M_{n_b−1} = 0) carrying S_{i+1}; per step two matmuls
    (P_i = S_{i+1} G_i and G_iᵀ P_i) and two triangular solves (L_i⁻ᵀ (I + G_iᵀP_i), then
    one right solve of the stacked panel [L_i⁻ᵀ(I + G_iᵀP_i); −P_i] by L_i for Σ_ii and the
    off-diagonal blocks together): about 7b³ flops, no explicit inverse.
    """
    n_b, b, a = L.n_blocks, L.block_size, L.arrow_size
    eye_a = jnp.eye(a, dtype=L.dtype)
    sigma_tip = _trsm(L.tip, _trsm(L.tip, eye_a, left=True), left=True, transpose=True)
    sigma_tip = _sym(sigma_tip)

    def step(s_next, xs):
        l_i, f_i, i = xs
        g_i = jnp.concatenate([_coupling_block(L.lower, i), f_i], axis=0)  # [M_i; F_i]
        s_i, s_ii, off = _takahashi_step(s_next, l_i, g_i)
        return s_i, (s_ii, off)

    # S_{n_b}: Σ of a block after the last one is never read (M_{n_b−1} = 0), only Σ_aa
    s0 = jnp.zeros((b + a, b + a), L.dtype).at[b:, b:].set(sigma_tip)
    xs = (L.diag, L.arrow, jnp.arange(n_b))
    _, (s_diag, off) = lax.scan(step, s0, xs, reverse=True, unroll=_SCAN_UNROLL)
    return BTAMatrix._unchecked(s_diag, off[:-1, :b], off[:, b:], sigma_tip)


def _takahashi_step(s_next, l_i, g_i):
    """One step i of the block Takahashi recursion (the body shared with the distributed
    interior recursion of :mod:`adelia.engine.bta_distributed`).

    Args:
        s_next: S_{i+1} ((b+e), (b+e)): Σ on (block i+1, the e arrow rows),
            [[Σ_{i+1,i+1}, Σ_{e,i+1}ᵀ], [Σ_{e,i+1}, Σ_ee]].
        l_i: (b, b) the diagonal factor block L_i.
        g_i: (b+e, b) the factor column below it, [M_i; E_i].

    Returns:
        S_i (same layout as ``s_next``), Σ_ii (b, b) and [Σ_{i+1,i}; Σ_{e,i}] ((b+e), b).

    With P_i = S_{i+1} G_i:  [Σ_{i+1,i}; Σ_{e,i}] = −P_i L_i⁻¹ and
    Σ_ii = L_i⁻ᵀ (I + G_iᵀ P_i) L_i⁻¹. Both right solves by L_i run as one solve of the
    stacked ((2b+e), b) panel [L_i⁻ᵀ (I + G_iᵀ P_i); −P_i]: two matmuls, two triangular
    solves per step.
    """
    b = l_i.shape[0]
    p = s_next @ g_i  # P_i = S_{i+1} G_i
    z = _trsm(l_i, jnp.eye(b, dtype=l_i.dtype) + g_i.T @ p, left=True, transpose=True)
    out = _trsm(l_i, jnp.concatenate([z, -p], axis=0), left=False)  # [Σ_ii; Σ_{i+1,i}; Σ_{e,i}]
    s_ii, off = _sym(out[:b]), out[b:]
    off_e = off[b:]
    s_i = jnp.concatenate(
        [jnp.concatenate([s_ii, off_e.T], axis=1), jnp.concatenate([off_e, s_next[b:, b:]], axis=1)], axis=0
    )
    return s_i, s_ii, off


@jax.jit
def selected_inverse(Q: BTAMatrix) -> BTAMatrix:
    """Q⁻¹ on the BTA pattern (diagonal, sub-diagonal, arrow and tip blocks).

    Example:
        >>> Q = BTAMatrix(4 * jnp.ones((2, 1, 1)), -jnp.ones((1, 1, 1)), jnp.ones((2, 1, 1)), 3 * jnp.eye(1))
        >>> S = selected_inverse(Q)
        >>> bool(jnp.allclose(S.diag[0], jnp.linalg.inv(Q.to_dense())[:1, :1]))
        True
    """
    return selected_inverse_from_factor(cholesky(Q))


# ----------------------------------------------------------------------------------------
# differentiable kernels (custom VJPs)
# ----------------------------------------------------------------------------------------
def _symmetric_outer(u, v, like: BTAMatrix) -> BTAMatrix:
    """The cotangent of Q for Q̄_full = u vᵀ (u, v: (n, k)), restricted to the BTA pattern
    with the symmetric counting of the block arrays:

        diag̅_i = ½(u_i v_iᵀ + v_i u_iᵀ)            (diag read through its symmetric part)
        lower̄_i = u_{i+1} v_iᵀ + v_{i+1} u_iᵀ       (block stands at (i+1,i) and (i,i+1))
        arrow̄_i = u_a v_iᵀ + v_a u_iᵀ
        tip̄     = ½(u_a v_aᵀ + v_a u_aᵀ)
    """
    ub, ua, _ = _split(like, u)
    vb, va, _ = _split(like, v)
    diag = _sym(jnp.einsum("ibk,ick->ibc", ub, vb))
    lower = jnp.einsum("ibk,ick->ibc", ub[1:], vb[:-1]) + jnp.einsum("ibk,ick->ibc", vb[1:], ub[:-1])
    arrow = jnp.einsum("ak,ibk->iab", ua, vb) + jnp.einsum("ak,ibk->iab", va, ub)
    tip = _sym(ua @ va.T)
    return BTAMatrix._unchecked(diag, lower, arrow, tip)


def _scaled_pattern_inverse(sigma: BTAMatrix, g) -> BTAMatrix:
    """ḡ·Σ with the symmetric counting: diag̅ = ḡΣ_ii, lower̄ = 2ḡΣ_{i+1,i},
    arrow̄ = 2ḡΣ_{a,i}, tip̄ = ḡΣ_aa."""
    return BTAMatrix._unchecked(g * sigma.diag, 2.0 * g * sigma.lower, 2.0 * g * sigma.arrow, g * sigma.tip)


def _add(x: BTAMatrix, y: BTAMatrix) -> BTAMatrix:
    return jax.tree_util.tree_map(jnp.add, x, y)


def _as_matrix(x):
    return x[:, None] if x.ndim == 1 else x


def _all_finite(Q: BTAMatrix) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(Q)]))


def _logdet_value(Q: BTAMatrix, L: BTACholesky) -> jax.Array:
    """log|Q| from its factor: −inf when not positive definite, NaN when Q holds NaN/inf
    (a non-finite input is a bug upstream, not an indefinite matrix; as the dense backend)."""
    return jnp.where(_all_finite(Q), logdet_from_factor(L), jnp.nan)


@jax.custom_vjp
def _logdet(Q: BTAMatrix) -> jax.Array:
    return _logdet_lean(Q)  # not differentiated: no need to keep the factor


def _logdet_fwd(Q):
    L = cholesky(Q)
    return _logdet_value(Q, L), L  # residual: the factor only, O(n_b·b²)


def _logdet_bwd(L, g):
    # d log|Q| = tr(Q⁻¹ dQ): needs Q⁻¹ only on the pattern of Q -> selected inversion.
    return (_scaled_pattern_inverse(selected_inverse_from_factor(L), g),)


_logdet.defvjp(_logdet_fwd, _logdet_bwd)


@jax.jit
def logdet(Q: BTAMatrix) -> jax.Array:
    """log|Q| with a structured reverse-mode derivative (selected inversion).

    ∂ log|Q| / ∂Q = Q⁻¹, needed only on the BTA pattern: the VJP is one backward Takahashi
    recursion on the stored factor. −inf when Q is not positive definite.

    Example:
        >>> Q = BTAMatrix(4 * jnp.ones((2, 1, 1)), -jnp.ones((1, 1, 1)), jnp.ones((2, 1, 1)), 3 * jnp.eye(1))
        >>> value, grad = jax.value_and_grad(logdet)(Q)
        >>> bool(jnp.allclose(grad.diag[:, 0, 0], jnp.diagonal(jnp.linalg.inv(Q.to_dense()))[:2]))
        True
    """
    return _logdet(Q)


@jax.jit
def logdet_plain_ad(Q: BTAMatrix) -> jax.Array:
    """The same log|Q| without the custom VJP: reverse-mode AD through the factorisation
    scan (benchmark baseline and test oracle; slower and stores per-step residuals)."""
    return _logdet_value(Q, cholesky(Q))


@jax.custom_vjp
def _solve(Q: BTAMatrix, rhs: jax.Array) -> jax.Array:
    return solve_from_factor(cholesky(Q), rhs)


def _solve_fwd(Q, rhs):
    L = cholesky(Q)
    x = solve_from_factor(L, rhs)
    return x, (L, x)


def _solve_bwd(res, x_bar):
    # x = Q⁻¹ r,  dx = Q⁻¹ (dr − dQ x):
    #   r̄ = Q⁻ᵀ x̄ = Q⁻¹ x̄,   Q̄ = −r̄ xᵀ, kept on the pattern only.
    L, x = res
    r_bar = solve_from_factor(L, x_bar)
    q_bar = _symmetric_outer(-_as_matrix(r_bar), _as_matrix(x), L)
    return q_bar, r_bar


_solve.defvjp(_solve_fwd, _solve_bwd)


@jax.jit
def solve(Q: BTAMatrix, rhs: jax.Array) -> jax.Array:
    """Q⁻¹ rhs for rhs of shape (n,) or (n, k), differentiable in Q and rhs.

    VJP: r̄ = Q⁻¹ x̄ (one more solve with the stored factor), Q̄ = −r̄ xᵀ on the pattern.

    Example:
        >>> Q = BTAMatrix(4 * jnp.ones((2, 1, 1)), -jnp.ones((1, 1, 1)), jnp.ones((2, 1, 1)), 3 * jnp.eye(1))
        >>> x = solve(Q, jnp.ones(Q.n))
        >>> bool(jnp.allclose(Q.matvec(x), 1.0))
        True
    """
    return _solve(Q, rhs)


@jax.custom_vjp
def _logdet_and_solve(Q, rhs):
    L = cholesky(Q)
    return _logdet_value(Q, L), solve_from_factor(L, rhs)


def _logdet_and_solve_fwd(Q, rhs):
    # symbolic_zeros=True: every leaf arrives as a CustomVJPPrimal (value, perturbed)
    Q, rhs = jax.tree_util.tree_map(lambda p: p.value, (Q, rhs))
    L = cholesky(Q)
    x = solve_from_factor(L, rhs)
    return (_logdet_value(Q, L), x), (L, x)


def _logdet_and_solve_bwd(res, cotangents):
    # Q̄ = ḡ Σ|pattern − r̄ xᵀ|pattern,  r̄ = Q⁻¹ x̄; each part only when its cotangent is
    # not a symbolic zero (the selected inversion is skipped when only x is used).
    L, x = res
    g, x_bar = cotangents
    q_bar = None
    r_bar = jnp.zeros_like(x)
    if not isinstance(x_bar, SymbolicZero):
        r_bar = solve_from_factor(L, x_bar)
        q_bar = _symmetric_outer(-_as_matrix(r_bar), _as_matrix(x), L)
    if not isinstance(g, SymbolicZero):
        q_g = _scaled_pattern_inverse(selected_inverse_from_factor(L), g)
        q_bar = q_g if q_bar is None else _add(q_bar, q_g)
    if q_bar is None:
        q_bar = jax.tree_util.tree_map(jnp.zeros_like, BTAMatrix._unchecked(*L.tree_flatten()[0]))
    return q_bar, r_bar


_logdet_and_solve.defvjp(_logdet_and_solve_fwd, _logdet_and_solve_bwd, symbolic_zeros=True)


@jax.jit
def logdet_and_solve(Q: BTAMatrix, rhs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(log|Q|, Q⁻¹ rhs) from one factorisation, jointly differentiable (custom VJP that
    does the selected inversion only when the log-determinant's cotangent is used)."""
    return _logdet_and_solve(Q, rhs)
