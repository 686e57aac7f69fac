"""family="coxph": R-INLA's expansion of survival data to a Poisson model (likelihoods/coxph.py).

Oracles: a tiny data set expanded by hand; the piecewise-exponential survival
log-likelihood with the cumulative hazard integrated by scipy quadrature; recovery of a
simulated Weibull proportional-hazards truth; R-INLA's own expansion and fit of the Leuk
data (../shared/reference/rinla/coxph_leuk).
"""

from __future__ import annotations

import json
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import integrate

import adelia
from adelia.errors import ControlError, DataError, ModelError
from adelia.likelihoods.coxph import default_cutpoints, expand_survival, inla_coxph, resolve_control_hazard
from adelia.likelihoods.poisson import PoissonLikelihood
from adelia.likelihoods.surv import inla_surv
from conftest import fit_reference_case, shared_path

# --------------------------------------------------------------------------------------------
# the expansion, against a hand computation
# --------------------------------------------------------------------------------------------

CUT = [0.0, 1.0, 2.0, 4.0, 5.0]  # I1 = (0,1] (closed at 0), I2 = (1,2], I3 = (2,4], I4 = (4,5]
TINY = pd.DataFrame({
    "time": [0.5, 2.0, 3.7, 5.0, 1.0, 4.0],
    "event": [1, 0, 1, 1, 1, 0],
    "entry": [0.0, 0.0, 1.5, 4.2, 0.0, 2.0],
    "x": [0.3, -1.0, 0.8, 0.1, 2.0, -0.4],
    "centre": ["b", "a", "b", "c", "a", "c"],
})
# (subject 1-based, interval, exposure, y), worked out on paper:
HAND = [
    (1, 1, 0.5, 1),  # 0.5 in I1, event
    (2, 1, 1.0, 0), (2, 2, 1.0, 0),  # censored at 2.0 = c2: I2 is right-closed
    (3, 2, 0.5, 0), (3, 3, 1.7, 1),  # enters at 1.5 (in I2), event at 3.7
    (4, 4, 0.8, 1),  # enters at 4.2 and fails at 5.0, both in I4: at risk 0.8
    (5, 1, 1.0, 1),  # event exactly at c1 = 1.0 belongs to I1
    (6, 2, 0.0, 0), (6, 3, 2.0, 0),  # entry exactly at c2 = 2.0 falls in I2 (left-open cut) with zero exposure, as R
]


def test_expansion_matches_hand_computation():
    p = inla_coxph("inla.surv(time, event, truncation=entry) ~ x", TINY, {"cutpoints": CUT})
    d = p.data
    sub, itv, E, y = (np.array(c, dtype=float) for c in zip(*HAND))
    np.testing.assert_array_equal(d["expand..coxph"], sub)
    np.testing.assert_array_equal(d["baseline.hazard.idx"], itv)
    np.testing.assert_allclose(d["E..coxph"], E, atol=1e-14)
    np.testing.assert_array_equal(d["y..coxph"], y)
    np.testing.assert_array_equal(d["baseline.hazard"], np.array(CUT)[itv.astype(int) - 1])
    np.testing.assert_array_equal(d["baseline.hazard.time"], d["baseline.hazard"])
    np.testing.assert_allclose(d["baseline.hazard.length"], np.diff(CUT)[itv.astype(int) - 1])
    # covariates repeated per row; the new columns first, as R-INLA orders them
    np.testing.assert_array_equal(d["x"], TINY["x"].to_numpy()[sub.astype(int) - 1])
    assert list(d.columns[:7]) == ["y..coxph", "E..coxph", "expand..coxph", "baseline.hazard",
                                   "baseline.hazard.idx", "baseline.hazard.time", "baseline.hazard.length"]
    np.testing.assert_array_equal(p.E, d["E..coxph"])
    assert p.family == "poisson"
    assert p.formula.startswith("y..coxph ~ x + f(baseline.hazard, model=\"rw1\", values=baseline.hazard.values")
    assert "constr=TRUE, diagonal=0.0001, scale.model=FALSE)" in p.formula
    np.testing.assert_array_equal(p.data_list["baseline.hazard.values"], CUT)
    assert p.data_list["baseline.hazard.hyper"] == {"prec": {"prior": "loggamma", "param": [1.0, 5e-05], "initial": 4.0, "fixed": False}}


