"""NA in fixed-effect covariates (issue 14): R-INLA reads it as 0, and its multi-likelihood
layout ``Y = cbind(y1, y2)``, ``Y ~ -1 + mu1 + mu2`` with ``mu1 = (1,…,1, NA,…,NA)`` and
``mu2 = (NA,…,NA, 1,…,1)`` relies on that. adelia does the same for several families (and
through ``na_covariates="zero"``), and stops on NA for single-likelihood data by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import DataError, ModelError


def _two_family_data(seed=7, n1=150, n2=150, b1=1.0, b2=0.5):
    rng = np.random.default_rng(seed)
    y1 = b1 + rng.normal(size=n1) * 0.5
    y2 = rng.poisson(np.exp(b2), n2).astype(float)
    Y = np.full((n1 + n2, 2), np.nan)
    Y[:n1, 0] = y1
    Y[n1:, 1] = y2
    mu1 = np.r_[np.ones(n1), np.full(n2, np.nan)]
    mu2 = np.r_[np.full(n1, np.nan), np.ones(n2)]
    return {"Y": Y, "mu1": mu1, "mu2": mu2}, n1, n2


def test_two_family_layout_with_na_intercepts_fits():
    data, n1, n2 = _two_family_data()
    formula = "Y ~ -1 + mu1 + mu2"
    model = adelia.compile(formula, data, family=["gaussian", "poisson"])
    expected = np.zeros((n1 + n2, 2))
    expected[:n1, 0] = 1.0
    expected[n1:, 1] = 1.0
    assert list(model.fixed_names) == ["mu1", "mu2"]
    np.testing.assert_array_equal(np.asarray(model.graph.fixed.X), expected)
    res = adelia.inla(formula, data, family=["gaussian", "poisson"])
    sf = res.summary_fixed
    for name, truth in (("mu1", 1.0), ("mu2", 0.5)):
        assert abs(sf.loc[name, "mean"] - truth) < 4 * sf.loc[name, "sd"], (name, sf.loc[name].to_dict())


@pytest.fixture
def single():
    rng = np.random.default_rng(11)
    n = 40
    x = rng.normal(size=n)
    y = 0.3 + 0.8 * x + rng.normal(size=n) * 0.3
    x[[4, 17]] = np.nan
    return pd.DataFrame({"y": y, "x": x})


def test_single_family_na_covariate_errors_by_default(single):
    with pytest.raises(DataError) as info:
        adelia.inla("y ~ 1 + x", single)
    msg = str(info.value)
    assert 'na_covariates="zero"' in msg
    assert "adelia.inla()" in msg and "rows 5, 18" in msg
    with pytest.raises(DataError):
        adelia.compile("y ~ 1 + x", single, na_covariates="error")


def test_single_family_na_covariate_zero_fits(single):
    model = adelia.compile("y ~ 1 + x", single, na_covariates="zero")
    X = np.asarray(model.graph.fixed.X)
    assert X[4, 1] == 0.0 and X[17, 1] == 0.0
    expected_x = np.nan_to_num(single["x"].to_numpy(), nan=0.0)
    np.testing.assert_array_equal(X[:, 1], expected_x)
    res = adelia.inla("y ~ 1 + x", single, na_covariates="zero")
    assert np.all(np.isfinite(res.summary_fixed["mean"].to_numpy()))


def test_invalid_na_covariates_lists_choices(single):
    for call in (adelia.inla, adelia.compile):
        with pytest.raises(ModelError) as info:
            call("y ~ 1 + x", single, na_covariates="drop")
        msg = str(info.value)
        assert "na_covariates" in msg and "drop" in msg
        assert "Valid choices: error, zero" in msg
