"""adelia against R-INLA's own fits of the reference cases (../shared/reference/rinla).

Each case is run as an R-INLA user writes it (the formula copied verbatim, controls as
dicts, via ../shared/tools/rinla_compare.py's ``build_call``) and compared with the issue's
tolerances: fixed-effect means within 0.05 posterior sd and sds within 5 %, internal
hyperparameter means within 0.1 sd, mlik within 0.5 (Gaussian) and 1.0 (integration).
"""

from __future__ import annotations

import json

import pytest

from conftest import fit_reference_case, rinla_compare, shared_path

CASES = [
    "ar1_poisson", "gaussian_linear", "na_prediction", "nbinomial_iid", "scotland_bym2",
    "seeds_iid", "seeds_int_ccd", "spdetoy_pcmatern", "tokyo_rw2_cyclic", "criteria",
    "rw2d_lattice",
    "iid2d_bivmeta", "z_random_slopes", "zib1_sim", "loglogistic_surv", "pom_ordinal",
    "lincomb_seeds", "ou_irregular", "besagproper_germany", "coxph_leuk",
]


@pytest.mark.parametrize("case", CASES)
def test_matches_rinla(case):
    rc, res, ref, _ = fit_reference_case(case)
    if case == "criteria":
        # R-INLA bug (notes: rinla_inference.md §6): with dic/waic requested it moves θ* to the
        # best design point before building the hyperparameter marginal, shifting it by +6.2.
        # The model is seeds_iid's; compare the hyperparameters with that unshifted fit.
        twin = json.loads((shared_path("reference", "rinla", "seeds_iid") / "results.json").read_text())
        ref["internal_summary_hyperpar"] = twin["internal_summary_hyperpar"]
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert not bad, f"{case}: {bad} (worst deviations {worst})"


# weibull_surv: the mode and log π̃ at the mode agree with R-INLA's to 3e-7; the mode sits at
# the kink of the pc.alphaw prior at α = 1, where the Hessian depends on the directions of the
# differences. Both take them along the mode search's last steps (use.directions), but
# adelia's BFGS steps end at about −25° where R-INLA's (GSL bfgs3 on finite-difference
# gradients) end at +18° (mod 90°): the posterior mean of "Log precision for ID" lands 0.14 sd
# away (0.75 with axis differences) and mlik's Gaussian estimate 0.10 away (0.90). adelia's
# log π̃ and R-INLA 25.x's central second differences along an 18° frame give R-INLA's
# cov_intern to 1 % at R-INLA's mode (test_hessian_directions.py); R-INLA's old forward-
# difference "part III" Hessian cannot (positive covariance for every frame). A replay of
# R-INLA 25.x's optimiser (vector_bfgs3, its line search, FD gradients along the direction
# matrix, the move to the best point; built for issue 18, not landed) does not settle it:
# at the kink its last steps,
# and Var(log precision) along them (0.27 to 0.79 against R-INLA's 0.16), change with details
# that leave the mode alone, and it spends 112 evaluations where R-INLA's nfunc (203, design
# points and skewness evaluations included) leaves 145 for its optimiser (issue 18 report). The
# known deviation is kept visible (strict xfail); everything else must still agree.
WEIBULL_OFF = "Log precision for ID"


@pytest.mark.xfail(strict=True, reason="R-INLA's Hessian across the pc.alphaw kink (see comment above)")
def test_weibull_surv_matches_rinla_fully():
    rc, res, ref, _ = fit_reference_case("weibull_surv")
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert not bad, f"weibull_surv: {bad} (worst deviations {worst})"


def test_weibull_surv_matches_rinla_except_the_kinked_hessian():
    rc, res, ref, _ = fit_reference_case("weibull_surv")
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert worst["fixed_mean"] <= rc.ISSUE["fixed_mean"] and worst["fixed_sd"] <= rc.ISSUE["fixed_sd"], worst
    assert worst["mlik_int"] <= rc.ISSUE["mlik_int"] and worst["mlik_gauss"] <= rc.ISSUE["mlik_gauss"], worst
    hy = ref["internal_summary_hyperpar"]
    for name, mean, sd in zip(hy["name"], hy["mean"], hy["sd"]):
        # the kinked one within 0.2 sd since the Hessian follows the search's directions (0.14)
        bound = 0.2 if name == WEIBULL_OFF else rc.ISSUE["hyper_mean"]
        assert abs(float(res.internal_summary_hyperpar.loc[name, "mean"]) - mean) <= bound * sd, name
    # the mode itself agrees with R-INLA's
    assert abs(res.posterior.log_post_mode - ref["mode"]["log_posterior_mode"]) < 1e-3


