"""Survival responses (inla_surv) and the censored/truncated families against scipy.stats."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

from adelia.errors import DataError
from adelia.likelihoods import SURVIVAL_FAMILIES, inla_surv, make_likelihood
from adelia.likelihoods.priors import WEIBULL_ALPHA_SCALE


def test_inla_surv_matches_r_layout():
    s = inla_surv([5.0, 3.0, 2.0, 1.0], [1, 0, 2, 3], time2=[0.0, 0.0, 0.0, 4.0], truncation=[0.5, 0, 0, 0.2])
    np.testing.assert_array_equal(s.event, [1, 0, 2, 3])
    # R: surv.time for events, lower for right/interval, upper for left/interval
    np.testing.assert_array_equal(s.lower, [0, 3, 0, 1])
    np.testing.assert_array_equal(s.upper, [0, 0, 2, 4])
    np.testing.assert_array_equal(s.truncation, [0.5, 0, 0, 0.2])
    y, data = s.observation_data()
    np.testing.assert_array_equal(y, [5, 3, 2, 1])
    assert set(data) == {"event", "time2", "truncation"}
    assert repr(s) == "InlaSurv(5, 3+, 2-, [1,4])"


def test_inla_surv_defaults_and_missing_times():
    with pytest.warns(UserWarning, match="event"):
        s = inla_surv([1.0, 2.0])
    np.testing.assert_array_equal(s.event, [1, 1])
    s = inla_surv([1.0, np.nan, 2.0], [0, 0, 1])
    assert np.isnan(s.time[1]) and s.event[1] == 1  # R: missing times get event 1
    with pytest.warns(UserWarning, match="NaN"):
        s = inla_surv([1.0, 2.0], [np.nan, 0])
    np.testing.assert_array_equal(s.event, [1, 0])


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"time": [1.0, -2.0], "event": [1, 1]}, ["row 2", "time = -2"]),
        ({"time": [1.0, 2.0], "event": [1, 5]}, ["row 2", "event = 5", "interval"]),
        ({"time": [1.0, 2.0], "event": [3, 1]}, ["time2", "event = 3"]),
        ({"time": [3.0, 2.0], "event": [3, 1], "time2": [1.0, 0.0]}, ["row 1", "time2 = 1"]),
        ({"time": [3.0, 2.0], "event": [1, 1], "truncation": [0.0, 2.5]}, ["row 2", "truncation = 2.5"]),
        ({"time": [3.0, 2.0], "event": [1, 1, 1]}, ["length 3", "length 2"]),
    ],
)
def test_inla_surv_errors_name_row_and_value(kwargs, words):
    with pytest.raises(DataError) as err:
        inla_surv(**kwargs)
    for w in words:
        assert w in str(err.value)


# --- families: scipy distributions with the same parametrisation ---------------------------------
def dist_exponentialsurv(eta, theta, link, variant):
    lam = np.exp(eta) if link == "log" else np.exp(-eta)
    return st.expon(scale=1.0 / lam)


def dist_weibullsurv(eta, theta, link, variant):
    alpha = np.exp(WEIBULL_ALPHA_SCALE * theta[0])
    lam = np.exp(eta) if link == "log" else np.exp(-eta)
    scale = lam ** (-1.0 / alpha) if variant == 0 else 1.0 / lam
    return st.weibull_min(alpha, scale=scale)


def dist_lognormalsurv(eta, theta, link, variant):
    return st.lognorm(s=1.0 / np.sqrt(np.exp(theta[0])), scale=np.exp(eta))


SURV_CASES = [
    ("exponentialsurv", "log", 0, [], dist_exponentialsurv),
    ("exponentialsurv", "neglog", 0, [], dist_exponentialsurv),
    ("weibullsurv", "log", 0, [3.0], dist_weibullsurv),
    ("weibullsurv", "neglog", 1, [-4.0], dist_weibullsurv),
    ("lognormalsurv", "identity", 0, [0.4], dist_lognormalsurv),
]


def _data(rng, n=12):
    time = rng.gamma(2.0, 0.7, n) + 0.05
    event = np.tile([1.0, 0.0, 2.0, 3.0], n // 4)
    time2 = np.where(event == 3, time + rng.uniform(0.1, 1.5, n), 0.0)
    trunc = np.where(np.arange(n) % 3 == 0, 0.5 * time, 0.0)
    eta = rng.normal(-0.2, 0.4, n)
    return time, eta, {"event": event, "time2": time2, "truncation": trunc}


def _reference(dist, t, d):
    e, t2, tr = d["event"], d["time2"], d["truncation"]
    with np.errstate(invalid="ignore"):  # np.where evaluates the interval branch on every row
        val = np.where(
            e == 1,
            dist.logpdf(t),
            np.where(e == 0, dist.logsf(t), np.where(e == 2, dist.logcdf(t), np.log(dist.cdf(t2) - dist.cdf(t)))),
        )
    return val - np.where(tr > 0, dist.logsf(tr), 0.0)


def _eval(lik, y, eta, theta, data):
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    return lik.log_density(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(theta, dtype=float), jd)


@pytest.mark.parametrize("family,link,variant,theta,dist", SURV_CASES, ids=lambda c: c.__name__ if callable(c) else str(c))
def test_censored_log_likelihood_matches_scipy(family, link, variant, theta, dist, rng):
    lik = make_likelihood(family, {"link": link, "variant": variant} if family == "weibullsurv" else {"link": link})
    y, eta, data = _data(rng)
    ref = _reference(dist(eta, np.asarray(theta), link, variant), y, data)
    np.testing.assert_allclose(np.asarray(_eval(lik, y, eta, theta, data)), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family,link,variant,theta,dist", SURV_CASES, ids=lambda c: c.__name__ if callable(c) else str(c))
def test_censored_derivatives_finite_and_match_finite_differences(family, link, variant, theta, dist, rng):
    lik = make_likelihood(family, {"link": link, "variant": variant} if family == "weibullsurv" else {"link": link})
    y, eta, data = _data(rng)
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    d1, d2 = (np.asarray(v) for v in lik.d_log_density(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(theta, dtype=float), jd))
    h = 1e-4
    f = lambda e: _reference(dist(e, np.asarray(theta), link, variant), y, data)  # noqa: E731
    np.testing.assert_allclose(d1, (f(eta + h) - f(eta - h)) / (2 * h), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d2, (f(eta + h) - 2 * f(eta) + f(eta - h)) / h**2, rtol=1e-4, atol=1e-5)
    if theta:  # the θ-gradient (used by the outer optimisation) is finite on every event type
        g = jax.grad(lambda th: jnp.sum(lik.log_density(jnp.asarray(y), jnp.asarray(eta), th, jd)))(jnp.asarray(theta, dtype=float))
        assert np.all(np.isfinite(np.asarray(g)))


def test_right_censoring_at_time_zero_contributes_nothing():
    lik = make_likelihood("weibullsurv")
    val = _eval(lik, np.array([0.0]), np.array([0.3]), [1.0], {"event": np.array([0.0])})
    assert float(val[0]) == 0.0
    g = jax.grad(lambda th: jnp.sum(lik.log_density(jnp.zeros(1), jnp.array([0.3]), th, {"event": jnp.zeros(1)})))(jnp.array([1.0]))
    assert float(g[0]) == 0.0


def test_survival_families_read_inla_surv_data():
    assert SURVIVAL_FAMILIES == {"exponentialsurv", "weibullsurv", "lognormalsurv", "loglogisticsurv", "gammasurv"}
    s = inla_surv([2.0, 1.0, 0.5], [1, 0, 3], time2=[0, 0, 1.5])
    y, data = s.observation_data()
    lik = make_likelihood("exponentialsurv", y=y, **data)
    lam = np.exp(0.2)
    expected = [np.log(lam) - 2 * lam, -lam, np.log(np.exp(-0.5 * lam) - np.exp(-1.5 * lam))]
    np.testing.assert_allclose(np.asarray(_eval(lik, y, np.full(3, 0.2), [], data)), expected, rtol=1e-12)
