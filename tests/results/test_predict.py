"""``res.predict(new_data)``: the fitted model's terms evaluated on new rows.

Oracles: the fit's own ``summary_linear_predictor`` / ``summary_fitted_values`` at the fitted
rows (the same Gaussian mixture computed by another route: selected inverse vs solves, 1e-8);
Monte-Carlo error bounds for the joint draws; a design matrix built by hand (treatment
contrasts, I(x^2)) times the posterior means of ``summary_fixed``; the prior variance
E[1/τ] of a new iid level from ``posterior_sample``'s hyperparameter draws; R-INLA's
``na_prediction`` fit (NA responses predicted by R-INLA itself).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import DataError
from conftest import shared_path

N = 2048  # a multiple of the sampler's batch (one compiled draw shape)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(11)
    n = 60
    df = pd.DataFrame({
        "x": rng.normal(size=n),
        "g": rng.integers(1, 6, size=n),
        "t": np.arange(n) % 12 + 1,
        "f": rng.choice(["a", "b", "c"], size=n),
    })
    df["y"] = (1 + 0.5 * df.x + 0.3 * (df.f == "b") + 0.5 * rng.normal(size=5)[df.g - 1]
               + np.sin(df.t / 2.0) + 0.5 * rng.normal(size=n))
    res = adelia.inla("y ~ 1 + x + f + I(x^2) + f(g, model='iid') + f(t, model='rw2')", df,
                      control_predictor={"compute": True})
    return res, df


def test_fitted_rows_equal_summary_linear_predictor(fitted):
    res, df = fitted
    rows = df.iloc[::6]
    p = res.predict(rows, n_samples=0)
    lp = res.summary_linear_predictor.iloc[::6]
    cols = ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]
    np.testing.assert_allclose(p.summary_linear_predictor[cols].to_numpy(), lp[cols].to_numpy(), rtol=0, atol=1e-8)
    fv = res.summary_fitted_values.iloc[::6]
    np.testing.assert_allclose(p.summary_fitted_values[cols].to_numpy(), fv[cols].to_numpy(), rtol=0, atol=1e-8)
    assert list(p.summary_linear_predictor.index) == list(rows.index)
    assert p.samples is None


def test_samples_and_expr_within_monte_carlo_error(fitted):
    res, df = fitted
    rows = df.iloc[:8]
    p = res.predict(rows, n_samples=N, seed=4, expr=lambda e: e["Predictor"] - e["g"])
    lp = res.summary_linear_predictor.iloc[:8]
    eta = p.samples["Predictor"].to_numpy()
    assert eta.shape == (N, 8)
    np.testing.assert_array_less(np.abs(eta.mean(0) - lp["mean"].to_numpy()), 5 * lp["sd"].to_numpy() / np.sqrt(N))
    np.testing.assert_array_less(np.abs(eta.std(0) ** 2 / lp["sd"].to_numpy() ** 2 - 1), 6 * np.sqrt(2 / N))
    # the draws are joint: η is the sum of the effects, and expr sees the same draws
    fixed = (p.samples["(Intercept)"].to_numpy()[:, None] + p.samples["x"].to_numpy()[:, None] * rows["x"].to_numpy()
             + p.samples["fb"].to_numpy()[:, None] * (rows["f"] == "b").to_numpy()
             + p.samples["fc"].to_numpy()[:, None] * (rows["f"] == "c").to_numpy()
             + p.samples["I(x^2)"].to_numpy()[:, None] * rows["x"].to_numpy() ** 2)
    np.testing.assert_allclose(fixed + p.samples["g"].to_numpy() + p.samples["t"].to_numpy(), eta, atol=1e-10)
    np.testing.assert_allclose(p.summary_expr["mean"].to_numpy(), (eta - p.samples["g"].to_numpy()).mean(0), atol=1e-12)
    assert list(p.summary_expr.columns) == ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]


def test_new_iid_level_draws_from_its_prior(fitted):
    res, _ = fitted
    new = pd.DataFrame({"x": 0.3, "f": "a", "t": 4, "g": [1, 2, 3, 4, 5, 99, np.nan]})
    p = res.predict(new, n_samples=N, seed=2)
    sd = p.summary_linear_predictor["sd"].to_numpy()
    assert sd[5] > sd[:5].max()
    # a new level adds its prior variance 1/τ_g at each θ: E[1/τ_g] over the posterior
    tau = res.posterior_sample(N, seed=5)["Precision for g"].to_numpy()
    added = sd[5] ** 2 - sd[6] ** 2
    assert abs(added / np.mean(1 / tau) - 1) < 0.1
    # one new level, one draw per sample: rows at the same unseen level share it
    two = res.predict(pd.DataFrame({"x": [0.0, 1.0], "f": "a", "t": 4, "g": [77, 77]}), n_samples=256, seed=1)
    u = two.samples["g"].to_numpy()
    np.testing.assert_array_equal(u[:, 0], u[:, 1])
    assert np.std(u[:, 0]) > 0


def test_unseen_index_of_a_structured_term_is_an_error(fitted):
    res, _ = fitted
    new = pd.DataFrame({"x": [0.0, 0.0, 0.0], "f": "a", "g": 1, "t": [3, 40, 41]})
    with pytest.raises(DataError, match=r'f\(t, model="rw2"\).*40, 41 \(rows 2, 3'):
        res.predict(new, n_samples=0)


def test_fixed_effects_with_factor_and_I_on_new_data(fitted):
    res, _ = fitted
    new = pd.DataFrame({"x": [0.5, -1.0, 2.0], "f": ["c", "a", "b"], "g": np.nan, "t": np.nan})  # NA: f() terms out
    p = res.predict(new, n_samples=0)
    X = np.column_stack([np.ones(3), new.x, new.f == "b", new.f == "c", new.x ** 2]).astype(float)
    sf = res.summary_fixed
    assert list(sf.index) == ["(Intercept)", "x", "fb", "fc", "I(x^2)"]
    expected = X @ sf["mean"].to_numpy()
    # the predictor's mixture drops the least probable design points (0.975), the latent one fewer (0.999)
    np.testing.assert_allclose(p.summary_linear_predictor["mean"].to_numpy(), expected, atol=1e-3 * sf["sd"].min())
    with pytest.raises(DataError, match='"d"'):
        res.predict(pd.DataFrame({"x": [0.0], "f": ["d"], "g": 1, "t": 1}), n_samples=0)
    with pytest.raises(DataError, match='column "t"'):
        res.predict(pd.DataFrame({"x": [0.0], "f": ["a"], "g": 1}), n_samples=0)


def test_na_prediction_matches_rinla():
    folder = shared_path("reference", "rinla", "na_prediction")
    ref = json.loads((folder / "results.json").read_text())
    data = pd.read_csv(folder / "data.csv")
    missing = data["y"].isna().to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("y ~ 1 + x", data[~missing].reset_index(drop=True))
    p = res.predict(data[missing], n_samples=0)
    lp = ref["summary_linear_predictor"]
    r_mean, r_sd = np.asarray(lp["mean"])[missing], np.asarray(lp["sd"])[missing]
    got = p.summary_linear_predictor
    assert np.max(np.abs(got["mean"].to_numpy() - r_mean) / r_sd) <= 0.05
    assert np.max(np.abs(got["sd"].to_numpy() / r_sd - 1)) <= 0.05


def test_poisson_offset_replicate_and_copy_terms():
    rng = np.random.default_rng(3)
    n = 100
    u = rng.normal(size=10)
    df = pd.DataFrame({"t": np.arange(n) % 10 + 1, "r": np.arange(n) // 50 + 1, "g": rng.integers(1, 11, size=n),
                       "x": rng.normal(size=n), "E": rng.uniform(0.5, 2.0, size=n)})
    second = df["r"] == 2
    df["g2"] = np.where(second, df["g"], np.nan)  # copy of g, scaled by an estimated β, on the second half
    df["g"] = np.where(second, np.nan, df["g"])
    eff = np.where(second, 1.5, 1.0) * 0.4 * u[np.nan_to_num(df["g"].fillna(df["g2"])).astype(int) - 1]
    df["y"] = rng.poisson(df["E"] * np.exp(0.2 + 0.3 * df["x"] + eff))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # precisions fixed: one hyperparameter (β), a small design, a fast test
        res = adelia.inla("y ~ x + f(t, model='iid', replicate=r, hyper=list(prec=list(initial=1, fixed=TRUE))) "
                          "+ f(g, model='iid', hyper=list(prec=list(initial=1, fixed=TRUE))) "
                          "+ f(g2, copy='g', hyper=list(beta=list(fixed=FALSE))) + offset(log(E))",
                          df, family="poisson", control_predictor={"compute": True})
    assert "Beta for g2" in res.summary_hyperpar.index
    p = res.predict(df, n_samples=0)
    cols = ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"]
    np.testing.assert_allclose(p.summary_linear_predictor[cols].to_numpy(), res.summary_linear_predictor[cols].to_numpy(), atol=1e-8)
    np.testing.assert_allclose(p.summary_fitted_values[cols].to_numpy(), res.summary_fitted_values[cols].to_numpy(), atol=1e-8)
    lp = res.summary_linear_predictor
    s = res.predict(df.iloc[::4], n_samples=1024, seed=3)
    z = (s.samples["Predictor"].mean("sample").to_numpy() - lp["mean"].to_numpy()[::4]) / (lp["sd"].to_numpy()[::4] / np.sqrt(1024))
    assert np.max(np.abs(z)) < 5
    # offset= adds to the formula's offset(); a replicate beyond the fit's is an error
    q = res.predict(df.iloc[:3], n_samples=0, offset=np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(q.summary_linear_predictor["mean"].to_numpy() - lp["mean"].to_numpy()[:3], [0.0, 1.0, 2.0], atol=1e-8)
    with pytest.raises(DataError, match=r"f\(t, \.\.\.\): replicate values 3"):
        res.predict(df.iloc[:2].assign(r=3), n_samples=0)
    with pytest.raises(DataError, match=r'f\(g2, copy="g"\): values 11'):
        res.predict(df.iloc[50:52].assign(g2=11), n_samples=0)
