"""R-INLA's inla.group(): Python API, formula evaluation and f() covariates."""

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import AdeliaError
from adelia.formula.rdata import DataColumns, SUPPORTED_FUNCTIONS, evaluate_on_data
from adelia.formula.rsyntax import parse_r


# ---------------------------------------------------------------------------------------
# independent reference: numpy breaks, right-closed intervals, np.median per class

def _classes(x, breaks):
    """0-based class of each x in right-closed intervals (b_i, b_i+1], the first closed."""
    k = np.digitize(x, breaks, right=True) - 1
    return np.where(x == breaks[0], 0, k)


def _ref(x, n, method="cut", idx_only=False):
    x = np.asarray(x, dtype=float)
    out = x.copy()
    ok = ~np.isnan(x)
    v = x[ok]
    if n == 1:
        out[ok] = np.median(v)
        return out
    if method == "cut":
        breaks = np.linspace(v.min(), v.max(), n + 1)
    else:
        m = n - 1
        a = 3 / 8 if m <= 10 else 1 / 2
        probs = np.r_[0.0, (np.arange(1, m + 1) - a) / (m + 1 - 2 * a), 1.0]
        breaks = np.unique(np.quantile(v, probs))
    k = _classes(v, breaks)
    if idx_only:
        out[ok] = k + 1
    else:
        out[ok] = [np.median(v[k == j]) for j in k]
    return out


VECTORS = {
    "uniform": np.random.default_rng(0).uniform(-3, 7, 200),
    "normal": np.random.default_rng(1).normal(size=137),
    "integers (ties on breaks)": np.arange(0.0, 11.0),
    "repeated ties": np.repeat([0.0, 2.0, 4.0, 5.0, 6.0, 10.0], [3, 4, 1, 2, 5, 3]),
    "with NA": np.array([3.0, np.nan, 1.0, 7.5, np.nan, 2.2, 9.0, 0.0, 4.4, 10.0]),
    "skewed": np.random.default_rng(2).exponential(size=90) ** 3,
}


@pytest.mark.parametrize("name", list(VECTORS))
@pytest.mark.parametrize("n", [2, 3, 5, 10, 25])
@pytest.mark.parametrize("method", ["cut", "quantile"])
def test_matches_reference(name, n, method):
    x = VECTORS[name]
    got = adelia.inla_group(x, n=n, method=method)
    np.testing.assert_allclose(got, _ref(x, n, method), rtol=0, atol=1e-12, equal_nan=True)
    idx = adelia.inla_group(x, n=n, method=method, idx_only=True)
    np.testing.assert_array_equal(idx, _ref(x, n, method, idx_only=True))
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == x.shape