def test_total_exposure_is_time_at_risk():
    rng = np.random.default_rng(3)
    t = rng.gamma(2.0, 3.0, size=200)
    entry = t * rng.uniform(0, 0.9, size=200) * (rng.uniform(size=200) < 0.3)
    s = inla_surv(t, rng.integers(0, 2, size=200), truncation=entry)
    ex = expand_survival(s, default_cutpoints(t, 15))
    np.testing.assert_allclose(np.bincount(ex.subject, weights=ex.exposure), t - entry, rtol=1e-12)
    np.testing.assert_array_equal(np.bincount(ex.subject, weights=ex.y), s.event)  # one event row at most
    assert np.all(np.diff(ex.interval)[np.diff(ex.subject) == 0] == 1)  # consecutive intervals per subject


def test_default_cut_points_and_strata():
    # seq(0, max(time), length.out = n.intervals + 1)
    np.testing.assert_allclose(default_cutpoints(np.array([3.0, 7.5, 1.0]), 15), np.arange(16) * 0.5)
    p = inla_coxph("inla.surv(time, event) ~ x", TINY, {"n.intervals": 2, "strata.name": "centre"})
    np.testing.assert_allclose(p.data_list["baseline.hazard.values"], [0.0, 2.5, 5.0])
    # inla.strata: codes 1..k in the order of factor()'s levels, replicate= in the hazard term
    np.testing.assert_array_equal(p.data["centre"], np.array([2, 1, 2, 3, 1, 3])[p.expand])
    assert p.strata_coding == ["a", "b", "c"] and p.formula.endswith(", replicate=centre)")
    # the tag renames the new variables, as R-INLA's inla.coxph(tag=)
    q = inla_coxph("inla.surv(time, event) ~ -1 + x", TINY, tag="1")
    assert q.formula.startswith("y1..coxph ~ -1 + x + f(baseline1.hazard, ") and "baseline1.hazard.idx" in q.data
    assert resolve_control_hazard({"n_intervals": 4, "model": "rw2"})["n.intervals"] == 4


# --------------------------------------------------------------------------------------------
# the likelihood: Poisson on the expanded rows = piecewise-exponential survival likelihood
# --------------------------------------------------------------------------------------------


def test_poisson_likelihood_equals_piecewise_exponential_survival():
    rng = np.random.default_rng(11)
    n = 40
    t = rng.weibull(1.4, size=n) * 5.0
    event = (rng.uniform(size=n) < 0.7).astype(float)
    entry = np.where(rng.uniform(size=n) < 0.3, t * rng.uniform(0, 0.8, size=n), 0.0)
    x = rng.normal(size=(n, 2))
    beta = np.array([0.7, -0.4])
    cut = default_cutpoints(t, 6)
    b = rng.normal(scale=0.5, size=cut.size)  # log baseline on each interval (the last one unused)

    def h0(s):  # the step function, right-closed intervals
        return np.exp(b[max(int(np.searchsorted(cut, s, side="left")), 1) - 1])

    surv_loglik = 0.0
    for i in range(n):
        lin = x[i] @ beta
        H, _ = integrate.quad(h0, entry[i], t[i], points=cut[(cut > entry[i]) & (cut < t[i])], limit=200, epsabs=1e-13, epsrel=1e-13)
        surv_loglik += event[i] * (np.log(h0(t[i])) + lin) - np.exp(lin) * H

    ex = expand_survival(inla_surv(t, event, truncation=entry), cut)
    eta = b[ex.interval - 1] + x[ex.subject] @ beta
    pois = PoissonLikelihood().log_density(jnp.asarray(ex.y), jnp.asarray(eta), jnp.zeros(0), {"E": jnp.asarray(ex.exposure)})
    # the Poisson form carries Σ δ_i log E_i,last in addition, a constant in (β, b)
    last = ex.y > 0
    const = np.sum(np.log(ex.exposure[last]))
    assert float(jnp.sum(pois)) - const == pytest.approx(surv_loglik, rel=1e-10, abs=1e-9)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column, values, message", [
    ("time", [1.0, -2.0, 3.0], "'time' must hold positive finite times; row(s) 2"),
    ("time", [1.0, 0.0, 3.0], "'time' must hold positive finite times; row(s) 2"),
    ("time", [1.0, np.nan, 3.0], "'time' is missing (NA) in row(s) 2"),
    ("status", [1, 2, 0], "'status' must be 0 (censored) or 1 (event); row(s) 2"),
])
def test_bad_survival_data_is_named(column, values, message):
    df = pd.DataFrame({"time": [1.0, 2.0, 3.0], "status": [1, 0, 1], "x": [0.0, 1.0, 2.0]})
    df[column] = values
    with pytest.raises(DataError) as err:
        inla_coxph("inla.surv(time, status) ~ x", df)
    assert message in str(err.value)


