"""The posterior of the linear predictor at new rows: exact Gaussian mixture and joint draws.

New rows enter as η_new = A_new(θ) x + u_new + offset_new (:mod:`adelia.predict` builds
A_new from the fitted model's terms), where u_new collects the effects of iid levels the
fit has not seen: a priori independent of x, u_new,l | θ ~ N(0, 1/(τ(θ) + d)) (τ the term's
precision, d its ``diagonal``).

Exact path (means, sds, quantiles, mode). η_new is linear in x, so under INLA's joint
posterior, the mixture Σ_k p_k π_G(x | θ_k, y), every row is the Gaussian mixture

    π(η_new,i | y) = Σ_k p_k N(a_i'μ̃_k + o_i, a_i'Σ_k a_i + Σ_t w_it²/(τ_t(θ_k) + d_t)),

μ̃_k the VB-corrected mean at θ_k, Σ_k = Q_c(θ_k)⁻¹ conditioned on the constraints (one solve
per row with the factor of Q_c(θ_k): :func:`adelia.inference.lincomb.lincomb_point_function`
computes a'μ̃ and a'Σa for any set of rows a), and p_k the integration probabilities pruned
as for ``summary_linear_predictor`` (R-INLA's GMRFLib_weight_prob = 0.975). At rows of the
fitted data this is ``summary_linear_predictor``'s mixture term for term.

Sampling path (``samples``, ``expr``): joint draws (θ_k, x) from the same mixture
(:func:`adelia.inference.sampling.draw_latent`), one draw of each new iid level per sample
shared by all rows of that level, then η_new for each draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .design import prune_probabilities
from .lincomb import MARGINAL_KEEP, lincomb_point_function
from .summaries import Mixture


@dataclass(frozen=True)
class NewLevels:
    """Rows of new data at iid levels the fit has not seen (one f() term).

    Attributes:
        label: the f() term.
        theta_index: position of the term's log precision in the full θ.
        diagonal: the term's ``diagonal`` (added to the precision).
        rows: (r,) 0-based new rows at an unseen level.
        level: (r,) 0-based index of each such row's level among ``levels``.
        levels: the unseen level values, in order of first appearance.
        weights: (r,) the f() weights of those rows.
    """

    label: str
    theta_index: int
    diagonal: float
    rows: np.ndarray
    level: np.ndarray
    levels: tuple
    weights: np.ndarray

    def variance(self, theta_full: np.ndarray) -> np.ndarray:
        """(K, r) prior variance w²/(τ + d) of these rows at each θ_k (rows of ``theta_full``)."""
        tau = np.exp(np.asarray(theta_full, dtype=float)[:, self.theta_index])
        return self.weights[None, :] ** 2 / (tau[:, None] + self.diagonal)


@dataclass(frozen=True)
class RowsDesign:
    """New rows of a fitted model: η_new = Σ_j β_j(θ) L_j x + u_new + offset.

    ``latent`` is (L_0, L_1, ...): L_0 unscaled (fixed effects and f() terms), L_j the j-th
    copy term scaled by its β (the layout of the model's own A); ``terms`` the same per
    effect: (label, is a fixed effect, group j, matrix); the f() terms' parts go to ``expr``."""

    n_rows: int
    latent: tuple[sp.csr_matrix, ...]
    offset: np.ndarray
    new_levels: tuple[NewLevels, ...]
    terms: tuple

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"row{i}" for i in range(self.n_rows))


class _ModelWithRows:
    """The fitted model seen through a lincomb design of the new rows (for
    :func:`lincomb_point_function`, which reads ``model.lincombs``)."""

    def __init__(self, model, design: RowsDesign):
        self._model = model
        self.lincombs = _RowCombinations(design)

    def __getattr__(self, name):
        return getattr(self._model, name)


@dataclass(frozen=True)
class _RowCombinations:
    design: RowsDesign

    @property
    def names(self):
        return self.design.names

    @property
    def latent(self):
        return self.design.latent

    obs = None
    rows = None

    @property
    def n(self) -> int:
        return self.design.n_rows


def exact_mixture(model, posterior, design: RowsDesign) -> Mixture:
    """The Gaussian mixture of η_new at every new row (see the module docstring), (K', n_new)."""
    import jax

    probs = np.asarray(posterior.probabilities, dtype=float)
    p_pred = prune_probabilities(probs, MARGINAL_KEEP)
    idx = np.flatnonzero(p_pred > 0)
    pts = posterior.points
    point = jax.jit(lincomb_point_function(_ModelWithRows(model, design), False))
    means, variances = [], []
    for k in idx:
        row = np.concatenate([pts.theta[k], pts.mode[k], pts.mean[k]])
        mu, var = point(row)
        means.append(np.asarray(mu))
        variances.append(np.asarray(var))
    mean = np.asarray(means).reshape(idx.size, design.n_rows) + design.offset[None, :]
    var = np.maximum(np.asarray(variances).reshape(idx.size, design.n_rows), 0.0)
    for nl in design.new_levels:
        var[:, nl.rows] += nl.variance(pts.theta_full[idx])
    return Mixture(p_pred[idx], mean, np.sqrt(np.maximum(var, 1e-300)))


def copy_betas(model, theta_full: np.ndarray) -> np.ndarray:
    """(m, 1 + n_copies): the scale of each group of A's entries at each θ (rows)."""
    theta_full = np.atleast_2d(theta_full)
    cols = [np.ones(theta_full.shape[0])]
    for cp in model.graph.copies:
        cols.append(np.full(theta_full.shape[0], cp.beta) if cp.theta_index is None else theta_full[:, cp.theta_index])
    return np.column_stack(cols)


def draw_rows(model, posterior, design: RowsDesign, n: int, seed=0):
    """Joint draws at the new rows.

    Returns:
        (config (n,), theta_full (n, n_theta), x (n, n_latent), effects: f() label -> (n, n_new)
        the term's contribution at the new rows (new iid levels included), eta (n, n_new)).
    """
    from .sampling import _rng_and_key, draw_latent

    rng, _ = _rng_and_key(seed)
    config, x, _ = draw_latent(model, posterior, n, seed=rng)
    theta_full = posterior.points.theta_full[config]
    betas = copy_betas(model, theta_full)
    eta = np.tile(design.offset, (config.size, 1))
    effects: dict[str, np.ndarray] = {}
    for label, fixed, j, L in design.terms:
        contrib = np.asarray(L @ x.T).T * betas[:, j : j + 1]
        if not fixed:  # fixed effects are reported by their coefficients
            effects[label] = contrib
        eta += contrib
    for nl in design.new_levels:
        tau = np.exp(theta_full[:, nl.theta_index])
        sd = 1.0 / np.sqrt(tau + nl.diagonal)
        u = rng.standard_normal((config.size, len(nl.levels))) * sd[:, None]
        contrib = np.zeros_like(eta)
        contrib[:, nl.rows] = u[:, nl.level] * nl.weights[None, :]
        effects[nl.label] = effects.get(nl.label, 0.0) + contrib
        eta += contrib
    return config, theta_full, x, effects, eta
