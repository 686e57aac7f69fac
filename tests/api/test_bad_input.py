"""Bad input through adelia.inla gives a clear error naming the problem (issue 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import ControlError, DataError, FormulaSyntaxError, ModelError, PriorError


@pytest.fixture
def df():
    rng = np.random.default_rng(3)
    n = 30
    return pd.DataFrame(
        {
            "y": rng.poisson(3.0, n).astype(float),
            "x": rng.normal(size=n),
            "g": np.arange(n) % 5 + 1,
            "N": np.full(n, 10.0),
            "E": np.full(n, 2.0),
        }
    )


def test_unknown_column_is_named_with_the_available_ones(df):
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1 + xx", df, family="poisson")
    msg = str(err.value)
    assert '"xx"' in msg and "Available columns" in msg and "x" in msg and 'Did you mean "x"' in msg


def test_unknown_column_in_f_term(df):
    with pytest.raises(DataError, match='"gg"'):
        adelia.inla("y ~ 1 + f(gg, model='iid')", df, family="poisson")


def test_unknown_response_column(df):
    with pytest.raises(DataError, match="yy"):
        adelia.inla("yy ~ 1", df, family="poisson")


def test_unknown_family_lists_valid_names(df):
    with pytest.raises(ModelError) as err:
        adelia.inla("y ~ 1", df, family="poison")
    assert "poisson" in str(err.value) and "binomial" in str(err.value)


def test_unknown_model_lists_valid_names(df):
    with pytest.raises(ModelError) as err:
        adelia.inla("y ~ 1 + f(g, model='idd')", df, family="poisson")
    assert '"idd"' in str(err.value) and "iid" in str(err.value) and "rw2" in str(err.value)


@pytest.mark.parametrize("arg", ["E", "Ntrials", "offset"])
def test_observation_vectors_of_the_wrong_length(df, arg):
    family = "binomial" if arg == "Ntrials" else "poisson"
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1", df, family=family, **{arg: np.ones(7)})
    assert arg in str(err.value) and "7" in str(err.value) and "30" in str(err.value)


def test_negative_count_names_family_row_and_value(df):
    df.loc[4, "y"] = -2
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1", df, family="poisson")
    msg = str(err.value)
    assert 'family "poisson"' in msg and "row 5" in msg and "-2" in msg


def test_non_integer_count(df):
    df.loc[2, "y"] = 1.5
    with pytest.raises(DataError, match="1.5"):
        adelia.inla("y ~ 1", df, family="poisson")


def test_binomial_y_above_ntrials(df):
    df.loc[6, "y"] = 12
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1", df, family="binomial", Ntrials="N")
    assert "row 7" in str(err.value) and "Ntrials" in str(err.value)


def test_nan_in_covariate_is_an_error_but_nan_in_response_is_prediction(df):
    bad = df.copy()
    bad.loc[3, "x"] = np.nan
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1 + x", bad, family="poisson")
    assert '"x"' in str(err.value) and "4" in str(err.value)
    pred = df.copy()
    pred.loc[3, "y"] = np.nan
    res = adelia.inla("y ~ 1 + x", pred, family="poisson")
    assert np.isfinite(res.summary_fitted_values.iloc[3]["mean"])


def test_formula_syntax_error_points_at_the_text(df):
    with pytest.raises(FormulaSyntaxError) as err:
        adelia.inla("y ~ 1 + f(g, model='iid'", df, family="poisson")
    assert "^" in str(err.value)


def test_unknown_control_key_lists_valid_ones(df):
    with pytest.raises(ControlError) as err:
        adelia.inla("y ~ 1", df, family="poisson", control_inla={"int.stratgy": "ccd"})
    assert "int.stratgy" in str(err.value) and "int.strategy" in str(err.value)


def test_unknown_control_value_lists_valid_ones(df):
    with pytest.raises(ControlError) as err:
        adelia.inla("y ~ 1", df, family="poisson", control_inla={"int.strategy": "sparse"})
    assert "ccd" in str(err.value)


def test_unknown_prior_lists_valid_ones(df):
    with pytest.raises(PriorError) as err:
        adelia.inla("y ~ 1 + f(g, model='iid', hyper=list(prec=list(prior='pc.prc', param=c(1, 0.01))))", df, family="poisson")
    assert "pc.prc" in str(err.value) and "pc.prec" in str(err.value)


def test_index_out_of_range_names_term_and_values(df):
    with pytest.raises(ModelError) as err:
        adelia.inla("y ~ 1 + f(g, model='iid', n=3)", df, family="poisson")
    assert "g" in str(err.value) and ("4" in str(err.value) or "5" in str(err.value))


def test_response_and_family_count_mismatch(df):
    with pytest.raises(ModelError, match="famil"):
        adelia.inla("y ~ 1", df, family=["poisson", "gaussian"])
