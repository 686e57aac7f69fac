"""adelia.spde.spde_result (R-INLA's inla.spde2.result / inla.spde.result).

Oracles:

* R-INLA's own BLC matrix for the SPDEtoy pcmatern model (spec.json of the reference case) and
  the closed forms of log σ² and log ρ for spde2_matern, written out here;
* R-INLA's posterior of "Range for s" and "Stdev for s" (results.json): range.nominal must
  reproduce the first, variance.nominal the square of the second (moments by quadrature of
  R's own marginal grid);
* the internal θ marginal pushed through exp by quadrature (mean) and by the monotone map
  (quantiles), computed here with numpy;
* Monte Carlo draws of θ from the fitted joint (res.hyperpar_sample) for rows that combine
  several θ (log τ of pcmatern, log σ² of matern).
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from spde_helpers import CASE

import adelia
from adelia import spde as S
from adelia.errors import ModelError
from adelia.marginals import zmarginal
from adelia.spde.result import _linear_combination_marginal, spde_blc

R_ELEMENTS = [
    "summary.values", "marginals.values", "summary.hyperpar",
    "summary.theta", "summary.log.tau", "summary.log.kappa", "summary.log.variance.nominal",
    "summary.log.range.nominal",
    "marginals.theta", "marginals.log.tau", "marginals.log.kappa", "marginals.log.variance.nominal",
    "marginals.log.range.nominal",
    "marginals.tau", "marginals.kappa", "marginals.variance.nominal", "marginals.range.nominal",
]


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adelia.inla(formula, data=data, **kw)


@pytest.fixture(scope="module")
def toy():
    """The SPDEtoy pcmatern reference case, fitted once, as an R-INLA user would call it."""
    folder = shared_path(*CASE)
    tools = shared_path("tools")
    sys.path.insert(0, str(tools))
    try:
        from rinla_compare import build_call
    finally:
        sys.path.remove(str(tools))
    spec = json.loads((folder / "spec.json").read_text())
    ref = json.loads((folder / "results.json").read_text())
    formula, data, kw = build_call(folder, spec)
    res = _fit(formula, data, **kw)
    spde = kw["context"]["spde"]
    return res, spde, spec, ref, S.spde_result(res, "s", spde)


@pytest.fixture(scope="module")
def small():
    """A small synthetic fit with spde2_matern (θ = (log τ, log κ)) and an iid term."""
    rng = np.random.default_rng(3)
    n = 120
    loc = rng.random((n, 2))
    y = 1 + np.sin(4 * loc[:, 0]) + np.cos(3 * loc[:, 1]) + 0.3 * rng.standard_normal(n)
    mesh = S.mesh_2d(loc, max_edge=(0.2, 0.5), cutoff=0.05)
    spde = S.spde2_matern(mesh)
    stk = S.stack(data={"y": y}, A=[S.make_A(mesh, loc), 1],
                  effects=[{"s": np.arange(1, mesh.n + 1)}, {"b0": np.ones(n), "g": rng.integers(1, 6, n)}], tag="est")
    res = _fit("y ~ 0 + b0 + f(s, model=spde) + f(g, model='iid')", S.stack_data(stk),
               control_predictor={"A": S.stack_A(stk)}, context={"spde": spde})
    return res, spde, mesh, S.spde_result(res, "s", spde)


def _r_moments(marginal: dict, fun) -> tuple[float, float]:
    """Mean and sd of fun(X) under R-INLA's marginal (trapezoid on its own grid)."""
    x, y = np.asarray(marginal["x"]), np.asarray(marginal["y"])
    w = np.trapezoid(y, x)
    m1 = np.trapezoid(fun(x) * y, x) / w
    m2 = np.trapezoid(fun(x) ** 2 * y, x) / w
    return float(m1), float(math.sqrt(m2 - m1**2))


