"""R-INLA's variational-Bayes correction of the latent mean (compact mode, ``control.vb``).

The Gaussian approximation π_G(x | y, θ) is centred at the mode x*; for non-Gaussian
likelihoods the posterior mean differs. R-INLA (van Niekerk & Rue 2024, "Low-rank
variational Bayes correction to the Laplace method", JMLR 25(62);
``GMRFLib_ai_vb_correct_mean_preopt``) moves the mean within the span of a few columns of
Σ = Q_c⁻¹ (a set S of "VB nodes": every fixed effect, and all nodes of each f() term of
size ≤ 30, else 30 spread-out ones) by Newton steps on the expected negative log joint
under N(x̄, Σ):

    B_i = −E[∂ℓ_i(η̄_i + s_i z)],  z ~ N(0, 1)      (15-point Gauss–Hermite; s_i² = Var(η_i))
    g   = Q (x̄ − μ) + Aᵀ B                              (gradient of the expected −log joint)
    δ   = −(Σ_SS)⁺ (Σ g)_S,   dx = Σ_{:,S} δ           (Newton step in span Σ_{:,S}; Mᵀ Q_c M = Σ_SS)

with dx truncated to ±5 sd per node, until max|dx_i / sd_i| < 0.01 (≤ 25 iterations).
The step aborts (keeping x*) on non-finite values or when x̄ drifts ≥ 25 sd from x*.
Σ's columns are the constrained ones (conditioning by kriging), so C x̄ = e is kept.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

#: probabilists' Gauss–Hermite rule with 15 points (weights sum to 1)
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(15)
_GH_W = _GH_W / _GH_W.sum()


def vb_nodes(graph, limit: int = 30) -> np.ndarray:
    """R-INLA's VB node set: all fixed effects; per f() term all nodes if N ≤ limit, else
    ``limit`` nodes j·len + k (mod N) with len = max(1, N // limit), k = max(1, len // 2)."""
    nodes = []
    for b in graph.blocks:
        if b.kind == "fixed":
            nodes.append(np.array([b.start]))
            continue
        N = b.size
        if N <= limit:
            nodes.append(b.start + np.arange(N))
        else:
            step = max(1, N // limit)
            k = max(1, step // 2)
            nodes.append(b.start + (np.arange(limit) * step + k) % N)
    return np.unique(np.concatenate(nodes)) if nodes else np.zeros(0, dtype=np.int64)


def sigma_block_matvec(sigma_matvec, nodes: np.ndarray, n: int, block: int):
    """Σ_SS (m, m) from products Σ v (``sigma_matvec``: (n, b) -> (n, b)), ``block`` unit
    columns at a time, so that no (n, m) array exists (jit-able; R-INLA forms Σ_{:,S} once,
    which at n = 10⁶ and m = 32 is 256 MB per design point in flight)."""
    m = int(nodes.size)
    block = max(1, min(int(block), m))
    n_blocks = -(-m // block)
    padded = np.concatenate([nodes, np.full(n_blocks * block - m, nodes[0])]).reshape(n_blocks, block)
    nodes_j = jnp.asarray(nodes)

    def one(cols):
        E = jnp.zeros((n, block)).at[cols, jnp.arange(block)].set(1.0)
        return sigma_matvec(E)[nodes_j, :].T  # (block, m): row j = Σ[S, cols_j]

    rows = jax.lax.map(one, jnp.asarray(padded)).reshape(n_blocks * block, m)[:m]
    return rows.T


def vb_correct_mean(laplace, theta, x_star, Sigma_S, var_latent, eta_var, max_iter: int = 25, tol: float = 0.01,
                    emergency: float = 25.0, sigma_matvec=None, block: int = 1):
    """The VB-corrected latent mean at one θ (jit-able).

    Args:
        laplace: the :class:`~adelia.inference.laplace.LaplaceApproximation`.
        theta: full θ.
        x_star: the mode of π_G.
        Sigma_S: (n, m) the constrained covariance columns of the VB nodes S, or None with
            ``sigma_matvec`` (v (n, b) -> Σ v): then Σ_SS is formed ``block`` columns at a time and
            each step uses two products Σ v instead of the n × m columns (the same Newton
            step, equal to rounding; memory O(n b) instead of O(n m)).
        var_latent: (n,) constrained marginal variances (for the stopping rule).
        eta_var: (n_obs,) Var(η_i) under π_G.
    Returns:
        (x̄, iterations, aborted): ``aborted`` is True when the iteration stopped on a
        non-finite value or a drift ≥ ``emergency`` sd (x̄ = x* is returned then; the caller
        reports it, see :mod:`adelia.inference.run`).
    """
    g = laplace.graph
    obs = laplace.obs
    nodes = jnp.asarray(laplace.vb_nodes)
    qv = g.prior_values(theta)
    av = g.a_values(theta)
    off = jnp.asarray(obs.offset)
    s = jnp.sqrt(jnp.maximum(eta_var, 0.0))
    sd = jnp.sqrt(jnp.maximum(var_latent, 1e-300))
    gx = jnp.asarray(_GH_X)
    gw = jnp.asarray(_GH_W)
    if Sigma_S is None:
        Sigma_SS = sigma_block_matvec(sigma_matvec, np.asarray(laplace.vb_nodes), x_star.shape[0], block)
    else:
        Sigma_SS = Sigma_S[nodes, :]
    # The pseudo-inverse's cut-off is relative to the largest singular value, so Σ_SS is
    # scaled to a correlation matrix first: unscaled, a node with a small variance (a fixed
    # effect of a covariate in large units, Var ~ 1e-7, beside a baseline hazard, Var ~ 1)
    # falls under the cut-off and is never corrected (coxph_leuk's wbc: 0.057 sd off R-INLA)
    Sigma_SS = 0.5 * (Sigma_SS + Sigma_SS.T)
    scale = 1.0 / jnp.sqrt(jnp.maximum(jnp.diag(Sigma_SS), 1e-300))
    Sigma_SS_pinv = scale[:, None] * jnp.linalg.pinv(scale[:, None] * Sigma_SS * scale[None, :],
                                                      rtol=6.055454e-06) * scale[None, :]  # GSL_ROOT3_DBL_EPSILON

    def expected_grad(xbar):
        eta = g.predictor(av, xbar) + off
        pts = eta[None, :] + s[None, :] * gx[:, None]  # (15, n_obs)
        d1 = jax.vmap(lambda e: obs.derivatives(e, theta)[0])(pts)
        B = -(gw @ d1)
        r = xbar - jnp.asarray(g.prior_mean)
        return g.prior_matvec(qv, r) + g.predictor_transpose(av, B)

    def step(xbar):
        grad = expected_grad(xbar)
        if Sigma_S is None:
            delta = -Sigma_SS_pinv @ sigma_matvec(grad[:, None])[nodes, 0]  # (Σ g)_S = Σ_{:,S}ᵀ g
            dx = sigma_matvec(jnp.zeros((grad.shape[0], 1)).at[nodes, 0].set(delta))[:, 0]  # Σ_{:,S} δ = Σ E_S δ
        else:
            delta = -Sigma_SS_pinv @ (Sigma_S.T @ grad)
            dx = Sigma_S @ delta
        return jnp.clip(dx, -5.001 * sd, 5.001 * sd)

    def cond(state):
        it, xbar, change, ok = state
        return (it < max_iter) & (change >= tol) & ok

    def body(state):
        it, xbar, _, ok = state
        dx = step(xbar)
        new = xbar + dx
        finite = jnp.all(jnp.isfinite(new))
        drift = jnp.max(jnp.abs(new - x_star) / sd)
        ok = finite & (drift < emergency)
        change = jnp.max(jnp.abs(dx) / sd)
        return it + 1, jnp.where(ok, new, xbar), change, ok

    it, xbar, change, ok = jax.lax.while_loop(cond, body, (0, x_star, jnp.asarray(jnp.inf), jnp.asarray(True)))
    return jnp.where(ok, xbar, x_star), it, ~ok
