"""R-INLA's summary of a mixture over θ: the spline-corrected Gaussian of ``GMRFLib_density_combine``.

R-INLA does not report the exact moments of the mixture π(x_i | y) ≈ Σ_k w_k π̃(x_i | θ_k, y)
(:class:`~adelia.inference.summaries.Mixture`). For every latent node, fixed effect and
linear predictor it first turns the mixture into one density of type "spline-corrected
Gaussian" (``GMRFLib_density_combine`` and ``GMRFLib_density_create`` / ``GMRFLib_init_density``
in R-INLA's gmrflib/density.c) and reports that density's mean, sd, quantiles, mode and
marginal. The construction, for one node, with (μ, σ) the exact mean and sd of the mixture:

1. The log density of the mixture at x_j = μ + σ g_j on the 27 standardised abscissae
   g = (−5, −4, −3.5, …, 3.5, 4, 5) (:data:`COMBINE_GRID`); shifted to maximum 0, plus ½ g_j²:
   c_j, the log correction of the standard Gaussian. c is interpolated by a natural cubic
   spline c(z) (GSL's ``cspline``); beyond ±5 (only the returned marginals go there)
   ``GMRFLib_spline_eval`` extends it linearly by its end slope where that slope is ≥ 0 and as
   a constant where it is negative (it takes every untransformed spline to be increasing).
   The combined density of z = (x − μ)/σ is  p(z) ∝ exp(c(z) − z²/2).
2. log p on 45 equispaced points of [−5, 5] (``GMRFLib_INT_NUM_POINTS``), linearly
   interpolated *in log scale* to 133 points (3 per interval, ``GMRFLib_INT_NUM_INTERPOL``),
   exponentiated: Simpson's rule on these gives the normaliser and the moments
   E z, Var z — the reported mean μ + σ E z and sd σ √Var z. Nothing beyond ±5 σ counts:
   this is what cuts the heavy tail of a mixture whose components differ much in scale.
3. Mode: the largest of the 133 values and a parabola through it and its two neighbours
   (on the density values).
4. Cdf: the trapezoidal cumulative sum of the 133 values, normalised, kept at every 3rd
   point (the 45 coarse points); quantiles come from a Steffen (monotone) spline of z
   against logit(F) (``GMRFLib_INTPOL_TRANS_Pinv``; logit arguments truncated to
   [ε, 1 − ε], ε = 2^-26·2^-13; ties within 2^-26 merged, keeping the last), extended
   linearly beyond its ends.
5. Marginal (``marginals.fixed``, ``marginals.random``): the density at the quantiles of
   the 43 probabilities of ``GMRFLib_density_layout_x`` (:data:`LAYOUT_PROBS`).
6. kld (the ``kld`` column): R-INLA's output (``inla_output_detail``) compares the combined
   density with the Gaussian N(μ, σ) of its standardisation, in its default fast mode by
   ``GMRFLib_mkld_sym``, which uses the two densities' first two moments only: with the
   combined density's moments in standard units (E z, Var z),
   kld = ½[KL(N(0,1) ‖ N(E z, Var z)) + KL(N(E z, Var z) ‖ N(0,1))]
       = ¼[(1 + (E z)²)/Var z + Var z + (E z)² − 2].
7. Transformed summaries (``summary.fitted.values``, :func:`combined_transformed_summary`):
   ``inla_integrate_func`` integrates the transform g over the combined density by Simpson's
   rule on 180 (4 × 45) equispaced points of its own mean ± 10 sds (where the density is the
   spline extended beyond ±5 as in step 1); the mode is the parabola through the best of the
   interior points of the transformed log density log p(x) − log|g'(x)| and its neighbours,
   in the transformed scale; quantiles are g of the combined quantiles (of 1 − p for a
   decreasing g).

A mixture with one component is not combined (R-INLA copies the component): a Gaussian then
keeps its closed forms. R-INLA computes the mixture density in step 1 by summing exp's
(an underflow gives log 0 → −FLT_MAX and a meaningless spline); here it is a log-sum-exp,
the same wherever R-INLA's is finite.

For a mixture of Gaussians (every node of a large model) the whole construction runs node by
node in one numba kernel (:func:`_combine_kernel`): the 27 log densities, the spline as a
fixed 45 × 27 matrix (natural splines are linear in their values), Simpson, the Steffen
spline and the quantiles, with no temporaries beyond the outputs; nodes are split over the
host's cores. Other mixtures (skew-normal or Laplace-corrected components) give their 27 log
densities through their own ``pdf`` and share the rest of the kernel.

Example:
    >>> from adelia.inference.summaries import Mixture
    >>> mix = Mixture(np.array([0.9, 0.1]), np.array([[0.0], [0.0]]), np.array([[1.0], [4.0]]))
    >>> out = combined_summary(mix, (0.025, 0.5, 0.975))
    >>> bool(out["sd"][0] < 0.93 * mix.sd()[0])   # the tails beyond ±5 σ are cut
    True
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import interpolate

from ..engine.numba_cache import cached_njit

#: GMRFLib_density_combine's standardised abscissae (R-INLA gmrflib/density.c)
COMBINE_GRID = np.array(
    [-5.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, -0.125, 0.0,
     0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
)
#: GMRFLib_INT_NUM_POINTS: the equispaced points of [−5, 5] on which the density is evaluated
NUM_POINTS = 45
#: GMRFLib_INT_NUM_INTERPOL: each interval split in this many by linear interpolation of log p
NUM_INTERPOL = 3
#: probabilities whose quantiles carry R-INLA's returned marginals (GMRFLib_density_layout_x)
LAYOUT_PROBS = np.array(
    [0.00001, 0.0001, 0.001, 0.01, 0.025, 0.05, 0.10, 0.15, 0.2, 0.25, 0.30, 0.35, 0.375, 0.40, 0.425,
     0.45, 0.46, 0.47, 0.475, 0.48, 0.49, 0.50, 0.51, 0.52, 0.525, 0.53, 0.54, 0.55, 0.575, 0.60,
     0.625, 0.65, 0.70, 0.75, 0.80, 0.85, 0.9, 0.95, 0.975, 0.99, 0.999, 0.9999, 0.99999]
)
#: GSL_SQRT_DBL_EPSILON · GSL_ROOT4_DBL_EPSILON: the truncation of logit arguments in R-INLA's splines
_LOGIT_EPS = 2.0**-26 * 2.0**-13
#: GSL_SQRT_DBL_EPSILON: abscissae closer than this are ties in GMRFLib_spline_create_x
_TIE_EPS = 2.0**-26


@lru_cache(maxsize=1)
def _tables():
    """(spline matrix S (45, 27): natural-spline values at the 45 points from the 27 knot
    values; its second derivatives at the knots D2 (27, 27); the 45 points)."""
    lo, hi = COMBINE_GRID[0], COMBINE_GRID[-1]
    dx = (hi - lo) / (NUM_POINTS - 1.0)
    x45 = np.empty(NUM_POINTS)
    xval = lo
    for i in range(NUM_POINTS):  # R-INLA accumulates xval += dx
        x45[i] = xval
        xval += dx
    eye = np.eye(COMBINE_GRID.size)
    spline = interpolate.CubicSpline(COMBINE_GRID, eye, bc_type="natural")
    s45 = np.ascontiguousarray(spline(x45))
    d2 = np.ascontiguousarray(spline(COMBINE_GRID, 2))
    return s45, d2, x45


# ------------------------------------------------------------------------------------------
# numba helpers (one node at a time)
# ------------------------------------------------------------------------------------------


@cached_njit(nogil=True, error_model="numpy")
def _natural_spline(z, knots, y, d2y):
    """The natural cubic spline through (knots, y) with second derivatives d2y at z, extended
    beyond the knots as GMRFLib_spline_eval does: linearly, by the slope over the last 1e-4 of
    the range where that slope is ≥ 0, else constant."""
    G = knots.size
    lo = knots[0]
    hi = knots[G - 1]
    zz = min(max(z, lo), hi)
    j = 0
    while j < G - 2 and knots[j + 1] <= zz:
        j += 1
    val = _spline_piece(zz, j, knots, y, d2y)
    if zz > lo and zz < hi:
        return val
    h = (hi - lo) * 1e-4
    if zz == hi:
        grad = (val - _spline_piece(zz - h, G - 2, knots, y, d2y)) / h
    else:
        grad = (_spline_piece(zz + h, 0, knots, y, d2y) - val) / h
    # GMRFLib_spline_eval treats an untransformed spline as increasing: a negative slope is
    # replaced by its "crude" one, which is 0 for such splines (a constant extension)
    if grad < 0.0:
        grad = 0.0
    return val + (z - zz) * grad


@cached_njit(nogil=True, error_model="numpy")
def _spline_piece(z, j, knots, y, d2y):
    h = knots[j + 1] - knots[j]
    a = (knots[j + 1] - z) / h
    b = (z - knots[j]) / h
    return a * y[j] + b * y[j + 1] + ((a * a * a - a) * d2y[j] + (b * b * b - b) * d2y[j + 1]) * h * h / 6.0


@cached_njit(nogil=True, error_model="numpy")
def _steffen_init(x, y, n, slope):
    """GSL's Steffen spline: the derivatives at the n points (one-sided at the ends)."""
    slope[0] = (y[1] - y[0]) / (x[1] - x[0])
    for i in range(1, n - 1):
        hi = x[i + 1] - x[i]
        him1 = x[i] - x[i - 1]
        si = (y[i + 1] - y[i]) / hi
        sim1 = (y[i] - y[i - 1]) / him1
        pi = (sim1 * hi + si * him1) / (him1 + hi)
        # steffen_copysign(1, s): -1 for s < 0, else +1 (also for s = 0)
        sgn = (-1.0 if sim1 < 0.0 else 1.0) + (-1.0 if si < 0.0 else 1.0)
        slope[i] = sgn * min(abs(sim1), min(abs(si), 0.5 * abs(pi)))
    slope[n - 1] = (y[n - 1] - y[n - 2]) / (x[n - 1] - x[n - 2])


