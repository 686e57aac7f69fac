"""NUTS over θ on log π̃(θ | y) (``control_inla={"int.strategy": "nuts"}``, issue 16 item 3).

Oracles:
* the sampler on densities with closed-form moments (a correlated Gaussian; log τ with
  τ ~ Gamma(3, 2), a skewed target): moments and quantiles within Monte Carlo error;
* R-hat and ESS: an AR(1) chain (ESS = N(1 − φ)/(1 + φ) in closed form), shifted chains,
  and NumPyro's estimators where NumPyro is installed;
* plumbing on Seeds: equal-weight mixture of the Gaussian approximations at the thinned
  draws, hyperparameter marginal = kernel density of the chain (its mean is the draws' mean);
* the importance-sampling correction (``nuts: {"correction": "importance"}``): exact (weights 1)
  for a Gaussian likelihood; against one-dimensional quadrature for independent Poisson nodes;
* slow (``-m slow``): Seeds' plate-effect sds against a long NumPyro NUTS run on the full joint
  model (``nuts_models.py``, R-INLA's priors; 32 chains) and an independent quadrature over
  log τ (``seeds_quadrature.py``), where the default compact design misses; the
  unimodal acceptance case (issue 16), a simulated Poisson model with two crossed iid effects:
  NUTS and CCD on the hyperparameter means within 0.05 posterior sd, both against a dense-grid
  quadrature of π̃(θ | y); Germany bym2: the same comparison (xfail: the posterior of logit φ is
  improper under R-INLA's tabulated PC prior; the flat tail is pinned by a fast test — Scotland
  bym2 has the same flat tail, so neither bym2 example can serve).
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import adelia
from adelia.errors import ControlError
from adelia.inference.nuts_theta import effective_sample_size, nuts_settings, run_chains, split_rhat
from conftest import shared_path

slow = pytest.mark.slow
SEEDS_FORMULA = "r ~ x1 + x2 + f(plate, model='iid')"


# --- the sampler on closed-form targets ------------------------------------------------------------


def test_nuts_gaussian_moments():
    mu = np.array([1.0, -2.0])
    S = np.array([[1.0, 0.8], [0.8, 2.0]])
    P = np.linalg.inv(S)

    def vg(th):
        r = th - mu
        return -0.5 * float(r @ P @ r), -P @ r

    out = run_chains(vg, mu, np.ones(2), chains=4, draws=600, warmup=300, seed=3)
    x = out.pooled()
    assert out.draws.shape == (4, 600, 2)
    assert np.all(out.rhat < 1.02) and out.divergent.sum() == 0
    se = np.sqrt(np.diag(S) / out.ess)
    assert np.all(np.abs(x.mean(axis=0) - mu) < 4 * se), (x.mean(axis=0), se)
    np.testing.assert_allclose(np.cov(x.T), S, rtol=0.15, atol=0.1)


def test_nuts_skewed_target_quantiles():
    """θ = log τ, τ ~ Gamma(3, rate 2): π(θ) ∝ exp(3θ − 2eᶿ) (skewed, like a log precision)."""

    def vg(th):
        return 3.0 * th[0] - 2.0 * np.exp(th[0]), np.array([3.0 - 2.0 * np.exp(th[0])])

    out = run_chains(vg, np.array([0.4]), np.array([0.3]), chains=4, draws=800, warmup=300, seed=4)
    tau = np.exp(out.pooled()[:, 0])
    ref = stats.gamma(3.0, scale=0.5)
    ess = float(out.ess[0])
    assert ess > 500
    assert abs(tau.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(ess)
    for q in (0.1, 0.5, 0.9):  # P(τ ≤ q-quantile) within 4 binomial SE at the chain's ESS
        assert abs(np.mean(tau <= ref.ppf(q)) - q) < 4 * np.sqrt(q * (1 - q) / ess)


def test_nuts_treats_failed_evaluations_as_divergences():
    """A density that is −∞ (or raises NumericalError) beyond θ = 1: the chain stays inside,
    a half-normal truncated at 1 around 0."""
    from adelia.errors import NumericalError

    def vg(th):
        if th[0] > 1.0:
            raise NumericalError("outside")
        return -0.5 * float(th[0] ** 2), -th

    out = run_chains(vg, np.zeros(1), np.ones(1), chains=2, draws=400, warmup=200, seed=5)
    x = out.pooled()[:, 0]
    assert x.max() <= 1.0
    ref = stats.truncnorm(-np.inf, 1.0)
    assert abs(x.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(float(out.ess[0]))


# --- R-hat and ESS -----------------------------------------------------------------------------------


def test_ess_of_ar1_chains_matches_closed_form():
    phi, m, n = 0.7, 4, 20_000
    rng = np.random.default_rng(0)
    e = rng.standard_normal((m, n))
    x = np.zeros((m, n))
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    expected = m * n * (1 - phi) / (1 + phi)
    assert abs(effective_sample_size(x) / expected - 1.0) < 0.1
    assert abs(split_rhat(x) - 1.0) < 0.01
    shifted = x + np.arange(m)[:, None]  # chains that disagree
    assert split_rhat(shifted) > 1.2


def test_rhat_ess_agree_with_numpyro():
    diagnostics = pytest.importorskip("numpyro.diagnostics")
    x = np.cumsum(np.random.default_rng(1).standard_normal((3, 500, 2)), axis=1) * 0.05
    x = x + np.random.default_rng(2).standard_normal((3, 500, 2))
    np.testing.assert_allclose(split_rhat(x), diagnostics.split_gelman_rubin(x), rtol=1e-10)
    np.testing.assert_allclose(effective_sample_size(x), diagnostics.effective_sample_size(x), rtol=1e-6)


# --- settings ------------------------------------------------------------------------------------------


def test_nuts_settings_are_validated():
    assert nuts_settings({"draws": 10, "max_tree_depth": 6})["max.tree.depth"] == 6
    with pytest.raises(ControlError, match="unknown key 'draw'.*draws"):
        nuts_settings({"draw": 10})
    with pytest.raises(ControlError, match="target.accept"):
        adelia.controls.resolve("control_inla", {"int.strategy": "nuts", "nuts": {"target_accept": 1.5}})
    with pytest.raises(ControlError, match="nuts"):
        adelia.controls.resolve("control_inla", {"int.strategy": "nutz"})
    assert nuts_settings({"correction": "importance", "importance_draws": 64})["importance.draws"] == 64
    with pytest.raises(ControlError, match="correction = 'is'.*'none', 'importance'"):
        nuts_settings({"correction": "is"})


# --- the importance-sampling correction (adelia.inference.importance) ---------------------------------------


def test_importance_correction_is_exact_for_a_gaussian_likelihood():
    """Gaussian likelihood: π_G(x | θ, y) is the exact conditional, so every weight is 1 —
    ĉ(θ) = 1 (log 0) and the effective sample size is the number of draws."""
    from adelia.inference.importance import importance_correction

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.normal(size=12), "g": np.repeat(np.arange(1, 5), 3), "x": rng.normal(size=12)})
    model = adelia.compile("y ~ x + f(g, model='iid')", df, family="gaussian")
    theta_full = np.array([model.layout.expand_host(np.array([0.2, 1.0])), model.layout.expand_host(np.array([-1.0, 3.0]))])
    corr = importance_correction(model, theta_full, np.zeros((2, model.graph.n_latent)), n_draws=64, seed=1)
    np.testing.assert_allclose(corr.log_ratio, 0.0, atol=1e-9)
    np.testing.assert_allclose(corr.ess, 64.0, rtol=1e-9)
    np.testing.assert_allclose(corr.weights(), [0.5, 0.5], rtol=1e-9)
    # antithetic pairs with equal weights: the weighted mean is the mode of π_G exactly
    ga = model.laplace.gaussian_approximation(jnp.asarray(theta_full[0]), jnp.zeros(model.graph.n_latent))
    np.testing.assert_allclose(corr.mean[0], np.asarray(ga.mode), atol=1e-9)
    np.testing.assert_allclose(corr.var_shift, 0.0, atol=1e-9)
    np.testing.assert_allclose(corr.eta_var_shift, 0.0, atol=1e-9)


def test_importance_correction_matches_quadrature():
    """Poisson counts with one iid node each (no intercept): π(y | θ) and the conditional
    moments factor into one-dimensional integrals, done by adaptive quadrature (scipy), and the
    Laplace approximation per node is exp(g(x*)) √(2π / −g''(x*)). The importance estimate of
    log π(y | θ) − log π̃(y | θ) and the weighted moments agree within Monte Carlo error."""
    from scipy import integrate

    from adelia.inference.importance import importance_correction

    df = pd.DataFrame({"y": [0, 1, 3, 8, 2], "idx": [1, 2, 3, 4, 5]})
    model = adelia.compile("y ~ -1 + f(idx, model='iid')", df, family="poisson")
    theta = 0.3
    tau = np.exp(theta)
    corr = importance_correction(model, model.layout.expand_host(np.array([theta]))[None, :], np.zeros((1, 5)),
                                 n_draws=4096, seed=2)
    log_ratio, means, variances = 0.0, [], []
    for yi in df["y"]:
        x = 0.0
        for _ in range(50):  # Newton for the node's mode
            x -= (yi - np.exp(x) - tau * x) / (-np.exp(x) - tau)
        g = lambda u, yi=yi, x=x: np.exp(yi * (u - x) - np.exp(u) + np.exp(x) - 0.5 * tau * (u * u - x * x))
        z = integrate.quad(g, -30, 30, epsabs=0, epsrel=1e-12)[0]
        log_ratio += np.log(z) - 0.5 * np.log(2 * np.pi / (np.exp(x) + tau))
        mu = integrate.quad(lambda u: u * g(u), -30, 30, epsabs=0, epsrel=1e-12)[0] / z
        means.append(mu)
        variances.append(integrate.quad(lambda u: (u - mu) ** 2 * g(u), -30, 30, epsabs=0, epsrel=1e-12)[0] / z)
    ess = float(corr.ess[0])
    assert ess > 0.5 * corr.n_draws
    se_log = np.sqrt((corr.n_draws / ess - 1.0) / corr.n_draws)  # sd(w)/mean(w)/√S
    assert abs(corr.log_ratio[0] - log_ratio) < 4 * se_log + 1e-3, (corr.log_ratio[0], log_ratio, se_log)
    assert log_ratio < -0.005  # the correction is not nothing (so the test can fail)
    np.testing.assert_allclose(corr.mean[0], means, atol=4 * np.sqrt(np.max(variances) / ess))
    # Monte Carlo sds of the variances (8 seeds): 2.6–4.3 % weighted, 0.8–2.2 % with the control
    # variate (π_G's variance + shift); tolerances ≈ 3.5 of them
    np.testing.assert_allclose(corr.var[0], variances, rtol=0.15)
    ga = model.laplace.gaussian_approximation(jnp.asarray(model.layout.expand_host(np.array([theta]))), jnp.zeros(5))
    np.testing.assert_allclose(np.asarray(ga.variance) + corr.var_shift[0], variances, rtol=0.07)
    np.testing.assert_allclose(corr.eta_mean[0], corr.mean[0], atol=1e-12)  # η = x here


def test_seeds_quadrature_oracle_is_adelias_laplace_written_independently(seeds):
    """The slow test's second oracle (seeds_quadrature.py, NumPy/SciPy) computes the same
    Laplace approximation as adelia: log π̃(θ | y) up to a constant, to 1e-6."""
    from seeds_quadrature import seeds_quadrature

    grid = np.linspace(0.0, 14.0, 8)
    q = seeds_quadrature(seeds["x1"].to_numpy(float), seeds["x2"].to_numpy(float), seeds["plate"].to_numpy() - 1,
                         seeds["n"].to_numpy(), seeds["r"].to_numpy(), log_tau=grid, n_draws=200)
    model = adelia.compile(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n")
    ours = np.asarray(model.log_posterior_batch(grid[:, None]))
    np.testing.assert_allclose(ours - ours[-1], q["log_post_laplace"] - q["log_post_laplace"][-1], atol=1e-6)
    assert np.all(np.abs(q["log_post"] - q["log_post_laplace"]) < 0.2)  # the Laplace error is small here


# --- Seeds: plumbing ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds():
    return adelia.datasets.load("Seeds")


@pytest.fixture(scope="module")
def seeds_nuts_fit(seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n",
                           control_inla={"int.strategy": "nuts", "nuts": {"chains": 2, "draws": 150, "warmup": 150, "points": 40}})


def test_seeds_nuts_fit_reports_chain(seeds_nuts_fit):
    res = seeds_nuts_fit
    diag = res.diagnostics["nuts"]
    assert diag["names"] == ["Log precision for plate"]
    assert diag["chains"] == 2 and diag["draws"] == 150
    assert diag["rhat"].shape == (1,) and diag["ess"].shape == (1,) and np.all(diag["ess"] > 0)
    post = res.posterior
    assert post.design.strategy == "nuts" and post.design.size == 40
    np.testing.assert_allclose(post.probabilities, 1.0 / 40)
    # the design points are draws of the chain
    pooled = post.nuts.pooled()
    assert all(np.any(np.all(pooled == t, axis=1)) for t in post.design.theta)


def test_seeds_nuts_marginals_come_from_the_chain(seeds_nuts_fit):
    res = seeds_nuts_fit
    post = res.posterior
    # hyperparameter: a kernel density of the draws keeps their mean
    hm = post.hyper[0]
    assert hm.summary((0.5,))["mean"] == pytest.approx(post.nuts.pooled()[:, 0].mean(), abs=2e-3)
    # latent: the equal-weight mixture of the Gaussian approximations at the design points
    block = res.model.graph.block("plate")
    mix_mean = post.points.mean[:, block.start:block.start + block.size].mean(axis=0)
    np.testing.assert_allclose(res.summary_random["plate"]["mean"].to_numpy(), mix_mean, atol=1e-8)
    assert set(res.summary_hyperpar.index) == {"Precision for plate"}


def test_seeds_nuts_importance_correction(seeds):
    """correction "importance": the thinned draws are weighted by ĉ(θ_k) (the diagnostics' log
    ratios), the latent marginals are the mixture of the importance-weighted moments, and the
    hyperparameter marginal is the weighted kernel density of the draws."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n",
                          control_inla={"int.strategy": "nuts", "nuts": {"chains": 2, "draws": 100, "warmup": 100, "points": 20,
                                                                         "correction": "importance", "importance.draws": 64}})
    imp = res.diagnostics["nuts"]["importance"]
    assert imp["draws"] == 64 and imp["points"] == 20 and imp["min_ess_within"] > 32
    post = res.posterior
    w = np.exp(imp["log_ratio"] - imp["log_ratio"].max())
    np.testing.assert_allclose(post.probabilities, w / w.sum(), rtol=1e-12)
    assert 0.5 * 20 < imp["ess_points"] <= 20
    block = res.model.graph.block("plate")
    sl = slice(block.start, block.start + block.size)
    m, v = post.points.mean[:, sl], post.points.var[:, sl]
    mean = post.probabilities @ m
    np.testing.assert_allclose(res.summary_random["plate"]["mean"].to_numpy(), mean, atol=1e-8)
    np.testing.assert_allclose(res.summary_random["plate"]["sd"].to_numpy(),
                               np.sqrt(post.probabilities @ (v + m**2) - mean**2), rtol=1e-6)
    hm = post.hyper[0]
    assert hm.summary(())["mean"] == pytest.approx(post.probabilities @ post.design.theta[:, 0], abs=2e-3)


