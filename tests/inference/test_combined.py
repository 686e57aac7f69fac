"""R-INLA's combined density of a mixture (:mod:`adelia.inference.combined`).

Oracles: an independent per-node implementation of ``GMRFLib_density_combine`` /
``GMRFLib_init_density`` / the Steffen quantile spline written here with numpy and scipy
(scipy's natural CubicSpline, np.interp for the log-linear refinement, scipy's Simpson rule,
np.polyfit for the mode parabola, Steffen's 1990 slopes); closed forms (a Gaussian, and a
Gaussian truncated at ±5 sd); the truncated moments of a two-scale mixture by quadrature.
The agreement with R-INLA's own numbers is checked on the reference cases
(tests/inference/test_rinla_reference.py: ou_irregular, besagproper_germany).
"""

import numpy as np
import pytest
from scipy import integrate, interpolate, special, stats

from adelia.inference import combined as C
from adelia.inference import summaries as S
from adelia.inference.summaries import Mixture

QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
EPS = 2.0**-39


def _steffen(x, y):
    """Steffen (1990) monotone cubic through (x, y) with one-sided end slopes, as a callable."""
    h = np.diff(x)
    s = np.diff(y) / h
    d = np.empty_like(y)
    d[0], d[-1] = s[0], s[-1]
    p = (s[:-1] * h[1:] + s[1:] * h[:-1]) / (h[:-1] + h[1:])
    sign = np.where(s[:-1] < 0, -1.0, 1.0) + np.where(s[1:] < 0, -1.0, 1.0)
    d[1:-1] = sign * np.minimum(np.minimum(np.abs(s[:-1]), np.abs(s[1:])), 0.5 * np.abs(p))

    def f(t):
        j = int(np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2))
        u = t - x[j]
        a = (d[j] + d[j + 1] - 2 * s[j]) / h[j] ** 2
        b = (3 * s[j] - 2 * d[j] - d[j + 1]) / h[j]
        return y[j] + d[j] * u + b * u**2 + a * u**3

    return f


def _reference(logpdf, mu, sd, probs):
    """R-INLA's combined density of one node, straight from density.c's description."""
    g = C.COMBINE_GRID
    ld = logpdf(mu + sd * g)
    corr = ld - ld.max() + 0.5 * g**2
    spline = interpolate.CubicSpline(g, corr, bc_type="natural")
    x45 = np.linspace(-5, 5, 45)
    l45 = spline(x45) - 0.5 * x45**2
    ldmax = l45.max()
    l45 = l45 - ldmax
    xm = np.linspace(-5, 5, 133)
    dm = np.exp(np.interp(xm, x45, l45))
    m0 = integrate.simpson(dm, x=xm)
    ez = integrate.simpson(xm * dm, x=xm) / m0
    vz = integrate.simpson(xm**2 * dm, x=xm) / m0 - ez**2
    j = int(np.argmax(dm))
    a2, a1, _ = np.polyfit(xm[j - 1 : j + 2], dm[j - 1 : j + 2], 2)
    zmode = -a1 / (2 * a2)
    cum = 0.5 * dm[0] + np.concatenate([[0.0], np.cumsum(0.5 * (dm[1:] + dm[:-1]))])
    F = cum / (cum[-1] + 0.5 * dm[-1])
    Fk = np.clip(F[::3], EPS, 1 - EPS)
    lk = np.log(Fk / (1 - Fk))
    inner = _steffen(lk, xm[::3])

    def pinv(t):  # beyond its ends: linear, by the slope over the last 1e-4 of the range
        lo, hi = lk[0], lk[-1]
        tc = min(max(t, lo), hi)
        if lo < tc < hi:
            return inner(tc)
        h, mid = (hi - lo) * 1e-4, 0.5 * (lo + hi)
        end = hi if tc == hi else lo
        grad = (inner(end) - inner(end - h)) / h if end == hi else (inner(end + h) - inner(end)) / h
        mid_grad = (inner(end) - inner(mid)) / (end - mid)
        return inner(end) + (t - end) * (grad if grad * mid_grad > 0 else mid_grad)
    q = np.array([pinv(np.log(p / (1 - p))) for p in probs])
    log_norm = np.log(m0) + ldmax

    def density(z):  # the spline beyond ±5: linear where its end slope (by a difference over
        zc = np.clip(z, -5, 5)  # the last 1e-4 of the range) is >= 0, else flat
        h = 1e-3
        slope = np.where(zc > 0, spline(5.0) - spline(5.0 - h), spline(-5.0 + h) - spline(-5.0)) / h
        slope = np.where(np.abs(z) > 5, np.maximum(slope, 0.0), 0.0)
        return np.exp(spline(zc) + slope * (z - zc) - 0.5 * z**2 - log_norm) / sd

    return {"mean": mu + sd * ez, "sd": sd * np.sqrt(vz), "mode": mu + sd * zmode, "q": mu + sd * q,
            "density": density, "pinv": lambda p: mu + sd * pinv(np.log(p / (1 - p)))}


