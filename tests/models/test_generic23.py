"""R-INLA's generic2 and generic3 latent models.

Oracles: dense constructions from the definitions (generic2 as the joint law of (u + ε, u) by
its covariance matrix; generic3 as τ_common Σ τ_k C_k), dense log-determinants, the priors of
R-INLA's ``extra()`` written out, recovery of simulated truth, and the module doctest.
"""

from __future__ import annotations

import doctest
import importlib

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import adelia
from adelia.errors import ModelError
from adelia.formula.spec import FTerm
from adelia.models.build import build_component
from adelia.models.generic23 import Generic2Model, Generic3Model
from adelia.models.registry import make_prior, model_class

module = importlib.import_module("adelia.models.generic23")


def chain_laplacian(n):
    R = np.zeros((n, n))
    for a in range(n - 1):
        R[a, a + 1] = R[a + 1, a] = -1.0
    R[np.diag_indices(n)] = -R.sum(axis=1)
    return R


@pytest.fixture
def C():
    return chain_laplacian(5) + 0.3 * np.eye(5)


def test_registered():
    assert model_class("generic2") is Generic2Model and model_class("generic3") is Generic3Model


# ---- generic2 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("theta", [[0.0, 0.0], [1.3, -0.7], [-0.5, 2.0]])
def test_generic2_precision_is_the_joint_law_of_v_and_u(C, theta):
    """x = (v, u), u ~ N(0, (τ_u C)⁻¹), v = u + ε, ε ~ N(0, 1/τ_v), τ_v = τ_u h²/(1−h²)."""
    m, _, _ = Generic2Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": C})
    tau_u = np.exp(theta[0])
    h2 = 1 / (1 + np.exp(-theta[1]))
    tau_v = tau_u * h2 / (1 - h2)
    S_u = np.linalg.inv(tau_u * C)
    Sigma = np.block([[S_u + np.eye(5) / tau_v, S_u], [S_u, S_u]])
    Q = np.asarray(m.precision_dense(theta))
    np.testing.assert_allclose(Q, np.linalg.inv(Sigma), rtol=1e-9, atol=1e-9 * np.abs(Q).max())
    # the normalising constant: ½ log|Q| − n log 2π of the 2n-vector
    sign, logdet = np.linalg.slogdet(Q)
    assert sign > 0
    assert float(m.log_normaliser(jnp.asarray(theta))) == pytest.approx(0.5 * logdet - 5 * np.log(2 * np.pi), rel=1e-11)
    # R-INLA's extra(): LOG_NORMC (n/2 + n/2) + n/2 θ₁ + n/2 (θ₁ + θ₂)
    rinla = -0.5 * np.log(2 * np.pi) * 5 + 2.5 * theta[0] + 2.5 * (theta[0] + theta[1])
    assert float(m.rinla_log_normaliser(jnp.asarray(theta))) == pytest.approx(rinla, rel=1e-12)


def test_generic2_names_defaults_and_layout(C):
    m, index, ids = Generic2Model.from_term("animal", np.array([3.0, 1.0, np.nan]), {"Cmatrix": C})
    assert [h.internal_name for h in m.hyperparameters] == ["Log precision-cmatrix for animal", "h2-intern for animal"]
    assert [h.name for h in m.hyperparameters] == ["Precision-cmatrix for animal", "h2 for animal"]
    assert [h.initial for h in m.hyperparameters] == [4.0, 4.0]
    assert float(m.hyperparameters[1].to_user(jnp.array(0.0))) == 0.5  # h² = logistic(θ₂)
    assert m.n == 10 and ids.tolist() == list(range(1, 11))
    assert index.tolist() == [2, 0, -1]  # rows refer to v, the first half


def test_generic2_prior_of_the_random_precision_sits_on_theta1_plus_theta2(C):
    """R-INLA's extra(): prior₁(θ₁) + prior₂(log τ_v = θ₁ + θ₂), loggamma(1, 5e-05) and (1, 0.001)."""
    p1, p2 = make_prior("loggamma", (1.0, 5e-05)), make_prior("loggamma", (1.0, 0.001))
    m, _, _ = Generic2Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": C})
    h1, h2 = m.hyperparameters
    assert h1.prior.dimension == 2 and h2.prior.name == "none"
    t = jnp.array([1.2, -0.4])
    assert float(h1.prior.log_density(t)) == pytest.approx(float(p1.log_density(1.2) + p2.log_density(0.8)), rel=1e-13)
    # θ₁ fixed: θ₂'s prior still reads log τ_v = θ₁ + θ₂
    m2, _, _ = Generic2Model.from_term("i", np.arange(1.0, 6.0),
                                       {"Cmatrix": C, "hyper": {"prec": {"initial": 0.5, "fixed": True}}})
    assert float(m2.hyperparameters[1].prior.log_density(jnp.array(0.25))) == pytest.approx(float(p2.log_density(0.75)))


def test_generic2_constr_sums_u_to_zero(C):
    comp = build_component(FTerm("i", "generic2", args={"Cmatrix": C, "constr": True}), np.arange(1.0, 6.0))
    cons = comp.model.constraints()
    np.testing.assert_allclose(cons.C, [[0] * 5 + [1] * 5])
    assert comp.model.rinla_rankdef == 1.0


def test_generic2_bad_input(C):
    with pytest.raises(ModelError, match="Cmatrix is required"):
        Generic2Model.from_term("i", np.arange(1.0, 6.0), {})
    with pytest.raises(ModelError, match="square"):
        Generic2Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": np.ones((5, 4))})
    with pytest.raises(ModelError, match="n=7 but Cmatrix is 5 x 5"):
        Generic2Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": C, "n": 7})
    with pytest.raises(ModelError, match="not symmetric"):
        Generic2Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": C + np.triu(np.ones((5, 5)), 1)})


