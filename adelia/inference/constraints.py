"""Hard linear constraints C x = e by conditioning by kriging (Rue & Held 2005, §2.3.3).

For a Gaussian with precision Q and unconstrained mean μ, the constrained mean and the
constrained covariance are

    μ_c = μ − W S⁻¹ (C μ − e),      Σ_c = Q⁻¹ − W S⁻¹ Wᵀ,      W = Q⁻¹ Cᵀ,  S = C W.

One factorisation of Q serves both the solve for μ and W (solved together as extra
right-hand sides). Log-densities on the constraint set follow from

    π(x | Cx = e) = π(x) / π_{Cx}(e)       (densities on the affine subspace),

so the Laplace objective needs log|S| (see :mod:`adelia.inference.laplace`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.solver import Solver


def constrained_solve(
    solver: Solver, values: jax.Array, rhs: jax.Array, C: np.ndarray | None, e: np.ndarray | None = None
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """Solve Q z = rhs and correct z onto C z = e by kriging.

    Returns (z_c, W, S): the corrected solution, W = Q⁻¹Cᵀ and S = C W (None without
    constraints). ``rhs`` may be (n,) or (n, k); with ``e=None`` the correction projects onto
    C z = 0 (what a covariance-type solve needs).
    """
    if C is None:
        return solver.solve(values, rhs), None, None
    Cj = jnp.asarray(C)
    k = C.shape[0]
    vec = rhs.ndim == 1
    R = rhs[:, None] if vec else rhs
    both = solver.solve(values, jnp.concatenate([R, Cj.T], axis=1))
    z, W = both[:, : R.shape[1]], both[:, R.shape[1] :]
    S = Cj @ W
    target = jnp.zeros((k, 1)) if e is None else jnp.asarray(e).reshape(k, 1)
    z = z - W @ jnp.linalg.solve(S, Cj @ z - target)
    return (z[:, 0] if vec else z), W, S


def constraint_variance_correction(W: jax.Array, S: jax.Array) -> jax.Array:
    """diag(W S⁻¹ Wᵀ): what conditioning on C x = e removes from diag(Q⁻¹)."""
    return jnp.sum(W * jnp.linalg.solve(S, W.T).T, axis=1)


def log_det_spd(S: jax.Array) -> jax.Array:
    """log|S| of a small dense SPD matrix (the k×k constraint matrices)."""
    L = jnp.linalg.cholesky(S)
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L)))


def log_det_CCt(C: np.ndarray) -> float:
    """log|C Cᵀ| on the host (the measure factor of densities on {C x = e})."""
    sign, ld = np.linalg.slogdet(C @ C.T)
    if sign <= 0:
        raise ValueError("the constraint matrix C has linearly dependent rows")
    return float(ld)
