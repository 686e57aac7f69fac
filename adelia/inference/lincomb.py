"""Derived linear combinations: R-INLA's ``summary.lincomb.derived`` (compact mode).

For a combination a(θ)'x + c (see :class:`adelia.lincomb.LincombDesign`) R-INLA derives its
marginal from the Gaussian approximation at each integration point θ_k
(``GMRFLib_ai_compute_lincomb``) and mixes over the design:

    π(a'x | y) ≈ Σ_k w_k N(a_k'μ̃_k + c, a_k' Σ_k a_k),   Σ_k = Q_c(θ_k)⁻¹ (constrained),

with μ̃_k the VB-corrected mean at θ_k (R-INLA's "improved mean"; the mode x*_k where no
correction runs) and a_k'Σ_k a_k from solves with the factor of Q_c(θ_k), never forming Σ_k
(conditioning by kriging removes W S⁻¹ Wᵀ under constraints). The mixture weights are those of
R-INLA's ``GMRFLib_density_combine``: the integration probabilities with the smallest ones,
totalling less than 2.5 %, dropped (``GMRFLib_weight_prob`` = 0.975, as for the linear
predictor; :func:`adelia.inference.design.prune_probabilities`).

With ``control_inla={"lincomb.derived.correlation.matrix": True}`` R-INLA also reports

    Cov = Σ_k w'_k a_k' Σ_k a_j       (w' pruned at 0.999, as the latent marginals)

and its correlation matrix: the design average of the *conditional* covariances — it leaves
out the spread of the conditional means a_k'μ̃_k over θ, so its diagonal is a little below
the squared sds of ``summary_lincomb_derived``. adelia reproduces this definition (checked
against R-INLA's own matrix to 1e-6 at R-INLA's design points).

With ``inla_mode="classic"`` the centre is R-INLA's classic "improved mean" instead
(``COMPUTE_LINDENS`` in GMRFLib's approx-inference.c): per node the mean of its latent
marginal at θ_k under the latent strategy (``dens[i][k]->user_mean``: the simplified-Laplace
skew-normal's mean by default, the spline-corrected Laplace density's with
``strategy="laplace"``), the Gaussian mean ``mean_constr`` for nodes without one:

    a_k' E_strategy(x | θ_k, y) + c.

The variances a_k'Σ_k a_k stay the Gaussian approximation's. (R-INLA's classic latent field
holds η itself, so a "Predictor" weight takes η's own simplified-Laplace mean when
``control.predictor$compute`` is on; adelia maps it through A to the nodes' means.)

Summaries follow :meth:`adelia.inference.summaries.Mixture.summary` (R-INLA's combined density
by default), as the other marginals do.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.batching import map_points
from ..engine.hoisted_jit import hoisted_jit
from .constraints import constrained_solve
from .design import prune_probabilities
from .summaries import Mixture

#: R-INLA's pruning of the mixture weights for the lincomb marginals (GMRFLib_weight_prob)
MARGINAL_KEEP = 0.975
#: ... and for the latent marginals and the derived covariance matrix (GMRFLib_weight_prob_one)
COVARIANCE_KEEP = 0.999
#: numbers per right-hand-side block of the solves Σ a (bounds the (n, b) blocks in flight)
BLOCK_NUMBERS = 4_000_000


@dataclass
class LincombPosterior:
    """The derived linear combinations of a fit (arrays over the evaluated design points)."""

    names: tuple[str, ...]
    points: np.ndarray  # (K',) indices of the design points evaluated (latent weights > 0)
    mean: np.ndarray  # (K', m) conditional means a_k'μ̃_k + c
    var: np.ndarray  # (K', m) conditional variances a_k'Σ_k a_k
    weights: np.ndarray  # (K',) mixture weights of the marginals (pruned at 0.975)
    covariance: np.ndarray | None  # (m, m) R-INLA's derived covariance matrix, when asked

    @property
    def marginals(self) -> Mixture:
        keep = self.weights > 0
        return Mixture(self.weights[keep], self.mean[keep], np.sqrt(np.maximum(self.var[keep], 1e-300)))

    @property
    def correlation(self) -> np.ndarray | None:
        if self.covariance is None:
            return None
        s = np.sqrt(np.diag(self.covariance))
        out = self.covariance / np.outer(s, s)
        np.fill_diagonal(out, 1.0)
        return out


def _coo(m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = m.tocoo()
    return c.row.astype(np.int64), c.col.astype(np.int64), c.data.astype(float)


def _blocked(m, n_blocks: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of a (combinations × targets) matrix split by blocks of ``block``
    combinations, padded to one length: (local row, column, value) each (n_blocks, width)."""
    r, c, v = _coo(m)
    which = r // block
    width = max(1, int(np.bincount(which, minlength=n_blocks).max()) if r.size else 1)
    R = np.zeros((n_blocks, width), np.int64)
    Cc = np.zeros((n_blocks, width), np.int64)
    V = np.zeros((n_blocks, width))
    for b in range(n_blocks):
        sel = np.flatnonzero(which == b)
        R[b, : sel.size], Cc[b, : sel.size], V[b, : sel.size] = r[sel] - b * block, c[sel], v[sel]
    return R, Cc, V