@cached_njit(nogil=True, error_model="numpy")
def _steffen_piece(z, x, y, slope, n):
    j = 0
    while j < n - 2 and x[j + 1] <= z:
        j += 1
    h = x[j + 1] - x[j]
    s = (y[j + 1] - y[j]) / h
    a = (slope[j] + slope[j + 1] - 2.0 * s) / (h * h)
    b = (3.0 * s - 2.0 * slope[j] - slope[j + 1]) / h
    d = z - x[j]
    return y[j] + d * (slope[j] + d * (b + d * a))


@cached_njit(nogil=True, error_model="numpy")
def _pinv(p, x, y, slope, n):
    """GMRFLib_spline_eval of the quantile spline z(logit F) at probability p (with the
    linear extension of TRANS_Pinv splines beyond the ends)."""
    t = min(max(p, _LOGIT_EPS), 1.0 - _LOGIT_EPS)
    xr = math.log(t / (1.0 - t))
    lo = x[0]
    hi = x[n - 1]
    xx = min(max(xr, lo), hi)
    val = _steffen_piece(xx, x, y, slope, n)
    if xx > lo and xx < hi:
        return val
    h = (hi - lo) * 1e-4
    x_mid = 0.5 * (hi + lo)
    h_mid = hi - x_mid
    val_mid = _steffen_piece(x_mid, x, y, slope, n)
    if xx == hi:
        grad = (val - _steffen_piece(xx - h, x, y, slope, n)) / h
        increasing = val > val_mid
        grad_mid = (val - val_mid) / h_mid
    else:
        grad = (_steffen_piece(xx + h, x, y, slope, n) - val) / h
        increasing = val_mid > val
        grad_mid = (val_mid - val) / h_mid
    if (increasing and grad < 0.0) or ((not increasing) and grad > 0.0):
        grad = grad_mid
    return val + (xr - xx) * grad


