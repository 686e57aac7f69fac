"""Dense Cholesky backend: the test oracle for every kernel (DESIGN.md §4).

Every operation forms the dense symmetric Q from the lower-triangle ``values``
(:meth:`SparsePattern.to_dense_jax`, a differentiable scatter), factorises
Q = L Lᵀ with ``jnp.linalg.cholesky`` and lets plain JAX autodiff supply the
gradients. It costs O(n³) time and O(n²) memory, so it is meant for small
problems (``make_solver`` picks it for n <= 200) and for checking the sparse and
BTA backends; it is deliberately written to be obviously correct, not fast.

    log|Q|     = 2 Σ_i log L_ii
    Q⁻¹ b      = L⁻ᵀ L⁻¹ b
    x = L⁻ᵀ z,  z ~ N(0, I)   =>   Cov(x) = L⁻ᵀ L⁻¹ = Q⁻¹

Failure: ``jnp.linalg.cholesky`` returns a NaN-filled factor when Q is not
positive definite; ``logdet`` then returns -inf (and NaN when ``values`` itself
holds a NaN or inf), solves, selected inverses and samples are NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .pattern import SparsePattern
from .solver import Solver


class DenseSolver(Solver):
    """Dense ``jnp.linalg`` implementation of :class:`~adelia.engine.solver.Solver`.

    Example:
        >>> import numpy as np, adelia
        >>> from adelia.engine.pattern import SparsePattern
        >>> p = SparsePattern.from_entries(2, [0, 1, 1], [0, 0, 1])
        >>> s = DenseSolver(p)
        >>> round(float(s.logdet(np.array([2.0, 1.0, 2.0]))), 12)  # log(2*2 - 1*1)
        1.098612288668
    """

    def __init__(self, pattern: SparsePattern):
        self.pattern = pattern

    # -- helpers ------------------------------------------------------------------------
    def matrix(self, values: jax.Array) -> jax.Array:
        """Q as a dense (n, n) symmetric matrix."""
        return self.pattern.to_dense_jax(jnp.asarray(values, dtype=jnp.float64))

    def cholesky(self, values: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(L, ok): lower Cholesky factor of Q and whether the factorisation succeeded."""
        chol = jnp.linalg.cholesky(self.matrix(values))
        # A failed LAPACK potrf comes back NaN-filled; a finite factor is a valid one.
        ok = jnp.all(jnp.isfinite(chol))
        return chol, ok

    def _logdet_from(self, values, chol, ok):
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
        logdet = jnp.where(ok, logdet, -jnp.inf)
        # NaN in, NaN out: a non-finite input is a bug upstream, not an indefinite matrix.
        return jnp.where(jnp.all(jnp.isfinite(values)), logdet, jnp.nan)

    # -- Solver interface -----------------------------------------------------------------
    def logdet(self, values: jax.Array) -> jax.Array:
        """log|Q| = 2 Σ log L_ii; -inf when Q is not positive definite."""
        chol, ok = self.cholesky(values)
        return self._logdet_from(values, chol, ok)

    def solve(self, values: jax.Array, rhs: jax.Array) -> jax.Array:
        """Q⁻¹ rhs for rhs of shape (n,) or (n, k); NaN when Q is not positive definite."""
        chol, _ = self.cholesky(values)
        return jsl.cho_solve((chol, True), jnp.asarray(rhs, dtype=jnp.float64))

    def logdet_and_solve(self, values: jax.Array, rhs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(log|Q|, Q⁻¹ rhs) from one Cholesky factorisation."""
        chol, ok = self.cholesky(values)
        x = jsl.cho_solve((chol, True), jnp.asarray(rhs, dtype=jnp.float64))
        return self._logdet_from(values, chol, ok), x

    def selected_inverse(self, values: jax.Array) -> jax.Array:
        """(Q⁻¹)[rows[k], cols[k]] for every pattern entry k, from the full dense inverse."""
        chol, _ = self.cholesky(values)
        inverse = jsl.cho_solve((chol, True), jnp.eye(self.n))
        return inverse[jnp.asarray(self.pattern.rows), jnp.asarray(self.pattern.cols)]

    def sample_from_noise(self, values: jax.Array, noise: jax.Array) -> jax.Array:
        """x = L⁻ᵀ z for standard normal z of shape (n,) or (m, n): x ~ N(0, Q⁻¹)."""
        chol, _ = self.cholesky(values)
        noise = jnp.asarray(noise, dtype=jnp.float64)
        x = jsl.solve_triangular(chol, noise.T, lower=True, trans="T")
        return x.T

    def sample(self, values: jax.Array, key: jax.Array, n_samples: int = 1) -> jax.Array:
        """n_samples draws from N(0, Q⁻¹), shape (n_samples, n)."""
        noise = jax.random.normal(key, (n_samples, self.n), dtype=jnp.float64)
        return self.sample_from_noise(values, noise)
