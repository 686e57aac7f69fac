"""Multi-likelihood models, R-INLA style: a response matrix with one column per family and
NA elsewhere, ``family=[...]``, latent effects shared between the families through common
covariates and ``copy``.

Checks: recovery of a Gaussian + Poisson model sharing a covariate effect and an iid effect
(copied with a free scaling β) — every truth inside its 95% posterior interval; R-INLA's
naming of the second family's hyperparameters ("...[2]", ``inla_make_tag`` in R-INLA's
``inla.c`` numbers every family after the first); every family as the second likelihood of a
two-family model (a fit with finite summaries and a sane covariate effect).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps

import adelia
from adelia.errors import DataError
from adelia.likelihoods import FAMILIES, inla_surv, make_likelihood

GAUSS_PREC = "Precision for the Gaussian observations"


def two_blocks(seed: int, n1: int, n2: int):
    """rng, x and the indicator columns mu1/mu2 of a two-family data set (family 1 first)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n1 + n2)
    mu1 = np.r_[np.ones(n1), np.zeros(n2)]
    return rng, x, mu1, 1.0 - mu1


def response_matrix(y1, y2):
    Y = np.full((y1.size + y2.size, 2), np.nan)
    Y[: y1.size, 0] = y1
    Y[y1.size :, 1] = y2
    return Y


def covers(table, name, truth):
    lo, hi = table.loc[name, "0.025quant"], table.loc[name, "0.975quant"]
    return lo <= truth <= hi, f"{name}: truth {truth:g} outside [{lo:.4g}, {hi:.4g}]"


# ------------------------------------------------------------------------------------------
# recovery: Gaussian + Poisson sharing x and an iid effect through copy
# ------------------------------------------------------------------------------------------


def test_gaussian_poisson_shared_effects_recover():
    n1 = n2 = 300
    n_groups, prec_iid, prec_obs, scaling = 25, 4.0, 4.0, 0.7
    b_gauss, b_pois, b_x = 1.0, 0.5, 0.5
    rng, x, mu1, mu2 = two_blocks(31, n1, n2)
    g = np.arange(n1 + n2) % n_groups
    u = rng.normal(0.0, 1.0 / np.sqrt(prec_iid), n_groups)
    u -= u.mean()  # centred realisation: intercept truths are not offset by ū
    eta1 = b_gauss + b_x * x[:n1] + u[g[:n1]]
    eta2 = b_pois + b_x * x[n1:] + scaling * u[g[n1:]]
    y1 = eta1 + rng.normal(size=n1) / np.sqrt(prec_obs)
    y2 = rng.poisson(np.exp(eta2)).astype(float)
    data = {
        "Y": response_matrix(y1, y2),
        "x": x,
        "mu1": mu1,
        "mu2": mu2,
        "i1": np.where(mu1 == 1, g, np.nan),  # NA index: the term is absent from that row
        "i2": np.where(mu2 == 1, g, np.nan),
    }
    formula = "Y ~ 0 + mu1 + mu2 + x + f(i1, model='iid') + f(i2, copy='i1', hyper=list(beta=list(fixed=FALSE)))"
    res = adelia.inla(formula, data, family=["gaussian", "poisson"], control_predictor={"compute": True})
    assert list(res.summary_fixed.index) == ["mu1", "mu2", "x"]
    assert list(res.summary_hyperpar.index) == [GAUSS_PREC, "Precision for i1", "Beta for i2"]
    checks = [
        covers(res.summary_fixed, "mu1", b_gauss),
        covers(res.summary_fixed, "mu2", b_pois),
        covers(res.summary_fixed, "x", b_x),
        covers(res.summary_hyperpar, GAUSS_PREC, prec_obs),
        covers(res.summary_hyperpar, "Precision for i1", prec_iid),
        covers(res.summary_hyperpar, "Beta for i2", scaling),
    ]
    assert all(ok for ok, _ in checks), "; ".join(msg for ok, msg in checks if not ok)
    # the copy shows the source effect scaled by β: its summary sits on β·u
    copy, source = res.summary_random["i2"], res.summary_random["i1"]
    beta_mean = res.summary_hyperpar.loc["Beta for i2", "mean"]
    np.testing.assert_allclose(copy["mean"], beta_mean * source["mean"], atol=0.05)
    # the linear predictor on the Poisson rows follows the simulated one
    lp = res.summary_linear_predictor["mean"].to_numpy()
    assert np.corrcoef(lp[n1:], eta2)[0, 1] > 0.95