def test_sample_theta_returns_the_chain(seeds):
    model = adelia.compile(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n")
    chain = model.sample_theta(100, chains=2, seed=3, warmup=100)
    assert chain.dims == ("chain", "draw", "theta") and chain.shape == (2, 100, 1)
    assert list(chain["theta"].values) == model.theta_names
    assert chain.attrs["rhat"].shape == (1,) and np.all(np.isfinite(chain.attrs["log_posterior"]))
    # seeded: reproducible (on a fresh model: the inner Newton's warm start is part of the state,
    # and moves log π̃ by rounding, which can flip an accept decision)
    again = adelia.compile(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n").sample_theta(100, chains=2, seed=3, warmup=100)
    np.testing.assert_allclose(chain.values, again.values, atol=1e-8)


# --- acceptance (slow) ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds_joint_reference(seeds):
    """The plate effects' posterior sds from a long NumPyro NUTS run on the full joint model
    (32 vectorised chains × 4000 draws, R-INLA's priors; nuts_models.seeds_model) and their
    relative Monte Carlo standard errors from the 32 independent chains' second moments."""
    pytest.importorskip("numpyro")
    from nuts_models import run_nuts, seeds_model

    mcmc = run_nuts(seeds_model, num_warmup=1000, num_samples=4000, num_chains=32, seed=20261126, target_accept=0.95,
                    x1=seeds["x1"].to_numpy(float), x2=seeds["x2"].to_numpy(float), plate=seeds["plate"].to_numpy() - 1,
                    n_trials=seeds["n"].to_numpy(), r=seeds["r"].to_numpy())
    effects = np.asarray(mcmc.get_samples(group_by_chain=True)["plate_effect"])  # (chain, draw, plate)
    m2 = np.mean(effects**2, axis=1)
    sd = effects.reshape(-1, effects.shape[-1]).std(axis=0, ddof=1)
    se_rel = 0.5 * m2.std(axis=0, ddof=1) / np.sqrt(m2.shape[0]) / m2.mean(axis=0)
    return sd, se_rel


@slow
def test_seeds_plate_sds_match_joint_nuts(seeds, seeds_joint_reference):
    """Issue 16's acceptance: Seeds (bimodal log τ: ~6 % of the mass near log τ ≈ 2.7, the bulk
    near 10), the plate effects' sds from NUTS over θ within 10 % of a long NumPyro NUTS run on
    the full joint model, where the default design misses (1.05–1.20 of them: its grid around the
    mode at log τ ≈ 10 weighs the low mode wrongly).

    The oracle needs many independent chains: the plate sds come mostly from the rare low-τ mode,
    and four NumPyro chains of 2500 draws (this test's former oracle) overstated them by 4–19 %
    (another seed: up to 52 %) — that, not π̃(θ | y), was the "gap" an earlier version recorded.
    32 chains give a Monte Carlo standard error of ≈ 3 % per plate, checked here, and agree with
    a second, independent oracle: quadrature over log τ of the importance-corrected marginal
    likelihood, in NumPy (seeds_quadrature.py). The Laplace approximation π̃(θ | y) is
    accurate here: the exact correction moves the low mode's mass from 0.0594 to 0.0602.

    Measured (seed 1, 4 × 1000 draws; about 45 s in all): sd / joint-NUTS sd in [0.953, 1.015] over
    all the draws (``points`` 4000; [0.990, 0.999] of the quadrature's), [0.974, 1.034] with
    ``correction="importance"`` on 1000 thinned draws × 64 draws of x; the
    default ``points`` 200 adds thinning noise (the low mode is ~12 of the 200)."""
    from seeds_quadrature import seeds_quadrature

    ref_sd, se_rel = seeds_joint_reference
    assert np.max(se_rel) < 0.04  # the oracle is precise enough for a 10 % test
    quad = seeds_quadrature(seeds["x1"].to_numpy(float), seeds["x2"].to_numpy(float), seeds["plate"].to_numpy() - 1,
                            seeds["n"].to_numpy(), seeds["r"].to_numpy())
    assert np.all(np.abs(quad["sd"] / ref_sd - 1.0) < 4 * se_rel + 0.01)  # two oracles agree
    base = {"chains": 4, "draws": 1000, "warmup": 500, "seed": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nuts = adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n",
                           control_inla={"int.strategy": "nuts", "nuts": {**base, "points": 4000}})
        corrected = adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n",
                                control_inla={"int.strategy": "nuts", "nuts": {**base, "points": 1000, "correction": "importance",
                                                                               "importance.draws": 64}})
        default = adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n")
    ratio = {name: fit.summary_random["plate"]["sd"].to_numpy() / ref_sd
             for name, fit in (("nuts", nuts), ("corrected", corrected), ("default", default))}
    print("plate sd / joint-NUTS sd: " + ", ".join(f"{k} [{v.min():.3f}, {v.max():.3f}]" for k, v in ratio.items()))
    assert np.max(np.abs(ratio["default"] - 1.0)) > 0.10  # the design misses ...
    assert np.max(np.abs(ratio["nuts"] - 1.0)) <= 0.10  # ... the chain does not
    assert np.max(np.abs(ratio["corrected"] - 1.0)) <= 0.10
    assert np.all(nuts.diagnostics["nuts"]["rhat"] < 1.05)
    assert corrected.diagnostics["nuts"]["importance"]["min_ess_within"] > 0.5 * 64


def crossed_iid_data():
    """Poisson counts with two crossed iid effects (40 levels each, sd 0.6, 200 cells, E = 4):
    both log precisions are well identified (posterior sd ≈ 0.27) and nearly Gaussian — a
    unimodal, proper π̃(θ | y) under R-INLA's loggamma(1, 5e-5) priors."""
    rng = np.random.default_rng(20261201)
    n = 200
    a = rng.integers(1, 41, n)
    b = rng.integers(1, 41, n)
    effect_a, effect_b = rng.normal(0, 0.6, 40), rng.normal(0, 0.6, 40)
    expected = np.full(n, 4.0)
    y = rng.poisson(expected * np.exp(0.3 + effect_a[a - 1] + effect_b[b - 1]))
    return pd.DataFrame({"y": y, "a": a, "b": b, "E": expected})


CROSSED_FORMULA = "y ~ 1 + f(a, model='iid') + f(b, model='iid')"


@slow
def test_crossed_iid_nuts_agrees_with_ccd_and_quadrature():
    """Issue 16's acceptance on a unimodal model: NUTS over θ and CCD give the same hyperparameter
    means (internal scale) within 0.05 posterior sd, with R-hat < 1.05 and a Monte Carlo standard
    error sd/√ESS under 0.02 sd (so the 0.05 is not eaten by chain noise). Independent oracle for
    both: the means of π̃(θ | y) by quadrature on a dense 37 × 37 grid (spacing 0.1, ±6 sd; the
    edge mass is < 1e-6). Measured (seed 1, 4 × 1500 draws, ESS ≈ 4500, MCSE ≈ 0.015 sd):
    NUTS − CCD = −0.044 and −0.003 sd, NUTS − grid = −1.5 and +0.7 MCSE, CCD − grid = +0.021 and
    +0.014 sd (CCD's interpolated marginals carry much of the gap); about 65 s."""
    from adelia.inference.optimize import find_mode

    data = crossed_iid_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ccd = adelia.inla(CROSSED_FORMULA, data, family="poisson", E="E", control_inla={"int.strategy": "ccd"})
        nuts = adelia.inla(CROSSED_FORMULA, data, family="poisson", E="E",
                           control_inla={"int.strategy": "nuts", "nuts": {"chains": 4, "draws": 1500, "warmup": 200, "seed": 1,
                                                                          "points": 40}})
        model = adelia.compile(CROSSED_FORMULA, data, family="poisson", E="E")
    mode = find_mode(model.value_and_grad, model.theta0).theta
    offsets = np.linspace(-1.6, 2.0, 37)  # log precisions are right-skewed: reach further up
    g0, g1 = mode[0] + offsets, mode[1] + offsets
    log_post = np.array([[model.value_and_grad(np.array([x0, x1]))[0] for x1 in g1] for x0 in g0])
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    assert max(w[0].sum(), w[-1].sum(), w[:, 0].sum(), w[:, -1].sum()) < 1e-5  # the grid holds the mass
    grid_mean = np.array([w.sum(axis=1) @ g0, w.sum(axis=0) @ g1])

    diag = nuts.diagnostics["nuts"]
    assert np.all(diag["rhat"] < 1.05)
    for i, (mc, mn) in enumerate(zip(ccd.posterior.hyper, nuts.posterior.hyper)):
        a, b = mc.summary(()), mn.summary(())
        mcse = b["sd"] / np.sqrt(diag["ess"][i])
        print(f"{model.theta_names[i]}: CCD {a['mean']:.4f} ± {a['sd']:.4f}, NUTS {b['mean']:.4f} ± {b['sd']:.4f} "
              f"(MCSE {mcse:.4f}), grid {grid_mean[i]:.4f}")
        assert mcse < 0.02 * a["sd"]
        assert abs(a["mean"] - b["mean"]) <= 0.05 * a["sd"]
        assert abs(b["mean"] - grid_mean[i]) <= 4 * mcse  # the chain: unbiased for π̃'s mean
        assert abs(a["mean"] - grid_mean[i]) <= 0.05 * a["sd"]  # CCD: close to it


GERMANY_TAIL = ("π̃(θ | y) is improper in logit φ: R-INLA's tabulated PC prior of bym2's φ ends at logit φ = 12 and "
                "continues flat (slope +0.01) beyond it, and the likelihood no longer depends on φ once logit φ ≳ 9, so log π̃ "
                "stays ~4 below the mode out to logit φ ≈ 30 (then the inner Newton fails); the chains drift into that "
                "infinite-mass tail (split R-hat 3.3 for logit φ with 2 × 600 draws) whatever the warmup or mass matrix. "
                "CCD agrees with R-INLA only because it never leaves the mode's neighbourhood "
                "(test_germany_bym2_log_posterior_has_a_flat_phi_tail). The unimodal acceptance case is "
                "test_crossed_iid_nuts_agrees_with_ccd_and_quadrature")


@pytest.fixture(scope="module")
def germany_model():
    data = pd.read_csv(shared_path("datasets", "Germany.csv"))
    graph = str(shared_path("datasets", "germany.graph"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adelia.compile(f"Y ~ 1 + x + f(region, model='bym2', graph='{graph}')", data, family="poisson", E="E")


def test_germany_bym2_log_posterior_has_a_flat_phi_tail(germany_model):
    """Why NUTS cannot converge on Germany bym2 (the xfail below): along logit φ at the mode's
    log τ, log π̃(θ | y) is smooth and finite (no Newton failure, no kink) but flat past the prior
    table's end at 12 — the prior's own slope there is ≥ 0 (GMRFLib's extrapolation of the
    table), and the Laplace-approximated likelihood is constant as φ → 1 — so the posterior of
    logit φ has infinite mass. Oracle: the prior table's definition (R-INLA's pc-bym.R grid ends at
    logit φ = 12) and finite differences of the evaluated log π̃."""
    from adelia.inference.optimize import find_mode

    model = germany_model
    assert model.theta_names == ["Log precision for region", "Logit phi for region"]
    mode = find_mode(model.value_and_grad, model.theta0).theta
    f_star = model.value_and_grad(mode)[0]
    logit_phi = np.array([12.0, 14.0, 17.0, 20.0])
    rel = np.array([model.value_and_grad(np.array([mode[0], t]))[0] - f_star for t in logit_phi])
    assert np.all(np.isfinite(rel))
    assert np.all((rel > -5.0) & (rel < -3.0)), rel  # about e^-4 of the mode's density ...
    assert np.all(np.diff(rel) >= -1e-3), rel  # ... and not falling: an improper tail
    from adelia.models.pc_bym_phi import PCBym2Phi

    prior = PCBym2Phi(0.5, 0.5, graph=str(shared_path("datasets", "germany.graph")))
    assert float(prior.theta_grid[-1]) == pytest.approx(12.0) and prior._spline.slope_high >= 0.0


@slow
@pytest.mark.xfail(strict=False, reason=GERMANY_TAIL)
def test_germany_bym2_nuts_agrees_with_ccd():
    """NUTS over θ and the CCD design on the hyperparameter means (internal scale) within 0.05
    posterior sd — not met, see GERMANY_TAIL: the posterior of logit φ is improper under R-INLA's
    tabulated prior, so no chain converges. Scotland bym2 has the same flat tail (log π̃ ≈ 1.3
    below the mode from logit φ = 12 on). The issue's acceptance is checked instead on a model
    with a proper posterior: test_crossed_iid_nuts_agrees_with_ccd_and_quadrature."""
    data = pd.read_csv(shared_path("datasets", "Germany.csv"))
    graph = str(shared_path("datasets", "germany.graph"))
    formula = f"Y ~ 1 + x + f(region, model='bym2', graph='{graph}')"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ccd = adelia.inla(formula, data, family="poisson", E="E", control_inla={"int.strategy": "ccd"})
        nuts = adelia.inla(formula, data, family="poisson", E="E",
                           control_inla={"int.strategy": "nuts", "nuts": {"chains": 2, "draws": 600, "warmup": 250, "seed": 2,
                                                                          "points": 60}})
    diag = nuts.diagnostics["nuts"]
    assert np.all(diag["rhat"] < 1.05)
    for mc, mn in zip(ccd.posterior.hyper, nuts.posterior.hyper):
        a, b = mc.summary(()), mn.summary(())
        print(f"CCD {a['mean']:.4f} ± {a['sd']:.4f}, NUTS {b['mean']:.4f} ± {b['sd']:.4f}; ESS {diag['ess']}")
        assert abs(a["mean"] - b["mean"]) <= 0.05 * a["sd"]
