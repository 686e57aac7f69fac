"""z: the augmented (Z z, z) precision, against the joint Gaussian built from the definition.

Oracles: the covariance of (v, z) with z ~ N(0, (τC)⁻¹), v | z ~ N(Z z, κ⁻¹ I), inverted
densely; R-INLA's log posterior at its own mode (z_random_slopes).
"""

from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp
from conftest import reference_call

import adelia
from adelia.errors import ModelError
from adelia.models.registry import model_class
from adelia.models.z import Z_DEFAULT_PRECISION, ZModel


def z_matrix(rng, n=7, m=3):
    Z = rng.normal(size=(n, m))
    Z[rng.random((n, m)) < 0.4] = 0.0
    return Z


def joint_precision(Z, tau, C, kappa):
    Sz = np.linalg.inv(tau * C)
    n = Z.shape[0]
    Sigma = np.block([[Z @ Sz @ Z.T + np.eye(n) / kappa, Z @ Sz], [Sz @ Z.T, Sz]])
    return np.linalg.inv(Sigma), Sigma


def test_registered_with_rinla_defaults():
    assert model_class("z") is ZModel
    Z = np.arange(6.0).reshape(3, 2)
    model, idx, ids = ZModel.from_term("idx", np.array([1.0, 2.0, 3.0]), {"Z": Z})
    assert model.n == 5 and ids.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0] and idx.tolist() == [0, 1, 2]
    (h,) = model.hyperparameters
    assert (h.name, h.internal_name, h.initial) == ("Precision for idx", "Log precision for idx", 4.0)
    assert (h.prior.name, h.prior.param) == ("loggamma", (1.0, 5e-05))
    assert model.precision == pytest.approx(np.exp(14.0)) == Z_DEFAULT_PRECISION


@pytest.mark.parametrize("with_c", [False, True])
def test_precision_is_the_augmented_joint_precision(with_c):
    rng = np.random.default_rng(3)
    Z = z_matrix(rng)
    n, m = Z.shape
    C = np.eye(m)
    args = {"Z": Z, "precision": 50.0}
    if with_c:
        B = rng.normal(size=(m, m))
        C = B @ B.T + m * np.eye(m)
        args["Cmatrix"] = C
    model, _, _ = ZModel.from_term("idx", np.arange(1.0, n + 1.0), args)
    tau = 2.5
    Q_ref, Sigma = joint_precision(Z, tau, C, 50.0)
    Q = np.asarray(model.precision_dense(np.array([np.log(tau)])))
    np.testing.assert_allclose(Q, Q_ref, rtol=1e-8, atol=1e-8 * np.abs(Q_ref).max())
    # ½ log|Q| − (n+m)/2 log 2π = −½ log|Σ| − (n+m)/2 log 2π
    expect = -0.5 * np.linalg.slogdet(Sigma)[1] - 0.5 * (n + m) * np.log(2 * np.pi)
    np.testing.assert_allclose(float(model.log_normaliser(np.array([np.log(tau)]))), expect, rtol=1e-9)


def test_sparse_and_dense_z_give_the_same_model():
    rng = np.random.default_rng(5)
    Z = z_matrix(rng)
    cov = np.arange(1.0, Z.shape[0] + 1.0)
    dense, _, _ = ZModel.from_term("idx", cov, {"Z": Z})
    sparse, _, _ = ZModel.from_term("idx", cov, {"Z": sp.csr_matrix(Z)})
    theta = np.array([0.7])
    np.testing.assert_allclose(np.asarray(dense.precision_dense(theta)), np.asarray(sparse.precision_dense(theta)))
    # the default κ: Q's upper-left block is κ I
    Q = np.asarray(dense.precision_dense(theta))
    np.testing.assert_allclose(np.diag(Q)[: Z.shape[0]], np.exp(14.0))


def test_bad_input_named_errors():
    Z = np.ones((4, 2))
    with pytest.raises(ModelError, match="Z= is required"):
        ZModel.from_term("idx", np.arange(1.0, 5.0), {})
    with pytest.raises(ModelError, match="Z has 4 rows but the term has 3 data rows"):
        ZModel.from_term("idx", np.arange(1.0, 4.0), {"Z": Z})
    with pytest.raises(ModelError, match="not among the model's nodes"):
        ZModel.from_term("idx", np.array([1.0, 2.0, 3.0, 9.0]), {"Z": Z})
    with pytest.raises(ModelError, match="n=5 but the z-model has"):
        ZModel.from_term("idx", np.arange(1.0, 5.0), {"Z": Z, "n": 5})
    with pytest.raises(ModelError, match="Cmatrix must be 2 x 2"):
        ZModel.from_term("idx", np.arange(1.0, 5.0), {"Z": Z, "Cmatrix": np.eye(3)})
    with pytest.raises(ModelError, match="non-finite"):
        ZModel.from_term("idx", np.arange(1.0, 5.0), {"Z": np.array([[1.0, np.nan]] * 4)})
    with pytest.raises(ModelError, match="positive definite"):
        ZModel.from_term("idx", np.arange(1.0, 5.0), {"Z": Z, "Cmatrix": np.array([[1.0, 1.0], [1.0, 1.0]])})


def test_log_posterior_at_rinla_mode_equals_rinla():
    _, (formula, data, kw), ref, _ = reference_call("z_random_slopes")
    model = adelia.compile(formula, data, **kw)
    assert model.theta_names == ref["mode"]["theta_tags"]
    assert abs(model.log_posterior(np.array(ref["mode"]["theta"])) - ref["mode"]["log_posterior_mode"]) < 1e-3