def test_bad_calls():
    df = pd.DataFrame({"time": [1.0, 2.0, 3.0], "status": [1, 0, 1], "x": [0.0, 1.0, 2.0]})
    with pytest.raises(ModelError, match="needs a survival response"):
        inla_coxph("time ~ x", df)
    with pytest.raises(ControlError, match="n.intervals"):
        inla_coxph("inla.surv(time, status) ~ x", df, {"n_intervalls": 3})
    with pytest.raises(ControlError, match="rw1"):
        inla_coxph("inla.surv(time, status) ~ x", df, {"model": "iid"})
    with pytest.raises(ControlError, match="strictly increasing"):
        inla_coxph("inla.surv(time, status) ~ x", df, {"cutpoints": [0, 2, 1, 4]})
    with pytest.raises(DataError, match="outside the cut points"):
        inla_coxph("inla.surv(time, status) ~ x", df, {"cutpoints": [0, 1, 2]})
    with pytest.raises(DataError, match="strata.name"):
        inla_coxph("inla.surv(time, status) ~ x", df, {"strata.name": "centre"})
    with pytest.raises(ModelError, match="several families"):
        adelia.compile("inla.surv(time, status) ~ x", df, family=["coxph", "gaussian"])
    with pytest.raises(ModelError, match="only used by family"):
        adelia.compile("time ~ x", df, family="gaussian", control_hazard={"n.intervals": 3})


# --------------------------------------------------------------------------------------------
# inla(family="coxph") = the Poisson fit of inla_coxph's data (offset, weights per subject)
# --------------------------------------------------------------------------------------------


def test_coxph_call_is_the_poisson_model_of_the_expanded_data():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"time": rng.exponential(2.0, size=30), "status": rng.integers(0, 2, size=30), "x": rng.normal(size=30)})
    off = rng.normal(scale=0.1, size=30)
    ch = {"n.intervals": 5, "hyper": {"prec": {"prior": "pc.prec", "param": [1, 0.01]}}}
    m = adelia.compile("inla.surv(time, status) ~ x", df, family="coxph", offset=off, control_hazard=ch)
    p = inla_coxph("inla.surv(time, status) ~ x", df, ch)
    m2 = adelia.compile(p.formula, p.data, family="poisson", E=p.E, offset=off[p.expand], context=p.data_list)
    assert m.theta_names == ["Log precision for baseline.hazard"] == m2.theta_names
    theta = np.array([1.3])
    assert m.log_posterior(theta) == pytest.approx(m2.log_posterior(theta), rel=1e-12)
    # the pc.prec prior from control_hazard reached the term
    assert "pc" in type(m.hyperparameters[0].prior).__name__.lower()


# --------------------------------------------------------------------------------------------
# recovery of a simulated truth: Weibull proportional hazards
# --------------------------------------------------------------------------------------------


