"""adelia's INLA against long NUTS chains (NumPyro) on the same posterior (issue 4).

Acceptance: latent marginal means within 0.1 posterior sd and sds within 10 % of the chain, on
Seeds (binomial + iid plate effect) and on a Poisson rw2 model. The NumPyro models in
``nuts_models.py`` carry R-INLA's default priors term by term (flat intercept ≈ N(0, 1000²),
slopes N(0, prec 0.001), Gamma(1, 5e-5) on every precision, rw2 with constr=TRUE and
diagonal 1e-4), so any disagreement is INLA's approximation, not the model.

Seeds is a known hard case: with the default prior on the plate precision, log π(θ | y) is
bimodal (a small local mode at log τ ≈ 2.7, the bulk at log τ ≈ 10 where the plate effects
vanish). :func:`test_seeds_laplace_hyperposterior_matches_nuts` shows that the Laplace
approximation log π̃(θ | y) itself agrees with the chain on a θ grid. The default integration
design (R-INLA's too: its seeds_iid reference has the same 11 points) is built around the local
mode and ends at log τ ≈ 8.9, so it drops ~65 % of the mass; the fixed effects are insensitive
to this, the plate effects are not (their sds come out ~1.3–1.6× the chain's): the strict
xfail of :func:`test_seeds_plate_effects_match_nuts` records this and fails as soon as it is
fixed.

:func:`test_rw2_nuts_model_is_rinla_density` (fast, not marked slow) checks the oracle itself:
the NumPyro rw2 model's log density equals R-INLA's constrained rw2 density term by term.

The comparisons are slow (~30–60 s in all on 2 cores): run with ``python -m pytest -m slow tests/inference/test_against_nuts.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import adelia

pytest.importorskip("numpyro")
from nuts_models import poisson_rw2_model, run_nuts, seeds_model  # noqa: E402

slow = pytest.mark.slow

#: the issue's acceptance tolerances
MEAN_TOL_SD = 0.1
SD_REL_TOL = 0.10
#: chain length: 4 chains × 5000 draws after 2000 warmup steps
CHAINS, SAMPLES, WARMUP = 4, 5000, 2000
#: what a converged chain must show (split R-hat, bulk ESS over every scalar, divergences)
MAX_RHAT, MIN_ESS, MAX_DIVERGENT_FRACTION = 1.01, 1000.0, 0.005

SEEDS_FORMULA = "r ~ x1 + x2 + f(plate, model='iid')"


def _draws(mcmc) -> dict[str, np.ndarray]:
    """Samples with the chain axis merged: name -> (chains·samples, ...)."""
    out = {}
    for k, v in mcmc.get_samples(group_by_chain=True).items():
        v = np.asarray(v)
        out[k] = v.reshape(-1, *v.shape[2:])
    return out


def _check_converged(mcmc) -> dict[str, float]:
    from numpyro.diagnostics import summary

    s = summary({k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()})
    rhat = max(float(np.max(v["r_hat"])) for v in s.values())
    ess = min(float(np.min(v["n_eff"])) for v in s.values())
    div = float(np.mean(np.asarray(mcmc.get_extra_fields()["diverging"])))
    assert rhat < MAX_RHAT, f"NUTS not converged: max R-hat {rhat:.4f}"
    assert ess > MIN_ESS, f"NUTS effective sample size too small: min ESS {ess:.0f}"
    assert div < MAX_DIVERGENT_FRACTION, f"NUTS: {div:.2%} divergent transitions"
    print(f"NUTS: max R-hat {rhat:.4f}, min ESS {ess:.0f}, divergent {div:.3%}")  # shown with -s
    return {"max_rhat": rhat, "min_ess": ess, "divergent": div}


def _compare(names, inla_mean, inla_sd, draws: np.ndarray) -> tuple[float, float, str]:
    """Max |Δmean|/sd_chain, max |sd_inla/sd_chain − 1|, and a table of the worst rows."""
    ref_mean, ref_sd = draws.mean(axis=0), draws.std(axis=0, ddof=1)
    dz = np.abs(np.asarray(inla_mean) - ref_mean) / ref_sd
    ratio = np.asarray(inla_sd) / ref_sd
    table = pd.DataFrame({"inla_mean": inla_mean, "nuts_mean": ref_mean, "dmean/sd": dz,
                          "inla_sd": inla_sd, "nuts_sd": ref_sd, "sd_ratio": ratio}, index=list(names))
    worst = table.loc[(table["dmean/sd"] + np.abs(table["sd_ratio"] - 1.0)).sort_values().index[-5:]]
    print(f"max |dmean|/sd = {dz.max():.3f}, sd ratio in [{ratio.min():.3f}, {ratio.max():.3f}]")  # shown with -s
    return float(dz.max()), float(np.max(np.abs(ratio - 1.0))), worst.to_string()


# --- Seeds ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds():
    return adelia.datasets.load("Seeds")


@pytest.fixture(scope="module")
def seeds_nuts(seeds):
    # 32 chains: the plate sds come mostly from the ~6 % of the mass near log τ ≈ 2.7, which 4
    # chains estimate to ±15 % (issue 16: test_nuts_theta.py::seeds_joint_reference)
    mcmc = run_nuts(
        seeds_model, num_warmup=1000, num_samples=4000, num_chains=32, seed=20261126, target_accept=0.95,
        x1=seeds["x1"].to_numpy(float), x2=seeds["x2"].to_numpy(float), plate=seeds["plate"].to_numpy() - 1,
        n_trials=seeds["n"].to_numpy(), r=seeds["r"].to_numpy(),
    )
    return mcmc


@pytest.fixture(scope="module")
def seeds_inla(seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n")


@slow
def test_seeds_chain_converged(seeds_nuts):
    _check_converged(seeds_nuts)


@slow
def test_seeds_fixed_effects_match_nuts(seeds_inla, seeds_nuts):
    draws = _draws(seeds_nuts)
    sf = seeds_inla.summary_fixed
    names = ["(Intercept)", "x1", "x2"]
    dmean, dsd, worst = _compare(names, sf.loc[names, "mean"], sf.loc[names, "sd"], np.column_stack([draws[k] for k in names]))
    assert dmean <= MEAN_TOL_SD and dsd <= SD_REL_TOL, f"Seeds fixed effects vs NUTS:\n{worst}"


@slow
@pytest.mark.xfail(
    strict=True,
    reason="bimodal log π(θ|y) on Seeds: the integration design (as R-INLA's) is built around the local mode "
    "log τ ≈ 2.7 and stops at log τ ≈ 8.9, dropping ~65% of the posterior mass; plate-effect sds ~1.3–1.6× NUTS",
)
def test_seeds_plate_effects_match_nuts(seeds_inla, seeds_nuts):
    draws = _draws(seeds_nuts)["plate_effect"]
    sr = seeds_inla.summary_random["plate"]
    dmean, dsd, worst = _compare(sr["ID"], sr["mean"].to_numpy(), sr["sd"].to_numpy(), draws)
    assert dmean <= MEAN_TOL_SD and dsd <= SD_REL_TOL, f"Seeds plate effects vs NUTS:\n{worst}"


@slow
@pytest.mark.xfail(
    strict=True,
    reason="classic mode's dz-grid (10 points over log τ 1.0–11.4 around the local mode 2.71) gives the plate "
    "effects sds 0.50–0.59 of a 32-chain joint NUTS run; NUTS over θ matches it within 5 % (test_nuts_theta.py)",
)
def test_seeds_classic_mode_matches_nuts(seeds, seeds_nuts):
    """inla_mode="classic" explores log π̃(θ | y) with R-INLA's adaptive dz-grid, which reaches
    the bulk of the mass near log τ ≈ 10: the fixed effects match the chain. The plate effects'
    sds, which come mostly from the ~6 % of the mass near the local mode log τ ≈ 2.7, come out
    about half the chain's (32 chains; an earlier version of this test compared with 4 chains,
    whose plate sds are themselves up to 19 % off, and held these to 25 %)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n", inla_mode="classic")
    draws = _draws(seeds_nuts)
    sf = res.summary_fixed
    names = ["(Intercept)", "x1", "x2"]
    dmean, dsd, worst = _compare(names, sf.loc[names, "mean"], sf.loc[names, "sd"], np.column_stack([draws[k] for k in names]))
    assert dmean <= MEAN_TOL_SD and dsd <= SD_REL_TOL, f"Seeds fixed effects (classic) vs NUTS:\n{worst}"
    sr = res.summary_random["plate"]
    dmean, dsd, worst = _compare(sr["ID"], sr["mean"].to_numpy(), sr["sd"].to_numpy(), draws["plate_effect"])
    assert dmean <= MEAN_TOL_SD and dsd <= SD_REL_TOL, f"Seeds plate effects (classic) vs NUTS:\n{worst}"