# ------------------------------------------------------------------------------------------
# naming: the second family's hyperparameters get "[2]"
# ------------------------------------------------------------------------------------------


def test_two_gaussian_families_get_suffixed_names_and_recover():
    n1 = n2 = 300
    prec1, prec2, beta = 4.0, 0.5, (1.0, 0.5)
    rng, x, mu1, mu2 = two_blocks(32, n1, n2)
    eta = beta[0] + beta[1] * x
    y1 = eta[:n1] + rng.normal(size=n1) / np.sqrt(prec1)
    y2 = eta[n1:] + rng.normal(size=n2) / np.sqrt(prec2)
    res = adelia.inla("Y ~ 1 + x", {"Y": response_matrix(y1, y2), "x": x}, family=["gaussian", "gaussian"])
    assert list(res.summary_hyperpar.index) == [GAUSS_PREC, GAUSS_PREC + "[2]"]
    assert list(res.internal_summary_hyperpar.index) == [
        "Log precision for the Gaussian observations",
        "Log precision for the Gaussian observations[2]",
    ]
    checks = [
        covers(res.summary_hyperpar, GAUSS_PREC, prec1),
        covers(res.summary_hyperpar, GAUSS_PREC + "[2]", prec2),
        covers(res.summary_fixed, "(Intercept)", beta[0]),
        covers(res.summary_fixed, "x", beta[1]),
    ]
    assert all(ok for ok, _ in checks), "; ".join(msg for ok, msg in checks if not ok)


# ------------------------------------------------------------------------------------------
# every family as the second likelihood
# ------------------------------------------------------------------------------------------


def simulate_second(family: str, rng, eta):
    """A response for ``family`` at linear predictor η (R-INLA parametrisations, default
    links; survival families: all events observed, so a plain time column)."""
    n = eta.size
    mu = np.exp(eta)
    if family in ("gaussian", "t"):
        return eta + 0.5 * rng.normal(size=n)
    if family == "poisson":
        return rng.poisson(mu).astype(float)
    if family in ("binomial", "betabinomial"):
        return rng.binomial(5, sps.expit(eta)).astype(float)
    if family in ("nbinomial", "zeroinflatednbinomial0", "zeroinflatednbinomial1"):
        y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    elif family in ("zeroinflatedpoisson0", "zeroinflatedpoisson1"):
        y = rng.poisson(mu).astype(float)
    elif family == "gamma":
        return rng.gamma(5.0, mu / 5.0)
    elif family == "beta":
        p = sps.expit(eta)
        return rng.beta(10.0 * p, 10.0 * (1.0 - p))
    elif family in ("lognormal", "lognormalsurv"):
        return np.exp(eta + 0.5 * rng.normal(size=n))
    elif family in ("exponential", "exponentialsurv"):
        return rng.exponential(1.0 / mu)
    elif family in ("weibull", "weibullsurv"):
        return (rng.exponential(size=n) / mu) ** (1.0 / 1.5)
    elif family in ("loglogistic", "loglogisticsurv"):  # variant 0, α = 2: T = (λ/(1/u − 1))^(1/α)
        u = rng.uniform(size=n)
        return (mu / (1.0 / u - 1.0)) ** 0.5
    elif family == "gammasurv":
        return rng.gamma(3.0, mu / 3.0)
    elif family in ("nbinomial2", "cenpoisson"):  # Ntrials default 1; cenpoisson default I = [0, 0]
        return rng.negative_binomial(1, sps.expit(eta)).astype(float) if family == "nbinomial2" else rng.poisson(mu).astype(float)
    elif family in ("zeroinflatedbinomial0", "zeroinflatedbinomial1"):
        y = rng.binomial(1, sps.expit(eta)).astype(float)
        if family.endswith("0"):
            return np.where(rng.uniform(size=n) < 0.2, 0.0, 1.0)  # hurdle with Ntrials 1: y > 0 means y = 1
    else:
        raise AssertionError(f"no simulator for {family}")
    # zero-inflated: extra zeros with probability 0.2 (hurdle variants: keep y > 0 as drawn,
    # the zero mass is what type 0 models separately)
    return np.where(rng.uniform(size=n) < 0.2, 0.0, y)


