"""The issue-15 families against independent oracles.

zeroinflatedbinomial0/1, loglogistic(surv), gammasurv, nbinomial2, cenpoisson and pom:
log-densities and cdfs against scipy.stats (or closed forms written here with scipy), the
censored survival contributions against scipy's logpdf/logsf/logcdf, the η-derivatives the
Laplace approximation uses against finite differences of those references and against AD
of the log-density, the pom Dirichlet prior against scipy.stats.dirichlet plus its
Jacobian, recovery of simulated truth for the families without an R-INLA reference case,
and the errors for bad input.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

import adelia
from adelia.errors import ControlError, DataError, PriorError
from adelia.likelihoods import inla_surv, make_likelihood
from adelia.likelihoods.pom import cutpoints, default_initial
from adelia.models.registry import make_prior

PROB_LINKS = {
    "logit": sps.expit,
    "probit": sps.ndtr,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
}


def _ll(lik, y, eta, theta, data=None):
    jd = {k: jnp.asarray(v, dtype=float) for k, v in (data or {}).items()}
    return np.asarray(lik.log_density(jnp.asarray(y, dtype=float), jnp.asarray(eta), jnp.asarray(theta, dtype=float), jd))


def _derivs(lik, y, eta, theta, data=None):
    jd = {k: jnp.asarray(v, dtype=float) for k, v in (data or {}).items()}
    d1, d2 = lik.d_log_density(jnp.asarray(y, dtype=float), jnp.asarray(eta), jnp.asarray(theta, dtype=float), jd)
    return np.asarray(d1), np.asarray(d2)


def _ad_derivs(lik, y, eta, theta, data=None):
    """Gradient and Hessian diagonal of Σ_i log π(y_i | η_i) by forward-over-reverse AD of
    the whole vector (independent of the family's elementwise d_log_density)."""
    jd = {k: jnp.asarray(v, dtype=float) for k, v in (data or {}).items()}
    f = lambda e: jnp.sum(lik.log_density(jnp.asarray(y, dtype=float), e, jnp.asarray(theta, dtype=float), jd))  # noqa: E731
    g = jax.grad(f)(jnp.asarray(eta))
    H = jax.jacfwd(jax.grad(f))(jnp.asarray(eta))
    return np.asarray(g), np.diag(np.asarray(H))


def _check_derivatives(lik, ref, y, eta, theta, data=None, rtol=1e-5, atol=1e-6):
    """d_log_density equals AD of the log-density, and both equal central differences of the
    scipy reference ``ref(eta)``."""
    d1, d2 = _derivs(lik, y, eta, theta, data)
    a1, a2 = _ad_derivs(lik, y, eta, theta, data)
    np.testing.assert_allclose(d1, a1, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(d2, a2, rtol=1e-9, atol=1e-11)
    h = 1e-4
    fd1 = (ref(eta + h) - ref(eta - h)) / (2 * h)
    fd2 = (ref(eta + h) - 2 * ref(eta) + ref(eta - h)) / h**2
    np.testing.assert_allclose(d1, fd1, rtol=rtol, atol=atol)
    np.testing.assert_allclose(d2, fd2, rtol=100 * rtol, atol=100 * atol)


# ------------------------------------------------------------------------------------------
# zero-inflated binomial
# ------------------------------------------------------------------------------------------
def zib_reference(zi_type, y, n, eta, theta, link):
    p = sps.expit(theta)
    pi = PROB_LINKS[link](eta)
    f = st.binom(n, pi)
    if zi_type == 1:
        return np.where(y == 0, np.log(p + (1 - p) * f.pmf(0)), np.log1p(-p) + f.logpmf(y))
    with np.errstate(divide="ignore"):
        return np.where(y == 0, np.log(p), np.log1p(-p) + f.logpmf(y) - np.log(f.sf(0)))


@pytest.mark.parametrize("zi_type", [0, 1])
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_zeroinflated_binomial_matches_scipy(zi_type, link, rng):
    lik = make_likelihood(f"zeroinflatedbinomial{zi_type}", {"link": link})
    n = rng.integers(1, 12, 30).astype(float)
    y = np.minimum(rng.integers(0, 6, 30), n).astype(float)
    eta = rng.normal(-0.3, 1.0, 30)
    theta = -1.2
    data = {"Ntrials": n}
    np.testing.assert_allclose(_ll(lik, y, eta, [theta], data), zib_reference(zi_type, y, n, eta, theta, link), rtol=1e-10, atol=1e-12)
    _check_derivatives(lik, lambda e: zib_reference(zi_type, y, n, e, theta, link), y, eta, [theta], data)
    # cdf: P(Y ≤ y) of the mixture
    p, pi = sps.expit(theta), PROB_LINKS[link](eta)
    F, f0 = st.binom.cdf(y, n, pi), st.binom.pmf(0, n, pi)
    ref_cdf = p + (1 - p) * F if zi_type == 1 else p + (1 - p) * (F - f0) / (1 - f0)
    got = np.asarray(lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.asarray([theta]), {"Ntrials": jnp.asarray(n)}))
    np.testing.assert_allclose(got, ref_cdf, rtol=1e-9, atol=1e-12)


def test_zeroinflated_binomial_names_follow_r_inla():
    h = make_likelihood("zeroinflatedbinomial1").hyperparameters[0]
    assert h.internal_name == "intern zero-probability parameter for zero-inflated binomial_1"
    assert h.name == "zero-probability parameter for zero-inflated binomial_1"
    assert (h.prior.name, h.prior.param, h.initial) == ("normal", (-1.0, 0.2), -1.0)
    assert make_likelihood("zeroinflatedbinomial0").hyperparameters[0].name.endswith("binomial_0")


# ------------------------------------------------------------------------------------------
# log-logistic
# ------------------------------------------------------------------------------------------
def fisk(eta, log_alpha, link, variant):
    """scipy's log-logistic (F = 1/(1 + (t/s)^−c)) in R-INLA's parametrisation."""
    alpha = np.exp(log_alpha)
    lam = np.exp(eta) if link == "log" else np.exp(-eta)
    scale = lam ** (1.0 / alpha) if variant == 0 else 1.0 / lam
    return st.fisk(c=alpha, scale=scale)


@pytest.mark.parametrize("link,variant", [("log", 0), ("log", 1), ("neglog", 0), ("neglog", 1)])
def test_loglogistic_matches_scipy(link, variant, rng):
    lik = make_likelihood("loglogistic", {"link": link, "variant": variant})
    y = rng.gamma(2.0, 1.0, 25) + 0.01
    eta = rng.normal(0.2, 0.5, 25)
    th = 0.6
    ref = lambda e: fisk(e, th, link, variant).logpdf(y)  # noqa: E731
    np.testing.assert_allclose(_ll(lik, y, eta, [th]), ref(eta), rtol=1e-10)
    np.testing.assert_allclose(
        np.asarray(lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.asarray([th]), {})), fisk(eta, th, link, variant).cdf(y), rtol=1e-10
    )
    _check_derivatives(lik, ref, y, eta, [th])