def _random_mixtures(rng, n, kind):
    K = int(rng.integers(2, 12))
    w = rng.dirichlet(np.ones(K))
    centre = rng.normal(0.0, 3.0, n)
    base = rng.uniform(0.05, 3.0, n)
    spread, lo, hi = {"inla": (0.2, 0.8, 1.25), "wide": (1.0, 0.3, 3.0)}[kind]
    loc = centre + base * rng.normal(0.0, spread, (K, n))
    scale = base * rng.uniform(lo, hi, (K, n))
    return Mixture(w, loc, scale)


def _node_logpdf(mix, i):
    w, loc, scale = mix.weights, mix.loc[:, i], mix.scale[:, i]
    return lambda x: special.logsumexp(np.log(w) + stats.norm.logpdf(np.asarray(x)[:, None], loc, scale), axis=1)


@pytest.mark.parametrize("kind", ["inla", "wide"])
def test_vectorised_kernel_matches_the_per_node_reference(kind):
    rng = np.random.default_rng(3 if kind == "inla" else 4)
    mix = _random_mixtures(rng, 150, kind)
    out = mix.summary(QUANTILES)
    mu, sd = mix.mean(), mix.sd()
    for i in range(mix.n):
        ref = _reference(_node_logpdf(mix, i), mu[i], sd[i], QUANTILES)
        tol = 1e-9 * sd[i]
        assert abs(out["mean"][i] - ref["mean"]) <= tol
        assert abs(out["sd"][i] - ref["sd"]) <= tol
        # the parabola's vertex is ill-conditioned where the grid maximum is flat
        assert abs(out["mode"][i] - ref["mode"]) <= 1e-7 * sd[i]
        for r, p in enumerate(QUANTILES):
            assert abs(out[f"{p:g}quant"][i] - ref["q"][r]) <= tol, (i, p)


def test_marginals_are_the_combined_density_at_the_layout_quantiles():
    rng = np.random.default_rng(5)
    mix = _random_mixtures(rng, 40, "wide")
    x, y = mix.marginal_grid()
    assert x.shape == y.shape == (C.LAYOUT_PROBS.size, mix.n)
    mu, sd = mix.mean(), mix.sd()
    for i in range(mix.n):
        ref = _reference(_node_logpdf(mix, i), mu[i], sd[i], ())
        xr = np.array([ref["pinv"](p) for p in C.LAYOUT_PROBS])
        np.testing.assert_allclose(x[:, i], xr, rtol=0, atol=1e-9 * sd[i])
        np.testing.assert_allclose(y[:, i], ref["density"]((xr - mu[i]) / sd[i]), rtol=1e-9)
        assert np.all(np.diff(x[:, i]) > 0)


def test_skew_normal_components_take_the_same_construction():
    rng = np.random.default_rng(6)
    K, n = 4, 30
    mix = Mixture(rng.dirichlet(np.ones(K)), rng.normal(0, 0.3, (K, n)), rng.uniform(0.5, 1.5, (K, n)), rng.normal(0, 2.0, (K, n)))
    out = mix.summary(QUANTILES)
    mu, sd = mix.mean(), mix.sd()
    for i in range(n):
        w, xi, om, al = mix.weights, mix.loc[:, i], mix.scale[:, i], mix.shape[:, i]
        logpdf = lambda x: special.logsumexp(np.log(w) + stats.skewnorm.logpdf(np.asarray(x)[:, None], al, xi, om), axis=1)
        ref = _reference(logpdf, mu[i], sd[i], QUANTILES)
        assert abs(out["sd"][i] - ref["sd"]) <= 1e-9 * sd[i]
        assert abs(out["0.975quant"][i] - ref["q"][-1]) <= 1e-9 * sd[i]


def test_single_gaussian_keeps_its_closed_forms():
    one = Mixture(np.ones(1), np.array([[0.5, -1.0]]), np.array([[2.0, 0.1]]))
    out = one.summary(QUANTILES)
    np.testing.assert_array_equal(out["mean"], [0.5, -1.0])
    np.testing.assert_allclose(out["sd"], [2.0, 0.1], rtol=1e-14)
    np.testing.assert_allclose(out["0.975quant"], [0.5 + 2.0 * 1.959963984540054, -1.0 + 0.1 * 1.959963984540054])
    np.testing.assert_array_equal(out["mode"], [0.5, -1.0])
    x, y = one.marginal_grid()
    np.testing.assert_allclose(x[:, 0], stats.norm.ppf(C.LAYOUT_PROBS, 0.5, 2.0))
    np.testing.assert_allclose(y[:, 1], stats.norm.pdf(x[:, 1], -1.0, 0.1))


