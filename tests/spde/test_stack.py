"""inla.stack semantics: blocks, scalar A, compress, remove unused, join, index; R-INLA's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from conftest import shared_path
from spde_helpers import CASE, reference_mesh

from adelia.errors import DataError
from adelia.spde import make_A, stack, stack_A, stack_data, stack_index, stack_join


def _same(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


def test_reproduces_rinla_stack_for_reference_case():
    case = shared_path(*CASE)
    mesh = reference_mesh(case)
    df = pd.read_csv(case / "data.csv")
    n = len(df)
    A = make_A(mesh, df[["s1", "s2"]].to_numpy())
    stk = stack(data={"y": df["y"].to_numpy()}, A=[A, 1],
                effects=[{"s": np.arange(1, mesh.n + 1)}, pd.DataFrame({"b0": np.ones(n)})], tag="est")
    ref_A = scipy.io.mmread(str(case / "stackA.mtx")).tocsr()
    assert stack_A(stk).shape == ref_A.shape == (200, 186)
    assert abs(stack_A(stk) - ref_A).max() < 1e-10
    eff = pd.read_csv(case / "data_stack_effects.csv")
    obs = pd.read_csv(case / "data_stack_obs.csv")
    d = stack_data(stk)
    assert set(eff.columns) == set(d.effect_names)
    for col in eff.columns:
        assert _same(d[col], eff[col].to_numpy()), col
    np.testing.assert_allclose(d["y"], obs["y"].to_numpy())
    assert d.n_data == 200 and d.n_effects == 186 and d.observation_names == ("y",)
    idx = stack_index(stk, "est")
    np.testing.assert_array_equal(idx["data"], np.arange(200))
    # 200 mesh-node columns survive as 185 used nodes, the 200 intercept rows merge into one
    assert len(np.unique(idx["effects"])) == 186 and idx["effects"].min() == 200


def test_compress_sums_duplicate_rows_and_remove_unused():
    A = sp.csr_matrix(np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.5, 0.0]]))
    # effect rows 0 and 2 are identical (s=1, w=NaN): merged, A columns summed; row 1 kept
    stk = stack(data={"y": [1.0, 2.0, 3.0]}, A=[A, 2.0], effects=[{"s": [1, 2, 1]}, {"w": [5.0, 6.0, 5.0]}], tag="t")
    Af = stack_A(stk).toarray()
    # block 1 after compress: columns s=1 (rows 0 and 2 summed), s=2; block 2: 2·I with w=5 rows merged
    expected = np.array([
        [1.0, 0.0, 2.0, 0.0],
        [0.0, 0.5, 0.0, 2.0],
        [0.0, 0.5, 2.0, 0.0],
    ])
    np.testing.assert_allclose(Af, expected)
    d = stack_data(stk)
    assert _same(d["s"], [1, 2, np.nan, np.nan]) and _same(d["w"], [np.nan, np.nan, 5, 6])
    # without compression: 6 effect rows, the all-zero third column of A removed
    raw = stack(data={"y": [1.0, 2.0, 3.0]}, A=[A, 2.0], effects=[{"s": [1, 2, 1]}, {"w": [5.0, 6.0, 5.0]}],
                tag="t", compress=False)
    assert stack_A(raw).shape == (3, 5)
    full = stack(data={"y": [1.0, 2.0, 3.0]}, A=[A, 2.0], effects=[{"s": [1, 2, 1]}, {"w": [5.0, 6.0, 5.0]}],
                 tag="t", compress=False, remove_unused=False)
    assert stack_A(full).shape == (3, 6)
    # the same linear predictor whatever the compression: A·η_effects with η = covariate sum
    for s in (stk, raw, full):
        d = stack_data(s)
        eta = np.nan_to_num(d["s"]) + np.nan_to_num(d["w"])
        np.testing.assert_allclose(stack_A(s) @ eta, stack_A(full) @ np.nan_to_num(stack_data(full)["s"]) + stack_A(full) @ np.nan_to_num(stack_data(full)["w"]))


def test_scalar_expansion_and_join():
    A_obs = sp.csr_matrix(np.array([[0.2, 0.8], [1.0, 0.0]]))
    est = stack(data={"y": [1.0, 2.0], "E": 3.0}, A=[A_obs, 1], effects=[{"s": [1, 2], "b0": 1}, {"x": [0.1, 0.2]}], tag="est")
    d = stack_data(est)
    np.testing.assert_allclose(d["E"], [3.0, 3.0])
    pred = stack(data={"y": np.nan}, A=[sp.csr_matrix(np.array([[0.5, 0.5]]))], effects=[{"s": [1, 2], "b0": 1}], tag="pred")
    j = stack_join(est, pred)
    assert j.n_data == 3
    # the prediction stack's effect rows duplicate the estimation stack's: merged on join
    assert j.n_effects == est.n_effects
    assert _same(stack_data(j)["y"], [1.0, 2.0, np.nan])
    ip = stack_index(j, "pred")
    np.testing.assert_array_equal(ip["data"], [2])
    assert set(ip["effects"]) <= set(stack_index(j, "est")["effects"])
    assert stack(est, pred).A.shape == j.A.shape


def test_errors_name_the_problem():
    A = sp.identity(2, format="csr")
    with pytest.raises(DataError, match="must not coincide"):
        stack(data={"y": [1, 2]}, A=[A], effects=[{"y": [1, 2]}], tag="t")
    with pytest.raises(DataError, match="length 3 but the matching A has 2"):
        stack(data={"y": [1, 2]}, A=[A], effects=[{"s": [1, 2, 3]}], tag="t")
    with pytest.raises(DataError, match="row count mismatch"):
        stack(data={"y": [1, 2]}, A=[A, sp.identity(3, format="csr")], effects=[{"s": [1, 2]}, {"x": [1, 2, 3]}], tag="t")
    with pytest.raises(DataError, match="unknown tag"):
        stack_index(stack(data={"y": [1, 2]}, A=[A], effects=[{"s": [1, 2]}], tag="t"), "nope")