@cached_njit(nogil=True, error_model="numpy")
def _combine_kernel(gauss, w, loc, scale, ld_in, mu, sd, grid, s45, d2, x45, probs, layout, start, stop,
                    mean_out, sd_out, mode_out, q_out, lx_out, ly_out, kld_out, corr_out, lnorm_out):
    """The combined density of nodes start..stop−1 (module docstring, steps 1–5): mean, sd,
    mode, the quantiles of ``probs`` (q_out (len(probs), n)) and the marginal at the quantiles
    of ``layout`` (lx_out, ly_out (len(layout), n), user scale), R-INLA's kld (kld_out, step 6),
    the log correction at the knots (corr_out (27, n)) and log normaliser (lnorm_out). Log
    densities at μ + σ·grid from the Gaussian mixture (w, loc, scale) when ``gauss``, else from
    ``ld_in`` (27, n)."""
    G = grid.size
    NP = x45.size
    NPM = NUM_INTERPOL * NP - (NUM_INTERPOL - 1)
    K = w.size
    logw = np.empty(K)
    for k in range(K):
        logw[k] = math.log(w[k]) if w[k] > 0.0 else -np.inf
    ta = np.empty(K)
    tb = np.empty(K)
    lcoef = np.empty(K)
    ld = np.empty(G)
    corr = np.empty(G)
    d2c = np.empty(G)
    l45 = np.empty(NP)
    xm = np.empty(NPM)
    dm = np.empty(NPM)
    pm = np.empty(NPM)
    xk = np.empty(NP)
    pk = np.empty(NP)
    slope = np.empty(NP)
    dxm = (x45[NP - 1] - x45[0]) / (NPM - 1.0)
    for i in range(start, stop):
        m = mu[i]
        s = sd[i]
        if not (s > 0.0 and s < np.inf):  # a pinned node: a point mass
            mean_out[i] = m
            sd_out[i] = 0.0
            mode_out[i] = m
            for r in range(probs.size):
                q_out[r, i] = m
            for r in range(layout.size):
                lx_out[r, i] = m
                ly_out[r, i] = np.inf
            kld_out[i] = 0.0
            for j in range(G):
                corr_out[j, i] = 0.0
            lnorm_out[i] = 0.5 * math.log(2.0 * math.pi)
            continue
        # 1. log density at m + s g_j, as the log correction c
        if gauss:
            # t_k(g) = (m + s g − ξ_k)/ω_k = a_k + b_k g (the node's column read once: it is strided)
            for k in range(K):
                inv_k = 1.0 / scale[k, i]
                ta[k] = (m - loc[k, i]) * inv_k
                tb[k] = s * inv_k
                lcoef[k] = logw[k] + math.log(inv_k)
        top = -np.inf
        for j in range(G):
            if gauss:
                gj = grid[j]
                acc = 0.0
                for k in range(K):
                    t = ta[k] + tb[k] * gj
                    acc += math.exp(lcoef[k] - 0.5 * t * t)
                if acc > 0.0 and acc < np.inf:
                    v = math.log(acc)
                else:  # under- or overflow of the plain sum: log-sum-exp
                    big = -np.inf
                    for k in range(K):
                        t = ta[k] + tb[k] * gj
                        big = max(big, lcoef[k] - 0.5 * t * t)
                    acc = 0.0
                    for k in range(K):
                        t = ta[k] + tb[k] * gj
                        acc += math.exp(lcoef[k] - 0.5 * t * t - big)
                    v = big + math.log(acc) if big > -np.inf else -np.inf
            else:
                v = ld_in[j, i]
            ld[j] = v
            top = max(top, v)
        for j in range(G):
            # R-INLA: log 0 becomes -FLT_MAX; keep the spline finite the same way
            corr[j] = max(ld[j] - top, -3.4028234663852886e38) + 0.5 * grid[j] * grid[j]
        # 2. log p on the 45 points, to max 0; log-linear to 133 points; Simpson
        ldmax = -np.inf
        for r in range(NP):
            acc = 0.0
            for j in range(G):
                acc += s45[r, j] * corr[j]
            l45[r] = acc - 0.5 * x45[r] * x45[r]
            ldmax = max(ldmax, l45[r])
        for r in range(NP):
            l45[r] -= ldmax
        for r in range(NP - 1):
            xm[3 * r] = x45[r]
            xm[3 * r + 1] = (2.0 * x45[r] + x45[r + 1]) / 3.0
            xm[3 * r + 2] = (x45[r] + 2.0 * x45[r + 1]) / 3.0
            dm[3 * r] = math.exp(l45[r])
            dm[3 * r + 1] = math.exp((2.0 * l45[r] + l45[r + 1]) / 3.0)
            dm[3 * r + 2] = math.exp((l45[r] + 2.0 * l45[r + 1]) / 3.0)
        xm[NPM - 1] = x45[NP - 1]
        dm[NPM - 1] = math.exp(l45[NP - 1])
        m0 = dm[0] + dm[NPM - 1]
        m1 = xm[0] * dm[0] + xm[NPM - 1] * dm[NPM - 1]
        m2 = xm[0] ** 2 * dm[0] + xm[NPM - 1] ** 2 * dm[NPM - 1]
        for r in range(1, NPM - 1):
            d = dm[r] * (4.0 if (r - 1) % 2 == 0 else 2.0)
            m0 += d
            m1 += xm[r] * d
            m2 += xm[r] * xm[r] * d
        ez = m1 / m0
        vz = max(0.0, m2 / m0 - ez * ez)
        log_norm = math.log(m0 * dxm / 3.0) + ldmax
        mean_out[i] = m + s * ez
        sd_out[i] = s * math.sqrt(vz)
        lnorm_out[i] = log_norm
        for j in range(G):
            corr_out[j, i] = corr[j]
        # 6. kld: GMRFLib_mkld_sym between N(μ, σ) and the moments of the combined density; in
        # standard units N(0, 1) against N(ez, vz): ½[KL(a‖b) + KL(b‖a)], the logs cancel
        kld_out[i] = max(0.0, 0.25 * ((1.0 + ez * ez) / vz + vz + ez * ez - 2.0)) if vz > 0.0 else np.inf
        # 3. mode: the best of the 133 points and the parabola through its neighbours
        best = 0
        for r in range(1, NPM):
            if dm[r] > dm[best]:
                best = r
        if best == 0 or best == NPM - 1:
            zmode = xm[best]
        else:
            x0, x1, x2 = xm[best - 1], xm[best], xm[best + 1]
            f0, f1, f2 = dm[best - 1], dm[best], dm[best + 1]
            zmode = (f0 * x1 * x1 - f0 * x2 * x2 - f1 * x0 * x0 + f1 * x2 * x2 + f2 * x0 * x0 - f2 * x1 * x1) / (
                f0 * x1 - f0 * x2 - f1 * x0 + f1 * x2 + f2 * x0 - x1 * f2
            ) / 2.0
        mode_out[i] = m + s * zmode
        # 4. cdf (trapezoid), every 3rd point, quantile spline z(logit F)
        pm[0] = 0.5 * dm[0]
        for r in range(1, NPM):
            pm[r] = pm[r - 1] + 0.5 * (dm[r] + dm[r - 1])
        cc = 1.0 / (pm[NPM - 1] + 0.5 * dm[NPM - 1])
        nk = 0
        for r in range(0, NPM, NUM_INTERPOL):
            t = min(max(pm[r] * cc, _LOGIT_EPS), 1.0 - _LOGIT_EPS)
            xk[nk] = math.log(t / (1.0 - t))
            pk[nk] = xm[r]
            nk += 1
        # ties (GMRFLib_unique_additive2): runs within _TIE_EPS of their first, keep the last
        n_u = 0
        jj = 0
        while jj < nk:
            j0 = jj
            while jj + 1 < nk and abs(xk[jj + 1] - xk[j0]) <= _TIE_EPS:
                jj += 1
            xk[n_u] = xk[jj]
            pk[n_u] = pk[jj]
            n_u += 1
            jj += 1
        if n_u >= 3:
            _steffen_init(xk, pk, n_u, slope)
        for r in range(probs.size):
            z = _pinv(probs[r], xk, pk, slope, n_u) if n_u >= 3 else ez + math.sqrt(vz) * _ndtri(probs[r])
            q_out[r, i] = m + s * z
        # 5. the marginal at the layout quantiles: exp(c(z) − z²/2 − log_norm)/σ
        if layout.size:
            for j in range(G):
                acc = 0.0
                for jj in range(G):
                    acc += d2[j, jj] * corr[jj]
                d2c[j] = acc
            for r in range(layout.size):
                z = _pinv(layout[r], xk, pk, slope, n_u) if n_u >= 3 else ez + math.sqrt(vz) * _ndtri(layout[r])
                lx_out[r, i] = m + s * z
                ly_out[r, i] = math.exp(_natural_spline(z, grid, corr, d2c) - 0.5 * z * z - log_norm) / s


