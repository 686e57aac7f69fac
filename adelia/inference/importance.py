"""Importance-sampling correction of the Laplace approximation at given θ points (adelia's
own; R-INLA has no such thing).

INLA's π̃(θ | y) ∝ π(θ) π(y, x* | θ) / π_G(x* | θ, y) is the Laplace approximation of the
marginal likelihood π(y | θ) = ∫ π(y, x | θ) dx, evaluated at the mode x*(θ) of the Gaussian
approximation π_G. The integral itself is an expectation under π_G (Rue, Martino & Chopin
2009, §3; the "importance sampling" view of INLA of Berild et al. 2022, JCGS 31):

    π(y | θ) = E_{x ~ π_G(·|θ,y)} [ π(y, x | θ) / π_G(x | θ, y) ],

so with r(x) = π(y, x | θ) / π_G(x | θ, y) and S draws x_s ~ π_G,

    c(θ) = π(y | θ) / π̃(y | θ) = E[ r(x) / r(x*) ] ≈ (1/S) Σ_s r(x_s) / r(x*),

    log r(x_s) − log r(x*) = g(x_s) − g(x*) + ½ (x_s − x*)ᵀ Q_c (x_s − x*),

g(x) = log π(y | x, θ) − ½ (x − μ)ᵀ Q(θ) (x − μ) (the x-dependent part of log π(y, x | θ);
:meth:`.laplace.LaplaceApproximation._log_joint`) and Q_c the precision of π_G. Every
normalising constant cancels in the ratio, and on a constraint set {C x = e} (draws
corrected by kriging, as :mod:`.sampling`) the constrained Gaussian's density is the same
quadratic form restricted to the set. Points θ_k drawn from π̃(θ | y) then carry weights
∝ c(θ_k) (self-normalised), and the same draws weighted by w_s ∝ r(x_s) are draws from the
exact conditional π(x | θ_k, y): the weighted moments of x and η = A x at θ_k are exact up
to Monte Carlo error, where π_G's mean and variance carry the Gaussian approximation's error.

Draws come in antithetic pairs x* ± z (z ~ N(0, Q_c⁻¹)): the odd part of log r cancels
to first order, which halves the variance for near-Gaussian targets at no cost, and the
unweighted mean of the draws is x* exactly. Variances use the unweighted draws as a control
variate: Var(x_i | θ, y) ≈ Var_G(x_i) + (weighted − unweighted sample variance), whose
expectation is the weighted estimate's but whose noise, where the weights are nearly equal,
is far smaller (the two sample variances share their draws) — ``var_shift``.

Limits: this is plain importance sampling in dim x. Where π(x | θ, y) is far from π_G, or
in high dimension, the weights degenerate — the within-point effective sample size
(Σ w)² / Σ w² (reported) then falls to a handful and the estimate is noisy (and biased low
for c(θ), by Jensen). It is meant for small-to-moderate latent fields (hundreds to a few
thousand nodes) where the Laplace error is what matters, as Seeds' bimodal log τ.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: draws per point, in pairs ± z (the default of ``nuts: {"importance.draws": ...}``)
IMPORTANCE_DRAWS = 512
#: draws processed at once are capped so that one chunk holds about this many floats
_CHUNK_FLOATS = 2**24


@dataclass
class ImportanceCorrection:
    """Per point θ_k (leading axis K): the importance-sampling correction of the Laplace
    approximation there.

    Attributes:
        log_ratio: (K,) log ĉ(θ_k) = log π̂(y | θ_k) − log π̃(y | θ_k).
        ess: (K,) effective sample size of the within-point weights, (Σ w)² / Σ w².
        mean, var: (K, n_latent) weighted moments of x under π(x | θ_k, y).
        eta_mean, eta_var: (K, n_eta) weighted moments of the linear predictor(s), laid out
            as :class:`.run.PointResults`' ``eta_mean`` (A x + offset, then the formula rows).
        var_shift, eta_var_shift: (K, ·) weighted minus unweighted sample variances (about x*
            and η(x*)): add them to π_G's variances for the control-variate estimates.
        n_draws: draws per point.
    """

    log_ratio: np.ndarray
    ess: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eta_mean: np.ndarray
    eta_var: np.ndarray
    var_shift: np.ndarray
    eta_var_shift: np.ndarray
    n_draws: int

    def weights(self, log_base: np.ndarray | None = None) -> np.ndarray:
        """Normalised point weights ∝ exp(log_base) · ĉ(θ_k) (``log_base`` None: points drawn
        from π̃(θ | y), equal base weights); non-finite points get 0."""
        lw = self.log_ratio + (0.0 if log_base is None else np.asarray(log_base, dtype=float))
        lw = np.where(np.isfinite(lw), lw, -np.inf)
        w = np.exp(lw - np.max(lw))
        return w / w.sum()

    def point_ess(self, log_base: np.ndarray | None = None) -> float:
        """Effective number of points under :meth:`weights` (Kish: 1 / Σ w²)."""
        w = self.weights(log_base)
        return float(1.0 / np.sum(w**2))


def _programs(model):
    """(pieces, evaluate): jit-compiled once per model. ``pieces(θ_full, x0)`` -> (x*, Q_c
    values, W, S) of π_G; ``evaluate(θ_full, x*, Q_c, Z)`` -> (log r(x*+z) − log r(x*) per
    row of Z, η of every draw)."""
    cached = getattr(model, "_importance_programs", None)
    if cached is not None:
        return cached
    lap = model.laplace
    g = model.graph
    offset = jnp.asarray(model.observations.offset)
    effect_map = g.effect_map
    effect_offset = jnp.asarray(getattr(model, "effect_offset", 0.0)) if effect_map is not None else None

    def pieces(theta_full, x0):
        ga = lap.gaussian_approximation(theta_full, x0)
        return ga.mode, ga.precision_values, ga.W, ga.S

    def evaluate(theta_full, x_star, qcv, Z):
        qv = g.prior_values(theta_full)
        av = g.a_values(theta_full)
        joint = lambda x: lap._log_joint(x, theta_full, qv, av)
        X = x_star[None, :] + Z
        quad = 0.5 * jnp.sum(Z * jax.vmap(lambda z: g.posterior_matvec(qcv, z))(Z), axis=1)
        lw = jax.vmap(joint)(X) - joint(x_star) + quad
        eta = jax.vmap(lambda x: g.predictor(av, x))(X) + offset[None, :]
        if effect_map is not None:
            ev = effect_map.entry_values(g.copy_betas(theta_full))
            eff = jax.vmap(lambda x: effect_map.apply(ev, x))(X) + effect_offset
            eta = jnp.concatenate([eta, eff], axis=1)
        return lw, eta

    out = (jax.jit(pieces), jax.jit(evaluate))
    model._importance_programs = out
    return out


def _chunk(n_draws: int, width: int) -> int:
    """Draws per chunk: a power of two (a fixed shape, compiled once), ≤ n_draws."""
    c = 1
    while c * 2 <= n_draws and c * 2 * width <= _CHUNK_FLOATS:
        c *= 2
    return c


def importance_correction(model, theta_full: np.ndarray, x0: np.ndarray, n_draws: int = IMPORTANCE_DRAWS,
                          seed: int = 0) -> ImportanceCorrection:
    """The importance-sampling correction (module doc) at each row of ``theta_full``.

    Args:
        model: a compiled :class:`adelia.model.Model`.
        theta_full: (K, n_theta) full hyperparameter vectors (``PointResults.theta_full``).
        x0: (K, n_latent) warm starts of the inner Newton (the modes x*(θ_k)).
        n_draws: draws per point (rounded up to an even number: antithetic pairs).
        seed: the points use independent streams spawned from it.

    Example:
        >>> corr = importance_correction(model, pts.theta_full, pts.mode, n_draws=256)   # doctest: +SKIP
        >>> corr.weights(), corr.ess.min()                                                # doctest: +SKIP
    """
    from .sampling import _gaussian_draws

    theta_full = np.atleast_2d(np.asarray(theta_full, dtype=float))
    x0 = np.atleast_2d(np.asarray(x0, dtype=float))
    g = model.graph
    C = None if g.constraints is None else np.asarray(g.constraints.C)
    half = max(1, (int(n_draws) + 1) // 2)
    pieces, evaluate = _programs(model)
    K = theta_full.shape[0]
    n_eta = None
    log_ratio, ess = np.full(K, -np.inf), np.zeros(K)
    mean, var = np.full((K, g.n_latent), np.nan), np.full((K, g.n_latent), np.nan)
    var_shift = np.full((K, g.n_latent), np.nan)
    eta_mean = eta_var = eta_shift = None
    key0 = jax.random.key(int(np.random.default_rng(seed).integers(0, 2**62)))
    for k in range(K):
        th = jnp.asarray(theta_full[k])
        x_star, qcv, W, S = pieces(th, jnp.asarray(x0[k]))
        z = _gaussian_draws(model, qcv, jax.random.fold_in(key0, k), half)
        if C is not None:  # onto {C x = e}: x* is on it, so the draws' deviations satisfy C z = 0
            z = z - (np.asarray(W) @ np.linalg.solve(np.asarray(S), C @ z.T)).T
        Z = np.concatenate([z, -z], axis=0)
        step = _chunk(Z.shape[0], g.n_latent)
        lws, etas = [], []
        for i in range(0, Z.shape[0], step):
            lw, eta = evaluate(th, x_star, qcv, jnp.asarray(Z[i:i + step]))
            lws.append(np.asarray(lw))
            etas.append(np.asarray(eta))
        lw = np.concatenate(lws)
        eta = np.concatenate(etas)
        if n_eta is None:
            n_eta = eta.shape[1]
            eta_mean, eta_var, eta_shift = (np.full((K, n_eta), np.nan) for _ in range(3))
        ok = np.isfinite(lw)
        if not np.any(ok):
            continue
        top = float(np.max(lw[ok]))
        w = np.where(ok, np.exp(np.where(ok, lw, top) - top), 0.0)
        log_ratio[k] = top + float(np.log(np.mean(w)))
        w = w / w.sum()
        ess[k] = 1.0 / float(np.sum(w**2))
        X = np.asarray(x_star)[None, :] + Z
        mean[k] = w @ X
        var[k] = w @ (X - mean[k]) ** 2
        var_shift[k] = var[k] - np.mean(Z**2, axis=0)  # the antithetic draws' own mean is x*
        eta_mean[k] = w @ eta
        eta_var[k] = w @ (eta - eta_mean[k]) ** 2
        eta_shift[k] = eta_var[k] - np.mean((eta - eta.mean(axis=0)) ** 2, axis=0)
    return ImportanceCorrection(log_ratio, ess, mean, var, eta_mean, eta_var, var_shift, eta_shift, 2 * half)
