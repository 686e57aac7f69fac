"""Model criteria: DIC, WAIC, CPO/PIT and PO, as R-INLA computes them in compact mode.

Every design point θ_k carries a Gaussian predictor η_i | θ_k, y ~ N(m_ik, v_ik)
(:class:`~adelia.inference.run.PointResults` ``eta_mean``/``eta_var``); the criteria are
per-point integrals over it, mixed over the points with the prune-0.999 mixture weights p_k
(``GMRFLib_ai_INLA_experimental``, ``GMRFLib_ai_{dic,po,cpopit}_integrate`` in R-INLA's
``gmrflib/approx-inference.c``). With ℓ_i(η) = log π(y_i | η, θ_k) the *unweighted*
log-likelihood and d_i the observation weight (R-INLA's ``weights``):

* **DIC** (Spiegelhalter et al. 2002). Per point dev_ik = −2 d_i E_k[ℓ_i] by 15-point
  Gauss–Hermite quadrature, where nodes with ℓ_i < max_j ℓ_i − ½ z_max² are dropped (R-INLA's
  guard against extreme values); ``mean.deviance`` = Σ_i Σ_k p_k dev_ik.
  ``deviance.mean`` = Σ_i −2 d_i ℓ_i(η̄_i) at the mean η̄_i of the predictor's posterior
  marginal (the 0.975-pruned mixture, R-INLA's combined ``lpred`` density) and at the
  likelihood hyperparameters of R-INLA's ``SET_MODE``: the evaluated θ with the largest
  log π̃(θ | y) — here the design point with the largest log π̃ (the optimiser's mode unless
  a design point beats it). p.eff = mean.deviance − deviance.mean, dic = mean.deviance + p.eff.
  Saturated versions subtract the saturated log-likelihood ℓ_i^sat(θ) = max_η ℓ_i(η), found
  as R-INLA's ``inla_compute_saturated_loglik_core`` does (Newton on ℓ_i(x + offset) −
  ½ τ x², τ going from 10⁴ to 10⁻⁴ over the first 5 steps, from x = 0), at θ_k inside the
  per-point integral and at the ``SET_MODE`` θ for ``deviance.mean.sat``;
  dic.sat = mean.deviance.sat + p.eff. Local values (R's ``inla.collect.dic``):
  local.dic = 2 E[dev_i] − dev_i(η̄), local.p.eff = E[dev_i] − dev_i(η̄).
* **WAIC** (Watanabe 2010; Gelman, Hwang & Vehtari 2014), from the PO integrals:
  po_ik = (E_k[e^{ℓ_i}])^{d_i}, po2_ik = d_i E_k[ℓ_i], po3_ik = d_i² E_k[ℓ_i²] (same quadrature
  and guard); po_i = Σ_k p_k po_ik, var_i = max(0, Σ_k p_k po3_ik − (Σ_k p_k po2_ik)²);
  waic = −2 Σ_i (log po_i − var_i), p.eff = Σ_i var_i.
* **CPO/PIT** (Pettit 1990; Held, Schrödle & Rue 2010). Per point, the leave-one-out
  density of η_i is π_k(η | y_{−i}) ∝ N(η; m_ik, v_ik) e^{−d_i ℓ_i(η)}, and

      cpo_ik = ∫ π_k(η | y_{−i}) e^{d ℓ(η)} dη = 1 / ∫ N(η; m, v) e^{−d ℓ(η)} dη,
      pit_ik = ∫ π_k(η | y_{−i}) F(y_i | η) dη

  (F the family's cdf, P(Y ≤ y) for discrete families; the division by the likelihood is
  regularised far in the tails as R-INLA does, see :func:`loo_integrals`). R-INLA tabulates
  the leave-one-out density on a 35-point grid over m ± 14.8 √v (``GMRFLib_compute_cpodens``)
  and integrates a spline fit of it with Simpson's rule; adelia integrates by Laplace-centred
  Gauss–Hermite quadrature instead: the mode η* of the log integrand by safeguarded Newton
  steps (the likelihood's η-derivatives; started at the best point of R-INLA's grid, step
  halving until the integrand increases), then 21 Gauss–Hermite nodes η* + s z_j with s the
  curvature scale at η*. For a Gaussian likelihood the integrand is Gaussian and the result
  exact. Points are combined as R-INLA does: cpo_i = Σ'_k p_k / Σ'_k (p_k/cpo_ik),
  pit_i = Σ'_k (p_k/cpo_ik) pit_ik / Σ'_k (p_k/cpo_ik) (Σ' over the usable points),
  failure_i = Σ_k p_k failure_ik.
  **failure_ik = 1** when the leave-one-out density is not well defined at θ_k:
  (R-INLA's definition, on R-INLA's grid) the tabulated log-density increases towards an end
  of the grid (its mass is not inside m ± 14.8 √v), or its maximum is less than
  ``cpo.diff`` = 3 log-units above the ends left after trimming such tails; (adelia's
  additions) its highest mode lies where the likelihood is ~10⁻⁹ of its maximum (the mass
  is an artefact of the regularisation), or it has a second, higher mode than the one
  integrated (a proper mode is preferred to a regularisation spike: the spike comes from
  dividing a Gaussian by a likelihood with super-exponential tails, e.g. Poisson or
  survival data with an extreme covariate; R-INLA integrates the spike and does not flag
  it), or the Newton iteration/curvature at the mode failed or a value is not finite. In the
  last case, and for R-INLA's < 3 log-units case (R-INLA: no density could be built), cpo_ik
  is left out of the combination; otherwise it is used. On the ``criteria`` reference case
  this flags the two lowest-probability design points (p = 0.0015, 0.008) for three
  observations (failure 0.0015, 0.0015, 0.0097) where R-INLA reports 0. Families without a cdf (the censored survival families)
  give PIT = NaN (R-INLA reports 0).
* **PO**: po_i as above (R-INLA's ``po`` output).

Rows with a missing response get NaN everywhere (R-INLA's NA) and are skipped in the sums.
Everything per design point is one jit-compiled function vectorised over the observations
of a family, mapped over the design points with ``lax.map`` (memory O(n_obs · nodes)).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .design import prune_probabilities

#: R-INLA's ``GMRFLib_INT_GHQ_POINTS`` Gauss–Hermite rule (probabilists', weights sum to 1).
GHQ_POINTS = 15
#: nodes of the Laplace-centred rule for the leave-one-out (CPO/PIT) integrals.
CPO_POINTS = 21
#: R-INLA's ``GMRFLib_weight_prob_one``: mixture weights kept for the criteria.
PRUNE_KEEP = 0.999
#: R-INLA's ``cpo.diff``: the leave-one-out log-density must rise this much above its ends.
CPO_REQ_DIFF_LOGDENS = 3.0
#: log of R-INLA's regularisation ε = √ε_mach · ε_mach^{1/4} of the leave-one-out density.
_LOG_COR_EPS = float(np.log(np.sqrt(np.finfo(float).eps) * np.finfo(float).eps ** 0.25))
#: a leave-one-out mode with log-likelihood less than this above log c is flagged (see loo_integrals).
_CAP_MARGIN = 6.0
#: the step fractions tried by the safeguarded Newton iteration for the leave-one-out mode.
_STEP_FRACTIONS = np.array([1.0, 0.5, 0.25, 0.125, 0.0625, 1.0 / 32])


def _rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = hermegauss(n)
    return z, w / np.sqrt(2.0 * np.pi)


# --- saturated log-likelihood ----------------------------------------------------------------------
def saturated_log_likelihood(loglik, dloglik, offset: jax.Array) -> jax.Array:
    """max_η ℓ_i(η) elementwise, by R-INLA's ``inla_compute_saturated_loglik_core``.

    Newton on f(x) = ℓ(x + offset) − ½ τ x² from x = 0 with curvature min(0, ℓ'') − τ, where
    τ = exp((1 − w) log 10⁴ + w log 10⁻⁴), w = min(1, iter/5); stops after iteration 8 once
    the step is below 10⁻⁶, after 100 iterations, or when ℓ stops being finite (keeping the
    last finite value). Returns ℓ at the last point evaluated (as R-INLA does), shape (n,).

    Args:
        loglik: η ↦ ℓ(η), shape (n,) → (n,).
        dloglik: η ↦ (ℓ'(η), ℓ''(η)).
        offset: shape (n,).

    Example:
        >>> import jax.numpy as jnp
        >>> ll = lambda e: -0.5 * (3.0 - e) ** 2
        >>> float(saturated_log_likelihood(ll, lambda e: (3.0 - e, -jnp.ones_like(e)), jnp.zeros(1))[0]) > -1e-6
        True
    """
    log_hi, log_lo = np.log(1e4), np.log(1e-4)
    x0 = jnp.zeros_like(offset)

    def cond(state):
        it, _, _, done = state
        return (it < 100) & ~jnp.all(done)

    def body(state):
        it, x, value, done = state
        w = jnp.minimum(1.0, it / 5.0)
        prec = jnp.exp(log_hi * (1.0 - w) + log_lo * w)
        eta = x + offset
        f = loglik(eta)
        g, h = dloglik(eta)
        bad = ~jnp.isfinite(f)
        step = (g - prec * x) / (jnp.minimum(0.0, h) - prec)
        converged = (it > 7) & (jnp.abs(step) < 1e-6)
        value = jnp.where(done | bad, value, f)
        x = jnp.where(done | bad, x, x - step)
        return it + 1, x, value, done | bad | converged

    _, _, value, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0), x0, jnp.full_like(x0, jnp.nan), jnp.zeros(x0.shape, bool)))
    return value


# --- Gauss–Hermite expectations over the Gaussian predictor ----------------------------------------
def _guarded_expectations(L: jax.Array, limit: float):
    """R-INLA's guard: nodes whose ℓ is below max_j ℓ + limit (limit = −½ z_max²) are dropped
    (their terms set to 0, the weights not renormalised). L: (J, n). Returns (mask, masked L)."""
    top = jnp.max(jnp.where(jnp.isnan(L), -jnp.inf, L), axis=0)
    mask = (L - top[None] >= limit) & jnp.isfinite(L)
    return mask, jnp.where(mask, L, 0.0)


# --- leave-one-out integrals -----------------------------------------------------------------------
def _cpodens_grid() -> np.ndarray:
    """R-INLA's standardised grid for the leave-one-out density (``GMRFLib_compute_cpodens``):
    the 19 Gauss–Hermite abscissas plus 8 equal steps beyond each end, out to ±2 z_max ≈ ±14.8."""
    z = np.sort(hermegauss(GHQ_POINTS + 4)[0])
    top = z[-1]
    steps = top * np.arange(1, 9) / 8.0
    return np.concatenate([z[0] - steps[::-1], z, z[-1] + steps])


def _trimmed_ends(ld: jax.Array) -> tuple[jax.Array, jax.Array]:
    """R-INLA's ``GMRFLib_ai_correct_cpodens`` on a (J, n) log-density table: the values at
    the ends after dropping tails that increase towards the grid's ends, and whether any
    were dropped."""
    J = ld.shape[0]
    rising_left = ld[:-1] > ld[1:]  # the density increases towards the left end at i
    left = jnp.argmin(rising_left, axis=0)  # first i that does not
    rising_right = ld[1:] > ld[:-1]  # increases towards the right end at i + 1
    right = J - 1 - jnp.argmin(rising_right[::-1], axis=0)
    trimmed = (left > 0) | (right < J - 1)
    ends = jnp.maximum(jnp.take_along_axis(ld, left[None], 0)[0], jnp.take_along_axis(ld, right[None], 0)[0])
    return ends, trimmed


def loo_integrals(m, v, d, loglik, dloglik, cdf=None, n_points: int = CPO_POINTS, max_iter: int = 50):
    """Per observation: log cpo, pit and failure of the leave-one-out density
    ∝ N(η; m, v) e^{−h̃(η)} at one design point (see the module docstring), vectorised.

    h = d ℓ is the weighted log-likelihood. Where N e^{−h} is not log-concave on R-INLA's grid
    m ± 14.8 √v (1/v + h'' ≤ 0 somewhere), e^{−h} is regularised as in R-INLA's
    ``GMRFLib_compute_cpodens`` to e^{h}/(c + e^{h})², c = ε e^{max h} with
    ε = √ε_mach · ε_mach^{1/4} and max h over that grid: where the likelihood is 10⁻¹² below
    its maximum the division by it stops growing (without this the leave-one-out integral of a
    Gaussian predictor diverges for, e.g., Poisson data, and for binomial data it picks up a
    spurious far mode). Where N e^{−h} is log-concave, c = 0 (R-INLA regularises always; this
    changes its values by ~10⁻⁶ relative but keeps the Gaussian case exact). Then

        cpo = E_N[σ²] / ∫ N e^{−h̃},   pit = E_loo[F(y | η)],   σ = e^h/(c + e^h)

    (cpo = ∫ loo-density · e^h as R-INLA; E_N[σ²] = 1 unless the regularisation is active).
    The integral uses Gauss–Hermite nodes η* + s z_j around a mode η* of N e^{−h̃} (Newton from
    the best grid point where the likelihood is not negligible), s = (−(log N e^{−h̃})''(η*))^{−1/2}
    (Laplace-centred), over the mode's basin (values above the mode are capped at it): exact
    for a Gaussian likelihood, ~10⁻⁶ relative for skewed unimodal densities.

    Args:
        m, v: predictor means and variances, shape (n,).
        d: observation weights, shape (n,).
        loglik, dloglik: η ↦ ℓ(η) (unweighted) and η ↦ (ℓ', ℓ''), shape (n,) → (n,).
        cdf: η ↦ P(Y ≤ y | η), or None (PIT = NaN).
        n_points: Gauss–Hermite nodes around the mode.

    Returns:
        (log_cpo, pit, failure, usable), each shape (n,): failure 1.0 where the density is
        not well defined (see the module docstring), usable False where log_cpo must not be
        used (R-INLA's NaN cpo), e.g. when the density could not be integrated at all.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> ll = lambda e: -0.5 * (1.0 - e) ** 2 - 0.5 * np.log(2 * np.pi)   # y = 1, N(η, 1)
        >>> dll = lambda e: (1.0 - e, -jnp.ones_like(e))
        >>> lc, _, _, _ = loo_integrals(jnp.array([0.5]), jnp.array([0.5]), jnp.ones(1), ll, dll)
        >>> # leave-one-out: η ~ N(0, 1) (precision 1/0.5 − 1), so cpo = N(1; 0, 1 + 1)
        >>> bool(abs(float(jnp.exp(lc[0])) - np.exp(-0.25) / np.sqrt(4 * np.pi)) < 1e-12)
        True
    """
    z, w = _rule(n_points)
    z, logw = jnp.asarray(z), jnp.asarray(np.log(w))
    zg, wg = (jnp.asarray(a) for a in _rule(GHQ_POINTS))
    grid = jnp.asarray(_cpodens_grid())
    fractions = jnp.asarray(_STEP_FRACTIONS)
    v = jnp.maximum(v, 1e-200)
    sd = jnp.sqrt(v)
    prec = 1.0 / v

    def h(eta):
        return d * loglik(eta)

    # R-INLA's regularisation constant and its grid checks
    eta_grid = m[None] + sd[None] * grid[:, None]
    hg = jax.vmap(h)(eta_grid)
    h_top = jnp.max(jnp.where(jnp.isfinite(hg), hg, -jnp.inf), axis=0)
    # no regularisation where N e^{−h} is log-concave over the whole grid (then the integral
    # is proper and the result exact, e.g. for a Gaussian likelihood)
    curv_grid = prec[None] + d[None] * jax.vmap(lambda e: dloglik(e)[1])(eta_grid)
    concave = jnp.all(curv_grid > 0, axis=0)
    log_c = jnp.where(concave, -jnp.inf, _LOG_COR_EPS + h_top)

    def reg(hv):  # log of e^h/(c + e^h)²: ≈ −h while e^h ≫ c
        return hv - 2.0 * jnp.logaddexp(log_c, hv)

    ld = -0.5 * grid[:, None] ** 2 + reg(hg)
    ends, trimmed = _trimmed_ends(jnp.where(jnp.isnan(ld), -jnp.inf, ld))
    peaked = jnp.max(ld, axis=0) - ends >= CPO_REQ_DIFF_LOGDENS

    def g(eta):  # log N(η; m, v) + reg(h(η)), without −½ log(2π v)
        return -0.5 * (eta - m) ** 2 * prec + reg(h(eta))

    def derivatives(eta):  # g' and −g''
        h0 = h(eta)
        h1, h2 = dloglik(eta)
        h1, h2 = d * h1, d * h2
        s = jax.nn.sigmoid(h0 - log_c)
        return -(eta - m) * prec + h1 * (1.0 - 2.0 * s), prec - h2 * (1.0 - 2.0 * s) + 2.0 * h1**2 * s * (1.0 - s)

    def cond(state):
        it, _, done = state
        return (it < max_iter) & ~jnp.all(done)

    def body(state):
        it, eta, done = state
        gp, curv = derivatives(eta)
        curv = jnp.where((curv > 0) & jnp.isfinite(curv), curv, prec)
        step = gp / curv
        g0 = g(eta)
        cand = eta[None] + fractions[:, None] * step[None]
        gc = jax.vmap(g)(cand)
        better = (gc >= g0[None]) & jnp.isfinite(gc)
        first = jnp.argmax(better, axis=0)
        new = jnp.where(jnp.any(better, axis=0), jnp.take_along_axis(cand, first[None], axis=0)[0], eta)
        small = jnp.abs(step) * jnp.sqrt(curv) < 1e-10
        return it + 1, jnp.where(done, eta, new), done | small | ~jnp.isfinite(step)

    # start at the best point of R-INLA's grid where the likelihood is not negligible (the
    # regularisation can create a higher spike where the division by the likelihood is capped:
    # an artefact of dividing a Gaussian by a super-exponentially decaying likelihood), else
    # at the best point overall: robust when the density is skewed or bimodal
    ld_ok = jnp.where(jnp.isnan(ld), -jnp.inf, ld)
    proper = hg - log_c[None] >= _CAP_MARGIN
    ld_proper = jnp.where(proper, ld_ok, -jnp.inf)
    best = jnp.where(jnp.any(proper, axis=0), jnp.argmax(ld_proper, axis=0), jnp.argmax(ld_ok, axis=0))
    start = m + sd * grid[best]
    _, mode, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0), start, jnp.zeros(m.shape, bool)))
    gp, curv = derivatives(mode)
    ok = jnp.isfinite(mode) & jnp.isfinite(curv) & (curv > 0)
    scale = jnp.where(ok, 1.0 / jnp.sqrt(jnp.where(ok, curv, 1.0)), sd)
    ok = ok & (jnp.abs(gp) * scale < 1e-6)
    g_mode = g(mode)
    nodes = mode[None] + scale[None] * z[:, None]
    # log of the integrand relative to the Gaussian with the mode's curvature, plus log weights;
    # the integral covers the mode's own basin: values above the mode (another, higher mode)
    # are capped at it, and the point is flagged
    g_nodes = jax.vmap(g)(nodes)
    tol = 1e-8 * (1.0 + jnp.abs(g_mode))
    # (the grid values are g at the grid points: ld = g(m + √v x))
    other_mode = jnp.any(g_nodes > (g_mode + tol)[None], axis=0) | (jnp.max(ld_ok, axis=0) > g_mode + tol)
    r = jnp.minimum(g_nodes, g_mode[None]) - g_mode[None] + 0.5 * z[:, None] ** 2 + logw[:, None]
    lse = jax.scipy.special.logsumexp(r, axis=0)
    log_integral = g_mode + jnp.log(scale) - 0.5 * jnp.log(v) + lse  # log ∫ N e^{−h̃}
    # E_N[σ²], σ = e^h/(c + e^h), by Gauss–Hermite over N(m, v)
    s2 = jax.nn.sigmoid(jax.vmap(h)(m[None] + sd[None] * zg[:, None]) - log_c[None]) ** 2
    log_cpo = jnp.log(wg @ jnp.where(jnp.isnan(s2), 0.0, s2)) - log_integral
    usable = ok & jnp.isfinite(log_cpo) & peaked & (d != 0)
    if cdf is None:
        pit = jnp.full_like(m, jnp.nan)
    else:
        F = jax.vmap(cdf)(nodes)
        pit = jnp.clip(jnp.sum(jnp.exp(r - lse[None]) * F, axis=0), 0.0, 1.0)
        usable = usable & jnp.isfinite(pit)
    # the mode sits where the likelihood is below ~10⁻⁹ of its maximum: the mass is the
    # regularisation's, not the leave-one-out density's (flagged, still used, as R-INLA's
    # trimmed densities)
    at_cap = h(mode) - log_c < _CAP_MARGIN
    failure = jnp.where(usable & ~trimmed & ~at_cap & ~other_mode, 0.0, 1.0)
    return log_cpo, pit, failure, usable


# --- one family block at one design point ---------------------------------------------------------
def _family_functions(fb, y, data, theta_full):
    lik = fb.likelihood
    th = fb.theta(theta_full)

    def loglik(eta):
        return lik.log_density(y, eta, th, data)

    def dloglik(eta):
        return lik.d_log_density(y, eta, th, data)

    def cdf(eta):
        return lik.cdf(y, eta, th, data)

    return loglik, dloglik, cdf


def _has_cdf(fb, y, data, theta_full) -> bool:
    try:
        jax.eval_shape(lambda e: fb.likelihood.cdf(y, e, fb.theta(theta_full), data), y)
    except NotImplementedError:
        return False
    return True


def _point_terms(fb, want: tuple[bool, bool, bool]):
    """(m, v, θ_full, y, data, d, offset) -> dict of per-observation terms at one point."""
    dic, po, cpo = want
    zg, wg = _rule(GHQ_POINTS)
    limit = -0.5 * float(np.max(np.abs(zg))) ** 2
    zg, wg = jnp.asarray(zg), jnp.asarray(wg)

    def terms(m, v, theta_full, y, data, d, offset):
        loglik, dloglik, cdf = _family_functions(fb, y, data, theta_full)
        out = {}
        if dic or po:
            nodes = m[None] + jnp.sqrt(jnp.maximum(v, 0.0))[None] * zg[:, None]
            L = jax.vmap(loglik)(nodes)
            mask, Lm = _guarded_expectations(L, limit)
            if dic:
                sat = saturated_log_likelihood(loglik, dloglik, offset)
                out["dev"] = -2.0 * d * (wg @ Lm)
                out["dev_sat"] = -2.0 * d * (wg @ jnp.where(mask, L - sat[None], 0.0))
            if po:
                e1 = wg @ jnp.where(mask, jnp.exp(Lm), 0.0)
                out["po"] = jnp.exp(d * jnp.log(jnp.maximum(e1, np.finfo(float).eps)))
                out["po2"] = d * (wg @ Lm)
                out["po3"] = d**2 * (wg @ Lm**2)
        if cpo:
            has_cdf = _has_cdf(fb, y, data, theta_full)
            log_cpo, pit, fail, usable = loo_integrals(m, v, d, loglik, dloglik, cdf if has_cdf else None)
            out.update(log_cpo=log_cpo, pit=pit, failure=fail, usable=usable.astype(jnp.float64))
        return out

    return terms


def _block_function(model, fb, want):
    """Jit-compiled: (M (K, n_f), V (K, n_f), Θ (K, n_θ), y, data, d, offset) -> terms (K, n_f)."""
    cache = model.__dict__.setdefault("_criteria_functions", {})
    key = (id(fb), want)
    if key not in cache:
        terms = _point_terms(fb, want)

        def run(M, V, TH, y, data, d, offset):
            return jax.lax.map(lambda a: terms(a[0], a[1], a[2], y, data, d, offset), (M, V, TH))

        cache[key] = jax.jit(run)
    return cache[key]


def _mode_function(model, fb):
    """Jit-compiled: (η̄, θ_full, y, data, offset) -> (ℓ(η̄), ℓ^sat) at one θ."""
    cache = model.__dict__.setdefault("_criteria_functions", {})
    key = (id(fb), "mode")
    if key not in cache:

        def run(eta, theta_full, y, data, offset):
            loglik, dloglik, _ = _family_functions(fb, y, data, theta_full)
            return loglik(eta), saturated_log_likelihood(loglik, dloglik, offset)

        cache[key] = jax.jit(run)
    return cache[key]


def _block_data(fb):
    """(y, unweighted data, weights d) of a family block as jax arrays."""
    data = {k: jnp.asarray(v) for k, v in fb.data.items() if k != "weights" and v is not None}
    w = fb.data.get("weights")
    d = jnp.ones(fb.rows.size) if w is None else jnp.asarray(w, dtype=jnp.float64)
    return jnp.asarray(fb.y, dtype=jnp.float64), data, d


# --- the public entry point --------------------------------------------------------------------------
def compute_criteria(model, post, control_compute: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """DIC, WAIC, CPO/PIT and PO of a fitted model, in R-INLA's structures.

    Args:
        model: the compiled :class:`adelia.model.Model`.
        post: its :class:`adelia.inference.run.Posterior` (design points with predictor
            moments, mixture probabilities, predictor marginals).
        control_compute: R-INLA's ``control.compute``; reads ``dic``, ``waic``, ``cpo``, ``po``.

    Returns:
        A dict with the requested entries (arrays have one value per observation row, NaN
        where the response is missing):

        * ``"dic"``: dic, p.eff, mean.deviance, deviance.mean, dic.sat, mean.deviance.sat,
          deviance.mean.sat, local.dic, local.dic.sat, local.p.eff, family.dic,
          family.dic.sat, family.p.eff (one per family), family (1-based family per row);
        * ``"waic"``: waic, p.eff, local.waic, local.p.eff;
        * ``"cpo"``: cpo, pit, failure;
        * ``"po"``: po.

    Example:
        >>> import adelia
        >>> seeds = adelia.datasets.load("Seeds")
        >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
        ...                   Ntrials="n", control_compute={"dic": True, "cpo": True})
        >>> round(res.dic["dic"]), res.cpo["cpo"].shape
        (121, (21,))
    """
    cc = {str(k).replace("_", "."): v for k, v in control_compute.items()}
    want_dic, want_waic = bool(cc.get("dic")), bool(cc.get("waic"))
    want_cpo, want_po = bool(cc.get("cpo")), bool(cc.get("po"))
    want = (want_dic, want_waic or want_po, want_cpo)
    if not any(want):
        return {}

    obs = model.observations
    n = obs.n_obs
    pts = post.points
    p_all = prune_probabilities(post.probabilities, PRUNE_KEEP)
    keep = np.flatnonzero(p_all > 0)
    p = p_all[keep]
    M = jnp.asarray(pts.eta_mean[keep])
    V = jnp.asarray(np.maximum(pts.eta_var[keep], 0.0))
    TH = jnp.asarray(pts.theta_full[keep], dtype=jnp.float64)
    offset = np.asarray(obs.offset, dtype=float)

    names = ("dev", "dev_sat") * want_dic + ("po", "po2", "po3") * want[1] + ("log_cpo", "pit", "failure", "usable") * want_cpo
    per_point = {k: np.full((keep.size, n), np.nan) for k in names}
    for fb in obs.families:
        if fb.rows.size == 0:
            continue
        y, data, d = _block_data(fb)
        fn = _block_function(model, fb, want)
        rows = np.asarray(fb.rows)
        out = fn(M[:, rows], V[:, rows], TH, y, data, d, jnp.asarray(offset[rows]))
        for k, val in out.items():
            per_point[k][:, rows] = np.asarray(val)

    # R-INLA's data rows: a response and a non-zero weight
    observed = np.zeros(n, dtype=bool)
    for fb in obs.families:
        w = fb.data.get("weights")
        observed[np.asarray(fb.rows)] = True if w is None else np.asarray(w) != 0
    result: dict[str, dict[str, Any]] = {}
    if want_dic:
        result["dic"] = _dic(model, post, p, per_point, observed, offset)
    if want_waic:
        result["waic"] = _waic(p, per_point, observed)
    if want_po:
        result["po"] = {"po": np.where(observed, p @ np.nan_to_num(per_point["po"]), np.nan)}
    if want_cpo:
        result["cpo"] = _cpo(p, per_point, observed)
    return result


def _dic(model, post, p, per_point, observed, offset) -> dict[str, Any]:
    obs = model.observations
    n = obs.n_obs
    e_dev = np.where(observed, p @ np.nan_to_num(per_point["dev"]), np.nan)
    e_dev_sat = np.where(observed, p @ np.nan_to_num(per_point["dev_sat"]), np.nan)
    # R-INLA's SET_MODE: the hyperparameters of the best θ evaluated
    best = int(np.nanargmax(np.where(np.isfinite(post.points.log_post), post.points.log_post, -np.inf)))
    theta_mode = jnp.asarray(post.points.theta_full[best], dtype=jnp.float64)
    eta_bar = np.asarray(post.predictor.mean())
    dev_e = np.full(n, np.nan)
    dev_e_sat = np.full(n, np.nan)
    family = np.full(n, np.nan)
    for j, fb in enumerate(obs.families):
        if fb.rows.size == 0:
            continue
        rows = np.asarray(fb.rows)
        y, data, d = _block_data(fb)
        ll, sat = _mode_function(model, fb)(jnp.asarray(eta_bar[rows]), theta_mode, y, data, jnp.asarray(offset[rows]))
        d = np.asarray(d)
        dev_e[rows] = -2.0 * d * np.asarray(ll)
        dev_e_sat[rows] = -2.0 * d * (np.asarray(ll) - np.asarray(sat))
        family[rows] = j + 1
    dev_e, dev_e_sat, family = (np.where(observed, a, np.nan) for a in (dev_e, dev_e_sat, family))
    mean_dev, mean_dev_sat = np.nansum(e_dev), np.nansum(e_dev_sat)
    dev_mean, dev_mean_sat = np.nansum(dev_e), np.nansum(dev_e_sat)
    p_eff = mean_dev - dev_mean
    local_dic = 2.0 * e_dev - dev_e
    local_dic_sat = 2.0 * e_dev_sat - dev_e_sat
    local_p_eff = e_dev - dev_e
    n_fam = len(obs.families)
    fam_sum = lambda a: np.array([np.nansum(a[family == j + 1]) for j in range(n_fam)])  # noqa: E731
    return {
        "dic": float(p_eff + mean_dev),
        "p.eff": float(p_eff),
        "mean.deviance": float(mean_dev),
        "deviance.mean": float(dev_mean),
        "dic.sat": float(p_eff + mean_dev_sat),
        "mean.deviance.sat": float(mean_dev_sat),
        "deviance.mean.sat": float(dev_mean_sat),
        "family.dic": fam_sum(local_dic),
        "family.dic.sat": fam_sum(local_dic_sat),
        "family.p.eff": fam_sum(local_p_eff),
        "family": family,
        "local.dic": local_dic,
        "local.dic.sat": local_dic_sat,
        "local.p.eff": local_p_eff,
    }


def _waic(p, per_point, observed) -> dict[str, Any]:
    po = p @ np.nan_to_num(per_point["po"])
    po2 = p @ np.nan_to_num(per_point["po2"])
    po3 = p @ np.nan_to_num(per_point["po3"])
    var = np.where(observed, np.maximum(0.0, po3 - po2**2), np.nan)
    log_po = np.where(observed, np.log(np.where(observed, po, 1.0)), np.nan)
    return {
        "waic": float(-2.0 * (np.nansum(log_po) - np.nansum(var))),
        "p.eff": float(np.nansum(var)),
        "local.waic": -2.0 * (log_po - var),
        "local.p.eff": var,
    }


def _cpo(p, per_point, observed) -> dict[str, Any]:
    usable = per_point["usable"] == 1.0
    # weights p_k/cpo_k in log space (1/cpo_k can be huge), over the usable points only
    log_terms = np.where(usable, np.log(p)[:, None] - np.where(usable, per_point["log_cpo"], 0.0), -np.inf)
    top = np.max(log_terms, axis=0)
    top = np.where(np.isfinite(top), top, 0.0)
    scaled = np.exp(log_terms - top[None])
    z = scaled.sum(axis=0)
    p_ok = np.sum(np.where(usable, p[:, None], 0.0), axis=0)
    defined = observed & (z > 0)
    z = np.where(defined, z, 1.0)
    cpo = np.where(defined, np.maximum(p_ok * np.exp(-top) / z, np.finfo(float).tiny), np.nan)
    pit_k = per_point["pit"]
    pit = np.clip(np.sum(scaled * np.where(usable, np.nan_to_num(pit_k), 0.0), axis=0) / z, 0.0, 1.0)
    pit_defined = np.all(np.isfinite(pit_k) | ~usable, axis=0)
    pit = np.where(defined & pit_defined, pit, np.nan)
    fail = np.where(observed, p @ np.nan_to_num(per_point["failure"], nan=1.0), np.nan)
    return {"cpo": cpo, "pit": pit, "failure": fail}
