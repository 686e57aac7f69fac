"""Core latent models against independent dense constructions from their definitions:
precision matrices, rank deficiencies, normalising constants (dense eigenvalues), R-INLA's
argument semantics and the errors for bad input."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adelia.errors import ModelError, PriorError
from adelia.formula.spec import FTerm
from adelia.models.ar import AR1Model, ARModel
from adelia.models.build import build_component
from adelia.models.generic import Generic0Model, Generic1Model
from adelia.models.iid import IIDModel
from adelia.models.linear import LinearModel
from adelia.models.priors import LOG_NORMC_GAUSSIAN
from adelia.models.rw import RW1Model, RW2Model
from adelia.models.seasonal import SeasonalModel
from conftest import shared_path


def dense(model, theta):
    return np.asarray(model.precision_dense(np.asarray(theta, dtype=float)))


def dense_log_normaliser(Q, rank_def):
    """½ Σ log λ over the non-zero eigenvalues − ½ (n − r) log 2π."""
    w = np.sort(np.linalg.eigvalsh(Q))
    nz = w[rank_def:]
    assert np.all(nz > 1e-9 * w[-1])
    return 0.5 * np.sum(np.log(nz)) + (Q.shape[0] - rank_def) * LOG_NORMC_GAUSSIAN


def numerical_rank_deficiency(Q):
    w = np.linalg.eigvalsh(Q)
    return int(np.sum(w < 1e-10 * w.max()))


def diff_matrix(n, order):
    D = np.eye(n)
    for _ in range(order):
        D = np.diff(D, axis=0)
    return D


def check_model(model, theta, Q_expected, rank_def):
    Q = dense(model, theta)
    np.testing.assert_allclose(Q, Q_expected, rtol=1e-11, atol=1e-11)
    assert model.rank_deficiency == rank_def == numerical_rank_deficiency(Q)
    assert float(model.log_normaliser(np.asarray(theta))) == pytest.approx(dense_log_normaliser(Q, rank_def), rel=1e-10, abs=1e-9)
    g = jax.jit(jax.grad(lambda t: jnp.sum(model.precision_values(t)) + model.log_normaliser(t)))(jnp.asarray(theta, dtype=float))
    assert np.all(np.isfinite(np.asarray(g)))


# ---- iid ---------------------------------------------------------------------------------------------
def test_iid_with_scale():
    s = np.array([1.0, 2.0, 0.5, 4.0])
    m, idx, ids = IIDModel.from_term("i", np.array([4.0, 1.0, 2.0, 3.0, 2.0]), {"scale": s})
    assert idx.tolist() == [3, 0, 1, 2, 1] and ids.tolist() == [1, 2, 3, 4]
    check_model(m, [0.7], np.exp(0.7) * np.diag(s), 0)
    # R-INLA's constant: (n - r')/2 (log tau + mean log s)
    assert float(m.rinla_log_normaliser(np.array([0.7]))) == pytest.approx(4 * LOG_NORMC_GAUSSIAN + 2 * (0.7 + np.mean(np.log(s))))


# ---- random walks ----------------------------------------------------------------------------------
@pytest.mark.parametrize("order,cls", [(1, RW1Model), (2, RW2Model)])
def test_rw_regular_is_difference_penalty(order, cls):
    n = 7
    m, _, _ = cls.from_term("t", np.arange(1.0, n + 1), {})
    D = diff_matrix(n, order)
    check_model(m, [1.3], np.exp(1.3) * D.T @ D, order)
    assert m.structure_log_det_constant == pytest.approx(0.5 * np.sum(np.log(np.sort(np.linalg.eigvalsh(D.T @ D))[order:])))


def test_rw_spacing_scales_precision_like_rinla():
    h = 2.5
    m1, _, _ = RW1Model.from_term("t", h * np.arange(6.0), {})
    m2, _, _ = RW2Model.from_term("t", h * np.arange(6.0), {})
    D1, D2 = diff_matrix(6, 1), diff_matrix(6, 2)
    np.testing.assert_allclose(dense(m1, [0.0]), D1.T @ D1 / h, rtol=1e-12)
    np.testing.assert_allclose(dense(m2, [0.0]), D2.T @ D2 / h**3, rtol=1e-12)


def test_rw1_irregular_is_independent_increments():
    s = np.array([0.0, 0.3, 1.0, 1.2, 3.0, 3.5])
    m, _, ids = RW1Model.from_term("t", s[::-1].copy(), {})
    np.testing.assert_array_equal(ids, s)
    d = np.diff(s)
    W = diff_matrix(s.size, 1) / np.sqrt(d)[:, None]  # (x_{i+1}-x_i)/sqrt(d_i) ~ N(0, 1/tau)
    check_model(m, [0.4], np.exp(0.4) * W.T @ W, 1)


def test_rw2_irregular_is_lindgren_rue():
    s = np.array([0.0, 0.3, 1.0, 1.2, 3.0, 3.5, 4.0])
    m, _, _ = RW2Model.from_term("t", s, {})
    n, d = s.size, np.diff(s)
    B = np.zeros((n - 2, n))
    for j in range(1, n - 1):
        B[j - 1, j - 1 : j + 2] = [1 / d[j - 1], -(1 / d[j - 1] + 1 / d[j]), 1 / d[j]]
    C = np.diag((d[:-1] + d[1:]) / 2)  # Galerkin mass of the interior nodes
    Q = B.T @ np.linalg.inv(C) @ B
    check_model(m, [-0.2], np.exp(-0.2) * Q, 2)
    # null space: constants and linear trends in s
    np.testing.assert_allclose(Q @ np.ones(n), 0, atol=1e-12)
    np.testing.assert_allclose(Q @ s, 0, atol=1e-12)


@pytest.mark.parametrize("order,cls,n", [(1, RW1Model, 6), (2, RW2Model, 7)])
def test_cyclic_rw(order, cls, n):
    S = np.roll(np.eye(n), 1, axis=1)  # (S x)_i = x_{i+1 mod n}
    D = S - np.eye(n)
    if order == 2:
        D = D @ D
    bare = build_component(FTerm("t", cls.model_name, args={"cyclic": True, "diagonal": 0.0}), np.arange(1.0, n + 1)).model
    check_model(bare, [0.5], np.exp(0.5) * D.T @ D, 1)
    # current R-INLA keeps constr=TRUE for cyclic walks (the tokyo_rw2_cyclic reference fit has
    # Σx = 0), hence also the default diagonal 1e-4
    m = build_component(FTerm("t", cls.model_name, args={"cyclic": True}), np.arange(1.0, n + 1)).model
    np.testing.assert_allclose(dense(m, [0.5]), np.exp(0.5) * D.T @ D + 1e-4 * np.eye(n), atol=1e-11)
    assert m.constraints().C.tolist() == [[1.0] * n] and m.diagonal == 1e-4
    with pytest.raises(ModelError, match="at least"):
        cls.from_term("t", np.arange(1.0, 2 * order + 1), {"cyclic": True})


def test_rw_defaults_constr_diagonal_and_rinla_rankdef():
    comp = build_component(FTerm("t", "rw2"), np.arange(1.0, 9.0))
    m = comp.model
    assert m.constraints().C.tolist() == [[1.0] * 8]
    assert m.diagonal == 1e-4 and m.rinla_rankdef == 2.0
    Q0 = dense(m, [0.0])
    D = diff_matrix(8, 2)
    np.testing.assert_allclose(Q0, D.T @ D + 1e-4 * np.eye(8), atol=1e-14)
    # R-INLA: LOG_NORMC (n - r') + (n - r')/2 log tau, without 1/2 log|R|*
    th = np.array([1.1])
    assert float(m.rinla_log_normaliser(th)) == pytest.approx(6 * LOG_NORMC_GAUSSIAN + 3 * 1.1)
    assert float(m.log_normaliser(th)) - float(m.rinla_log_normaliser(th)) == pytest.approx(m.structure_log_det_constant)


def test_rw_rejects_close_locations_and_duplicate_values():
    x = np.array([0.0, 1e-7, 0.5, 1.0])
    with pytest.raises(ModelError, match="too close"):
        RW1Model.from_term("t", x, {})
    with pytest.raises(ModelError, match="not unique"):
        RW1Model.from_term("t", np.array([1.0, 2.0]), {"values": [1.0, 2.0, 2.0]})
    with pytest.raises(ModelError, match="strictly increasing"):
        RW1Model.from_term("t", np.array([1.0, 2.0]), {"values": [2.0, 1.0, 3.0]})


# ---- seasonal --------------------------------------------------------------------------------------
def test_seasonal_is_sum_of_window_penalties():
    n, s = 10, 4
    m, _, _ = SeasonalModel.from_term("t", np.arange(1.0, n + 1), {"season_length": s})
    A = np.zeros((n - s + 1, n))
    for t in range(n - s + 1):
        A[t, t : t + s] = 1.0
    check_model(m, [0.3], np.exp(0.3) * A.T @ A, s - 1)
    with pytest.raises(ModelError, match="season_length"):
        SeasonalModel.from_term("t", np.arange(1.0, n + 1), {})


# ---- ar1 / ar(p) ------------------------------------------------------------------------------------
def test_ar1_is_inverse_of_stationary_covariance():
    n, kappa, rho = 6, 2.0, 0.6
    theta = [np.log(kappa), np.log((1 + rho) / (1 - rho)), 0.0]
    m, _, _ = AR1Model.from_term("t", np.arange(1.0, n + 1), {})
    lags = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    Sigma = rho**lags / kappa
    check_model(m, theta, np.linalg.inv(Sigma), 0)
    assert float(m.hyperparameters[1].to_user(jnp.asarray(theta[1]))) == pytest.approx(rho)
    # R-INLA's constant equals the full value here (no structure constant dropped)
    assert float(m.rinla_log_normaliser(np.array(theta))) == pytest.approx(float(m.log_normaliser(np.array(theta))))


def test_cyclic_ar1():
    n, kappa, rho = 7, 1.5, -0.4
    theta = [np.log(kappa), np.log((1 + rho) / (1 - rho)), 0.0]
    m, _, _ = AR1Model.from_term("t", np.arange(1.0, n + 1), {"cyclic": True})
    L = np.eye(n) - rho * np.roll(np.eye(n), 1, axis=1)  # x_i - rho x_{i+1 mod n}
    check_model(m, theta, L.T @ L * kappa / (1 - rho**2), 0)


def test_ar1_mean_must_stay_fixed():
    with pytest.raises(ModelError, match="mean"):
        AR1Model.from_term("t", np.arange(1.0, 5.0), {"hyper": {"mean": {"fixed": False}}})


def _acf_from_phi(phi, nlag, nterms=4000):
    """Autocorrelations via the MA(∞) weights ψ (independent of the Yule–Walker route)."""
    p = len(phi)
    psi = np.zeros(nterms)
    psi[0] = 1.0
    for k in range(1, nterms):
        psi[k] = sum(phi[j] * psi[k - 1 - j] for j in range(min(p, k)))
    gamma = np.array([np.dot(psi[: nterms - h], psi[h:]) for h in range(nlag)])
    return gamma / gamma[0]


def _pacf_from_acf(acf, p):
    """The last coefficient of the order-k Yule–Walker fit, k = 1..p."""
    out = []
    for k in range(1, p + 1):
        R = acf[np.abs(np.subtract.outer(np.arange(k), np.arange(k)))]
        out.append(np.linalg.solve(R, acf[1 : k + 1])[-1])
    return np.array(out)


def test_ar2_phi_from_pacf_closed_form():
    psi = np.array([0.5, -0.3])
    from adelia.models.ar import pacf_to_phi

    np.testing.assert_allclose(np.asarray(pacf_to_phi(psi)), [psi[0] * (1 - psi[1]), psi[1]], rtol=1e-14)


@pytest.mark.parametrize("pacf", [[0.6, -0.3], [0.4, 0.2, -0.5]])
def test_ar_p_is_inverse_of_stationary_covariance(pacf):
    pacf = np.asarray(pacf)
    p, n, kappa = pacf.size, 9, 1.7
    theta = np.concatenate([[np.log(kappa)], np.log((1 + pacf) / (1 - pacf))])
    m, _, _ = ARModel.from_term("t", np.arange(1.0, n + 1), {"order": p})
    assert [h.name for h in m.hyperparameters] == ["Precision for t"] + [f"PACF{k} for t" for k in range(1, p + 1)]
    # phi: solve the order-p Yule–Walker system of an acf built from these pacf by the
    # classical Durbin–Levinson recursion of textbooks (phi_k,k = pacf_k)
    phi = np.array([pacf[0]])
    for k in range(1, p):
        phi = np.concatenate([phi - pacf[k] * phi[::-1], [pacf[k]]])
    acf = _acf_from_phi(phi, n)
    np.testing.assert_allclose(_pacf_from_acf(acf, p), pacf, atol=1e-10)
    Sigma = acf[np.abs(np.subtract.outer(np.arange(n), np.arange(n)))] / kappa
    check_model(m, theta, np.linalg.inv(Sigma), 0)


def test_ar_needs_valid_order():
    with pytest.raises(ModelError, match="order"):
        ARModel.from_term("t", np.arange(1.0, 9.0), {})
    with pytest.raises(ModelError, match="too large"):
        ARModel.from_term("t", np.arange(1.0, 40.0), {"order": 11})


# ---- generic0 / generic1 -------------------------------------------------------------------------------
def test_generic0_singular_cmatrix_given_as_upper_triangle():
    n = 5
    D = diff_matrix(n, 1)
    C = D.T @ D
    iu = np.triu_indices(n)
    keep = C[iu] != 0
    spec = {"i": iu[0][keep] + 1, "j": iu[1][keep] + 1, "values": C[iu][keep]}
    m, idx, ids = Generic0Model.from_term("g", np.array([5.0, 1.0]), {"Cmatrix": spec, "rankdef": 1})
    assert idx.tolist() == [4, 0] and ids.tolist() == [1, 2, 3, 4, 5]
    check_model(m, [0.9], np.exp(0.9) * C, 1)
    assert m.rinla_rankdef == 1.0


def test_generic1():
    rng = np.random.default_rng(3)
    A = rng.normal(size=(5, 5))
    C = A @ A.T
    m, _, _ = Generic1Model.from_term("g", np.arange(1.0, 6.0), {"Cmatrix": C})
    lam_max = np.linalg.eigvalsh(C).max()
    tau, beta = 1.4, 0.7
    theta = [np.log(tau), np.log(beta / (1 - beta))]
    check_model(m, theta, tau * (np.eye(5) - beta / lam_max * C), 0)
    assert [h.internal_name for h in m.hyperparameters] == ["Log precision for g", "Beta_intern for g"]


def test_generic_requires_symmetric_cmatrix():
    with pytest.raises(ModelError, match="not symmetric"):
        Generic0Model.from_term("g", None, {"Cmatrix": np.array([[1.0, 2.0], [3.0, 1.0]])})


# ---- linear ------------------------------------------------------------------------------------------------
def test_linear_weights_are_the_covariate():
    comp = build_component(FTerm("x", "linear", args={"mean_linear": 1.0, "prec_linear": 0.5}), np.array([2.0, np.nan, -1.0]))
    m = comp.model
    assert isinstance(m, LinearModel) and m.n == 1 and m.hyperparameters == ()
    assert comp.index.tolist() == [0, 0, 0] and comp.weights.tolist() == [2.0, 0.0, -1.0]
    assert float(m.rinla_log_normaliser(None)) == pytest.approx(LOG_NORMC_GAUSSIAN + 0.5 * np.log(0.5) - 0.25)
    with pytest.raises(ModelError, match="hyper"):
        build_component(FTerm("x", "linear", args={"hyper": {"prec": {}}}), np.array([1.0]))


# ---- f() argument semantics and errors -------------------------------------------------------------------------
def test_unknown_model_lists_known_models():
    with pytest.raises(ModelError, match=r'unknown latent model "rw3".*Valid choices:.*ar1.*rw1.*rw2'):
        build_component(FTerm("t", "rw3"), np.arange(1.0, 4.0))


def test_unknown_argument_lists_valid_ones():
    with pytest.raises(ModelError, match=r'"scalemodel".*Did you mean "scale_model"'):
        build_component(FTerm("t", "rw1", args={"scalemodel": True}), np.arange(1.0, 4.0))


def test_covariate_outside_n_names_term_and_values():
    with pytest.raises(ModelError, match=r"f\(idx.*n=5.*not in 1\.\.5: 6, 7"):
        build_component(FTerm("idx", "iid", args={"n": 5}), np.array([1.0, 2.0, 7.0, 6.0, 3.0, 5.0, 4.0]))
    comp = build_component(FTerm("idx", "iid", args={"n": 6}), np.array([1.0, 4.0, np.nan]))
    assert comp.ids.tolist() == [1, 2, 3, 4, 5, 6] and comp.index.tolist() == [0, 3, -1]


def test_covariate_not_in_values_lists_rows():
    with pytest.raises(ModelError, match=r"not among the model's nodes.*9.*rows 2"):
        build_component(FTerm("idx", "iid", args={"values": [1.0, 2.0, 3.0]}), np.array([1.0, 9.0, 2.0]))


def test_factor_covariate_levels():
    comp = build_component(FTerm("g", "iid"), np.array(["b", "a", None, "b"], dtype=object))
    assert comp.ids.tolist() == ["a", "b"] and comp.index.tolist() == [1, 0, -1, 1]


def test_user_hyper_and_unknown_prior_through_build():
    comp = build_component(FTerm("t", "rw1", args={"hyper": {"prec": {"prior": "pc.prec", "param": [1, 0.01]}}}), np.arange(1.0, 5.0))
    assert repr(comp.model.hyperparameters[0].prior) == "pc.prec(1, 0.01)"
    with pytest.raises(PriorError, match="unknown prior"):
        build_component(FTerm("t", "rw1", args={"hyper": {"prec": {"prior": "pcprior"}}}), np.arange(1.0, 5.0))


def test_extraconstr_adds_rows_and_rankdef():
    A = np.array([[1.0, 0, 0, 0, 0]])
    comp = build_component(FTerm("i", "iid", args={"extraconstr": {"A": A, "e": [0.0]}}), np.arange(1.0, 6.0))
    m = comp.model
    assert m.constraints().C.tolist() == A.tolist() and m.diagonal == 1e-4 and m.rinla_rankdef == 1.0
    comp = build_component(FTerm("i", "iid", args={"constr": True}), np.arange(1.0, 6.0))
    assert comp.model.rinla_rankdef == 1.0 and comp.model.constraints().k == 1
    with pytest.raises(ModelError, match="columns"):
        build_component(FTerm("i", "iid", args={"extraconstr": {"A": np.ones((1, 3)), "e": [0]}}), np.arange(1.0, 6.0))


def test_scale_model_rejected_where_rinla_rejects_it():
    with pytest.raises(ModelError, match="scale_model"):
        build_component(FTerm("i", "iid", args={"scale_model": True}), np.arange(1.0, 4.0))
    with pytest.raises(ModelError, match="cyclic"):
        build_component(FTerm("i", "iid", args={"cyclic": True}), np.arange(1.0, 4.0))


def test_tokyo_reference_names_and_defaults():
    spec = json.loads(shared_path("reference", "rinla", "tokyo_rw2_cyclic", "spec.json").read_text())
    res = json.loads(shared_path("reference", "rinla", "tokyo_rw2_cyclic", "results.json").read_text())
    data = np.genfromtxt(shared_path("reference", "rinla", "tokyo_rw2_cyclic", "data.csv"), delimiter=",", names=True)
    comp = build_component(FTerm("time", "rw2", args={"cyclic": True}), data["time"])
    m = comp.model
    assert [h.internal_name for h in m.hyperparameters] == res["internal_summary_hyperpar"]["name"]
    prior = next(e for e in spec["priors_used_all"] if e["hyper"] == "theta1")
    assert m.hyperparameters[0].prior.name == prior["prior"] and list(m.hyperparameters[0].prior.param) == prior["param"]
    assert comp.ids.tolist() == res["summary_random"]["time"]["ID"]
    assert m.constraints().C.tolist() == [[1.0] * m.n] and m.rank_deficiency == 1  # Σ mean = 0 in results.json


@pytest.mark.parametrize(
    "model,args,theta",
    [("rw2", {}, [0.3]), ("ar1", {"cyclic": True}, [0.2, 0.5, 0.0]), ("ar", {"order": 2}, [0.1, 0.4, -0.2]),
     ("seasonal", {"season_length": 3}, [0.4]), ("iid", {"control_group": {"model": "ar1"}}, [0.1, 0.7])],
)
def test_values_and_normaliser_jit_with_traced_theta(model, args, theta):
    x = np.arange(1.0, 9.0)
    group = np.repeat([1.0, 2.0], 4) if "control_group" in args else None
    m = build_component(FTerm("t", model, args=args), x, group=group).model
    f = jax.jit(lambda t: (m.precision_values(t), m.log_normaliser(t)))
    v, ln = f(jnp.asarray(theta))
    np.testing.assert_allclose(np.asarray(v), np.asarray(m.precision_values(jnp.asarray(theta))), rtol=1e-12)
    assert float(ln) == pytest.approx(float(m.log_normaliser(jnp.asarray(theta))), rel=1e-12)
    assert v.shape == (m.pattern().nnz,)


def test_structure_log_det_closed_forms_at_large_n():
    """Closed forms of ½log|R|* (path Laplacian |R|* = nΠ(1/dᵢ) by the matrix-tree theorem,
    |D₂ᵀD₂/h³|* = n²(n²−1)/12·h^{−3(n−2)}, cyclic n^{2·order}) agree with the sparse LU path."""
    from adelia.models.generic import half_log_pseudo_determinant
    from adelia.models.rw import _null_basis, cyclic_rw_structure, rw_half_log_det, rw_structure

    n = 3000
    rng = np.random.default_rng(7)
    s = np.cumsum(rng.uniform(0.5, 1.5, n))
    m1, _, _ = RW1Model.from_term("t", s, {})
    assert m1.structure_log_det_constant == pytest.approx(0.5 * (np.log(n) - np.sum(np.log(np.diff(s)))), rel=1e-12)
    assert half_log_pseudo_determinant(rw_structure(s, 1), _null_basis(s, 1)) == pytest.approx(
        m1.structure_log_det_constant, rel=1e-9)
    # R-INLA's inla.check.location refuses rw2 with min(diff)/range < 1e-3, so n = 1000 here.
    n2 = 1000
    s2 = 0.5 * np.arange(1.0, n2 + 1)
    m2, _, _ = RW2Model.from_term("t", s2, {})
    lu = half_log_pseudo_determinant(rw_structure(s2, 2), _null_basis(s2, 2))
    assert m2.structure_log_det_constant == pytest.approx(lu, rel=1e-8)
    m2s, _, _ = RW2Model.from_term("t", s2, {"scale_model": True})
    assert m2s.structure_log_det_constant == pytest.approx(
        m2.structure_log_det_constant + 0.5 * (n2 - 2) * np.log(m2s.scale_factor), rel=1e-12)
    for order in (1, 2):
        nc = 400
        lu = half_log_pseudo_determinant(cyclic_rw_structure(nc, order), np.full((nc, 1), nc**-0.5))
        assert rw_half_log_det(np.arange(nc), order, cyclic=True) == pytest.approx(lu, rel=1e-9)
    assert rw_half_log_det(np.array([1.0, 2.0, 4.0, 5.0]), 2) is None