@slow
def test_seeds_laplace_hyperposterior_matches_nuts(seeds, seeds_nuts):
    """log π̃(θ | y) (adelia's Laplace objective, normalised on a fine θ grid) against the
    chain's log τ: the approximation is right, including the second mode; only the integration
    design misses it (see the module doc)."""
    model = adelia.compile(SEEDS_FORMULA, seeds, family="binomial", Ntrials="n")
    grid = np.linspace(-2.0, 14.0, 321)
    lp = np.asarray(model.log_posterior_batch(grid[:, None]))
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = float(w @ grid)
    sd = float(np.sqrt(w @ (grid - mean) ** 2))
    below6 = float(w[grid < 6.0].sum())
    log_tau = np.log(_draws(seeds_nuts)["tau"])
    assert abs(mean - log_tau.mean()) <= MEAN_TOL_SD * log_tau.std(), (mean, log_tau.mean(), log_tau.std())
    assert abs(sd / log_tau.std() - 1.0) <= SD_REL_TOL, (sd, log_tau.std())
    # the low-τ mode: its mass (~6 %) agrees within Monte Carlo error (~4 SE at ESS ≥ 1000)
    p_nuts = float(np.mean(log_tau < 6.0))
    assert abs(below6 - p_nuts) <= 4.0 * np.sqrt(p_nuts * (1 - p_nuts) / MIN_ESS) + 1e-3, (below6, p_nuts)
    # and the design of the default fit really ends below the bulk of the mass
    assert np.mean(log_tau > 8.95) > 0.5