@cached_njit(nogil=True, error_model="numpy")
def _ndtri(p):
    """Φ⁻¹(p) by Newton on erfc from a rational start (used only by degenerate nodes)."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    t = math.sqrt(-2.0 * math.log(min(p, 1.0 - p)))
    z = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3)
    if p < 0.5:
        z = -z
    for _ in range(50):
        f = 0.5 * math.erfc(-z / math.sqrt(2.0)) - p
        dz = f / (math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))
        z -= dz
        if abs(dz) < 1e-15 * (1.0 + abs(z)):
            break
    return z


# ------------------------------------------------------------------------------------------
# the Python side
# ------------------------------------------------------------------------------------------


def _run(mix, probs, layout):
    """Run the kernel over all nodes of ``mix``; returns (mean, sd, mode, q, lx, ly)."""
    from .summaries import Mixture, _over_nodes

    s45, d2, x45 = _tables()
    n = mix.n
    w = np.ascontiguousarray(mix.weights, dtype=np.float64)
    loc = np.ascontiguousarray(mix.loc, dtype=np.float64)
    scale = np.ascontiguousarray(mix.scale, dtype=np.float64)
    mu = np.ascontiguousarray(mix.mean(), dtype=np.float64)
    sd = np.ascontiguousarray(mix.sd(), dtype=np.float64)
    gauss = isinstance(mix, Mixture) and mix.shape is None
    if gauss:
        ld_in = np.zeros((COMBINE_GRID.size, 0))
    else:
        x = mu[None, :] + sd[None, :] * COMBINE_GRID[:, None]
        with np.errstate(divide="ignore"):
            ld_in = np.ascontiguousarray(np.log(mix.pdf(x)), dtype=np.float64)
    probs = np.ascontiguousarray(np.asarray(probs, dtype=np.float64).ravel())
    layout = np.ascontiguousarray(np.asarray(layout, dtype=np.float64).ravel())
    mean, sdv, mode = np.empty(n), np.empty(n), np.empty(n)
    q = np.empty((probs.size, n))
    lx = np.empty((layout.size, n))
    ly = np.empty((layout.size, n))
    kld = np.empty(n)
    corr = np.empty((COMBINE_GRID.size, n))
    lnorm = np.empty(n)

    def kernel(start, stop):
        _combine_kernel(gauss, w, loc, scale, ld_in, mu, sd, COMBINE_GRID, s45, d2, x45, probs, layout, start, stop,
                        mean, sdv, mode, q, lx, ly, kld, corr, lnorm)

    _over_nodes(kernel, n)
    return _Combined(mu, sd, mean, sdv, mode, q, lx, ly, kld, corr, lnorm)


class _Combined:
    """The kernel's outputs for n nodes, and the combined density they define."""

    def __init__(self, mu, sd, mean, sdv, mode, q, lx, ly, kld, corr, lnorm):
        self.mu, self.sigma = mu, sd  # the standardisation: the exact mixture's moments
        self.mean, self.sd, self.mode, self.q, self.lx, self.ly = mean, sdv, mode, q, lx, ly
        self.kld, self.corr, self.lnorm = kld, corr, lnorm

    def log_density_std(self, z: np.ndarray) -> np.ndarray:
        """log p(z) of the combined density in standard units z = (x − μ)/σ, z of shape (m, n):
        c(z) − z²/2 − log_norm, c the natural spline of step 1 with GMRFLib_spline_eval's
        extension beyond the knots."""
        _, d2, _ = _tables()
        g = COMBINE_GRID
        c = self.corr  # (27, n)
        d2c = d2 @ c
        zz = np.clip(z, g[0], g[-1])
        j = np.clip(np.searchsorted(g, zz, side="right") - 1, 0, g.size - 2)
        cols = np.broadcast_to(np.arange(z.shape[1]), z.shape)
        val = _spline_pieces(zz, j, cols, g, c, d2c)
        h = (g[-1] - g[0]) * 1e-4
        n = z.shape[1]
        top = np.full((1, n), g[-1])
        bot = np.full((1, n), g[0])
        ncols = np.arange(n)[None, :]
        grad_hi = (_spline_pieces(top, np.full((1, n), g.size - 2), ncols, g, c, d2c)
                   - _spline_pieces(top - h, np.full((1, n), g.size - 2), ncols, g, c, d2c)) / h
        grad_lo = (_spline_pieces(bot + h, np.zeros((1, n), int), ncols, g, c, d2c)
                   - _spline_pieces(bot, np.zeros((1, n), int), ncols, g, c, d2c)) / h
        val = val + np.where(z > g[-1], (z - g[-1]) * np.maximum(grad_hi, 0.0), 0.0)
        val = val + np.where(z < g[0], (z - g[0]) * np.maximum(grad_lo, 0.0), 0.0)
        return val - 0.5 * z * z - self.lnorm[None, :]


