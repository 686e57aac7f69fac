"""Joint posterior samples, hyperparameter samples and the ArviZ export.

Oracles: the closed-form posterior of a Gaussian model with fixed hyperparameters (dense
linear algebra), the summaries INLA computed from its mixture (means and sds within
Monte-Carlo error, tolerances from n), the linear predictor recomputed from the data
columns, the constraint itself (sum to zero, per sample), the moments of R-INLA's
two-piece normal in the Hessian's z coordinates, and scipy.stats log-pmfs for the
pointwise log-likelihood.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from scipy.special import expit

import adelia

N = 4000  # draws; Monte-Carlo tolerances below are multiples of 1/sqrt(N)


def _mc_mean_ok(sample_mean, mean, sd, n=N, k=5.0):
    np.testing.assert_array_less(np.abs(np.asarray(sample_mean) - np.asarray(mean)), k * np.asarray(sd) / np.sqrt(n) + 1e-12)


def _mc_sd_ok(sample_sd, sd, n=N, k=6.0):
    # Var(s²)/σ⁴ ≈ 2/n for near-Gaussian draws
    rel = np.abs(np.asarray(sample_sd) ** 2 / np.asarray(sd) ** 2 - 1.0)
    np.testing.assert_array_less(rel, k * np.sqrt(2.0 / n))


# ---- Gaussian model with fixed hyperparameters: the exact posterior ---------------------------------
@pytest.fixture(scope="module")
def fixed_gaussian():
    rng = np.random.default_rng(7)
    n = 40
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(1, 6, size=n)})
    df["y"] = 1.0 + 0.5 * df["x"] + 0.4 * rng.normal(size=5)[df["g"] - 1] + 0.5 * rng.normal(size=n)
    tau_g, tau_y = np.exp(1.0), np.exp(1.5)
    res = adelia.inla(
        "y ~ 1 + x + f(g, model='iid', hyper=list(prec=list(initial=1, fixed=TRUE)))",
        df,
        control_family={"hyper": {"prec": {"initial": 1.5, "fixed": True}}},
    )
    # oracle in the order (g1..g5, intercept, x): Q = Q_prior + τ AᵀA, μ = Q⁻¹ τ Aᵀ y
    A = np.column_stack([np.eye(5)[df["g"] - 1], np.ones(n), df["x"]])
    Qp = np.diag([tau_g] * 5 + [0.0, 0.001])
    Q = Qp + tau_y * A.T @ A
    cov = np.linalg.inv(Q)
    mean = cov @ (tau_y * A.T @ df["y"].to_numpy())
    return res, df, A, mean, cov


def test_gaussian_samples_match_the_exact_posterior(fixed_gaussian):
    res, df, A, mean, cov = fixed_gaussian
    s = res.posterior_sample(N, seed=3)
    assert s.sizes["sample"] == N and set(np.unique(s["config"])) == {0}
    X = np.column_stack([s["g"].values, s["(Intercept)"].values, s["x"].values])
    _mc_mean_ok(X.mean(0), mean, np.sqrt(np.diag(cov)))
    # every entry of the sample covariance: Var(ĉ_ij) ≈ (Σ_ii Σ_jj + Σ_ij²)/n
    emp = np.cov(X, rowvar=False)
    tol = 6.0 * np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / N)
    np.testing.assert_array_less(np.abs(emp - cov), tol)
    # the linear predictor is A x (no offset) for every draw
    np.testing.assert_allclose(s["Predictor"].values, X @ A.T, atol=1e-10)
    assert list(s["predictor"].values[:2]) == ["Predictor.01", "Predictor.02"]
    # no free hyperparameters: no hyperparameter variables, an empty hyperparameter sample
    hs = res.hyperpar_sample(5)
    assert hs.shape == (5, 0)


# ---- rw1 with a sum-to-zero constraint -------------------------------------------------------------
@pytest.fixture(scope="module")
def rw1_fit():
    rng = np.random.default_rng(11)
    n = 50
    t = np.arange(1, n + 1)
    df = pd.DataFrame({"t": t, "y": np.sin(t / 8.0) + 0.3 * rng.normal(size=n)})
    return adelia.inla("y ~ 1 + f(t, model='rw1')", df)


def test_rw1_samples_satisfy_the_constraint_and_match_the_summaries(rw1_fit):
    res = rw1_fit
    s = res.posterior_sample(N, seed=5)
    f = s["t"].values
    assert len(np.unique(s["config"])) > 1  # draws from several design points
    np.testing.assert_array_less(np.abs(f.sum(axis=1)), 1e-9 * (1.0 + np.abs(f).max()))
    sr = res.summary_random["t"]
    np.testing.assert_array_equal(s["t_ID"].values, sr["ID"].to_numpy())
    _mc_mean_ok(f.mean(0), sr["mean"], sr["sd"])
    _mc_sd_ok(f.std(0, ddof=1), sr["sd"])
    sf = res.summary_fixed
    _mc_mean_ok(s["(Intercept)"].mean(), sf.loc["(Intercept)", "mean"], sf.loc["(Intercept)", "sd"])
    # the design points are drawn with the mixture weights
    p = res.posterior.probabilities
    counts = np.bincount(s["config"].values, minlength=p.size) / N
    np.testing.assert_array_less(np.abs(counts - p), 5 * np.sqrt(p * (1 - p) / N) + 1e-12)


def test_hyperpar_sample_has_the_two_piece_normal_moments(rw1_fit):
    res = rw1_fit
    post = res.posterior
    n = 20000
    th = res.hyperpar_sample(n, seed=9, intern=True)
    assert list(th.columns) == list(res.internal_summary_hyperpar.index)
    z = post.axes.theta_to_z(post.theta_mode, th.to_numpy())
    sp, sn = post.stdev_corr_pos, post.stdev_corr_neg
    mean = np.sqrt(2 / np.pi) * (sp - sn)
    second = (sp**3 + sn**3) / (sp + sn)
    sd = np.sqrt(second - mean**2)
    _mc_mean_ok(z.mean(0), mean, sd, n=n)
    np.testing.assert_array_less(np.abs((z**2).mean(0) - second), 6 * np.sqrt(3.0 * second**2 / n))
    np.testing.assert_array_less(np.abs((z > 0).mean(0) - sp / (sp + sn)), 5 * 0.5 / np.sqrt(n))
    assert abs(np.corrcoef(z.T)[0, 1]) < 5 / np.sqrt(n)  # independent axes
    # the user scale is the internal sample pushed through to_user (precisions: exp)
    user = res.hyperpar_sample(n, seed=9)
    assert list(user.columns) == list(res.summary_hyperpar.index)
    np.testing.assert_allclose(user.to_numpy(), np.exp(th.to_numpy()), rtol=1e-12)


def test_hyperpar_sample_improved_marginals_follow_the_computed_marginals(rw1_fit):
    from adelia.marginals import pmarginal

    res = rw1_fit
    n = 2000
    th = res.hyperpar_sample(n, seed=4, intern=True, improve_marginals=True)
    for name in th.columns:
        m = res.internal_marginals_hyperpar[name]
        u = np.sort(pmarginal(th[name].to_numpy(), m))
        np.testing.assert_allclose(u, np.arange(1, n + 1) / (n + 1.0), atol=1e-4)


# ---- Seeds (binomial): summaries, the predictor from the data, reproducibility ------------------------
@pytest.fixture(scope="module")
def seeds():
    df = adelia.datasets.load("Seeds")
    res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", df, family="binomial", Ntrials="n", control_predictor={"compute": True})
    return res, df


def test_seeds_samples_match_the_summaries_and_the_predictor(seeds):
    res, df = seeds
    s = res.posterior_sample(N, seed=1)
    sf = res.summary_fixed
    for name in sf.index:
        _mc_mean_ok(s[name].mean(), sf.loc[name, "mean"], sf.loc[name, "sd"])
        _mc_sd_ok(s[name].std(ddof=1), sf.loc[name, "sd"])
    # the draws come from the mixture over θ itself, whose moments the reported summaries (of
    # R-INLA's combined density, cut at ±5 sd) approach only roughly for these spike-and-slab
    # plate marginals: compare with the mixture's exact moments
    plate, _ = res._component_mixture("plate")
    _mc_mean_ok(s["plate"].mean("sample"), plate.mean(), plate.sd())
    # η_i = β0 + β1 x1_i + β2 x2_i + plate[plate_i], from the data columns
    pos = {float(v): i for i, v in enumerate(s["plate_ID"].values)}
    cols = np.array([pos[float(v)] for v in df["plate"]])
    eta = (
        s["(Intercept)"].values[:, None]
        + s["x1"].values[:, None] * df["x1"].to_numpy()[None]
        + s["x2"].values[:, None] * df["x2"].to_numpy()[None]
        + s["plate"].values[:, cols]
    )
    np.testing.assert_allclose(s["Predictor"].values, eta, atol=1e-10)
    # hyperparameters: the value of the design point each draw came from, on the user scale
    k = s["config"].values
    np.testing.assert_allclose(s["Precision for plate"].values, np.exp(res.posterior.points.theta_full[k, 0]), rtol=1e-12)
    si = res.posterior_sample(10, seed=1, intern=True)
    assert "Log precision for plate" in si and "Precision for plate" not in si


def test_samples_are_reproducible_by_seed(seeds):
    res, _ = seeds
    a = res.posterior_sample(300, seed=42)
    b = res.posterior_sample(300, seed=42)
    c = res.posterior_sample(300, seed=43)
    np.testing.assert_array_equal(a["plate"].values, b["plate"].values)
    np.testing.assert_array_equal(a["config"].values, b["config"].values)
    assert not np.array_equal(a["plate"].values, c["plate"].values)
    gen = res.posterior_sample(300, seed=np.random.default_rng(42))
    np.testing.assert_array_equal(gen["x1"].values, a["x1"].values)
    np.testing.assert_array_equal(res.hyperpar_sample(50, seed=8).to_numpy(), res.hyperpar_sample(50, seed=8).to_numpy())
    with pytest.raises(ValueError, match="positive"):
        res.posterior_sample(0)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_to_arviz_groups_names_and_log_likelihood(seeds):
    az = pytest.importorskip("arviz")
    res, df = seeds
    n = 200
    idata = res.to_arviz(n, seed=2)
    post = idata["posterior"] if not hasattr(idata, "posterior") else idata.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == n
    for name in ["(Intercept)", "x1", "x2", "Precision for plate", "plate"]:
        assert name in post
    assert "Predictor" not in post and post["plate"].dims == ("chain", "draw", "plate_ID")
    ll = idata.log_likelihood["y"].values
    assert ll.shape == (1, n, len(df))
    # log π(y_i | η_i) = binomial log-pmf at p = expit(η), η recomputed from the same draws
    s = res.posterior_sample(n, seed=2)
    expect = st.binom.logpmf(df["r"].to_numpy()[None], df["n"].to_numpy()[None], expit(s["Predictor"].values))
    np.testing.assert_allclose(ll[0], expect, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(idata.observed_data["y"].values, df["r"].to_numpy())
    assert np.isfinite(float(az.loo(idata).elpd_loo))


def test_to_arviz_names_without_slashes_and_a_clear_import_error(seeds, monkeypatch):
    from adelia.inference.sampling import _arviz_name

    assert _arviz_name("I(X/10)") == "I(X\u221510)"
    res, _ = seeds
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match=r"pip install adelia\[arviz\]"):
        res.to_arviz(10)