# --- the BLC matrix -------------------------------------------------------------------------------
def test_blc_is_rinlas(toy):
    _, spde, spec, _, _ = toy
    blc, names = spde_blc(spde)
    ref = np.asarray(spec["spde"]["spde_param_inla"]["BLC"]["matrix"], dtype=float)
    np.testing.assert_allclose(blc, ref, atol=1e-12)
    assert names == ["theta.1", "theta.2", "tau.1", "kappa.1", "variance.nominal.1", "range.nominal.1"]


def test_blc_matern_closed_form(small):
    """θ = (log τ, log κ), α = 2, ν = 1: σ² = 1/(4π κ² τ²), ρ = √8/κ."""
    _, spde, _, _ = small
    blc, names = spde_blc(spde)
    rows = dict(zip(names, blc))
    np.testing.assert_allclose(rows["tau.1"], [0, 1, 0])
    np.testing.assert_allclose(rows["kappa.1"], [0, 0, 1])
    np.testing.assert_allclose(rows["variance.nominal.1"], [-math.log(4 * math.pi), -2, -2], atol=1e-12)
    np.testing.assert_allclose(rows["range.nominal.1"], [0.5 * math.log(8), 0, -1], atol=1e-12)


def test_blc_fractional_alpha():
    """α = 3/2 (ν = ½): σ² = Γ(½)/(Γ(3/2) 4π κ τ²) = 1/(2π κ τ²); ρ = 2/κ; pcmatern's θ = (log ρ, log σ)."""
    loc = np.random.default_rng(0).random((30, 2))
    spde = S.spde2_pcmatern(S.mesh_2d(loc, max_edge=0.3), alpha=1.5, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
    blc, names = spde_blc(spde)
    rows = dict(zip(names, blc))
    np.testing.assert_allclose(rows["range.nominal.1"], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rows["variance.nominal.1"], [0, 0, 2], atol=1e-12)


# --- element names and access --------------------------------------------------------------------
def test_elements_are_rinlas(toy):
    res, spde, _, _, r = toy
    assert list(r) == R_ELEMENTS
    assert r.summary_log_range_nominal is r["summary.log.range.nominal"]
    assert r["summary_log_range_nominal"] is r["summary.log.range.nominal"]
    assert list(r["summary.log.range.nominal"].columns) == ["ID", "mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]
    assert list(r["summary.theta"].index) == ["theta.1", "theta.2"]
    assert list(r["summary.log.tau"]["ID"]) == [3]
    assert set(r["marginals.range.nominal"]) == {"range.nominal.1"}
    assert r["summary.values"].equals(res.summary_random["s"])
    assert len(r["summary.hyperpar"]) == 0  # pcmatern has no "Theta<k> for s" rows, as in R
    with pytest.raises(KeyError, match="zmarginal"):
        r["summary.range.nominal"]
    with pytest.raises(AttributeError, match="not an element"):
        r.summary_kappa
    plain = S.spde_result(res, "s", spde, do_transform=False)
    assert list(plain) == R_ELEMENTS[:13]


# --- marginals against quadrature and the hyperparameter summaries ---------------------------------
def test_range_is_the_transformed_theta_marginal(toy):
    res, _, _, _, r = toy
    internal = res.internal_marginals_hyperpar["log(Range) for s"]
    x, p = internal["x"].to_numpy(), internal.to_numpy()
    log_range = r["summary.log.range.nominal"].loc["range.nominal.1"]
    isum = res.internal_summary_hyperpar.loc["log(Range) for s"]
    for q in ("0.025quant", "0.5quant", "0.975quant"):
        assert log_range[q] == pytest.approx(isum[q], abs=1e-10)
    rng_summary = zmarginal(r["marginals.range.nominal"]["range.nominal.1"])
    # mean of exp(θ) by quadrature on the internal marginal (numpy trapezoid, independent code)
    mean = np.trapezoid(np.exp(x) * p, x) / np.trapezoid(p, x)
    assert rng_summary["mean"] == pytest.approx(mean, rel=2e-3)
    # a monotone map: quantiles of exp(θ) are exp of θ's quantiles
    assert rng_summary["quant0.025"] == pytest.approx(math.exp(isum["0.025quant"]), rel=3e-3)
    assert rng_summary["quant0.5"] == pytest.approx(math.exp(isum["0.5quant"]), rel=3e-3)
    assert rng_summary["quant0.975"] == pytest.approx(math.exp(isum["0.975quant"]), rel=3e-3)
    # and equals the user-scale "Range for s" marginal
    assert rng_summary["mean"] == pytest.approx(res.summary_hyperpar.loc["Range for s", "mean"], rel=2e-3)


def test_range_and_variance_against_rinla(toy):
    _, _, _, ref, r = toy
    rows = {n: i for i, n in enumerate(ref["summary_hyperpar"]["name"])}
    rr = {k: ref["summary_hyperpar"][k][rows["Range for s"]] for k in ("mean", "sd", "0.025quant", "0.5quant", "0.975quant")}
    rng_summary = zmarginal(r["marginals.range.nominal"]["range.nominal.1"])
    for ours, theirs in (("mean", "mean"), ("quant0.025", "0.025quant"), ("quant0.5", "0.5quant"), ("quant0.975", "0.975quant")):
        assert abs(rng_summary[ours] - rr[theirs]) < 0.1 * rr["sd"], ours
    # σ² from R-INLA's "Stdev for s": moments of x² on R's marginal grid, quantiles squared
    stdev = ref["marginals_hyperpar"]["Stdev for s"]
    var_mean, var_sd = _r_moments(stdev, lambda s: s**2)
    vs = {k: ref["summary_hyperpar"][k][rows["Stdev for s"]] for k in ("0.025quant", "0.5quant", "0.975quant")}
    var_summary = zmarginal(r["marginals.variance.nominal"]["variance.nominal.1"])
    assert abs(var_summary["mean"] - var_mean) < 0.1 * var_sd
    assert var_summary["sd"] == pytest.approx(var_sd, rel=0.1)
    for ours, theirs in (("quant0.025", "0.025quant"), ("quant0.5", "0.5quant"), ("quant0.975", "0.975quant")):
        assert abs(var_summary[ours] - vs[theirs] ** 2) < 0.1 * var_sd, ours
    # log-scale summaries: log σ² = 2 log σ, log ρ = log(Range) (R's internal summaries)
    irows = {n: i for i, n in enumerate(ref["internal_summary_hyperpar"]["name"])}
    isd = ref["internal_summary_hyperpar"]
    lv = r["summary.log.variance.nominal"].loc["variance.nominal.1"]
    lr = r["summary.log.range.nominal"].loc["range.nominal.1"]
    assert abs(lv["mean"] - 2 * isd["mean"][irows["log(Stdev) for s"]]) < 0.1 * 2 * isd["sd"][irows["log(Stdev) for s"]]
    assert abs(lr["mean"] - isd["mean"][irows["log(Range) for s"]]) < 0.1 * isd["sd"][irows["log(Range) for s"]]


def _mc_check(res, summary_row, coef, const):
    """The row c·θ + const against draws of θ from the fitted joint posterior."""
    draws = res.hyperpar_sample(40000, seed=11, intern=True).to_numpy()
    u = const + draws @ coef
    sd = u.std()
    assert abs(summary_row["mean"] - u.mean()) < 0.03 * sd
    assert summary_row["sd"] == pytest.approx(sd, rel=0.03)
    for q in (0.025, 0.5, 0.975):
        assert abs(summary_row[f"{q:g}quant"] - np.quantile(u, q)) < 0.06 * sd


def test_log_tau_combines_two_thetas(toy):
    """pcmatern: log τ = τ₀ + θ₁ − θ₂, a combination of both θ."""
    res, spde, _, _, r = toy
    blc, names = spde_blc(spde)
    row = blc[names.index("tau.1")]
    coef = np.zeros(3)
    coef[1:] = row[1:]  # free θ: (log precision of the observations, log ρ, log σ)
    _mc_check(res, r["summary.log.tau"].loc["tau.1"], coef, row[0])


def test_matern_variance_combines_two_thetas(small):
    """matern: log σ² = −log 4π − 2θ₁ − 2θ₂."""
    res, spde, _, r = small
    hs = [h.internal_name for h in res.model.hyperparameters]
    coef = np.zeros(len(hs))
    coef[hs.index("Theta1 for s")] = -2.0
    coef[hs.index("Theta2 for s")] = -2.0
    _mc_check(res, r["summary.log.variance.nominal"].loc["variance.nominal.1"], coef, -math.log(4 * math.pi))


def test_single_axis_combination_is_the_hyperparameter_marginal(toy):
    """With c = e_i the combination's construction is the hyperparameter marginal's (dim θ ≥ 2)."""
    res, _, _, _, _ = toy
    post = res.posterior
    for i, hm in enumerate(post.hyper):
        e = np.zeros(len(post.hyper))
        e[i] = 1.0
        lc = _linear_combination_marginal(post, e)
        np.testing.assert_allclose(lc.x, hm.x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lc.density, hm.density, rtol=1e-8, atol=1e-10)


def test_matern_summary_hyperpar_rows(small):
    res, _, _, r = small
    hp = r["summary.hyperpar"]
    assert list(hp.index) == ["Theta1 for s", "Theta2 for s"]
    pd.testing.assert_frame_equal(hp, res.summary_hyperpar.loc[["Theta1 for s", "Theta2 for s"]])
    np.testing.assert_allclose(r["summary.theta"]["mean"].to_numpy(), hp["mean"].to_numpy(), rtol=1e-10)
    # log κ = θ₂, log ρ = ½ log 8 − θ₂: same marginal, shifted and mirrored
    lk = r["summary.log.kappa"].loc["kappa.1"]
    lr = r["summary.log.range.nominal"].loc["range.nominal.1"]
    assert lr["mean"] == pytest.approx(0.5 * math.log(8) - lk["mean"], abs=1e-9)
    assert lr["0.025quant"] == pytest.approx(0.5 * math.log(8) - lk["0.975quant"], abs=1e-6)


@pytest.mark.slow
def test_fixed_theta_is_a_constant():
    rng = np.random.default_rng(5)
    n = 80
    loc = rng.random((n, 2))
    y = np.sin(4 * loc[:, 0]) + 0.3 * rng.standard_normal(n)
    mesh = S.mesh_2d(loc, max_edge=(0.25, 0.5), cutoff=0.05)
    spde = S.spde2_pcmatern(mesh, prior_range=(0.5, None), prior_sigma=(1, 0.01))
    res = _fit("y ~ 1 + f(s, model=spde)", {"y": y, "s": mesh.idx_loc + 1}, context={"spde": spde})
    r = S.spde_result(res, "s", spde)
    lr = r["summary.log.range.nominal"].loc["range.nominal.1"]
    assert lr["mean"] == pytest.approx(math.log(0.5)) and lr["sd"] == 0.0
    assert r["marginals.range.nominal"]["range.nominal.1"] is None
    assert r["summary.log.variance.nominal"].loc["variance.nominal.1", "sd"] > 0


# --- bad input --------------------------------------------------------------------------------------
def test_unknown_term(small):
    res, spde, _, _ = small
    with pytest.raises(ModelError, match=r"no f\(\) term 'field'; its f\(\) terms are: s, g"):
        S.spde_result(res, "field", spde)


def test_term_that_is_not_spde(small):
    res, spde, _, _ = small
    with pytest.raises(ModelError, match="not an SPDE model"):
        S.spde_result(res, "g", spde)


def test_spde_of_another_model(small):
    res, _, mesh, _ = small
    other = S.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
    with pytest.raises(ModelError, match="not the model of term 's'"):
        S.spde_result(res, "s", other)


def test_bad_objects(small):
    res, spde, _, _ = small
    with pytest.raises(ModelError, match="InlaResult"):
        S.spde_result({"summary.random": {}}, "s", spde)
    with pytest.raises(ModelError, match="spde2 model"):
        S.spde_result(res, "s", None)