def _spline_pieces(z, j, cols, knots, y, d2y):
    """Vectorised :func:`_spline_piece`: the cubic piece j (per element) of column ``cols``."""
    h = knots[j + 1] - knots[j]
    a = (knots[j + 1] - z) / h
    b = (z - knots[j]) / h
    return (a * y[j, cols] + b * y[j + 1, cols]
            + ((a**3 - a) * d2y[j, cols] + (b**3 - b) * d2y[j + 1, cols]) * h * h / 6.0)


#: inla_integrate_func: Simpson's rule on this many equispaced points of mean ± 10 sd
TRANSFORM_POINTS = 4 * NUM_POINTS
#: GMRFLib_DENSITY_INTEGRATION_LIMIT: the range, in sds of the combined density, integrated over
INTEGRATION_LIMIT = 10.0


def combined_transformed_summary(mix, transform, quantiles=(0.025, 0.5, 0.975), block: int = 4096) -> dict[str, np.ndarray]:
    """R-INLA's summary of g(x) for each node's marginal (``summary.fitted.values`` with g the
    inverse link; module docstring, step 7): mean and sd by Simpson's rule over the combined
    density (a single Gaussian component: that Gaussian), the mode of the transformed density,
    and g of the combined quantiles. ``transform`` maps an array (m, n) elementwise and is
    monotone.

    Example:
        >>> mix = Mixture(np.array([0.3, 0.7]), np.array([[0.0], [0.1]]), np.array([[1.0], [1.1]]))
        >>> out = combined_transformed_summary(mix, np.exp, (0.5,))
        >>> bool(abs(out["0.5quant"][0] - np.exp(combined_summary(mix, (0.5,))["0.5quant"][0])) < 1e-12)
        True
    """
    from .summaries import Mixture

    n = mix.n
    qs = tuple(float(p) for p in quantiles)
    probe = np.asarray(transform(np.array([[0.0], [1.0]])), dtype=float)
    increasing = bool(probe[1, 0] >= probe[0, 0])
    out = {c: np.empty(n) for c in ["mean", "sd", *[f"{p:g}quant" for p in qs], "mode"]}
    wts = np.ones(TRANSFORM_POINTS)
    wts[1:-1] = np.where(np.arange(TRANSFORM_POINTS - 2) % 2 == 0, 4.0, 2.0)
    t = np.arange(TRANSFORM_POINTS, dtype=float)
    for start in range(0, n, block):
        sl = slice(start, min(n, start + block))
        sub = mix.columns(sl) if hasattr(mix, "columns") else mix
        probs = [p if increasing else 1.0 - p for p in qs]
        if sub.loc.shape[0] > 1:
            c = _run(sub, probs, np.zeros(0))
            mu, sigma = c.mu, c.sigma
            ez = (c.mean - mu) / np.where(sigma > 0, sigma, 1.0)
            sz = c.sd / np.where(sigma > 0, sigma, 1.0)
            qx = c.q
            logdens = c.log_density_std
        else:  # one component: R-INLA keeps the Gaussian (or skew-normal) itself
            g1 = Mixture(np.ones(1), sub.loc, sub.scale, sub.shape) if isinstance(sub, Mixture) else sub
            mu, sigma = g1.mean(), g1.sd()
            ez, sz = np.zeros_like(mu), np.ones_like(mu)
            qx = np.stack([g1.quantile(p) for p in probs]) if probs else np.zeros((0, mu.size))
            logdens = lambda z, g1=g1, mu=mu, sigma=sigma: np.log(np.maximum(g1.pdf(mu + sigma * z), 1e-300)) + np.log(sigma)
        # Simpson's rule over the density's own mean ± 10 sd (standard units of the mixture)
        lo = ez - INTEGRATION_LIMIT * sz
        dz = 2.0 * INTEGRATION_LIMIT * sz / (TRANSFORM_POINTS - 1.0)
        z = lo[None, :] + t[:, None] * dz[None, :]
        ld = logdens(z)
        x = mu[None, :] + sigma[None, :] * z
        gx = np.asarray(transform(x), dtype=float)
        d = np.exp(ld) * wts[:, None]
        s0 = d.sum(axis=0)
        m1 = (d * gx).sum(axis=0) / s0
        m2 = (d * gx * gx).sum(axis=0) / s0
        out["mean"][sl] = m1
        out["sd"][sl] = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
        for r, p in enumerate(qs):
            out[f"{p:g}quant"][sl] = np.asarray(transform(qx[r][None, :]), dtype=float)[0]
        # mode: the transformed log density log p(x) − log σ − log|g'(x)| on the interior points
        hx = 1e-6 * np.maximum(sigma, 1e-300)[None, :] * np.maximum(sz, 1e-300)[None, :]
        dg = (np.asarray(transform(x + hx), dtype=float) - np.asarray(transform(x - hx), dtype=float)) / (2.0 * hx)
        with np.errstate(divide="ignore"):
            tld = ld - np.log(np.abs(dg))
        k = np.clip(np.argmax(tld[1:-1], axis=0) + 1, 1, TRANSFORM_POINTS - 2)
        cols = np.arange(z.shape[1])
        x0, x1, x2 = gx[k - 1, cols], gx[k, cols], gx[k + 1, cols]
        f0, f1, f2 = tld[k - 1, cols], tld[k, cols], tld[k + 1, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            vertex = (f0 * x1 * x1 - f0 * x2 * x2 - f1 * x0 * x0 + f1 * x2 * x2 + f2 * x0 * x0 - f2 * x1 * x1) / (
                f0 * x1 - f0 * x2 - f1 * x0 + f1 * x2 + f2 * x0 - x1 * f2) / 2.0
        out["mode"][sl] = np.where(np.isfinite(vertex), vertex, x1)
    return out


def combined_summary(mix, quantiles=(0.025, 0.5, 0.975)) -> dict[str, np.ndarray]:
    """R-INLA's summary columns (mean, sd, <q>quant..., mode, kld) of the combined density of
    each node's mixture (module docstring, steps 1–4 and 6), for a mixture of two or more
    components.

    Args:
        mix: a :class:`~adelia.inference.summaries.Mixture` (or anything with ``weights``,
            ``loc``, ``scale``, ``n``, ``mean()``, ``sd()`` and ``pdf(x)`` for x (27, n)).
        quantiles: the probabilities of the quantile columns.

    Example:
        >>> mix = Mixture(np.array([0.3, 0.7]), np.array([[0.0], [0.1]]), np.array([[1.0], [1.1]]))
        >>> sorted(combined_summary(mix, (0.5,)))
        ['0.5quant', 'kld', 'mean', 'mode', 'sd']
    """
    c = _run(mix, quantiles, np.zeros(0))
    out = {"mean": c.mean, "sd": c.sd}
    for r, p in enumerate(quantiles):
        out[f"{p:g}quant"] = c.q[r]
    out["mode"] = c.mode
    out["kld"] = c.kld
    return out


def combined_marginal(mix) -> tuple[np.ndarray, np.ndarray]:
    """R-INLA's returned marginal of each node: (x, density), arrays (43, n), the combined
    density at its quantiles of :data:`LAYOUT_PROBS` (``GMRFLib_density_layout_x``).

    Example:
        >>> mix = Mixture(np.array([0.3, 0.7]), np.array([[0.0], [0.1]]), np.array([[1.0], [1.1]]))
        >>> x, y = combined_marginal(mix); x.shape
        (43, 1)
    """
    c = _run(mix, np.zeros(0), LAYOUT_PROBS)
    return c.lx, c.ly
