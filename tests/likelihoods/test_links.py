"""Link functions: round trips, R-INLA's definitions, tail-accurate log p / log(1 − p)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from adelia.errors import ControlError
from adelia.likelihoods.links import LINKS, log1mexp, make_link

# independent definitions of g⁻¹ (R-INLA's inla-map-and-link.c)
INVERSE = {
    "identity": lambda e: e,
    "log": np.exp,
    "neglog": lambda e: np.exp(-e),
    "logit": sps.expit,
    "probit": st.norm.cdf,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
    "loglog": lambda e: np.exp(-np.exp(-e)),
    "cauchit": lambda e: 0.5 + np.arctan(e) / np.pi,
}
# 1 − g⁻¹(η), written without cancellation
COMPLEMENT = {
    "logit": lambda e: sps.expit(-e),
    "probit": st.norm.sf,
    "cloglog": lambda e: np.exp(-np.exp(e)),
    "loglog": lambda e: -np.expm1(-np.exp(-e)),
    "cauchit": lambda e: 0.5 - np.arctan(e) / np.pi,
}
PROB_LINKS = tuple(COMPLEMENT)


@pytest.mark.parametrize("name", sorted(LINKS))
def test_inverse_matches_definition_and_round_trips(name):
    eta = np.linspace(-3.0, 3.0, 13)
    link = make_link(name)
    mu = np.asarray(link.inverse(jnp.asarray(eta)))
    np.testing.assert_allclose(mu, INVERSE[name](eta), rtol=1e-13, atol=1e-15)
    # the round trip loses digits where 1 − p is tiny (cloglog at η = 3: 1 − p = e^−20)
    inner = np.abs(eta) <= 2.5
    np.testing.assert_allclose(np.asarray(link(jnp.asarray(mu)))[inner], eta[inner], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", PROB_LINKS)
def test_log_p_and_log_1mp_in_the_body(name):
    eta = np.linspace(-4.0, 4.0, 17)
    link = make_link(name)
    p, q = INVERSE[name](eta), COMPLEMENT[name](eta)
    # reference: take the log of whichever of p, 1 − p is small, log1p of minus the other
    with np.errstate(divide="ignore"):
        log_p = np.where(p < 0.5, np.log(p), np.log1p(-q))
        log_q = np.where(q < 0.5, np.log(q), np.log1p(-p))
    np.testing.assert_allclose(np.asarray(link.log_p(jnp.asarray(eta))), log_p, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(link.log_1mp(jnp.asarray(eta))), log_q, rtol=1e-12)


def test_log_p_tails_are_accurate():
    # where 1 - p or p underflows/rounds to 0/1, the special forms stay exact
    probit = make_link("probit")
    assert float(probit.log_p(-40.0)) == pytest.approx(st.norm.logcdf(-40.0), rel=1e-12)
    assert float(probit.log_1mp(40.0)) == pytest.approx(st.norm.logsf(40.0), rel=1e-12)
    logit = make_link("logit")
    assert float(logit.log_1mp(50.0)) == pytest.approx(-50.0 - np.log1p(np.exp(-50.0)), rel=1e-14)
    cloglog = make_link("cloglog")
    # log p = log(1 - exp(-e^η)) ≈ η for η → −∞
    assert float(cloglog.log_p(-40.0)) == pytest.approx(-40.0, rel=1e-12)
    assert float(cloglog.log_1mp(3.0)) == pytest.approx(-np.exp(3.0), rel=1e-14)
    loglog = make_link("loglog")
    assert float(loglog.log_1mp(40.0)) == pytest.approx(-40.0, rel=1e-12)
    cauchit = make_link("cauchit")
    assert float(cauchit.log_p(-1e8)) == pytest.approx(np.log(1.0 / (np.pi * 1e8)), rel=1e-7)


def test_log1mexp_small_and_large():
    x = np.array([1e-12, 1e-3, 0.5, 1.0, 10.0, 50.0])
    # log(1 − e^−x): expm1 form for small x; for large x the series −e^−x − e^−2x/2
    u = np.exp(-x)
    ref = np.where(x < 2.0, np.log(-np.expm1(-x)), -u - u**2 / 2 - u**3 / 3 - u**4 / 4 - u**5 / 5)
    np.testing.assert_allclose(np.asarray(log1mexp(jnp.asarray(x))), ref, rtol=1e-13)


def test_default_and_errors_list_valid_links():
    assert make_link("default", ("probit", "logit")).name == "probit"
    assert make_link("LOGIT").name == "logit"
    with pytest.raises(ControlError) as err:
        make_link("logitt", ("logit", "probit"), family="binomial")
    msg = str(err.value)
    assert '"logitt"' in msg and "binomial" in msg and "logit" in msg and "probit" in msg and 'Did you mean "logit"' in msg
    with pytest.raises(ControlError, match="cloglog"):
        make_link("identity", ("logit", "cloglog"), family="binomial")