def _surv_data(rng, n=16):
    time = rng.gamma(2.0, 0.7, n) + 0.05
    event = np.tile([1.0, 0.0, 2.0, 3.0], n // 4)
    time2 = np.where(event == 3, time + rng.uniform(0.1, 1.5, n), 0.0)
    trunc = np.where(np.arange(n) % 3 == 0, 0.5 * time, 0.0)
    return time, {"event": event, "time2": time2, "truncation": trunc}


def _censored_reference(dist, t, d):
    # interval rows as S(t) − S(t2): F(t2) − F(t) loses digits when both are near 1
    e, t2, tr = d["event"], d["time2"], d["truncation"]
    with np.errstate(invalid="ignore"):
        val = np.where(
            e == 1,
            dist.logpdf(t),
            np.where(e == 0, dist.logsf(t), np.where(e == 2, dist.logcdf(t), np.log(dist.sf(t) - dist.sf(t2)))),
        )
    return val - np.where(tr > 0, dist.logsf(tr), 0.0)


def gamma_dist(eta, log_phi):
    phi = np.exp(log_phi)
    return st.gamma(a=phi, scale=np.exp(eta) / phi)


SURV_CASES = [
    ("loglogisticsurv", {"variant": 0}, 0.5, lambda e, th: fisk(e, th, "log", 0)),
    ("loglogisticsurv", {"variant": 1, "link": "neglog"}, 0.9, lambda e, th: fisk(e, th, "neglog", 1)),
    ("gammasurv", {}, 0.7, gamma_dist),
    ("gammasurv", {}, -0.5, gamma_dist),
]


@pytest.mark.parametrize("family,control,theta,dist", SURV_CASES, ids=lambda c: str(c) if not callable(c) else "")
def test_censored_survival_contributions_match_scipy(family, control, theta, dist, rng):
    lik = make_likelihood(family, control)
    y, data = _surv_data(rng)
    eta = rng.normal(0.1, 0.4, y.size)
    ref = lambda e: _censored_reference(dist(e, theta), y, data)  # noqa: E731
    np.testing.assert_allclose(_ll(lik, y, eta, [theta], data), ref(eta), rtol=1e-8, atol=1e-10)
    _check_derivatives(lik, ref, y, eta, [theta], data, rtol=1e-5, atol=1e-6)
    # the θ-gradient used by the outer optimisation is finite on every event type
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    g = jax.grad(lambda th: jnp.sum(lik.log_density(jnp.asarray(y), jnp.asarray(eta), th, jd)))(jnp.asarray([theta]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_survival_names_priors_initial_follow_r_inla():
    ll = make_likelihood("loglogistic").hyperparameters[0]
    assert (ll.internal_name, ll.name) == ("log alpha for loglogistic observations", "alpha for loglogistic observations")
    assert (ll.prior.name, ll.prior.param, ll.initial) == ("loggamma", (25.0, 25.0), 1.0)
    # the inla program's label for loglogisticsurv (see adelia.likelihoods.loglogistic)
    assert make_likelihood("loglogistic.surv").hyperparameters[0].internal_name == "log alpha for qloglogisticsurv observations"
    g = make_likelihood("gammasurv").hyperparameters[0]
    assert g.internal_name == "Intern precision-parameter for the Gamma surv observations"
    assert (g.prior.name, g.prior.param, g.initial) == ("loggamma", (1.0, 0.01), 0.0)


# ------------------------------------------------------------------------------------------
# nbinomial2 and cenpoisson
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_nbinomial2_matches_scipy(link, rng):
    lik = make_likelihood("nbinomial2", {"link": link})
    n = rng.integers(1, 8, 30).astype(float)
    y = rng.integers(0, 15, 30).astype(float)
    eta = rng.normal(0.0, 1.0, 30)
    ref = lambda e: st.nbinom.logpmf(y, n, PROB_LINKS[link](e))  # noqa: E731
    np.testing.assert_allclose(_ll(lik, y, eta, [], {"Ntrials": n}), ref(eta), rtol=1e-10)
    got_cdf = lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.zeros(0), {"Ntrials": jnp.asarray(n)})
    np.testing.assert_allclose(np.asarray(got_cdf), st.nbinom.cdf(y, n, PROB_LINKS[link](eta)), rtol=1e-9)
    _check_derivatives(lik, ref, y, eta, [], {"Ntrials": n})


@pytest.mark.parametrize("interval", [(2, 5), (0, 3), (1, 400), (0, 0)])
def test_cenpoisson_matches_scipy(interval, rng):
    lik = make_likelihood("cenpoisson", {"cenpoisson.I": interval})
    low, high = interval
    y = rng.integers(0, 12, 40).astype(float)
    E = rng.uniform(0.5, 2.0, 40)
    eta = rng.normal(0.8, 0.6, 40)

    def ref(e):
        mu = E * np.exp(e)
        inside = (y >= low) & (y <= high)
        with np.errstate(divide="ignore"):
            cens = np.log(st.poisson.cdf(high, mu) - st.poisson.cdf(low - 1, mu))
        return np.where(inside, cens, st.poisson.logpmf(y, mu))

    np.testing.assert_allclose(_ll(lik, y, eta, [], {"E": E}), ref(eta), rtol=1e-9)
    _check_derivatives(lik, ref, y, eta, [], {"E": E}, rtol=1e-5, atol=1e-6)
    # PIT: F(y) outside the interval, F(L − 1) + P(I)/2 inside (R-INLA's rule)
    mu = E * np.exp(eta)
    inside = (y >= low) & (y <= high)
    pit = np.where(inside, st.poisson.cdf(low - 1, mu) + 0.5 * (st.poisson.cdf(high, mu) - st.poisson.cdf(low - 1, mu)), st.poisson.cdf(y, mu))
    got = lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.zeros(0), {"E": jnp.asarray(E)})
    np.testing.assert_allclose(np.asarray(got), pit, rtol=1e-8)


def test_cenpoisson_interval_processed_as_r_inla():
    assert make_likelihood("cenpoisson").interval == (0, 0)  # R default c(-1, -1) → [0, 0]
    assert make_likelihood("cenpoisson", {"cenpoisson.I": (4.6, 1.2)}).interval == (1, 5)
    with pytest.raises(ControlError, match="length 2"):
        make_likelihood("cenpoisson", {"cenpoisson.I": (1, 2, 3)})
    with pytest.raises(ControlError, match="finite"):
        make_likelihood("cenpoisson", {"cenpoisson.I": (1, np.inf)})


# ------------------------------------------------------------------------------------------
# pom
# ------------------------------------------------------------------------------------------
def pom_reference(theta, eta, y, cdf):
    F = sps.expit if cdf == "logit" else sps.ndtr
    alpha = np.r_[-np.inf, np.cumsum(np.r_[theta[0], np.exp(theta[1:])]), np.inf]
    k = y.astype(int)
    a, b = alpha[k - 1] - eta, alpha[k] - eta
    # upper tail as 1 − F: F(b) − F(a) = F(−a) − F(−b) keeps its digits when both are near 1
    with np.errstate(divide="ignore"):  # np.where evaluates both branches
        return np.where(a > 0, np.log(F(-a) - F(-b)), np.log(F(b) - F(a)))


@pytest.mark.parametrize("cdf", ["logit", "probit"])
def test_pom_matches_closed_form(cdf, rng):
    y = np.r_[1, 2, 3, 4, rng.integers(1, 5, 36)].astype(float)
    lik = make_likelihood("pom", {"control.pom": {"cdf": cdf}}, y=y)
    assert lik.n_classes == 4 and len(lik.hyperparameters) == 3
    theta = np.array([-0.7, 0.1, -0.3])
    eta = rng.normal(0.0, 2.0, y.size)
    eta[:3] = [-9.0, 9.0, 30.0]  # far tails: the log-space differences must not underflow
    ref = lambda e: pom_reference(theta, e, y, cdf)  # noqa: E731
    got = _ll(lik, y, eta, theta)
    finite = np.isfinite(ref(eta))
    np.testing.assert_allclose(got[finite], ref(eta)[finite], rtol=1e-7, atol=1e-10)
    assert np.all(np.isfinite(got))
    sel = np.abs(eta) < 6  # central differences of the scipy reference are accurate here
    d1, d2 = _derivs(lik, y, eta, theta)
    a1, a2 = _ad_derivs(lik, y, eta, theta)
    np.testing.assert_allclose(d1, a1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d2, a2, rtol=1e-9, atol=1e-12)
    h = 1e-4
    np.testing.assert_allclose(d1[sel], ((ref(eta + h) - ref(eta - h)) / (2 * h))[sel], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(d2[sel], ((ref(eta + h) - 2 * ref(eta) + ref(eta - h)) / h**2)[sel], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("cdf", ["logit", "probit"])
def test_pom_dirichlet_prior_matches_scipy_dirichlet_plus_jacobian(cdf):
    a, K = 3.0, 4
    prior = make_prior("dirichlet", a).bind(K, cdf)
    assert prior.dimension == K - 1
    F, f = (sps.expit, lambda x: sps.expit(x) * sps.expit(-x)) if cdf == "logit" else (sps.ndtr, st.norm.pdf)
    for theta in (np.array([-0.8, 0.1, 0.0]), np.array([1.5, -1.0, 0.7])):
        alpha = np.cumsum(np.r_[theta[0], np.exp(theta[1:])])
        v = np.diff(np.r_[0.0, F(alpha), 1.0])
        # R-INLA: Dirichlet density of v plus log F'(α_1) + Σ_{k≥2} [log F'(α_k) + θ_k]
        ref = st.dirichlet.logpdf(v, np.full(K, a)) + np.sum(np.log(f(alpha))) + np.sum(theta[1:])
        assert float(prior.log_density(jnp.asarray(theta))) == pytest.approx(ref, rel=1e-10, abs=1e-10)


def test_pom_names_initial_values_and_cutpoints():
    lik = make_likelihood("pom", y=np.array([1.0, 2.0, 3.0, 4.0, 4.0]))
    assert [h.name for h in lik.hyperparameters] == ["theta1 for POM", "theta2 for POM", "theta3 for POM"]
    assert [h.internal_name for h in lik.hyperparameters] == [h.name for h in lik.hyperparameters]
    # R-INLA's NA initial values: logit(1/(K+1)), then log of logit increments
    q = lambda p: math.log(p / (1 - p))  # noqa: E731
    expected = [q(1 / 5), math.log(q(2 / 5) - q(1 / 5)), math.log(q(3 / 5) - q(2 / 5))]
    np.testing.assert_allclose(lik.initial_theta(), expected, rtol=1e-14)
    np.testing.assert_allclose(default_initial(4), expected, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(cutpoints(jnp.asarray(expected))), [q(1 / 5), q(2 / 5), q(3 / 5)], rtol=1e-12)
    assert lik.hyperparameters[0].prior.name == "dirichlet" and lik.hyperparameters[0].prior.param == (3.0,)
    assert all(h.prior.name == "none" for h in lik.hyperparameters[1:])
    # a user's initial value is kept
    lik = make_likelihood("pom", {"hyper": {"theta2": {"initial": 0.25}}}, y=np.array([1.0, 2.0, 3.0]))
    assert lik.initial_theta()[1] == 0.25


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "y,words",
    [
        (np.array([1.0, 2.5, 3.0]), ["row 2", "y = 2.5", "1, 2, ..., K"]),
        (np.array([1.0, 0.0, 3.0]), ["row 2", "y = 0"]),
        (np.array([1.0, 2.0, 4.0]), ["class(es) [3]", "empty"]),
        (np.array([1.0, 1.0]), ["K >= 2"]),
        (np.arange(1.0, 13.0), ["at most 11"]),
    ],
)
def test_pom_bad_responses_are_named_data_errors(y, words):
    with pytest.raises(DataError) as err:
        make_likelihood("pom", y=y)
    for w in words:
        assert w in str(err.value)


def test_pom_control_errors():
    with pytest.raises(ControlError, match="probit"):
        make_likelihood("pom", {"control.pom": {"cdf": "cloglog"}})
    with pytest.raises(ControlError, match="dirichlet"):
        make_likelihood("pom", {"hyper": {"theta1": {"prior": "normal", "param": (0, 1)}}})
    with pytest.raises(ControlError, match="all fixed or all free"):
        make_likelihood("pom", {"hyper": {"theta2": {"fixed": True}}}, y=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(PriorError, match="number of classes"):
        make_prior("dirichlet", 3.0).log_density(jnp.zeros(2))


@pytest.mark.parametrize("family", ["loglogisticsurv", "gammasurv"])
def test_negative_survival_times_are_named_errors(family):
    with pytest.raises(DataError, match="time = -1"):
        make_likelihood(family, y=np.array([2.0, -1.0]), event=np.array([1.0, 0.0]))
    with pytest.raises(DataError, match="row 2"):
        adelia.inla("inla.surv(t, e) ~ 1", {"t": np.array([2.0, -1.0, 3.0]), "e": np.array([1.0, 1.0, 0.0])}, family=family)


def test_loglogistic_needs_positive_times():
    with pytest.raises(DataError, match="y = 0"):
        make_likelihood("loglogistic", y=np.array([1.0, 0.0]))


@pytest.mark.parametrize("family", ["zeroinflatedbinomial0", "zeroinflatedbinomial1"])
def test_zib_y_above_ntrials_is_a_named_error(family):
    with pytest.raises(DataError) as err:
        make_likelihood(family, y=np.array([1.0, 4.0]), Ntrials=np.array([5.0, 3.0]))
    assert "row 2" in str(err.value) and "exceeds Ntrials = 3" in str(err.value)


def test_nbinomial2_needs_positive_integer_ntrials():
    with pytest.raises(DataError, match="Ntrials = 0"):
        make_likelihood("nbinomial2", y=np.array([1.0, 4.0]), Ntrials=np.array([2.0, 0.0]))


# ------------------------------------------------------------------------------------------
# recovery of simulated truth (families without an R-INLA reference case)
# ------------------------------------------------------------------------------------------
def _covers(res, rows):
    misses = []
    for table, name, truth in rows:
        lo, hi = table.loc[name, "0.025quant"], table.loc[name, "0.975quant"]
        if not lo <= truth <= hi:
            misses.append(f"{name}: {truth} outside [{lo:.4g}, {hi:.4g}]")
    assert not misses, "; ".join(misses)


def test_zeroinflatedbinomial0_recovers():
    rng = np.random.default_rng(1501)
    n, b0, b1, p0 = 400, -0.2, 0.7, 0.25
    x = rng.normal(size=n)
    pi = sps.expit(b0 + b1 * x)
    ntr = np.full(n, 6.0)
    # hurdle: zero with probability p0, else a zero-truncated binomial (by rejection)
    y = np.zeros(n)
    pos = rng.uniform(size=n) >= p0
    for i in np.flatnonzero(pos):
        while y[i] == 0:
            y[i] = rng.binomial(6, pi[i])
    res = adelia.inla("y ~ 1 + x", {"y": y, "x": x, "n": ntr}, family="zeroinflatedbinomial0", Ntrials="n")
    _covers(res, [(res.summary_fixed, "(Intercept)", b0), (res.summary_fixed, "x", b1),
                  (res.summary_hyperpar, "zero-probability parameter for zero-inflated binomial_0", p0)])


def test_nbinomial2_recovers():
    rng = np.random.default_rng(1502)
    n, b0, b1 = 400, 0.3, -0.6
    x = rng.normal(size=n)
    succ = rng.integers(1, 6, n).astype(float)
    y = rng.negative_binomial(succ, sps.expit(b0 + b1 * x)).astype(float)
    res = adelia.inla("y ~ 1 + x", {"y": y, "x": x, "n": succ}, family="nbinomial2", Ntrials="n")
    _covers(res, [(res.summary_fixed, "(Intercept)", b0), (res.summary_fixed, "x", b1)])


def test_cenpoisson_recovers():
    rng = np.random.default_rng(1503)
    n, b0, b1, interval = 400, 0.9, 0.4, (1, 4)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(b0 + b1 * x)).astype(float)
    y[(y >= 1) & (y <= 4)] = 1.0  # censored counts are reported as any value in I
    res = adelia.inla("y ~ 1 + x", {"y": y, "x": x}, family="cenpoisson", control_family={"cenpoisson.I": interval})
    _covers(res, [(res.summary_fixed, "(Intercept)", b0), (res.summary_fixed, "x", b1)])


@pytest.mark.slow  # ~30-90 s on 2 shared cores (incomplete-gamma survival terms)
def test_gammasurv_recovers():
    rng = np.random.default_rng(1504)
    n, b0, b1, phi = 300, 0.5, 0.4, 3.0
    x = rng.normal(size=n)
    t = rng.gamma(phi, np.exp(b0 + b1 * x) / phi)
    c = rng.uniform(0.5, 6.0, n)
    data = {"time": np.minimum(t, c), "event": (t <= c).astype(float), "x": x}
    res = adelia.inla("inla.surv(time, event) ~ 1 + x", data, family="gammasurv")
    _covers(res, [(res.summary_fixed, "(Intercept)", b0), (res.summary_fixed, "x", b1),
                  (res.summary_hyperpar, "Precision-parameter for the Gamma surv observations", phi)])