def test_by_hand():
    # R-INLA's help page: "this gives groups 3 and 8"
    np.testing.assert_array_equal(adelia.inla_group(np.arange(1, 11), n=2), [3.0] * 5 + [8.0] * 5)
    # breaks 0, 2, 4, 6, 8, 10: a value on a break belongs to the interval below it
    x = np.arange(0.0, 11.0)
    np.testing.assert_array_equal(adelia.inla_group(x, n=5),
                                  [1, 1, 1, 3.5, 3.5, 5.5, 5.5, 7.5, 7.5, 9.5, 9.5])
    np.testing.assert_array_equal(adelia.inla_group(x, n=5, idx_only=True),
                                  [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    # quantile: breaks at quantile(1:10, c(0, ppoints(3), 1)) = 1, 2.73, 5.5, 8.27, 10
    np.testing.assert_allclose(adelia.inla_group(np.arange(1, 11), n=4, method="quantile"),
                               [1.5, 1.5, 4, 4, 4, 7, 7, 7, 9.5, 9.5])
    # R's match.arg: a unique prefix
    np.testing.assert_array_equal(adelia.inla_group(np.arange(1, 11), n=4, method="q"),
                                  adelia.inla_group(np.arange(1, 11), n=4, method="quantile"))


def test_na_stays_na_and_rest_grouped_alone():
    x = np.array([0.0, np.nan, 1.0, 2.0, np.nan, 10.0])
    np.testing.assert_array_equal(adelia.inla_group(x, n=2), [1, np.nan, 1, 1, np.nan, 10])
    np.testing.assert_array_equal(adelia.inla_group(x, n=2, idx_only=True), [1, np.nan, 1, 1, np.nan, 2])
    assert np.isnan(adelia.inla_group([np.nan, np.nan], n=3)).all()


def test_fewer_unique_values_than_n():
    # equal-length classes each hold one distinct value: x comes back unchanged
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0])
    np.testing.assert_array_equal(adelia.inla_group(x, n=25), x)
    np.testing.assert_array_equal(adelia.inla_group(x, n=25, method="quantile"), x)
    # but R-INLA has no "few unique values" shortcut: close values still share a class
    x = np.array([0.0, 0.001, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(adelia.inla_group(x, n=5), [0, 0, 1, 0, 1])
    # a constant covariate stays itself
    np.testing.assert_array_equal(adelia.inla_group(np.full(4, 2.5), n=5), np.full(4, 2.5))
    np.testing.assert_array_equal(adelia.inla_group(np.zeros(3), n=5, method="quantile"), np.zeros(3))


def test_n_one_and_errors():
    np.testing.assert_array_equal(adelia.inla_group([1.0, 5.0, 2.0, 9.0], n=1), [3.5] * 4)
    with pytest.raises(AdeliaError, match="must be > 0"):
        adelia.inla_group([1.0, 2.0], n=0)
    with pytest.raises(AdeliaError, match="method"):
        adelia.inla_group([1.0, 2.0], n=2, method="linear")
    assert "inla_group" in adelia.__all__


# ---------------------------------------------------------------------------------------
# inside formulas

def _data(n=80, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    return pd.DataFrame({"x": x, "y": np.sin(x) + rng.normal(0, 0.3, n)})


def test_evaluate_on_data():
    df = _data()
    cols = DataColumns({"x": df["x"].to_numpy()})
    assert "inla.group" in SUPPORTED_FUNCTIONS
    cases = {
        "inla.group(x)": _ref(df["x"], 25),
        "inla.group(x, n = 20)": _ref(df["x"], 20),
        "inla.group(x, 7, \"quantile\")": _ref(df["x"], 7, "quantile"),
        "inla.group(x, n = 7, method = \"quantile\", idx.only = TRUE)": _ref(df["x"], 7, "quantile", True),
        "inla.group(x, n = 4, idx = TRUE)": _ref(df["x"], 4, idx_only=True),  # R's partial matching
        "inla.group(2 * x + 1, n = 6)": _ref(2 * df["x"] + 1, 6),
    }
    for text, want in cases.items():
        got = evaluate_on_data(parse_r(text), cols, text, len(df))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=text)
    for bad in ("inla.group(x, n = 0)", "inla.group(x, foo = 1)", "inla.group(x, method = \"z\")",
                "inla.group(n = 3)"):
        with pytest.raises(AdeliaError):
            evaluate_on_data(parse_r(bad), cols, bad, len(df))


def _rw_component(model):
    (comp,) = [c for c in model.graph.components if c.label.startswith("inla.group")]
    return comp


def test_compile_f_covariate():
    df = _data()
    m = adelia.compile("y ~ 1 + f(inla.group(x, n=10), model='rw1')", df)
    comp = _rw_component(m)
    medians = np.unique(_ref(df["x"], 10))
    assert len(comp.ids) <= 10
    np.testing.assert_allclose(comp.ids, medians, rtol=0, atol=1e-12)
    # each row points at the median of its class
    np.testing.assert_allclose(np.asarray(comp.ids)[comp.index], _ref(df["x"], 10), atol=1e-12)

    # empty classes give fewer locations
    x = np.r_[np.linspace(0, 1, 20), np.linspace(9, 10, 20)]
    df2 = pd.DataFrame({"x": x, "y": np.random.default_rng(4).normal(size=40)})
    comp = _rw_component(adelia.compile("y ~ f(inla.group(x, n = 10), model = 'rw2')", df2))
    np.testing.assert_allclose(comp.ids, np.unique(_ref(x, 10)), atol=1e-12)
    assert len(comp.ids) == 3  # [0, 1] -> 0.5; (8, 9] holds only 9; (9, 10]

    comp = _rw_component(adelia.compile(
        "y ~ f(inla.group(x, n = 8, method = 'quantile'), model = 'rw2')", df))
    np.testing.assert_allclose(comp.ids, np.unique(_ref(df["x"], 8, "quantile")), atol=1e-12)


def test_fixed_effect():
    df = _data()
    m = adelia.compile("y ~ inla.group(x, n = 5)", df)
    assert any("inla.group" in name for name in m.fixed_names)


def test_inla_runs():
    df = _data(n=60)
    res = adelia.inla("y ~ 1 + f(inla.group(x, n = 10), model = 'rw1')", df, family="gaussian")
    rnd = res.summary_random["inla.group(x, n = 10)"]
    assert len(rnd) == len(np.unique(_ref(df["x"], 10)))
    np.testing.assert_allclose(rnd["ID"].to_numpy(dtype=float), np.unique(_ref(df["x"], 10)), atol=1e-12)
    assert np.isfinite(rnd["mean"].to_numpy()).all()
