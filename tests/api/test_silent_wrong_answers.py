"""Silent wrong answers and bare crashes become named errors or warnings (issue 12)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import ControlError, DataError, ModelError, PriorError
from adelia.inference.sanity import SuspiciousFitWarning
from adelia.models.graph import read_graph


@pytest.fixture
def counts():
    rng = np.random.default_rng(5)
    return pd.DataFrame({"y": rng.poisson(2.0, 12).astype(float), "g": np.arange(12) % 3 + 1, "x": np.linspace(-1, 1, 12)})


# 1. all-zero counts with the flat intercept prior: improper posterior
@pytest.mark.parametrize("formula", ["y ~ 1", "y ~ 1 + f(g, model='iid')"])
def test_all_zero_counts_with_flat_intercept_is_an_error(counts, formula):
    counts["y"] = 0.0
    with pytest.raises(DataError) as err:
        adelia.inla(formula, counts, family="poisson")
    msg = str(err.value)
    assert "every observed response is 0" in msg and "improper" in msg and "prec.intercept" in msg


# 2. perfect separation: warned, naming the covariate; mlik > 0 for discrete data warned
def test_separation_and_positive_mlik_are_warned():
    x = np.random.default_rng(0).normal(size=50)
    df = pd.DataFrame({"y": (x > 0) * 1.0, "x": x})
    with pytest.warns(SuspiciousFitWarning) as rec:
        res = adelia.inla("y ~ 1 + x", df, family="binomial")
    msgs = [str(w.message) for w in rec if w.category is SuspiciousFitWarning]
    assert any("separation" in m and '"x"' in m for m in msgs)
    assert res.mlik.iloc[0] > 0 and any("log marginal likelihood" in m and "impossible" in m for m in msgs)
    assert all(w.filename == __file__ for w in rec)  # stacklevel: the user's call
    assert any("separation" in m for m in res.diagnostics["warnings"])


# 3. a prior with the wrong number of parameters never borrows the default's
@pytest.mark.parametrize("param", ["1", "c(1)"])
def test_pc_prec_with_one_parameter_is_a_prior_error(counts, param):
    f = f"y ~ 1 + f(g, model='iid', hyper=list(prec=list(prior='pc.prec', param={param})))"
    with pytest.raises(PriorError) as err:
        adelia.inla(f, counts, family="poisson")
    assert '"pc.prec"' in str(err.value) and "needs 2 parameters" in str(err.value) and "got 1" in str(err.value)


@pytest.mark.parametrize("name,param", [("pc.dof", (15.0,)), ("pc.mgamma", (1.0, 2.0)), ("loggamma", (1.0,)), ("pc.range", (1.0,))])
def test_every_prior_checks_its_parameter_count(name, param):
    from adelia.models.registry import make_prior

    with pytest.raises(PriorError, match=name.replace(".", r"\.")):
        make_prior(name, param)


# 4. E = 0 with y > 0
def test_poisson_zero_exposure_with_positive_count(counts):
    E = np.ones(12)
    E[[3, 7]] = 0.0
    counts.loc[[3, 7], "y"] = 2.0
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1", counts, family="poisson", E=E)
    msg = str(err.value)
    assert "row 4" in msg and "E = 0" in msg and "8" in msg  # the second row is listed too


# 5. negative weights
def test_negative_weights_name_the_rows(counts):
    w = np.ones(12)
    w[2] = -1.0
    with pytest.raises(DataError, match=r"row 3: weights = -1"):
        adelia.inla("y ~ 1", counts, family="poisson", weights=w)


# 6. control values and quantiles
@pytest.mark.parametrize(
    "kw,words",
    [
        ({"control_compute": {"dic": "no"}}, ["dic", "'no'", "True or False"]),
        ({"control_fixed": {"prec": "abc"}}, ["prec", "'abc'", "number"]),
        ({"quantiles": (1.5,)}, ["1.5", "between 0 and 1"]),
    ],
)
def test_bad_control_values_are_control_errors(counts, kw, words):
    with pytest.raises(ControlError) as err:
        adelia.inla("y ~ 1 + x", counts, family="poisson", **kw)
    for w in words:
        assert w in str(err.value)


def test_r_booleans_are_accepted():
    from adelia.controls import resolve

    assert resolve("control_compute", {"dic": "TRUE", "waic": False})["dic"] is True


# 7. the VB mean correction giving up is reported once per fit and in the diagnostics
def test_abandoned_vb_correction_is_warned(counts):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = adelia.inla("y ~ 1 + f(g, model='iid')", counts, family="poisson", control_vb={"emergency": 1e-6})
    vb = [w for w in rec if "VB correction" in str(w.message)]
    assert len(vb) == 1 and "control_vb" in str(vb[0].message) and vb[0].filename == __file__
    assert res.diagnostics["vb_aborted"].all()


# 8. crashes that became named errors
def test_empty_data(counts):
    with pytest.raises(DataError, match="data has no rows"):
        adelia.inla("y ~ 1", counts.iloc[:0], family="poisson")


def test_string_response_names_column_and_family():
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1", pd.DataFrame({"y": ["a", "b", "a"]}), family="poisson")
    assert "'y'" in str(err.value) and '"poisson"' in str(err.value)


def test_all_ntrials_zero_is_an_error_at_fit_time():
    df = pd.DataFrame({"y": np.zeros(5), "N": np.zeros(5)})
    with pytest.raises(DataError, match="no observation carries information"):
        adelia.inla("y ~ 1", df, family="binomial", Ntrials="N")


def test_huge_covariate_names_the_column(counts):
    counts.loc[3, "x"] = 1e308
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1 + x", counts, family="poisson")
    assert "'x'" in str(err.value) and "row 4" in str(err.value) and "Rescale" in str(err.value)


def test_infinite_rw1_index_names_column_and_row(counts):
    counts["t"] = np.arange(12.0)
    counts.loc[4, "t"] = np.inf
    with pytest.raises(DataError) as err:
        adelia.inla("y ~ 1 + f(t, model='rw1')", counts, family="poisson")
    assert "'t'" in str(err.value) and "row(s) 5" in str(err.value)


def test_graph_header_claiming_too_many_nodes(tmp_path):
    p = tmp_path / "big.graph"
    p.write_text("1000000000\n1 1 2\n2 1 1\n")
    with pytest.raises(ModelError) as err:
        read_graph(p)
    assert "big.graph" in str(err.value) and "1000000000" in str(err.value) and "6 number(s)" in str(err.value)


def test_graph_errors_do_not_echo_file_contents(tmp_path):
    p = tmp_path / "notagraph.txt"
    p.write_text("3\nuser:password-hunter2\n")
    with pytest.raises(ModelError) as err:
        read_graph(p)
    assert "line 2" in str(err.value) and "hunter2" not in str(err.value)