def test_recovers_weibull_proportional_hazards_truth():
    rng = np.random.default_rng(20261126)
    n, shape, rate = 300, 1.6, 0.05
    beta = {"x1": 0.6, "x2": -0.5}
    x1, x2 = rng.normal(size=n), rng.binomial(1, 0.5, size=n).astype(float)
    lin = beta["x1"] * x1 + beta["x2"] * x2
    # H(t) = rate t^shape e^{lin}: T = (−log U / (rate e^{lin}))^{1/shape}
    T = (-np.log(rng.uniform(size=n)) / (rate * np.exp(lin))) ** (1 / shape)
    C = rng.uniform(0, 12, size=n)
    df = pd.DataFrame({"time": np.minimum(T, C), "event": (T <= C).astype(float), "x1": x1, "x2": x2})
    assert 0.5 < df["event"].mean() < 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("inla.surv(time, event) ~ x1 + x2", df, family="coxph")
    sf = res.summary_fixed
    for name, true in beta.items():
        assert sf.loc[name, "0.025quant"] < true < sf.loc[name, "0.975quant"], (name, sf.loc[name].to_dict())
    # the baseline hazard rises like log(shape·rate·t^(shape−1)) over the intervals with data
    bh = res.summary_random["baseline.hazard"]
    mids = (bh["ID"].to_numpy()[:-1] + np.diff(bh["ID"].to_numpy()) / 2)[:10]
    assert np.corrcoef(bh["mean"].to_numpy()[:10], (shape - 1) * np.log(mids))[0, 1] > 0.9


# --------------------------------------------------------------------------------------------
# R-INLA: coxph_leuk
# --------------------------------------------------------------------------------------------


def test_leuk_expansion_equals_rinla():
    folder = shared_path("reference", "rinla", "coxph_leuk")
    spec = json.loads((folder / "spec.json").read_text())
    p = inla_coxph(spec["formula"], pd.read_csv(folder / "data.csv"))
    ref = pd.read_csv(folder / spec["coxph"]["expanded_data_file"])
    assert list(p.data.columns) == list(ref.columns)
    # R wrote the csv with 15 significant digits
    np.testing.assert_allclose(p.data.to_numpy(float), ref.to_numpy(float), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(p.data_list["baseline.hazard.values"], spec["coxph"]["cutpoints"], rtol=1e-14)


@pytest.fixture(scope="module")
def leuk_fit():
    rc, res, ref, _ = fit_reference_case("coxph_leuk")
    return rc, res, ref


def test_leuk_gaussian_approximation_equals_rinla(leuk_fit):
    """x* and log π̃(θ|y) at R-INLA's own design points (no VB correction involved)."""
    _, res, ref = leuk_fit
    cfg = ref["configs"]
    model = res.model
    theta = np.asarray(cfg["theta"], dtype=float)
    lp = np.array([model.log_posterior(th) for th in theta])
    np.testing.assert_allclose(lp - lp.max(), np.asarray(cfg["log_posterior_orig"]), atol=2e-3)
    assert model.log_posterior(theta[int(np.argmax(cfg["log_posterior_orig"]))]) == pytest.approx(cfg["max_log_posterior"], abs=1e-3)
    for th, x_ref, var_ref in zip(theta, cfg["config_mean"], cfg["config_Qinv_diag"]):
        model.log_posterior(th)
        x_star = model._x_warm
        np.testing.assert_allclose(x_star, x_ref, atol=1e-3 * np.sqrt(np.max(var_ref)), rtol=1e-6)


def test_leuk_matches_rinla_fully(leuk_fit):
    """The whole comparison (tests/inference/test_rinla_reference.py runs it too) and the
    baseline hazard's table under R-INLA's IDs."""
    rc, res, ref = leuk_fit
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert not bad, f"coxph_leuk: {bad} (worst deviations {worst})"
    rb = ref["summary_random"]["baseline.hazard"]
    got = res.summary_random["baseline.hazard"]
    np.testing.assert_allclose(got["ID"], rb["ID"], rtol=1e-14)
    np.testing.assert_allclose(got["mean"], rb["mean"], atol=0.05 * np.min(rb["sd"]))
    np.testing.assert_allclose(got["sd"], rb["sd"], rtol=0.02)
    assert list(res.summary_hyperpar.index) == ["Precision for baseline.hazard"]
    assert len(res.summary_linear_predictor) == len(ref["summary_linear_predictor"]["mean"])