def test_lincomb_seeds_correlation_matrix_matches_rinla():
    # summary_lincomb_derived is compared in test_matches_rinla (rinla_compare.compare); here
    # R-INLA's misc$lincomb.derived.{correlation,covariance}.matrix and their names
    rc, res, ref, _ = fit_reference_case("lincomb_seeds")
    import numpy as np

    names = ref["lincomb_derived_matrix_names"]
    assert list(res.summary_lincomb_derived.index) == ref["summary_lincomb_derived"]["name"]
    corr = res.misc["lincomb.derived.correlation.matrix"]
    assert list(corr.index) == names and list(corr.columns) == names
    np.testing.assert_allclose(corr.to_numpy(), np.array(ref["lincomb_derived_correlation_matrix"]), atol=0.005)
    cov = res.misc["lincomb.derived.covariance.matrix"].to_numpy()
    np.testing.assert_allclose(cov, np.array(ref["lincomb_derived_covariance_matrix"]), rtol=0.01)


# ---- the goal tolerances (issue 18 item 4) --------------------------------------------------
# rinla_compare.GOAL: fixed-effect means within 0.02 R-INLA sd and sds within 2 %, internal
# hyperparameter means within 0.05 sd, both mlik estimates within 0.2 (lincombs and prediction
# rows are held to the fixed-effect bounds). Every case is held to them, except where
# GOAL_EXCEPTIONS names the case and category with the measured deviation and its traced reason.
#
# case -> {category of rinla_compare.compare's `worst`: bound replacing GOAL's there}.
# Measured 2026-12-06 over all of CASES: every case is within GOAL, so the table is empty. The
# closest to the edge is zib1_sim: fixed sds 1.85 % (intercept) and 1.36 % (x) below R-INLA's,
# mlik 0.029 off (both estimates, by the same amount); next come seeds_int_ccd (θ mean 0.024 sd,
# fixed means 0.006 sd, CCD design) and scotland_bym2 / nbinomial_iid (θ means 0.014 / 0.013 sd).
# Not in CASES: weibull_surv (θ mean 0.75 sd, mlik gaussian 0.90: R-INLA's Hessian along its BFGS
# directions across the pc.alphaw kink, issue 18 item 2) — if it joins CASES short of GOAL, it
# gets an entry here with its measured deviations.
GOAL_EXCEPTIONS: dict[str, dict[str, float]] = {}


def _with_criteria_twin(case, ref):
    """criteria's hyperparameters are compared with seeds_iid's fit (see test_matches_rinla)."""
    if case == "criteria":
        twin = json.loads((shared_path("reference", "rinla", "seeds_iid") / "results.json").read_text())
        ref["internal_summary_hyperpar"] = twin["internal_summary_hyperpar"]
    return ref


def test_goal_exceptions_name_known_cases_and_categories():
    rc = rinla_compare()
    for case, bounds in GOAL_EXCEPTIONS.items():
        assert case in CASES, case
        for category, bound in bounds.items():
            assert category in rc.GOAL, (case, category)
            assert rc.GOAL[category] < bound <= rc.ISSUE[category], (case, category, bound)


@pytest.mark.parametrize("case", CASES)
def test_matches_rinla_at_goal_tolerances(case):
    rc, res, ref, _ = fit_reference_case(case)
    ref = _with_criteria_twin(case, ref)
    excepted = GOAL_EXCEPTIONS.get(case, {})
    bad, worst = rc.compare(res, ref, {**rc.GOAL, **excepted})
    assert not bad, f"{case}: {bad} (worst deviations {worst})"
    # an exception the case no longer needs is deleted, so the table lists only open differences
    stale = [category for category in excepted if worst.get(category, 0.0) <= rc.GOAL[category]]
    assert not stale, f"{case}: within GOAL now for {stale} (worst deviations {worst}); delete the exception"


# the performance anchors with an R-INLA results.json (../shared/reference/rinla_perf)
PERF_CASES = ["P4_germany_bym2", "P4_seeds"]


@pytest.mark.parametrize("case", PERF_CASES)
def test_perf_case_matches_rinla_at_goal_tolerances(case):
    rc, res, ref, spec = fit_reference_case(case, "rinla_perf")
    bad, worst = rc.compare(res, ref, rc.GOAL, spec)
    assert not bad, f"{case}: {bad} (worst deviations {worst})"


def test_germany_bym2_fixed_effect_within_goal():
    # issue 18 acceptance: x was 0.099 R-INLA sd off; measured 0.0119 sd now (0.0142 with
    # control_vb enable=False, so the VB mean correction is not what decides it at this bound)
    rc, res, ref, _ = fit_reference_case("P4_germany_bym2", "rinla_perf")
    fx = ref["summary_fixed"]
    i = fx["name"].index("x")
    assert abs(float(res.summary_fixed.loc["x", "mean"]) - fx["mean"][i]) <= 0.02 * fx["sd"][i]


def test_prediction_spdetoy_matches_rinla_at_goal_tolerances():
    # not in CASES: with its spec, compare also checks the 100 grid rows of the linear predictor
    rc, res, ref, spec = fit_reference_case("prediction_spdetoy")
    bad, worst = rc.compare(res, ref, rc.GOAL, spec)
    assert "pred_mean" in worst and not bad, f"prediction_spdetoy: {bad} (worst deviations {worst})"