def lincomb_point_function(model, with_covariance: bool):
    """One design point: the row [θ_free, x*_k, μ̃_k] -> (a'μ̃ + c (m,), a'Σa (m,) or the
    conditional covariance (m, m)). Pure JAX (jit + vmap-able); structure static."""
    design = model.lincombs
    g = model.graph
    lap = model.laplace
    lay = model.layout
    C = lap.C
    n = g.n_latent
    m = design.n
    d = model.free.size
    block = max(1, min(m, BLOCK_NUMBERS // max(1, n)))
    n_blocks = -(-m // block)
    latent = [(_coo(L), _blocked(L, n_blocks, block)) for L in design.latent]
    obs = None if design.obs is None else (_coo(design.obs), _blocked(design.obs, n_blocks, block))
    rows = None if design.rows is None else (_coo(design.rows), _blocked(design.rows, n_blocks, block))
    obs_offset = jnp.asarray(model.observations.offset)
    row_offset = jnp.asarray(model.effect_offset if model.effect_offset is not None else np.zeros(0))

    def apply(theta, av, ev, X):
        """a(θ) X for X (n,) or (n, k): the combinations' values, (m,) or (m, k)."""
        betas = g.copy_betas(theta)
        out = jnp.zeros((m,) + X.shape[1:])
        for j, ((r, c, v), _) in enumerate(latent):
            if v.size:
                vv = jnp.asarray(v).reshape((-1,) + (1,) * (X.ndim - 1))
                out = out + betas[j] * jax.ops.segment_sum(vv * X[jnp.asarray(c)], jnp.asarray(r), num_segments=m)
        for part, Y in ((obs, lambda: g.predictor(av, X)), (rows, lambda: g.effect_map.apply(ev, X))):
            if part is not None:
                (r, c, v), _ = part
                vv = jnp.asarray(v).reshape((-1,) + (1,) * (X.ndim - 1))
                out = out + jax.ops.segment_sum(vv * Y()[jnp.asarray(c)], jnp.asarray(r), num_segments=m)
        return out

    def constant():
        """c: the offsets carried by "Predictor" weights."""
        out = jnp.zeros(m)
        for part, off in ((obs, obs_offset), (rows, row_offset)):
            if part is not None:
                (r, c, v), _ = part
                out = out + jax.ops.segment_sum(jnp.asarray(v) * off[jnp.asarray(c)], jnp.asarray(r), num_segments=m)
        return out

    def columns(theta, av, ev, b):
        """a(θ)ᵀ for the combinations of block b as dense (n, block) right-hand sides."""
        betas = g.copy_betas(theta)
        A_t = jnp.zeros((n, block))
        for j, (_, (R, Cc, V)) in enumerate(latent):
            A_t = A_t.at[jnp.asarray(Cc)[b], jnp.asarray(R)[b]].add(betas[j] * jnp.asarray(V)[b])
        if obs is not None:
            _, (R, Cc, V) = obs
            P = jnp.zeros((g.n_obs, block)).at[jnp.asarray(Cc)[b], jnp.asarray(R)[b]].add(jnp.asarray(V)[b])
            A_t = A_t + g.predictor_transpose(av, P)
        if rows is not None:
            _, (R, Cc, V) = rows
            P = jnp.zeros((g.effect_map.n_rows, block)).at[jnp.asarray(Cc)[b], jnp.asarray(R)[b]].add(jnp.asarray(V)[b])
            A_t = A_t + g.effect_map.apply_transpose(ev, P, n)
        return A_t

    def point(row):
        theta_free, mode, mean = row[:d], row[d : d + n], row[d + n :]
        theta = lay.expand(theta_free)
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        ev = g.effect_map.entry_values(g.copy_betas(theta)) if g.effect_map is not None else None
        # Q_c(θ_k) at the mode x*_k: the precision of π_G(x | y, θ_k) (as in gaussian_approximation)
        _, _, _, qcv = lap._curvature(mode, theta, qv, av)
        mu = apply(theta, av, ev, mean) + constant()

        def one_block(b):
            A_t = columns(theta, av, ev, b)
            Z = constrained_solve(g.solver, qcv, A_t, C, None)[0]  # Σ_c a: one solve per column
            if with_covariance:
                return apply(theta, av, ev, Z)  # (m, block): a_i'Σ a_j
            return jnp.sum(A_t * Z, axis=0)  # (block,): a_j'Σ a_j

        if n_blocks == 1:
            out = one_block(0)[None]
        else:
            out = jax.lax.map(one_block, jnp.arange(n_blocks))
        if with_covariance:
            cov = jnp.moveaxis(out, 0, 1).reshape(m, n_blocks * block)[:, :m]
            return mu, 0.5 * (cov + cov.T)
        return mu, out.reshape(n_blocks * block)[:m]

    return point


def lincomb_posterior(model, points, probabilities: np.ndarray, latent=None) -> LincombPosterior:
    """The derived linear combinations of ``model.lincombs`` from the design points' results
    (``points``: :class:`adelia.inference.run.PointResults`) and their probabilities.

    ``latent``: the fit's latent marginals (a mixture over the design points kept at 0.999);
    with ``inla_mode="classic"`` each point's combination is centred at a'·(the components'
    means), R-INLA's classic improved mean. Compact mode uses the (VB) means of ``points``."""
    design = model.lincombs
    want_cov = bool(model.controls["control_inla"].get("lincomb.derived.correlation.matrix"))
    p_cov = prune_probabilities(probabilities, COVARIANCE_KEEP)
    p_marg = prune_probabilities(probabilities, MARGINAL_KEEP)
    idx = np.flatnonzero(p_cov > 0)  # ⊇ the points of the 0.975 mixture
    fn = getattr(model, "_lincomb_fn", None)
    if fn is None or getattr(model, "_lincomb_fn_cov", None) != want_cov:
        fn = map_points(hoisted_jit(lincomb_point_function(model, want_cov), getattr(model, "_const_pool", None)))
        model._lincomb_fn, model._lincomb_fn_cov = fn, want_cov
    centre = points.mean[idx]
    if latent is not None and model.controls["control_inla"].get("inla.mode") == "classic":
        means = latent.component_means()  # R-INLA's dens[i][k]->user_mean per point
        if means.shape == centre.shape:  # the same 0.999-pruned design points
            centre = means
    rows = np.concatenate([points.theta[idx], points.mode[idx], centre], axis=1)
    mu, second = fn(rows)
    mu, second = np.asarray(mu), np.asarray(second)
    var = np.diagonal(second, axis1=1, axis2=2).copy() if want_cov else second
    cov = np.einsum("k,kij->ij", p_cov[idx], second) if want_cov else None
    return LincombPosterior(design.names, idx, mu, var, p_marg[idx], cov)