# one fit per family costs a cold compile (~3-10 s on 2 cores): the default run covers each
# kind of second family (one hyperparameter, two, Ntrials, (0,1) data, a survival family);
# the rest run with -m slow
FAST_SECOND = {"gaussian", "nbinomial", "zeroinflatednbinomial1", "binomial", "beta", "weibullsurv"}
# pom is left out: its cut points absorb the block intercept mu2 and its θ's depend on the data
SECOND_FAMILIES = [f if f in FAST_SECOND else pytest.param(f, marks=pytest.mark.slow) for f in sorted(FAMILIES) if f != "pom"]


@pytest.mark.parametrize("family", SECOND_FAMILIES)
def test_every_family_works_as_the_second_likelihood(family):
    # first family Poisson (no hyperparameter), so θ holds only the second family's ones:
    # their names carry "[2]" whether or not they clash with the first family's
    n1, n2, b_x = 150, 200, 0.3
    rng, x, mu1, mu2 = two_blocks(33, n1, n2)
    y1 = rng.poisson(np.exp(0.5 + b_x * x[:n1])).astype(float)
    y2 = simulate_second(family, rng, 0.2 + b_x * x[n1:])
    data = {"Y": response_matrix(y1, y2), "x": x, "mu1": mu1, "mu2": mu2}
    kwargs = {}
    if family in ("binomial", "betabinomial"):
        kwargs["Ntrials"] = np.where(mu2 == 1, 5.0, 1.0)
    res = adelia.inla("Y ~ 0 + mu1 + mu2 + x", data, family=["poisson", family], **kwargs)
    expected = [h.name + "[2]" for h in make_likelihood(family).hyperparameters]
    assert list(res.summary_hyperpar.index) == expected
    for table in (res.summary_fixed, res.summary_hyperpar):
        values = table[["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]].to_numpy(dtype=float)
        assert np.all(np.isfinite(values)), table
        assert np.all(table["sd"] > 0)
    # both families inform the shared x; a loose sanity bound (not a coverage check)
    row = res.summary_fixed.loc["x"]
    assert abs(row["mean"] - b_x) < 4 * row["sd"], row
    assert res.diagnostics["mode_converged"]


# ------------------------------------------------------------------------------------------
# input errors and what is not supported yet
# ------------------------------------------------------------------------------------------


def test_a_row_with_two_responses_is_a_data_error():
    Y = response_matrix(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    Y[1, 1] = 5.0
    with pytest.raises(DataError, match=r"rows \[2\]"):
        adelia.inla("Y ~ 1", {"Y": Y}, family=["gaussian", "poisson"])


def test_bad_value_in_the_second_family_names_family_and_value():
    Y = response_matrix(np.array([1.0, 2.0, 3.0]), np.array([3.0, -4.0, 1.0]))
    with pytest.raises(DataError) as err:
        adelia.inla("Y ~ 1", {"Y": Y}, family=["gaussian", "poisson"])
    assert 'family "poisson"' in str(err.value) and "y = -4" in str(err.value)


def test_bad_value_in_the_second_family_names_the_data_row():
    Y = response_matrix(np.array([1.0, 2.0, 3.0]), np.array([3.0, -4.0, 1.0]))
    with pytest.raises(DataError, match="row 5"):
        adelia.inla("Y ~ 1", {"Y": Y}, family=["gaussian", "poisson"])


def test_censored_survival_family_as_second_likelihood():
    n = 60
    rng, x, mu1, mu2 = two_blocks(34, n, n)
    y1 = np.r_[1.0 + 0.3 * x[:n] + 0.5 * rng.normal(size=n), np.full(n, np.nan)]
    t = np.r_[np.full(n, np.nan), rng.exponential(size=n)]
    event = np.r_[np.full(n, np.nan), (np.arange(n) % 3 > 0).astype(float)]
    data = {"Y": [y1, inla_surv(t, event)], "x": x, "mu1": mu1, "mu2": mu2}
    res = adelia.inla("Y ~ 0 + mu1 + mu2 + x", data, family=["gaussian", "exponentialsurv"])
    assert np.all(np.isfinite(res.summary_fixed["mean"]))