# --- Poisson rw2 ---------------------------------------------------------------------------------

RW2_N = 50


@pytest.fixture(scope="module")
def rw2_data():
    rng = np.random.default_rng(20261126)
    t = np.arange(1, RW2_N + 1)
    f = 0.8 * np.sin(2 * np.pi * t / RW2_N) + 0.4 * np.cos(4 * np.pi * t / RW2_N)
    return pd.DataFrame({"y": rng.poisson(np.exp(1.0 + f)), "t": t})


@pytest.fixture(scope="module")
def rw2_nuts(rw2_data):
    return run_nuts(poisson_rw2_model, num_warmup=WARMUP, num_samples=SAMPLES, num_chains=CHAINS, seed=7,
                    target_accept=0.95, y=rw2_data["y"].to_numpy(), n=RW2_N)


@slow
def test_poisson_rw2_matches_nuts(rw2_data, rw2_nuts):
    _check_converged(rw2_nuts)
    draws = _draws(rw2_nuts)
    np.testing.assert_allclose(draws["rw2"].sum(axis=1), 0.0, atol=1e-9)  # the constraint holds exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("y ~ 1 + f(t, model='rw2')", rw2_data, family="poisson")
    sf, sr = res.summary_fixed, res.summary_random["t"]
    names = ["(Intercept)"] + [f"t={i}" for i in sr["ID"]]
    mean = np.concatenate([[sf.loc["(Intercept)", "mean"]], sr["mean"].to_numpy()])
    sd = np.concatenate([[sf.loc["(Intercept)", "sd"]], sr["sd"].to_numpy()])
    dmean, dsd, worst = _compare(names, mean, sd, np.column_stack([draws["(Intercept)"], draws["rw2"]]))
    assert dmean <= MEAN_TOL_SD and dsd <= SD_REL_TOL, f"Poisson rw2 vs NUTS:\n{worst}"


# --- the oracle itself -----------------------------------------------------------------------------


def test_rw2_nuts_model_is_rinla_density():
    """The NumPyro rw2 model, mapped back to (β₀, τ, x), is R-INLA's posterior up to a constant:
    log N(β₀; 0, 1000²) + log Gamma(τ; 1, 5e-5) + ½(n−2) log τ − ½ xᵀ(τR + 1e-4 I)x
    + Σ log Poisson(y | exp(β₀ + x)), on 1ᵀx = 0. Parameters (w, c) map to x linearly with
    log|∂x/∂(w, c)| = −½ Σ log(τλ_k + d), which is added back."""
    from numpyro.infer.util import log_density
    from scipy import stats

    from nuts_models import RW_DIAGONAL, constrained_rw2_basis, rw2_structure

    n = 12
    rng = np.random.default_rng(3)
    y = rng.poisson(3.0, size=n)
    V, lam, trend = constrained_rw2_basis(n)
    R = rw2_structure(n)
    np.testing.assert_allclose(V.T @ V, np.eye(n - 2), atol=1e-12)
    np.testing.assert_allclose(V.T @ R @ V, np.diag(lam), atol=1e-10)
    np.testing.assert_allclose([np.ones(n) @ V.sum(axis=1), trend.sum(), np.abs(R @ trend).max()], 0.0, atol=1e-10)

    def both(b0, tau, w, c):
        params = {"(Intercept)": b0, "tau": tau, "w": w, "trend_coef": c}
        lp, trace = log_density(poisson_rw2_model, (), {"y": y, "n": n}, params)
        x = np.asarray(trace["rw2"]["value"])
        numpyro_lp = float(lp) + 0.5 * np.sum(np.log(tau * lam + RW_DIAGONAL))
        direct = (stats.norm.logpdf(b0, 0.0, 1000.0) + stats.gamma.logpdf(tau, 1.0, scale=1.0 / 5e-5)
                  + 0.5 * (n - 2) * np.log(tau) - 0.5 * x @ (tau * R + RW_DIAGONAL * np.eye(n)) @ x
                  + stats.poisson.logpmf(y, np.exp(b0 + x)).sum())
        assert abs(x.sum()) < 1e-10
        return numpyro_lp - direct

    diffs = [both(rng.normal(), float(np.exp(rng.normal(2.0, 1.0))), rng.normal(size=n - 2), rng.normal())
             for _ in range(4)]
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-8)
