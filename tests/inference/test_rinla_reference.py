"""adelia against R-INLA's own fits of the reference cases (../shared/reference/rinla).

Each case is run as an R-INLA user writes it (the formula copied verbatim, controls as
dicts, via ../shared/tools/rinla_compare.py's ``build_call``) and compared with the issue's
tolerances: fixed-effect means within 0.05 posterior sd and sds within 5 %, internal
hyperparameter means within 0.1 sd, mlik within 0.5 (Gaussian) and 1.0 (integration).
"""

from __future__ import annotations

import importlib.util
import json
import warnings

import pytest

from conftest import SHARED, shared_path

CASES = [
    "ar1_poisson", "gaussian_linear", "na_prediction", "nbinomial_iid", "scotland_bym2",
    "seeds_iid", "seeds_int_ccd", "spdetoy_pcmatern", "tokyo_rw2_cyclic", "criteria",
    "rw2d_lattice",
    "iid2d_bivmeta", "z_random_slopes", "zib1_sim", "loglogistic_surv", "pom_ordinal",
    "lincomb_seeds", "ou_irregular", "besagproper_germany", "coxph_leuk",
]


def _compare_module():
    path = shared_path("tools", "rinla_compare.py")
    spec = importlib.util.spec_from_file_location("rinla_compare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fit_case(case):
    import adelia

    rc = _compare_module()
    folder = shared_path("reference", "rinla", case)
    spec = json.loads((folder / "spec.json").read_text())
    ref = json.loads((folder / "results.json").read_text())
    formula, data, kw = rc.build_call(folder, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(formula, data=data, **kw)
    return rc, res, ref


@pytest.mark.parametrize("case", CASES)
def test_matches_rinla(case):
    rc, res, ref = _fit_case(case)
    if case == "criteria":
        # R-INLA bug (notes: rinla_inference.md §6): with dic/waic requested it moves θ* to the
        # best design point before building the hyperparameter marginal, shifting it by +6.2.
        # The model is seeds_iid's; compare the hyperparameters with that unshifted fit.
        twin = json.loads((shared_path("reference", "rinla", "seeds_iid") / "results.json").read_text())
        ref["internal_summary_hyperpar"] = twin["internal_summary_hyperpar"]
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert not bad, f"{case}: {bad} (worst deviations {worst})"


# weibull_surv: the mode and log π̃ at the mode agree with R-INLA's to 3e-7, but R-INLA's
# Hessian there is taken by differences along its BFGS directions across the kink of the
# pc.alphaw prior at α = 1, which changes its Gaussian approximation of θ: the posterior
# mean of "Log precision for ID" lands 0.75 sd away and mlik's Gaussian estimate 0.9 away.
# The known deviation is kept visible (strict xfail); everything else must still agree.
WEIBULL_OFF = "Log precision for ID"


@pytest.mark.xfail(strict=True, reason="R-INLA's Hessian across the pc.alphaw kink (see comment above)")
def test_weibull_surv_matches_rinla_fully():
    rc, res, ref = _fit_case("weibull_surv")
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert not bad, f"weibull_surv: {bad} (worst deviations {worst})"


def test_weibull_surv_matches_rinla_except_the_kinked_hessian():
    rc, res, ref = _fit_case("weibull_surv")
    bad, worst = rc.compare(res, ref, rc.ISSUE)
    assert worst["fixed_mean"] <= rc.ISSUE["fixed_mean"] and worst["fixed_sd"] <= rc.ISSUE["fixed_sd"], worst
    assert worst["mlik_int"] <= rc.ISSUE["mlik_int"], worst
    hy = ref["internal_summary_hyperpar"]
    for name, mean, sd in zip(hy["name"], hy["mean"], hy["sd"]):
        if name != WEIBULL_OFF:
            assert abs(float(res.internal_summary_hyperpar.loc[name, "mean"]) - mean) <= rc.ISSUE["hyper_mean"] * sd, name
    # the mode itself agrees with R-INLA's
    assert abs(res.posterior.log_post_mode - ref["mode"]["log_posterior_mode"]) < 1e-3


def test_lincomb_seeds_correlation_matrix_matches_rinla():
    # summary_lincomb_derived is compared in test_matches_rinla (rinla_compare.compare); here
    # R-INLA's misc$lincomb.derived.{correlation,covariance}.matrix and their names
    rc, res, ref = _fit_case("lincomb_seeds")
    import numpy as np

    names = ref["lincomb_derived_matrix_names"]
    assert list(res.summary_lincomb_derived.index) == ref["summary_lincomb_derived"]["name"]
    corr = res.misc["lincomb.derived.correlation.matrix"]
    assert list(corr.index) == names and list(corr.columns) == names
    np.testing.assert_allclose(corr.to_numpy(), np.array(ref["lincomb_derived_correlation_matrix"]), atol=0.005)
    cov = res.misc["lincomb.derived.covariance.matrix"].to_numpy()
    np.testing.assert_allclose(cov, np.array(ref["lincomb_derived_covariance_matrix"]), rtol=0.01)