def test_two_equal_gaussians_give_the_gaussian_truncated_at_five_sd():
    """The combined density of N(μ, σ²) (as two identical components) is the Gaussian cut at
    ±5σ: mean μ, sd σ·√(1 − 10φ(5)/(1 − 2Φ(−5))) up to the rule's error, quantiles and mode
    the Gaussian's."""
    mu, sig = 1.3, 0.4
    mix = Mixture(np.array([0.3, 0.7]), np.full((2, 1), mu), np.full((2, 1), sig))
    out = mix.summary(QUANTILES)
    assert out["mean"][0] == pytest.approx(mu, abs=1e-12)
    trunc = np.sqrt(1 - 10 * stats.norm.pdf(5) / (1 - 2 * stats.norm.cdf(-5)))
    assert out["sd"][0] / sig == pytest.approx(trunc, abs=2e-5)
    for p in QUANTILES:
        assert out[f"{p:g}quant"][0] == pytest.approx(stats.norm.ppf(p, mu, sig), abs=2e-3 * sig)
    assert out["mode"][0] == pytest.approx(mu, abs=1e-12)


def test_far_apart_scales_show_the_truncation():
    """0.9·N(0, 1) + 0.1·N(0, 4²), the shape of a mixture over θ whose few small-precision
    configurations have heavy tails: the exact sd is √2.5; the combined one is that of the
    mixture restricted to ±5·√2.5 (the wide component keeps only ±1.98 of its sds), up to
    the 27-point spline's error, 9 % below the exact one."""
    mix = Mixture(np.array([0.9, 0.1]), np.zeros((2, 1)), np.array([[1.0], [4.0]]))
    exact = mix.summary(method="exact")
    assert exact["sd"][0] == pytest.approx(np.sqrt(2.5), rel=1e-12)
    cut = 5 * np.sqrt(2.5)
    pdf = lambda x: 0.9 * stats.norm.pdf(x, 0, 1) + 0.1 * stats.norm.pdf(x, 0, 4)
    mass = integrate.quad(pdf, -cut, cut, points=[0.0])[0]
    var = integrate.quad(lambda x: x * x * pdf(x), -cut, cut, points=[0.0])[0] / mass
    out = mix.summary()
    assert out["sd"][0] < 0.93 * exact["sd"][0]
    assert out["sd"][0] == pytest.approx(np.sqrt(var), rel=1e-2)
    assert out["mean"][0] == pytest.approx(0.0, abs=1e-12)
    assert out["0.975quant"][0] == pytest.approx(-out["0.025quant"][0], rel=1e-10)


def test_thread_split_and_degenerate_nodes(monkeypatch):
    rng = np.random.default_rng(7)
    mix = _random_mixtures(rng, 3000, "inla")
    mix.loc[:, 5] = 2.0
    mix.scale[:, 5] = 0.0  # a node pinned by a constraint: a point mass
    whole = mix.summary(QUANTILES)
    for key in whole:
        assert whole[key][5] == 2.0 or (key in ("sd", "kld") and whole[key][5] == 0.0)
        assert np.all(np.isfinite(whole[key]))
    monkeypatch.setattr(S, "_NODES_PER_THREAD", 100)
    monkeypatch.setattr(S, "kernel_threads", lambda: 4)
    split = mix.summary(QUANTILES)
    for key in whole:
        np.testing.assert_array_equal(split[key], whole[key])


def test_bad_method_is_named():
    mix = Mixture(np.array([0.5, 0.5]), np.zeros((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="summary method.*combined.*exact"):
        mix.summary(method="rinla")


# R-INLA's own configurations (control.compute config=TRUE: the per-θ means and variances of the
# latent field and the θ weights), pruned as R-INLA prunes them (GMRFLib_weight_prob = 0.999),
# combined here, give R-INLA's reported fixed-effect summaries to rounding: the same algorithm.
CONFIG_CASES = ["ar1_poisson", "besagproper_germany", "coxph_leuk", "iid2d_bivmeta", "nbinomial_iid", "ou_irregular",
                "rw2d_lattice", "scotland_bym2", "seeds_iid", "weibull_surv", "z_random_slopes", "zib1_sim"]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_rinla_configurations_combine_to_rinla_summaries(case):
    import json

    from conftest import shared_path

    from adelia.inference.design import prune_probabilities

    ref = json.loads((shared_path("reference", "rinla", case) / "results.json").read_text())
    c, fx = ref["configs"], ref["summary_fixed"]
    p = prune_probabilities(np.array(c["prob"]), 0.999)
    keep = p > 0
    means, variances = np.array(c["config_improved_mean"]), np.array(c["config_Qinv_diag"])
    for i, tag in enumerate(fx["name"]):
        j = c["contents"]["tag"].index(tag)
        node = c["contents"]["start"][j] - c["contents"]["length"][0] - 1  # configs exclude the predictor
        mix = Mixture(p[keep], means[keep, node][:, None], np.sqrt(variances[keep, node])[:, None])
        got = mix.summary((0.025, 0.5, 0.975))
        for key in ("mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"):
            assert abs(got[key][0] - fx[key][i]) <= 1e-10 * fx["sd"][i], (tag, key, got[key][0], fx[key][i])
        x, y = mix.marginal_grid()
        np.testing.assert_allclose(x[:, 0], ref["marginals_fixed"][tag]["x"], rtol=0, atol=1e-9 * fx["sd"][i])
        np.testing.assert_allclose(y[:, 0], ref["marginals_fixed"][tag]["y"], rtol=1e-8)
