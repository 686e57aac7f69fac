"""SPDE terms at coordinates without stacks: ``f(cbind(s1, s2), model=spde)`` and ``res.predict``.

Oracles: the stack-based fit of the same model (``inla.spde.make.A`` + ``inla.stack`` +
``control.predictor$A``, itself checked against R-INLA elsewhere), ``make_A`` for the
projector with group/replicate, and R-INLA's fit of ``prediction_spdetoy`` (a prediction
stack of NA rows over a 10 × 10 grid) for the predictions at new locations.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path
from spde_helpers import grid_mesh, reference_mesh

import adelia
from adelia.errors import DataError
from adelia.formula.spec import FTerm
from adelia.models.build import build_component
from adelia.spde import make_A, spde2_pcmatern, stack, stack_A, stack_data

CASE = ("reference", "rinla", "prediction_spdetoy")
FORMULA = "y ~ 0 + b0 + f(cbind(s1, s2), model=spde)"  # the spec's b0 intercept (prior N(0, 1/0.001))


@pytest.fixture(scope="module")
def case():
    d = shared_path(*CASE)
    spec = json.loads((d / "spec.json").read_text())
    results = json.loads((d / "results.json").read_text())
    mesh = reference_mesh(d)
    pri = {p["hyperparameter"]: tuple(p["param"]) for p in spec["priors_nondefault"]}
    spde = spde2_pcmatern(mesh, prior_range=pri["range"], prior_sigma=pri["stdev"])
    df = pd.read_csv(d / "data.csv").assign(b0=1.0)
    return d, spec, results, mesh, spde, df


@pytest.fixture(scope="module")
def cbind_fit(case):
    _, _, _, _, spde, df = case
    return adelia.inla(FORMULA, df, family="gaussian", control_predictor={"compute": True}, context={"spde": spde})


def test_cbind_fit_equals_stack_fit(case, cbind_fit):
    _, _, _, mesh, spde, df = case
    n = len(df)
    A = make_A(mesh, df[["s1", "s2"]].to_numpy())
    stk = stack(data={"y": df["y"].to_numpy()}, A=[A, 1],
                effects=[{"s": np.arange(1, mesh.n + 1)}, {"b0": np.ones(n)}], tag="est")
    ref = adelia.inla("y ~ 0 + b0 + f(s, model=spde)", stack_data(stk), family="gaussian",
                      control_predictor={"A": stack_A(stk)}, context={"spde": spde})
    res = cbind_fit
    np.testing.assert_allclose(res.summary_fixed.to_numpy(), ref.summary_fixed.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.summary_hyperpar.to_numpy(), ref.summary_hyperpar.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.mlik.to_numpy(), ref.mlik.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.summary_random["cbind(s1, s2)"].iloc[:, 1:].to_numpy(),
                               ref.summary_random["s"].iloc[:, 1:].to_numpy(), rtol=0, atol=1e-8)
    assert list(res.summary_hyperpar.index) == ["Precision for the Gaussian observations",
                                                "Range for cbind(s1, s2)", "Stdev for cbind(s1, s2)"]


def test_prediction_at_fitted_rows_equals_summary_linear_predictor(cbind_fit, case):
    df = case[5]
    pred = cbind_fit.predict(df.drop(columns="y"), n_samples=0)
    cols = ["mean", "sd", "0.025quant", "0.5quant", "0.975quant"]
    np.testing.assert_allclose(pred.summary_linear_predictor[cols].to_numpy(),
                               cbind_fit.summary_linear_predictor[cols].to_numpy(), rtol=0, atol=1e-8)


def test_prediction_on_grid_matches_rinla_prediction_stack(case, cbind_fit):
    d, spec, results, _, _, _ = case
    grid = pd.read_csv(d / spec["pred_grid_file"])
    rows = np.asarray(spec["prediction_rows"]) - 1
    assert np.array_equal(grid["stack_row"].to_numpy() - 1, rows)
    pred = cbind_fit.predict(pd.DataFrame({"s1": grid["x"], "s2": grid["y"], "b0": 1.0}), n_samples=0)
    slp = results["summary_linear_predictor"]
    mean, sd = np.asarray(slp["mean"], float)[rows], np.asarray(slp["sd"], float)[rows]
    got = pred.summary_linear_predictor
    assert np.max(np.abs(got["mean"].to_numpy() - mean) / sd) <= 0.05
    assert np.max(np.abs(got["sd"].to_numpy() / sd - 1)) <= 0.05
    # identity link: the fitted values are the linear predictor (up to the transform's quadrature)
    np.testing.assert_allclose(pred.summary_fitted_values["mean"], got["mean"], rtol=0, atol=1e-3 * sd.min())


def test_prediction_outside_the_mesh_names_the_rows(cbind_fit):
    new = pd.DataFrame({"s1": [0.5, 5.0, 0.2, -4.0], "s2": [0.5, 5.0, 0.2, 0.0], "b0": 1.0})
    with pytest.raises(DataError, match=r"outside the mesh, rows 2, 4 \(1-based\)"):
        cbind_fit.predict(new, n_samples=0)


def test_prediction_with_non_numeric_coordinates_is_an_error(cbind_fit):
    new = pd.DataFrame({"s1": ["a", "b"], "s2": [0.5, 0.5], "b0": 1.0})
    with pytest.raises(DataError, match=r"cbind\(\).*numeric"):
        cbind_fit.predict(new, n_samples=0)


# --- fit-time input checks and group/replicate: cheap, no fitting ----------------------------


@pytest.fixture(scope="module")
def small():
    mesh = grid_mesh(1.0, 0.5)
    return mesh, spde2_pcmatern(mesh, prior_range=(0.5, 0.5), prior_sigma=(1.0, 0.01))


def test_fit_with_locations_outside_the_mesh_names_the_rows(small):
    _, spde = small
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "s1": [0.0, 3.0, 0.1], "s2": [0.0, 0.0, 0.2]})
    with pytest.raises(DataError, match=r"f\(cbind\(s1, s2\), model=spde\): 1 location\(s\) of the data lie outside the mesh, rows 2 "):
        adelia.inla("y ~ 1 + f(cbind(s1, s2), model=spde)", df, context={"spde": spde})


def test_fit_with_non_numeric_coordinates_is_an_error(small):
    _, spde = small
    df = pd.DataFrame({"y": [1.0, 2.0], "s1": ["a", "b"], "s2": [0.0, 0.1]})
    with pytest.raises(DataError, match=r"cbind\(\) in 'cbind\(s1, s2\)' needs numeric columns, but 's1'"):
        adelia.inla("y ~ 1 + f(cbind(s1, s2), model=spde)", df, context={"spde": spde})


def test_one_missing_coordinate_is_an_error_and_both_missing_means_no_field(small):
    mesh, spde = small
    with pytest.raises(DataError, match=r"rows 2 \(1-based\) of the data have NA"):
        spde.projector_rows(np.array([[0.0, 0.0], [np.nan, 0.3]]), "cbind(s1, s2)")
    A, used = spde.projector_rows(np.array([[0.1, 0.2], [np.nan, np.nan]]))
    assert used.tolist() == [True, False] and A[1].nnz == 0
    np.testing.assert_allclose(A.toarray(), make_A(mesh, np.array([[0.1, 0.2], [0.0, 0.0]])).toarray() * [[1], [0]])


def test_projector_with_group_replicate_and_weights_equals_make_A(small, rng):
    mesh, spde = small
    n = 40
    loc = rng.uniform(-0.9, 0.9, size=(n, 2))
    g = rng.integers(1, 4, size=n).astype(float)
    r = rng.integers(1, 3, size=n).astype(float)
    w = rng.uniform(0.5, 2.0, size=n)
    term = FTerm("cbind(s1, s2)", spde, args={"group": "g", "replicate": "r"})
    comp = build_component(term, loc, group=g, replicate=r, weights=w)
    expected = make_A(mesh, loc, group=g, n_group=3, repl=r, n_repl=2, weights=w)
    np.testing.assert_allclose(comp.extra["projector"].toarray(), expected.toarray(), rtol=0, atol=1e-14)
    assert comp.model.n == mesh.n * 3 * 2 and (comp.index >= 0).all()


def test_cbind_fit_with_group_equals_stack_fit(small, rng):
    mesh, spde = small
    n = 60
    loc = rng.uniform(-0.9, 0.9, size=(n, 2))
    t = rng.integers(1, 4, size=n).astype(float)
    y = np.sin(2 * loc[:, 0]) + 0.3 * t + rng.normal(0, 0.3, n)
    df = pd.DataFrame({"y": y, "s1": loc[:, 0], "s2": loc[:, 1], "t": t, "b0": 1.0})
    res = adelia.inla("y ~ 0 + b0 + f(cbind(s1, s2), model=spde, group=t)", df, context={"spde": spde},
                      control_predictor={"compute": True})
    A = make_A(mesh, loc, group=t, n_group=3)
    idx = adelia.spde.make_index("s", n_spde=mesh.n, n_group=3)
    stk = stack(data={"y": y}, A=[A, 1], effects=[idx, {"b0": np.ones(n)}], tag="est")
    ref = adelia.inla("y ~ 0 + b0 + f(s, model=spde, group=s.group)", stack_data(stk),
                      control_predictor={"A": stack_A(stk)}, context={"spde": spde})
    np.testing.assert_allclose(res.summary_fixed.to_numpy(), ref.summary_fixed.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.summary_hyperpar.to_numpy(), ref.summary_hyperpar.to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.mlik.to_numpy(), ref.mlik.to_numpy(), rtol=0, atol=1e-8)
    # predict at the fitted rows reproduces the fit; a group beyond the fitted ones is named
    pred = res.predict(df.drop(columns="y"), n_samples=0)
    np.testing.assert_allclose(pred.summary_linear_predictor[["mean", "sd"]].to_numpy(),
                               res.summary_linear_predictor[["mean", "sd"]].to_numpy(), rtol=0, atol=1e-8)
    with pytest.raises(DataError, match="group values 4"):
        res.predict(df.drop(columns="y").assign(t=4.0), n_samples=0)


def test_coordinates_for_a_model_without_a_mesh_is_an_error():
    df = pd.DataFrame({"y": [1.0, 2.0], "s1": [0.0, 1.0], "s2": [0.0, 0.1]})
    with pytest.raises(adelia.errors.ModelError, match=r'f\(cbind\(s1, s2\), model="iid"\): the covariate has 2 columns'):
        adelia.inla('y ~ 1 + f(cbind(s1, s2), model="iid")', df)
