"""Model criteria (DIC, WAIC, CPO/PIT, PO) and the families' cdf (for PIT).

Oracles: closed-form Gaussian predictive densities (dense linear algebra), R-INLA's
``criteria`` reference case (seeds with dic/waic/cpo), scipy.stats cdfs, and 1-D quadrature
for the leave-one-out integral."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.integrate as si
import scipy.special as sps
import scipy.stats as st
from conftest import shared_path

import adelia
from adelia.likelihoods import make_likelihood

# --- cdf of the families against scipy.stats ------------------------------------------------------
N = 9


def _eta(rng, loc=0.3, sd=0.7):
    return rng.normal(loc, sd, N)


def _cdf_cases():
    """(family, control, theta, make(rng) -> (y, eta, data), scipy cdf(y, eta, theta, data))."""
    def zi(p, F, f0, y, kind):
        if kind == 1:
            return p + (1 - p) * F
        return np.where(y > 0, p + (1 - p) * (F - f0) / (1 - f0), p)

    def nb_q(size, mu):
        return size / (size + mu)

    cases = [
        ("gaussian", None, [0.4],
         lambda r: (r.normal(size=N), _eta(r), {"scale": r.uniform(0.5, 2, N)}),
         lambda y, e, t, d: st.norm.cdf(y, e, 1 / np.sqrt(np.exp(t[0]) * d["scale"]))),
        ("binomial", None, [],
         lambda r: (r.integers(0, 6, N).astype(float), _eta(r), {"Ntrials": np.full(N, 5.0)}),
         lambda y, e, t, d: st.binom.cdf(y, d["Ntrials"], sps.expit(e))),
        ("binomial", {"link": "cloglog"}, [],
         lambda r: (r.integers(0, 8, N).astype(float), _eta(r, 1.5, 1.0), {"Ntrials": np.full(N, 7.0)}),
         lambda y, e, t, d: st.binom.cdf(y, d["Ntrials"], -np.expm1(-np.exp(e)))),
        ("poisson", None, [],
         lambda r: (r.poisson(2.5, N).astype(float), _eta(r), {"E": r.uniform(0.3, 3, N)}),
         lambda y, e, t, d: st.poisson.cdf(y, d["E"] * np.exp(e))),
        ("nbinomial", None, [0.7],
         lambda r: (r.poisson(3.0, N).astype(float), _eta(r), {"E": r.uniform(0.5, 2, N)}),
         lambda y, e, t, d: st.nbinom.cdf(y, np.exp(t[0]), nb_q(np.exp(t[0]), d["E"] * np.exp(e)))),
        ("nbinomial", {"variant": 1}, [0.2],
         lambda r: (r.poisson(3.0, N).astype(float), _eta(r), {"E": r.uniform(0.5, 2, N)}),
         lambda y, e, t, d: st.nbinom.cdf(y, np.exp(t[0]) * d["E"], nb_q(np.exp(t[0]) * d["E"], d["E"] * np.exp(e)))),
        ("gamma", None, [1.1],
         lambda r: (r.gamma(2.0, 1.0, N), _eta(r), {"scale": r.uniform(0.5, 2, N)}),
         lambda y, e, t, d: st.gamma.cdf(y, np.exp(t[0]) * d["scale"], scale=np.exp(e) / (np.exp(t[0]) * d["scale"]))),
        ("beta", None, [1.5],
         lambda r: (r.uniform(0.05, 0.95, N), _eta(r, 0.0, 1.0), {}),
         lambda y, e, t, d: st.beta.cdf(y, np.exp(t[0]) * sps.expit(e), np.exp(t[0]) * (1 - sps.expit(e)))),
        ("betabinomial", None, [-0.8],
         lambda r: (r.integers(0, 9, N).astype(float), _eta(r), {"Ntrials": np.full(N, 8.0)}),
         lambda y, e, t, d: st.betabinom.cdf(
             y, d["Ntrials"], sps.expit(e) * np.exp(-t[0]), (1 - sps.expit(e)) * np.exp(-t[0]))),
        ("exponential", None, [],
         lambda r: (r.exponential(1.0, N), _eta(r), {}),
         lambda y, e, t, d: st.expon.cdf(y, scale=np.exp(-e))),
        ("lognormal", None, [0.3],
         lambda r: (r.lognormal(0.2, 1.0, N), _eta(r), {"scale": r.uniform(0.5, 2, N)}),
         lambda y, e, t, d: st.lognorm.cdf(y, 1 / np.sqrt(np.exp(t[0]) * d["scale"]), scale=np.exp(e))),
        ("t", None, [0.5, 0.8],
         lambda r: (r.standard_t(4, N), _eta(r), {}),
         lambda y, e, t, d: st.t.cdf((y - e) * np.sqrt(np.exp(t[0]) * (2 + np.exp(t[1])) / np.exp(t[1])), 2 + np.exp(t[1]))),
        ("weibull", None, [3.0],
         lambda r: (r.weibull(1.5, N), _eta(r), {}),
         lambda y, e, t, d: st.weibull_min.cdf(y, np.exp(0.1 * t[0]), scale=np.exp(-e / np.exp(0.1 * t[0])))),
        ("weibull", {"variant": 1}, [3.0],
         lambda r: (r.weibull(1.5, N), _eta(r), {}),
         lambda y, e, t, d: st.weibull_min.cdf(y, np.exp(0.1 * t[0]), scale=np.exp(-e))),
        ("zeroinflatedpoisson1", None, [-0.5],
         lambda r: (r.poisson(1.5, N).astype(float), _eta(r), {}),
         lambda y, e, t, d: zi(sps.expit(t[0]), st.poisson.cdf(y, np.exp(e)), st.poisson.pmf(0, np.exp(e)), y, 1)),
        ("zeroinflatedpoisson0", None, [-0.5],
         lambda r: (r.poisson(1.5, N).astype(float), _eta(r), {}),
         lambda y, e, t, d: zi(sps.expit(t[0]), st.poisson.cdf(y, np.exp(e)), st.poisson.pmf(0, np.exp(e)), y, 0)),
        ("zeroinflatednbinomial1", None, [0.6, -0.7],
         lambda r: (r.poisson(1.5, N).astype(float), _eta(r), {}),
         lambda y, e, t, d: zi(sps.expit(t[1]), st.nbinom.cdf(y, np.exp(t[0]), nb_q(np.exp(t[0]), np.exp(e))),
                               st.nbinom.pmf(0, np.exp(t[0]), nb_q(np.exp(t[0]), np.exp(e))), y, 1)),
        ("zeroinflatednbinomial0", None, [0.6, -0.7],
         lambda r: (r.poisson(1.5, N).astype(float), _eta(r), {}),
         lambda y, e, t, d: zi(sps.expit(t[1]), st.nbinom.cdf(y, np.exp(t[0]), nb_q(np.exp(t[0]), np.exp(e))),
                               st.nbinom.pmf(0, np.exp(t[0]), nb_q(np.exp(t[0]), np.exp(e))), y, 0)),
    ]
    return cases


@pytest.mark.parametrize("case", _cdf_cases(), ids=lambda c: c[0] + ("" if c[1] is None else str(sorted(c[1].items()))))
def test_cdf_against_scipy(case):
    family, control, theta, make, ref = case
    r = np.random.default_rng(abs(hash(family)) % 2**32)
    y, eta, data = make(r)
    lik = make_likelihood(family, control)
    got = np.asarray(lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(theta, dtype=float), {k: jnp.asarray(v) for k, v in data.items()}))
    want = ref(y, eta, np.asarray(theta, dtype=float), data)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the cdf ignores weights, as R-INLA's PIT does
    w = {**{k: jnp.asarray(v) for k, v in data.items()}, "weights": jnp.full(N, 2.5)}
    np.testing.assert_allclose(np.asarray(lik.cdf(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(theta, dtype=float), w)), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("family", ["weibullsurv", "exponentialsurv", "lognormalsurv"])
def test_survival_families_have_no_cdf(family):
    lik = make_likelihood(family)
    theta = jnp.zeros(lik.n_theta)
    with pytest.raises(NotImplementedError, match="PIT values are not defined for censored"):
        lik.cdf(jnp.ones(2), jnp.zeros(2), theta, {"event": jnp.ones(2)})
