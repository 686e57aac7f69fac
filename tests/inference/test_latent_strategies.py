"""The latent strategies "simplified.laplace" and "laplace" against independent oracles.

* R-INLA's exact check (one Poisson observation, intercept only): the "laplace" marginal is
  the exact posterior, compared with 1-D quadrature (scipy); mlik against the integral.
* Small Poisson / binomial GLMMs with θ fixed (one constrained): the "laplace" marginals
  against brute-force quadrature of the exact joint posterior over the (constrained) latent
  space; "simplified.laplace" improves on the Gaussian in skewness and mean.
* The SLA's mean shift γ₁ equals the z-derivative at 0 of the full-Laplace log density
  (finite differences) — the two kernels checked against each other, with constraints.
* Gaussian likelihood: all strategies coincide (the Gaussian is exact) to 1e-8.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

import adelia
from adelia.inference import latent_strategies as ls
from adelia.inference.constraints import constraint_variance_correction
from adelia.inference.summaries import Mixture

# ---------------------------------------------------------------------------------------------
# oracles
# ---------------------------------------------------------------------------------------------


def _exact_marginal(logp, x_mode, cov, i, n_u=161, n_w=21, w_max=6.5):
    """Marginal density of x_i under exp(logp) by quadrature in affine coordinates
    x = x* + (Σ_{:,i}/σ_i) u + L w, L Lᵀ = Σ − Σ_{:,i}Σ_{i,:}/σ_i² (rank-reduced: the constrained
    subspace); the Jacobian is constant, so summing over the w grid gives the marginal on the
    u grid. ``cov`` only shapes the grid (any SPD-on-the-subspace matrix would do)."""
    si = np.sqrt(cov[i, i])
    col = cov[:, i] / si
    ev, V = np.linalg.eigh(cov - np.outer(col, col))
    keep = ev > 1e-10 * ev.max()
    L = V[:, keep] * np.sqrt(ev[keep])
    w1 = np.linspace(-w_max, w_max, n_w)
    W = np.stack(np.meshgrid(*([w1] * L.shape[1]), indexing="ij"), -1).reshape(-1, L.shape[1]) @ L.T
    u = np.linspace(-9.0, 9.0, n_u)
    lp = np.array([logp(x_mode + col * uu + W) for uu in u])  # (n_u, n_w^d)
    dens = np.exp(lp - lp.max()).sum(axis=1)
    x = x_mode[i] + si * u
    return x, dens / integrate.trapezoid(dens, x)


def _moments(x, dens):
    m = integrate.trapezoid(x * dens, x)
    sd = np.sqrt(integrate.trapezoid((x - m) ** 2 * dens, x))
    return m, sd, integrate.trapezoid((x - m) ** 3 * dens, x) / sd**3


def _mixture_moments(mix, i):
    m, sd = mix.mean()[i], mix.sd()[i]
    x = m + sd * np.linspace(-9, 9, 3601)
    X = np.repeat(x[:, None], mix.n, axis=1)
    return _moments(x, mix.pdf(X)[:, i])


def _pdf_at(mix, i, x):
    return mix.pdf(np.repeat(np.asarray(x)[:, None], mix.n, axis=1))[:, i]


# ---------------------------------------------------------------------------------------------
# 1. R-INLA's exact check (published_inla.json, rinla/inst/tests/test-poisson.R)
# ---------------------------------------------------------------------------------------------


def test_one_poisson_observation_laplace_is_exact():
    y, E, sd0 = 4.0, 0.25, 1.38

    def logpost(x):
        return stats.poisson.logpmf(y, E * np.exp(x)) + stats.norm.logpdf(x, 0.0, sd0)

    Z = integrate.quad(lambda x: np.exp(logpost(x)), -30, 30, epsabs=1e-14)[0]
    mean = integrate.quad(lambda x: x * np.exp(logpost(x)), -30, 30, epsabs=1e-14)[0] / Z
    var = integrate.quad(lambda x: (x - mean) ** 2 * np.exp(logpost(x)), -30, 30, epsabs=1e-14)[0] / Z
    median = optimize.brentq(lambda t: integrate.quad(lambda x: np.exp(logpost(x)), -30, t, epsabs=1e-14)[0] / Z - 0.5, -5, 8)

    res = adelia.inla(
        "y ~ 1", {"y": [y], "E": [E]}, family="poisson", E="E",
        control_fixed={"prec.intercept": 1.0 / sd0**2}, control_inla={"strategy": "laplace"},
    )
    lat = res.posterior.latent
    assert isinstance(lat, ls.LaplaceMixture)
    s = lat.summary()
    assert s["mean"][0] == pytest.approx(mean, rel=1e-3)
    assert s["sd"][0] == pytest.approx(np.sqrt(var), rel=1e-3)
    assert s["0.5quant"][0] == pytest.approx(median, abs=1e-3)
    x = np.linspace(0.5, 3.5, 7)
    np.testing.assert_allclose(_pdf_at(lat, 0, x), np.exp(logpost(x)) / Z, rtol=5e-3)
    # the Gaussian approximation misses the mean by > 0.2 sd here: the check can fail
    assert abs(res.posterior.x_mode[0] - mean) > 0.2 * np.sqrt(var)

    # mlik: R-INLA's (and adelia's) Laplace approximation of log π(y); R-INLA's own test allows
    # 0.02 (the Laplace error is 0.012 here). It equals the closed-form 1-D Laplace value.
    xs = optimize.minimize_scalar(lambda x: -logpost(x)).x
    laplace_mlik = logpost(xs) + 0.5 * np.log(2 * np.pi / (E * np.exp(xs) + 1 / sd0**2))
    mlik = float(res.mlik.iloc[0])
    assert mlik == pytest.approx(laplace_mlik, abs=1e-6)
    assert abs(mlik - np.log(Z)) < 0.02


def test_summary_fixed_carries_the_laplace_marginal():
    res = adelia.inla(
        "y ~ 1", {"y": [4.0], "E": [0.25]}, family="poisson", E="E",
        control_fixed={"prec.intercept": 1.0 / 1.38**2}, control_inla={"strategy": "laplace"},
    )
    assert res.summary_fixed["mean"].iloc[0] == pytest.approx(res.posterior.latent.mean()[0], rel=1e-10)


# ---------------------------------------------------------------------------------------------
# 2. small GLMMs with θ fixed, against brute-force quadrature
# ---------------------------------------------------------------------------------------------


def _fit_all(model):
    """The compiled model's design points and the three strategies' latent marginals."""
    post = model.fit().posterior
    pts, p = post.points, post.probabilities
    gauss = Mixture(p, pts.mode, np.sqrt(pts.var))  # π_G itself (no VB mean correction)
    return pts, {"gaussian": gauss, **{s: ls.latent_marginals(model, pts, p, s) for s in ls.STRATEGIES}}


def _check_against_quadrature(fits, logp, x_mode, cov, n_nodes):
    err = {s: 0.0 for s in fits}
    for i in range(n_nodes):
        x, dens = _exact_marginal(logp, x_mode, cov, i)
        mu, sd, skew = _moments(x, dens)
        lap = fits["laplace"]
        m_l, sd_l, sk_l = _mixture_moments(lap, i)
        assert abs(m_l - mu) < 0.01 * sd, (i, m_l, mu)
        assert sd_l == pytest.approx(sd, rel=0.01)
        assert abs(sk_l - skew) < 0.1 * abs(skew) + 2e-3
        assert np.max(np.abs(_pdf_at(lap, i, x) - dens)) < 0.01 * dens.max()
        # the Gaussian is visibly off in density, so the checks above can fail
        assert np.max(np.abs(_pdf_at(fits["gaussian"], i, x) - dens)) > 0.015 * dens.max()
        _, _, sk_s = _mixture_moments(fits["simplified.laplace"], i)
        assert abs(sk_s - skew) < 0.5 * abs(skew), (i, sk_s, skew)  # Gaussian: error |skew|
        for s, mix in fits.items():
            err[s] += abs(mix.mean()[i] - mu) / sd
    assert err["simplified.laplace"] < 0.8 * err["gaussian"]
    assert err["laplace"] < 0.2 * err["simplified.laplace"]


def test_poisson_glmm_with_fixed_precision_against_quadrature():
    y = np.array([0.0, 1.0, 0.0, 0.0, 3.0, 1.0, 2.0, 0.0])
    g = np.array([1, 1, 1, 2, 2, 2, 3, 3])
    E = np.array([0.5, 1.0, 0.8, 1.2, 1.0, 0.7, 0.9, 1.1])
    tau, prec_int = 1.0, 0.25
    model = adelia.compile(
        "y ~ 1 + f(g, model='iid', hyper=list(prec=list(initial=0, fixed=TRUE)))",
        {"y": y, "g": g, "E": E}, family="poisson", E="E", control_fixed={"prec.intercept": prec_int},
    )
    pts, fits = _fit_all(model)
    A = np.c_[np.eye(3)[g - 1], np.ones(len(y))]  # x = (u_1, u_2, u_3, β)
    prior = np.diag([tau] * 3 + [prec_int])

    def logp(X):
        eta = X @ A.T
        return np.sum(y * eta - E * np.exp(eta), axis=-1) - 0.5 * np.einsum("...i,ij,...j->...", X, prior, X)

    xs = pts.mode[0]
    cov = np.linalg.inv(prior + (A.T * (E * np.exp(A @ xs))) @ A)
    _check_against_quadrature(fits, logp, xs, cov, 4)


def test_binomial_glmm_with_sum_to_zero_constraint_against_quadrature():
    y = np.array([1.0, 3.0, 0.0, 4.0, 2.0, 5.0, 1.0])
    N = np.array([5.0, 6.0, 4.0, 6.0, 5.0, 7.0, 3.0])
    g = np.array([1, 1, 2, 2, 3, 3, 3])
    tau, prec_int = np.exp(-0.5), 0.25
    model = adelia.compile(
        "y ~ 1 + f(g, model='iid', constr=TRUE, hyper=list(prec=list(initial=-0.5, fixed=TRUE)))",
        {"y": y, "g": g, "N": N}, family="binomial", Ntrials="N", control_fixed={"prec.intercept": prec_int},
    )
    pts, fits = _fit_all(model)
    A = np.c_[np.eye(3)[g - 1], np.ones(len(y))]
    prior = np.diag([tau] * 3 + [prec_int])
    C = np.array([[1.0, 1.0, 1.0, 0.0]])

    def logp(X):
        eta = X @ A.T
        return np.sum(y * eta - N * np.logaddexp(0.0, eta), axis=-1) - 0.5 * np.einsum("...i,ij,...j->...", X, prior, X)

    xs = pts.mode[0]
    np.testing.assert_allclose(C @ xs, 0.0, atol=1e-10)
    p = special.expit(A @ xs)
    S = np.linalg.inv(prior + (A.T * (N * p * (1 - p))) @ A)
    W = S @ C.T
    cov = S - W @ np.linalg.solve(C @ W, W.T)  # the quadrature runs on {C x = 0}
    _check_against_quadrature(fits, logp, xs, cov, 4)
    # the posterior means of the constrained effects sum to 0 (E[C x] = 0 exactly)
    assert abs(fits["laplace"].mean()[:3].sum()) < 5e-3 * fits["laplace"].sd()[0]


def test_sla_mean_shift_is_the_slope_of_the_laplace_log_density():
    """γ₁ = d/dz log π̃_LA(z) at z = 0 (x* is the mode, dx̂/dz = Σ_{:,i}/σ_i there), so the two
    kernels check each other, constraints included."""
    y = np.array([0.0, 2.0, 1.0, 0.0, 5.0, 1.0])
    g = np.array([1, 1, 2, 2, 3, 3])
    model = adelia.compile(
        "y ~ 1 + f(g, model='iid', constr=TRUE, hyper=list(prec=list(initial=0.3, fixed=TRUE)))",
        {"y": y, "g": g}, family="poisson", control_fixed={"prec.intercept": 0.5},
    )
    lap = model.laplace
    theta = model.layout.expand(jnp.zeros(0))
    ga = jax.jit(lap.gaussian_approximation)(theta)
    av = model.graph.a_values(theta)
    eta_var = model.graph.predictor_variance(av, ga.selected_inverse)
    eta_var = eta_var - constraint_variance_correction(model.graph.predictor(av, ga.W), ga.S)
    k = ls._kernels(model)
    nodes = jnp.arange(4)
    cols, sd, g1, g3 = k["sla"](theta, ga.mode, eta_var, nodes)
    np.testing.assert_allclose(np.asarray(sd) ** 2, np.asarray(ga.variance), rtol=1e-10)
    h = 1e-3
    val, ok = k["laplace"](theta, ga.mode, cols, sd, nodes, jnp.asarray([-h, 0.0, h]))
    val = np.asarray(val)
    assert np.all(np.asarray(ok))
    slope = (val[:, 2] - val[:, 0]) / (2 * h)
    np.testing.assert_allclose(slope, np.asarray(g1), atol=1e-5)
    assert np.max(np.abs(np.asarray(g1))) > 1e-2  # non-trivial shifts


def test_skew_normal_fit_matches_mean_variance_and_third_derivative_relation():
    g1 = np.array([0.3, -0.1, 0.0, 0.05])
    g3 = np.array([-0.8, 0.2, 0.0, 3.0])
    xi, om, al = ls.skew_normal_from_sla(g1, g3)
    for a, b, c, m, t3 in zip(xi, om, al, g1, g3):
        dist = stats.skewnorm(c, loc=a, scale=b)
        assert dist.mean() == pytest.approx(m, abs=1e-12)
        assert dist.var() == pytest.approx(1.0, rel=1e-12)
        if t3 != 0:
            assert (c / b) ** 3 == pytest.approx(t3 / ls.SN_THIRD_DERIVATIVE_CONSTANT, rel=1e-10)
            assert np.sign(dist.stats(moments="s")) == np.sign(t3)
        else:
            assert c == 0.0


def test_laplace_mixture_representation_is_self_consistent(rng):
    """pdf integrates to 1; mean/sd/cdf/quantiles/mode agree with quadrature of the pdf;
    node selection and per-component scaling (copy terms) commute with the density."""
    K, n, grid = 3, 4, ls.LAPLACE_GRID
    base = Mixture(np.array([0.5, 0.3, 0.2]), rng.normal(size=(K, n)), rng.uniform(0.5, 2.0, (K, n)),
                   np.where([False, True, False, True], rng.normal(size=(K, n)), 0.0))
    corrected = np.array([True, False, True, False])
    corr = np.stack([0.4 * np.tanh(grid)[None, :] * rng.uniform(0.5, 1.5, (K, 1)) for _ in range(2)], axis=-1)
    mix = ls.LaplaceMixture(base, corrected, grid, corr)
    m, sd = mix.mean(), mix.sd()
    x = m + sd * np.linspace(-14, 14, 20001)[:, None]
    f = mix.pdf(x)
    np.testing.assert_allclose(integrate.trapezoid(f, x, axis=0), 1.0, atol=1e-7)
    np.testing.assert_allclose(integrate.trapezoid(x * f, x, axis=0), m, atol=1e-7)
    np.testing.assert_allclose(np.sqrt(integrate.trapezoid((x - m) ** 2 * f, x, axis=0)), sd, rtol=1e-6)
    F = integrate.cumulative_trapezoid(f, x, axis=0, initial=0.0)
    np.testing.assert_allclose(mix.cdf(x[::500]), F[::500], atol=1e-6)
    for q in (0.025, 0.5, 0.975):
        np.testing.assert_allclose(mix.cdf(mix.quantile(q)[None, :])[0], q, atol=1e-10)
    mode = mix.mode()
    assert np.all(np.abs(mode - x[np.argmax(f, axis=0), np.arange(n)]) <= 2 * 28 * sd / 20000)
    assert np.all(mix.pdf(mode[None, :]) >= f.max(axis=0) - 1e-12)
    # the corrections matter (so the checks above are not those of the base mixture)
    assert np.all(np.max(np.abs(f - base.pdf(x)), axis=0)[corrected] > 0.02 * f.max(axis=0)[corrected])
    np.testing.assert_allclose(f[:, ~corrected], base.pdf(x)[:, ~corrected], rtol=1e-12)
    sub = ls.select_nodes(mix, np.array([2, 1]))
    np.testing.assert_allclose(sub.pdf(x[:, [2, 1]]), f[:, [2, 1]], rtol=1e-12)
    beta = np.array([2.0, -1.5, 0.7])
    scaled = ls.scale_components(mix, beta)
    y = np.linspace(-12, 12, 7)[:, None] * np.ones(n)
    dens = np.zeros_like(y)
    for k in range(K):  # the density of β_k x under component k, mixed
        one = ls.LaplaceMixture(Mixture(np.ones(1), base.loc[k:k + 1], base.scale[k:k + 1],
                                        None if base.shape is None else base.shape[k:k + 1]), corrected, grid, corr[k:k + 1])
        dens += base.weights[k] * one.pdf(y / beta[k]) / abs(beta[k])
    np.testing.assert_allclose(scaled.pdf(y), dens, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 3. Gaussian likelihood: the Gaussian is exact, all strategies agree
# ---------------------------------------------------------------------------------------------


def test_gaussian_likelihood_all_strategies_agree():
    rng = np.random.default_rng(7)
    t = np.repeat(np.arange(1, 7), 3)
    x = rng.normal(size=t.size)
    y = 0.5 + 0.3 * x + np.sin(t / 2) + 0.4 * rng.normal(size=t.size)
    model = adelia.compile("y ~ 1 + x + f(t, model='rw1')", {"y": y, "x": x, "t": t}, control_fixed={"prec.intercept": 0.01},
                           control_inla={"strategy": "simplified.laplace", "int.strategy": "ccd"})
    post = model.fit().posterior  # through run_inla's strategy hook
    pts, p = post.points, post.probabilities
    keep = p > 0
    out = {
        "gaussian": Mixture(p[keep], pts.mean[keep], np.sqrt(pts.var[keep])),  # the "gaussian" strategy (VB means)
        "simplified.laplace": post.latent,
        "laplace": ls.latent_marginals(model, pts, p, "laplace"),
    }
    assert isinstance(out["laplace"], ls.LaplaceMixture) and out["laplace"].corrected.all()
    assert out["gaussian"].weights.size > 1
    ref = out["gaussian"].summary()
    xg, _ = out["gaussian"].marginal_grid()
    for strategy in ("simplified.laplace", "laplace"):
        s = out[strategy].summary()
        for key in ref:
            np.testing.assert_allclose(s[key], ref[key], atol=1e-8, rtol=0, err_msg=f"{strategy} {key}")
        np.testing.assert_allclose(out[strategy].pdf(xg), out["gaussian"].pdf(xg), rtol=1e-7)
    # the rw1 sum-to-zero constraint: marginal means sum to 0
    assert abs(out["laplace"].mean()[:6].sum()) < 1e-8
