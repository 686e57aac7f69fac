"""adelia.marginals (R-INLA's inla.*marginal functions).

Oracles: closed forms from scipy.stats (normal, lognormal, gamma: pdf, cdf, ppf, moments),
the defining property of an HPD interval (equal density at both ends, coverage p), and the
summaries INLA computed for a fitted model (Seeds), which come from the mixture itself and
not from the returned grids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import xarray as xr

import adelia
from adelia import marginals as M
from adelia.errors import DataError
from adelia.inference.summaries import MARGINAL_GRID

MU, SIGMA = 1.3, 0.4


def _gaussian_points():
    """R-INLA-like 43-point grid out to ±6 sd (what InlaResult returns)."""
    x = MU + SIGMA * MARGINAL_GRID
    return x, st.norm.pdf(x, MU, SIGMA)


def _as(form: str):
    x, y = _gaussian_points()
    if form == "dataarray":
        return xr.DataArray(y, coords={"x": x}, dims="x", name="beta")
    if form == "dataset":
        return xr.Dataset(
            {"x": (("ID", "point"), x[None]), "density": (("ID", "point"), y[None])},
            coords={"ID": [7.0], "point": np.arange(x.size)},
        ).sel(ID=7.0)
    if form == "matrix":
        return np.column_stack([x, y])
    if form == "tuple":
        return (x, y)
    if form == "dict":
        return {"x": x, "y": y}
    if form == "frame":
        return pd.DataFrame({"x": x, "y": y})
    raise AssertionError(form)


FORMS = ["dataarray", "dataset", "matrix", "tuple", "dict", "frame"]


@pytest.mark.parametrize("form", FORMS)
def test_gaussian_closed_forms_in_every_input_form(form):
    m = _as(form)
    p = np.array([0.001, 0.025, 0.25, 0.5, 0.75, 0.975, 0.999])
    np.testing.assert_allclose(M.qmarginal(p, m), st.norm.ppf(p, MU, SIGMA), atol=1e-4 * SIGMA)
    q = MU + SIGMA * np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(M.pmarginal(q, m), st.norm.cdf(q, MU, SIGMA), atol=1e-6)
    np.testing.assert_allclose(M.dmarginal(q, m), st.norm.pdf(q, MU, SIGMA), rtol=1e-5)
    np.testing.assert_allclose(M.dmarginal(q, m, log=True), st.norm.logpdf(q, MU, SIGMA), atol=1e-5)
    # E[x], E[x^2] = mu^2 + sigma^2, E[x^4] = mu^4 + 6 mu^2 s^2 + 3 s^4 (mass beyond ±6 sd: 2e-9)
    e1, e2, e4 = M.emarginal(lambda t: np.stack([t, t**2, t**4]), m)
    assert e1 == pytest.approx(MU, abs=1e-7)
    assert e2 == pytest.approx(MU**2 + SIGMA**2, rel=1e-7)
    assert e4 == pytest.approx(MU**4 + 6 * MU**2 * SIGMA**2 + 3 * SIGMA**4, rel=1e-6)
    assert M.mmarginal(m) == pytest.approx(MU, abs=1e-6 * SIGMA)


def test_emarginal_scalar_and_r_style_vector_results():
    m = _as("matrix")
    assert isinstance(M.emarginal(lambda t: t, m), float)
    # R-style fun returning c(f1(x), f2(x)) as one flat vector
    both = M.emarginal(lambda t: np.concatenate([t, t**2]), m)
    np.testing.assert_allclose(both, [MU, MU**2 + SIGMA**2], rtol=1e-7)
    # extra arguments are passed on to fun
    assert M.emarginal(lambda t, a: (t - a) ** 2, m, MU) == pytest.approx(SIGMA**2, rel=1e-6)


def test_density_is_zero_outside_the_range_and_scalars_stay_scalars():
    m = _as("dataarray")
    lo, hi = float(m["x"].min()), float(m["x"].max())
    assert M.dmarginal(lo - 1.0, m) == 0.0
    assert M.dmarginal(hi + 1.0, m, log=True) == -np.inf
    assert isinstance(M.qmarginal(0.5, m), float)
    assert M.pmarginal(lo - 1.0, m) == 0.0 and M.pmarginal(hi + 1.0, m) == pytest.approx(1.0)


def test_hpd_of_a_symmetric_density_is_the_central_interval():
    m = _as("dataarray")
    hpd = M.hpdmarginal([0.95, 0.5], m)
    assert list(hpd.columns) == ["low", "high"]
    assert list(hpd.index) == ["level:0.95", "level:0.5"]
    z = st.norm.ppf([0.975, 0.75])
    np.testing.assert_allclose(hpd["low"], MU - z * SIGMA, atol=1e-4 * SIGMA)
    np.testing.assert_allclose(hpd["high"], MU + z * SIGMA, atol=1e-4 * SIGMA)


def test_hpd_of_a_skewed_density_has_equal_end_densities_and_coverage():
    g = st.gamma(3.0, scale=2.0)
    # log-spaced points, as a user-scale hyperparameter marginal has them
    x = np.exp(np.linspace(np.log(g.ppf(1e-7)), np.log(g.ppf(1 - 1e-7)), 150))
    m = (x, g.pdf(x))
    for level in (0.9, 0.5):
        lo, hi = M.hpdmarginal(level, m).to_numpy()[0]
        assert g.cdf(hi) - g.cdf(lo) == pytest.approx(level, abs=1e-5)
        assert g.pdf(lo) == pytest.approx(g.pdf(hi), rel=5e-3)
        # shorter than the equal-tailed interval
        a, b = g.ppf([(1 - level) / 2, (1 + level) / 2])
        assert hi - lo < b - a - 0.1
    p = np.array([0.01, 0.05, 0.5, 0.95, 0.99])
    np.testing.assert_allclose(g.cdf(M.qmarginal(p, m)), p, atol=1e-6)
    assert M.mmarginal(m) == pytest.approx(4.0, abs=1e-3)  # mode (k-1)·scale


def test_tmarginal_exp_of_a_normal_is_lognormal():
    m = _as("dataarray")
    ln = M.tmarginal(np.exp, m)
    assert isinstance(ln, xr.DataArray) and ln.dims == ("x",)
    truth = st.lognorm(s=SIGMA, scale=np.exp(MU))
    pts = truth.ppf([0.01, 0.2, 0.5, 0.8, 0.99])
    np.testing.assert_allclose(M.dmarginal(pts, ln), truth.pdf(pts), rtol=1e-5)
    p = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(M.qmarginal(p, ln), truth.ppf(p), rtol=1e-5)
    assert M.emarginal(lambda t: t, ln) == pytest.approx(truth.mean(), rel=1e-6)
    # the transformed marginal in the R matrix form stays a matrix
    assert M.tmarginal(np.exp, _as("matrix"), n=500).shape[1] == 2


def test_tmarginal_decreasing_map_and_jax_functions():
    import jax.numpy as jnp

    m = _as("matrix")
    flipped = M.tmarginal(lambda t: 1.0 - 2.0 * t, m)
    assert np.all(np.diff(flipped[:, 0]) > 0)  # returned in increasing order
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(M.qmarginal(p, flipped), st.norm.ppf(p, 1 - 2 * MU, 2 * SIGMA), atol=2e-4)
    # precision -> standard deviation through a jax function
    prec = M.tmarginal(jnp.exp, m)
    sd = M.tmarginal(lambda t: 1.0 / jnp.sqrt(t), prec)
    np.testing.assert_allclose(M.qmarginal(p, sd), np.exp(-0.5 * st.norm.ppf(1 - p, MU, SIGMA)), rtol=1e-4)


def test_tmarginal_rejects_non_monotone_functions_and_unknown_methods():
    with pytest.raises(DataError, match="monotone"):
        M.tmarginal(lambda t: (t - MU) ** 2, _as("matrix"))
    with pytest.raises(DataError, match="quantile"):
        M.tmarginal(np.exp, _as("matrix"), method="spline")


def test_smarginal_splits_every_cell_into_factor_parts():
    x, y = _gaussian_points()
    sm = M.smarginal(_as("dataarray"))
    assert isinstance(sm, xr.DataArray) and sm.name == "beta"
    assert sm.sizes["x"] == 15 * (x.size - 1) + 1
    xs = sm["x"].values
    assert np.all(np.diff(xs) > 0) and xs[0] == pytest.approx(x[0]) and xs[-1] == pytest.approx(x[-1])
    np.testing.assert_allclose(sm.values, st.norm.pdf(xs, MU, SIGMA), rtol=1e-5)
    lsm = M.smarginal((x, y), log=True, factor=3)
    assert isinstance(lsm, tuple) and lsm[0].size == 3 * (x.size - 1) + 1
    np.testing.assert_allclose(lsm[1], st.norm.logpdf(lsm[0], MU, SIGMA), atol=1e-5)
    wide = M.smarginal({"x": x, "y": y}, extrapolate=0.1)
    assert wide["x"][0] < x[0] and wide["x"][-1] > x[-1]


def test_rmarginal_is_reproducible_and_has_the_right_moments():
    m = _as("dataarray")
    n = 20000
    a = M.rmarginal(n, m, seed=11)
    np.testing.assert_array_equal(a, M.rmarginal(n, m, seed=11))
    assert not np.array_equal(a, M.rmarginal(n, m, seed=12))
    assert abs(a.mean() - MU) < 5 * SIGMA / np.sqrt(n)
    assert abs(a.var() / SIGMA**2 - 1) < 5 * np.sqrt(2.0 / n)
    assert st.kstest(a, st.norm(MU, SIGMA).cdf).pvalue > 1e-3


def test_zmarginal_names_and_values(capsys):
    z = M.zmarginal(_as("dataarray"))
    assert list(z.index) == ["mean", "sd", "quant0.025", "quant0.25", "quant0.5", "quant0.75", "quant0.975"]
    np.testing.assert_allclose(z.to_numpy(), [MU, SIGMA, *st.norm.ppf([0.025, 0.25, 0.5, 0.75, 0.975], MU, SIGMA)], atol=1e-4 * SIGMA)
    assert capsys.readouterr().out == ""
    M.zmarginal(_as("matrix"), silent=False)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Mean ") and out[-1].startswith("Quantile  0.975")


def test_bad_inputs_name_the_fix():
    x, y = _gaussian_points()
    two_nodes = xr.Dataset({"x": (("ID", "point"), np.stack([x, x])), "density": (("ID", "point"), np.stack([y, y]))})
    with pytest.raises(DataError, match=r"sel\(ID=\.\.\.\)"):
        M.qmarginal(0.5, two_nodes)
    with pytest.raises(DataError, match="positive density"):
        M.qmarginal(0.5, (x, np.zeros_like(x)))
    with pytest.raises(DataError, match=r"\(n, 2\)"):
        M.qmarginal(0.5, np.ones((3, 3)))


# ---- on a fitted model ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeds():
    df = adelia.datasets.load("Seeds")
    return adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", df, family="binomial", Ntrials="n")


def test_functions_on_result_marginals_agree_with_the_summaries(seeds):
    sf = seeds.summary_fixed
    for name, m in seeds.marginals_fixed.items():
        row = sf.loc[name]
        sd = row["sd"]
        q = M.qmarginal([0.025, 0.5, 0.975], m)
        np.testing.assert_allclose(q, row[["0.025quant", "0.5quant", "0.975quant"]].to_numpy(float), atol=5e-3 * sd)
        assert M.emarginal(lambda t: t, m) == pytest.approx(row["mean"], abs=1e-3 * sd)
        z = M.zmarginal(m)
        assert z["sd"] == pytest.approx(sd, rel=5e-3)
    sr = seeds.summary_random["plate"]
    node = seeds.marginals_random["plate"].sel(ID=3.0)
    row = sr[sr["ID"] == 3.0].iloc[0]
    # this node's marginal is a spike (76% weight, sd 0.011) on a slab; the 43-point grid of
    # marginals_random (R-INLA's layout: the combined density at 43 of its quantiles) resolves
    # the spike coarsely, so the median and the mean from the grid are looser
    assert M.qmarginal(0.5, node) == pytest.approx(row["0.5quant"], abs=0.02 * row["sd"])
    assert M.emarginal(lambda t: t, node) == pytest.approx(row["mean"], abs=0.05 * row["sd"])
    # hyperparameters: the user-scale marginal and the internal one related by tmarginal(exp)
    (hname,) = list(seeds.marginals_hyperpar)
    (iname,) = list(seeds.internal_marginals_hyperpar)
    user = seeds.marginals_hyperpar[hname]
    internal = seeds.internal_marginals_hyperpar[iname]
    med = seeds.summary_hyperpar.loc[hname, "0.5quant"]
    assert M.qmarginal(0.5, user) == pytest.approx(med, rel=1e-2)
    assert M.qmarginal(0.5, M.tmarginal(np.exp, internal)) == pytest.approx(med, rel=1e-2)
