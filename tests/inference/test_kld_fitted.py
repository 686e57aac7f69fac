"""R-INLA's kld column and fitted-value summaries from the combined density (issue 18).

Oracles: the test's own construction of R-INLA's spline-corrected Gaussian (scipy's natural
cubic spline on the mixture's log density at the 27 abscissae, Simpson on the 133-point
log-linear interpolant) with scipy quadrature of the symmetric KL and of the transformed
density; and R-INLA's own numbers for seeds_iid.
"""

from __future__ import annotations


import numpy as np
import pytest
from scipy import integrate, interpolate, special, stats

from adelia.inference.combined import COMBINE_GRID, combined_summary, combined_transformed_summary
from adelia.inference.summaries import Mixture
from conftest import fit_reference_case


def _combined_density(w, loc, scale):
    """(μ, σ, log p(z)) of the combined density, z standard units, built independently."""
    w = w / w.sum()
    mu = np.sum(w * loc)
    sd = np.sqrt(np.sum(w * (scale**2 + loc**2)) - mu**2)
    g = COMBINE_GRID
    ld = special.logsumexp(np.log(w)[:, None] + stats.norm.logpdf(mu + sd * g[None, :], loc[:, None], scale[:, None]), axis=0)
    spline = interpolate.CubicSpline(g, ld - ld.max() + 0.5 * g**2, bc_type="natural")
    h = 10 * 1e-4
    hi = max((spline(5.0) - spline(5.0 - h)) / h, 0.0)
    lo = max((spline(-5.0 + h) - spline(-5.0)) / h, 0.0)

    def corr(z):
        z = np.asarray(z, float)
        return spline(np.clip(z, -5, 5)) + np.where(z > 5, (z - 5) * hi, 0.0) + np.where(z < -5, (z + 5) * lo, 0.0)

    x45 = np.linspace(-5, 5, 45)
    l45 = corr(x45) - 0.5 * x45**2
    top = l45.max()
    xm = np.linspace(-5, 5, 133)
    dm = np.exp(np.interp(xm, x45, l45 - top))
    simpson = np.ones(133)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    log_norm = np.log(np.sum(simpson * dm) * (xm[1] - xm[0]) / 3.0) + top
    return mu, sd, lambda z: corr(z) - 0.5 * np.asarray(z) ** 2 - log_norm


def _mixtures(rng, n):
    K = 6
    return Mixture(rng.dirichlet(np.ones(K)), rng.normal(0, 0.4, (K, n)), rng.uniform(0.4, 1.6, (K, n)))


def test_kld_is_the_moment_kld_between_the_gaussian_and_the_combined_density():
    rng = np.random.default_rng(11)
    mix = _mixtures(rng, 12)
    out = combined_summary(mix, (0.5,))
    for i in range(mix.n):
        mu, sd, logp = _combined_density(mix.weights, mix.loc[:, i], mix.scale[:, i])
        # moments of the combined density by the rule R-INLA uses (Simpson on [−5, 5], 133 points)
        xm = np.linspace(-5, 5, 133)
        simpson = np.ones(133)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        x45 = np.linspace(-5, 5, 45)
        dm = np.exp(np.interp(xm, x45, logp(x45)))
        ez = np.sum(simpson * dm * xm) / np.sum(simpson * dm)
        sz = np.sqrt(np.sum(simpson * dm * xm**2) / np.sum(simpson * dm) - ez**2)
        # symmetric KL between N(0, 1) and N(ez, sz²) by quadrature (GMRFLib_mkld_sym)
        p = lambda z: stats.norm.pdf(z)
        q = lambda z: stats.norm.pdf(z, ez, sz)
        f = lambda z: (p(z) - q(z)) * (stats.norm.logpdf(z) - stats.norm.logpdf(z, ez, sz))
        ref = 0.5 * integrate.quad(f, -30, 30, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
        assert out["kld"][i] == pytest.approx(ref, rel=1e-7, abs=1e-15)


def test_fitted_summary_integrates_the_transform_over_the_combined_density():
    rng = np.random.default_rng(12)
    mix = _mixtures(rng, 8)
    inv = lambda x: special.expit(x)
    out = combined_transformed_summary(mix, inv, (0.025, 0.5, 0.975))
    comb = combined_summary(mix, (0.025, 0.5, 0.975))
    for i in range(mix.n):
        mu, sd, logp = _combined_density(mix.weights, mix.loc[:, i], mix.scale[:, i])
        ez, sz = (comb["mean"][i] - mu) / sd, comb["sd"][i] / sd
        lo, hi = ez - 10 * sz, ez + 10 * sz
        m = [integrate.quad(lambda z: np.exp(logp(z)) * inv(mu + sd * z) ** k, lo, hi, epsabs=1e-14, limit=200)[0] for k in range(3)]
        mean = m[1] / m[0]
        # Simpson on 180 points (R-INLA's rule) against adaptive quadrature: ~1e-5 relative (179 intervals: R-INLA's 4,2 pattern ends unevenly)
        assert out["mean"][i] == pytest.approx(mean, rel=2e-5)
        assert out["sd"][i] == pytest.approx(np.sqrt(m[2] / m[0] - mean**2), rel=1e-4)
        for p in (0.025, 0.5, 0.975):
            assert out[f"{p:g}quant"][i] == pytest.approx(inv(comb[f"{p:g}quant"][i]), rel=1e-13)
        # the mode of the transformed density (y = expit(x): p(x)/(y(1−y))); R-INLA's parabola
        # on its 180-point grid (spacing 0.11 sd) is accurate to ~1e-2 sd
        zs = np.linspace(lo, hi, 20001)
        y = inv(mu + sd * zs)
        tl = logp(zs) - np.log(sd * y * (1 - y))
        assert out["mode"][i] == pytest.approx(y[np.argmax(tl)], abs=2e-2 * out["sd"][i])


def _fit(case):
    _, res, ref, _ = fit_reference_case(case)
    return res, ref


def test_seeds_iid_kld_and_fitted_values_match_rinla():
    res, ref = _fit("seeds_iid")
    kr = np.asarray(ref["summary_random"]["plate"]["kld"], float)
    ka = res.summary_random["plate"]["kld"].to_numpy()
    # kld is a second-order quantity of the small differences between the two fits
    np.testing.assert_allclose(ka, kr, rtol=0.05, atol=1e-5)
    np.testing.assert_allclose(res.summary_fixed["kld"].to_numpy(), ref["summary_fixed"]["kld"], rtol=0.2, atol=1e-6)
    fv, fa = ref["summary_fitted_values"], res.summary_fitted_values
    sd = np.asarray(fv["sd"], float)
    for col in ("mean", "0.025quant", "0.5quant", "0.975quant", "mode"):
        assert np.max(np.abs(fa[col].to_numpy() - np.asarray(fv[col], float)) / sd) < 0.01, col
    assert np.max(np.abs(fa["sd"].to_numpy() / sd - 1)) < 0.03


def test_besagproper_germany_fitted_values_match_rinla():
    res, ref = _fit("besagproper_germany")
    assert res.summary_fixed.loc["(Intercept)", "kld"] == pytest.approx(ref["summary_fixed"]["kld"][0], rel=0.1)
    fv, fa = ref["summary_fitted_values"], res.summary_fitted_values
    sd = np.asarray(fv["sd"], float)
    for col in ("mean", "0.025quant", "0.5quant", "0.975quant", "mode"):
        assert np.max(np.abs(fa[col].to_numpy() - np.asarray(fv[col], float)) / sd) < 0.01, col
