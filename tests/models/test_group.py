"""group=/replicate= expansions: Kronecker structure against dense np.kron, group precisions
against their definitions, index order, constraints, normalising constants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from adelia.errors import ModelError
from adelia.formula.spec import FTerm
from adelia.models import registry
from adelia.models.build import build_component
from adelia.models.group import GroupedModel, make_group_model
from adelia.models.iid import IIDModel
from adelia.models.priors import LOG_NORMC_GAUSSIAN
from adelia.models.rw import RW1Model


def dense(m, theta):
    return np.asarray(m.precision_dense(np.asarray(theta, dtype=float)))


def log_pdet(Q, r):
    w = np.sort(np.linalg.eigvalsh(Q))[r:]
    return np.sum(np.log(w))


def corr_ar1(G, rho):
    return rho ** np.abs(np.subtract.outer(np.arange(G), np.arange(G)))


@pytest.mark.parametrize("ng", [3, 4])
def test_exchangeable_group_precision_is_inverse_correlation(ng):
    gm = make_group_model({"model": "exchangeable"}, ng, "x")
    th = 0.8
    rho = (np.exp(th) - 1) / (np.exp(th) + ng - 1)
    R = (1 - rho) * np.eye(ng) + rho * np.ones((ng, ng))
    np.testing.assert_allclose(np.asarray(gm.dense([th])), np.linalg.inv(R), rtol=1e-12)
    assert float(gm.half_log_pdet(np.array([th]))) == pytest.approx(-0.5 * np.linalg.slogdet(R)[1])
    assert float(gm.hyperparameters[0].to_user(th)) == pytest.approx(rho)


@pytest.mark.parametrize("cyclic", [False, True])
def test_ar1_group_precision(cyclic):
    ng, rho = 5, 0.45
    th = np.log((1 + rho) / (1 - rho))
    gm = make_group_model({"model": "ar1", "cyclic": cyclic}, ng, "x")
    if cyclic:
        L = np.eye(ng) - rho * np.roll(np.eye(ng), 1, axis=1)
        Q = L.T @ L / (1 - rho**2)
    else:
        Q = np.linalg.inv(corr_ar1(ng, rho))
    np.testing.assert_allclose(np.asarray(gm.dense([th])), Q, rtol=1e-12, atol=1e-13)
    assert float(gm.half_log_pdet(np.array([th]))) == pytest.approx(0.5 * np.linalg.slogdet(Q)[1])


def test_kronecker_structure_and_group_major_index():
    x = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 2.0])
    g = np.array([1, 1, 1, 2, 2, 2, 3.0])
    comp = build_component(FTerm("x", "rw1", args={"control_group": {"model": "ar1"}}), x, group=g)
    m = comp.model
    N, ng = 3, 3
    assert comp.index.tolist() == [0, 1, 2, 3, 4, 5, 7]  # node + N (group - 1)
    assert comp.ids.tolist() == [1, 2, 3] * 3 and comp.extra["group"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    theta = np.array([0.4, 1.1])
    inner = RW1Model.from_term("x", x, {"constr": True})[0]
    Qg = np.linalg.inv(corr_ar1(ng, np.tanh(0.55)))
    expected = np.kron(Qg, dense(inner, theta[:1])) + 1e-4 * np.eye(N * ng)  # diagonal added once
    np.testing.assert_allclose(dense(m, theta), expected, rtol=1e-11, atol=1e-12)
    # sum-to-zero constraint on every group block
    np.testing.assert_array_equal(m.constraints().C, np.kron(np.eye(ng), np.ones((1, N))))
    assert m.rank_deficiency == ng


def test_replicate_is_block_diagonal_with_shared_theta():
    x = np.array([1.0, 2.0, 1.0, 2.0, 3.0])
    r = np.array([1, 1, 2, 2, 2.0])
    comp = build_component(FTerm("i", "iid"), x, replicate=r)
    m = comp.model
    assert comp.index.tolist() == [0, 1, 3, 4, 5] and m.hyperparameters[0].name == "Precision for i"
    Qi = np.exp(0.3) * np.eye(3)
    np.testing.assert_allclose(dense(m, [0.3]), scipy.linalg.block_diag(Qi, Qi), rtol=1e-14)
    assert float(m.log_normaliser(np.array([0.3]))) == pytest.approx(0.5 * 6 * 0.3 + 6 * LOG_NORMC_GAUSSIAN)


def test_group_and_replicate_order_and_normaliser():
    x = np.tile([1.0, 2.0], 8)
    g = np.tile(np.repeat([1.0, 2.0], 2), 4)
    r = np.repeat([1.0, 2.0], 8)
    comp = build_component(FTerm("i", "iid", args={"control_group": {"model": "exchangeable"}}), x, group=g, replicate=r)
    m = comp.model
    N, ng, nrep = 2, 2, 2
    assert np.array_equal(comp.index, (x - 1) + N * (g - 1) + N * ng * (r - 1))
    theta = np.array([0.2, 0.9])
    Qg = np.asarray(make_group_model({"model": "exchangeable"}, ng, "i").dense(theta[1:]))
    block = np.kron(Qg, np.exp(0.2) * np.eye(N))
    Q = scipy.linalg.block_diag(*([block] * nrep))
    np.testing.assert_allclose(dense(m, theta), Q, rtol=1e-12)
    want = 0.5 * np.linalg.slogdet(Q)[1] + Q.shape[0] * LOG_NORMC_GAUSSIAN
    assert float(m.log_normaliser(theta)) == pytest.approx(want, rel=1e-12)
    # R-INLA: nrep [(N - r) 1/2 log|Q_g| + (ng - 0) (LOG_NORMC N + N/2 log tau)]
    rho = (np.exp(0.9) - 1) / (np.exp(0.9) + 1)
    normc_g = -0.5 * (np.log1p(rho) + np.log1p(-rho))
    rinla = nrep * (N * normc_g + ng * (N * LOG_NORMC_GAUSSIAN + N / 2 * 0.2))
    assert float(m.rinla_log_normaliser(theta)) == pytest.approx(rinla, rel=1e-12)


def test_intrinsic_group_model_generalised_determinant():
    x = np.tile([1.0, 2.0, 3.0], 4)
    g = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    cg = {"model": "rw1", "hyper": {"prec": {"fixed": False}}}
    comp = build_component(FTerm("x", "rw1", args={"control_group": cg, "diagonal": 0.0}), x, group=g)
    m = comp.model
    theta = np.array([0.5, -0.3])
    Q = dense(m, theta)
    r = 4 * 3 - (4 - 1) * (3 - 1)
    assert m.rank_deficiency == r and np.sum(np.linalg.eigvalsh(Q) < 1e-9) == r
    want = 0.5 * log_pdet(Q, r) + (Q.shape[0] - r) * LOG_NORMC_GAUSSIAN
    assert float(m.log_normaliser(theta)) == pytest.approx(want, rel=1e-10)
    # the group rw1 is scaled by default (R-INLA's control.group scale.model = TRUE)
    assert m.group.name == "rw1" and m.hyperparameters[1].name == "GroupPrec for x"


def test_group_errors():
    with pytest.raises(ModelError, match=r'"ar2".*Valid choices: ar, ar1, besag, exchangeable'):
        make_group_model({"model": "ar2"}, 3, "x")
    with pytest.raises(ModelError, match="scale.model with option cyclic"):
        make_group_model({"model": "rw1", "cyclic": True}, 4, "x")
    with pytest.raises(ModelError, match="group is NA"):
        build_component(FTerm("x", "iid"), np.array([1.0, 2.0, 1.0]), group=np.array([1.0, 2.0, np.nan]))
    with pytest.raises(ModelError, match="integers"):
        build_component(FTerm("x", "iid"), np.array([1.0, 2.0]), group=np.array([1.0, 1.5]))


def test_group_ar_p():
    gm = make_group_model({"model": "ar", "order": 2}, 6, "x")
    assert [h.name for h in gm.hyperparameters] == ["Group Precision for x", "Group PACF1 for x", "Group PACF2 for x"]
    assert gm.hyperparameters[0].fixed and gm.hyperparameters[1].initial == 2.0
    inner = IIDModel.from_term("x", np.array([1.0, 2.0]), {})[0]
    m = GroupedModel(inner, gm, ngroup=6)
    theta = np.array([0.1, 0.0, 0.7, -0.2])
    Qg = np.asarray(gm.dense(theta[1:]))
    np.testing.assert_allclose(dense(m, theta), np.kron(Qg, np.exp(0.1) * np.eye(2)), rtol=1e-12)


def test_group_besag_uses_registered_besag():
    try:
        registry.model_class("besag")
    except ModelError:
        pytest.skip("the besag model is not available yet")
    graph = "3 1 1 2 2 2 1 3 3 1 2"
    gm = make_group_model({"model": "besag", "graph": graph, "scale_model": False}, 3, "x")
    L = np.array([[1.0, -1, 0], [-1, 2, -1], [0, -1, 1]])
    np.testing.assert_allclose(np.asarray(gm.dense([0.0])), L, atol=1e-12)