# ---- generic3 -------------------------------------------------------------------------------------
def test_generic3_precision_is_the_weighted_sum(C):
    C2 = sp.csr_matrix(np.diag(np.arange(1.0, 6.0)))
    C3 = {"i": [1, 2, 5], "j": [1, 3, 5], "values": [1.0, 0.5, 2.0]}  # R's list form, one triangle
    m, index, ids = Generic3Model.from_term("i", np.arange(1.0, 6.0), {"Cmatrix": [C, C2, C3]})
    C3d = np.zeros((5, 5))
    C3d[0, 0], C3d[1, 2], C3d[2, 1], C3d[4, 4] = 1.0, 0.5, 0.5, 2.0
    theta = np.array([0.3, -1.0, 0.8, 0.2])  # θ₁..θ₃ and the common θ₁₁
    expected = np.exp(0.2) * (np.exp(0.3) * C + np.exp(-1.0) * C2.toarray() + np.exp(0.8) * C3d)
    np.testing.assert_allclose(np.asarray(m.precision_dense(theta)), expected, rtol=1e-12)
    assert m.log_normaliser(jnp.asarray(theta)) is None  # proper: the compiler's sparse log-determinant
    assert ids.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_generic3_names_and_fixed_common_precision(C):
    m, _, _ = Generic3Model.from_term("z", np.arange(1.0, 6.0), {"Cmatrix": [C, np.eye(5)]})
    names = [h.internal_name for h in m.hyperparameters]
    assert names == ["Log precision for Cmatrix[[1]] for z", "Log precision for Cmatrix[[2]] for z", "Log common precision for z"]
    assert [h.name for h in m.hyperparameters][-1] == "Common precision for z"
    assert [h.fixed for h in m.hyperparameters] == [False, False, True]
    assert [h.initial for h in m.hyperparameters] == [4.0, 4.0, 0.0]
    m2, _, _ = Generic3Model.from_term("z", np.arange(1.0, 6.0),
                                       {"Cmatrix": [C, np.eye(5)], "hyper": {"theta11": {"fixed": False}}})
    assert not m2.hyperparameters[-1].fixed


def test_generic3_intrinsic_sum_uses_the_generalised_determinant():
    R = chain_laplacian(6)
    m, _, _ = Generic3Model.from_term("z", np.arange(1.0, 7.0), {"Cmatrix": [R, 2.0 * R]})
    assert m.rank_deficiency == 1
    theta = np.array([0.4, -0.3, 0.0])
    w = np.linalg.eigvalsh(np.asarray(m.precision_dense(theta)))[1:]
    expected = 0.5 * np.sum(np.log(w)) - 0.5 * 5 * np.log(2 * np.pi)
    assert float(m.log_normaliser(jnp.asarray(theta))) == pytest.approx(expected, rel=1e-10)


def test_generic3_bad_input(C):
    with pytest.raises(ModelError, match="Cmatrix is required"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0), {})
    with pytest.raises(ModelError, match="1 to 10 matrices, got 11"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0), {"Cmatrix": [C] * 11})
    with pytest.raises(ModelError, match="different sizes"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0), {"Cmatrix": [C, np.eye(4)]})
    with pytest.raises(ModelError, match=r"Cmatrix\[\[2\]\].*not symmetric"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0), {"Cmatrix": [C, C + np.triu(np.ones((5, 5)), 1)]})
    with pytest.raises(ModelError, match="do not share its null space"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0),
                                {"Cmatrix": [np.diag([1.0, -1, 1, 1, 1]), np.diag([-1.0, 1, 1, 1, 1])]})
    with pytest.raises(ModelError, match="n=4 but the matrices"):
        Generic3Model.from_term("z", np.arange(1.0, 6.0), {"Cmatrix": [C], "n": 4})


def test_generic3_recovers_simulated_precisions():
    """Q = τ₁ I + τ₂ R (R a chain Laplacian), two noisy observations per node: the 95 % intervals
    of τ₁, τ₂ and the observation precision contain the truth (fixed seed)."""
    rng = np.random.default_rng(2024)
    n = 120
    R = chain_laplacian(n)
    tau1, tau2, tau_obs = 2.0, 5.0, 4.0
    Q = tau1 * np.eye(n) + tau2 * R
    x = np.linalg.solve(np.linalg.cholesky(Q).T, rng.normal(size=n))
    node = np.repeat(np.arange(1, n + 1), 2)
    df = pd.DataFrame({"node": node, "y": 0.5 + x[node - 1] + rng.normal(size=node.size) / np.sqrt(tau_obs)})
    res = adelia.inla("y ~ 1 + f(node, model='generic3', Cmatrix=Cs)", df, context={"Cs": [np.eye(n), R]})
    hp = res.summary_hyperpar
    truth = {"Precision for the Gaussian observations": tau_obs, "Precision for Cmatrix[[1]] for node": tau1,
             "Precision for Cmatrix[[2]] for node": tau2}
    assert list(hp.index) == list(truth)
    for name, value in truth.items():
        assert hp.loc[name, "0.025quant"] < value < hp.loc[name, "0.975quant"], (name, hp.loc[name].to_dict())
    fx = res.summary_fixed.loc["(Intercept)"]
    assert fx["0.025quant"] < 0.5 < fx["0.975quant"]


def test_module_docstring_examples_run():
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
