"""iid2d..iid5d: Q = W ⊗ I_m and the Wishart prior, against independent constructions.

Oracles: the k×k covariance S built from its definition (S_aa = 1/τ_a, S_ab = ρ_ab/√(τ_aτ_b))
and inverted densely; scipy.stats.wishart.logpdf plus a finite-difference Jacobian of
(τ, ρ) -> W; R-INLA's log posterior at its own mode (iid2d_bivmeta); recovery of simulated
truth (iid3d).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from conftest import reference_call

import adelia
from adelia.errors import ModelError, PriorError
from adelia.models.iidkd import IID2DModel, IID3DModel, IID4DModel, IID5DModel, SHRINK_FACTOR
from adelia.models.registry import make_prior, model_class

CLASSES = {2: IID2DModel, 3: IID3DModel, 4: IID4DModel, 5: IID5DModel}


def pairs(k):
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def covariance(tau, rho, k):
    S = np.diag(1.0 / np.asarray(tau))
    for p, (a, b) in enumerate(pairs(k)):
        S[a, b] = S[b, a] = rho[p] / np.sqrt(tau[a] * tau[b])
    return S


def rinla_adjust(rho, k):
    """R-INLA's inla_iid_wishart_adjust: multiply the ρ's by 0.95 until S is PD."""
    rho = np.array(rho, dtype=float)
    while True:
        try:
            np.linalg.cholesky(covariance(np.ones(k), rho, k))
            return rho
        except np.linalg.LinAlgError:
            rho *= SHRINK_FACTOR


def theta_of(tau, rho):
    return np.concatenate([np.log(tau), np.log((1 + np.asarray(rho)) / (1 - np.asarray(rho)))])


def build(k, m=4, **args):
    return CLASSES[k].from_term("i", np.arange(1.0, k * m + 1.0), {"n": k * m, **args})[0]


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_registered_with_rinla_defaults(k):
    assert model_class(f"iid{k}d") is CLASSES[k]
    model = build(k)
    hyper = model.hyperparameters
    assert len(hyper) == k * (k + 1) // 2
    assert hyper[0].prior.name == f"wishart{k}d"
    assert all(h.prior.name == "none" for h in hyper[1:])
    r = {2: 4, 3: 7, 4: 11, 5: 16}[k]
    assert hyper[0].prior.param == (r,) + (1.0,) * k + (0.0,) * (k * (k - 1) // 2)
    assert [h.initial for h in hyper[:k]] == [4.0] * k
    assert all(h.initial == (4.0 if k == 2 else 0.0) for h in hyper[k:])
    names = [h.name for h in hyper]
    assert names[:k] == [f"Precision for i (component {a + 1})" for a in range(k)]
    assert names[k:] == [f"Rho{a + 1}:{b + 1} for i" for a, b in pairs(k)]
    assert [h.internal_name for h in hyper][k:] == [f"Rho_internal{a + 1}:{b + 1} for i" for a, b in pairs(k)]


@pytest.mark.parametrize("k", [2, 3, 4])
def test_precision_is_kron_of_inverse_covariance(k):
    rng = np.random.default_rng(7 + k)
    m = 5
    model = build(k, m)
    tau = rng.uniform(0.3, 3.0, k)
    rho = rng.uniform(-0.3, 0.3, k * (k - 1) // 2)
    W = np.linalg.inv(covariance(tau, rho, k))
    Q = np.asarray(model.precision_dense(theta_of(tau, rho)))
    np.testing.assert_allclose(Q, np.kron(W, np.eye(m)), rtol=1e-10, atol=1e-12)
    # the normalising constant: ½ log|Q| − (n/2) log 2π
    _, logdet = np.linalg.slogdet(Q)
    expect = 0.5 * logdet - 0.5 * k * m * np.log(2 * np.pi)
    np.testing.assert_allclose(float(model.log_normaliser(theta_of(tau, rho))), expect, rtol=1e-11)


def test_non_positive_definite_correlations_are_shrunk_as_rinla():
    k, m = 3, 2
    model = build(k, m)
    tau = np.array([1.0, 2.0, 0.5])
    rho = np.array([0.95, 0.9, -0.9])  # not a correlation matrix
    assert np.linalg.eigvalsh(covariance(np.ones(3), rho, 3)).min() < 0
    adjusted = rinla_adjust(rho, k)
    assert not np.allclose(adjusted, rho)
    W = np.linalg.inv(covariance(tau, adjusted, k))
    np.testing.assert_allclose(np.asarray(model.precision_dense(theta_of(tau, rho))), np.kron(W, np.eye(m)), rtol=1e-9)


def jacobian_log_det_fd(tau, rho, k, h=1e-6):
    """log|det ∂(diag W, W_ab (a<b)) / ∂(τ, ρ)| by central differences (R-INLA's way)."""
    x0 = np.concatenate([tau, rho])

    def entries(x):
        W = np.linalg.inv(covariance(x[:k], x[k:], k))
        return np.concatenate([np.diag(W), [W[a, b] for a, b in pairs(k)]])

    J = np.empty((x0.size, x0.size))
    for i in range(x0.size):
        e = np.zeros_like(x0)
        e[i] = h * max(1.0, abs(x0[i]))
        J[:, i] = (entries(x0 + e) - entries(x0 - e)) / (2 * e[i])
    return np.linalg.slogdet(J)[1]


@pytest.mark.parametrize("k,param", [
    (2, (4.0, 1.0, 1.0, 0.0)),
    (2, (5.0, 2.0, 0.5, 0.3)),
    (3, (7.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
    (3, (6.0, 1.5, 0.7, 1.2, 0.2, -0.1, 0.3)),
])
def test_wishart_prior_against_scipy(k, param):
    rng = np.random.default_rng(11)
    prior = make_prior(f"wishart{k}d", param)
    assert prior.dimension == k * (k + 1) // 2
    r = param[0]
    R = np.diag(param[1 : k + 1])
    for p, (a, b) in enumerate(pairs(k)):
        R[a, b] = R[b, a] = param[1 + k + p]
    for _ in range(3):
        tau = rng.uniform(0.3, 4.0, k)
        rho = rng.uniform(-0.5, 0.5, k * (k - 1) // 2)
        W = np.linalg.inv(covariance(tau, rho, k))
        expect = (scipy.stats.wishart(df=r, scale=np.linalg.inv(R)).logpdf(W)
                  + jacobian_log_det_fd(tau, rho, k)
                  + np.sum(np.log(tau)) + np.sum(np.log((1 - rho**2) / 2)))
        np.testing.assert_allclose(float(prior.log_density(theta_of(tau, rho))), expect, rtol=1e-7)


def test_wishart_prior_rejects_bad_parameters():
    with pytest.raises(PriorError, match="wishart2d"):
        make_prior("wishart2d", (4.0, 1.0, 1.0))  # 3 numbers, needs 4
    with pytest.raises(PriorError, match="degrees of freedom"):
        make_prior("wishart2d", (2.0, 1.0, 1.0, 0.0))
    with pytest.raises(PriorError, match="positive definite"):
        make_prior("wishart2d", (4.0, 1.0, 1.0, 2.0))


def test_bad_input_named_errors():
    with pytest.raises(ModelError, match=r"n=7 must be a positive multiple of 3"):
        IID3DModel.from_term("i", np.arange(1.0, 8.0), {"n": 7})
    with pytest.raises(ModelError, match="n= is required"):
        IID2DModel.from_term("i", np.arange(1.0, 5.0), {})
    with pytest.raises(ModelError, match="not among the model's nodes"):
        IID2DModel.from_term("i", np.array([1.0, 9.0]), {"n": 4})
    with pytest.raises(PriorError, match="fixed to wishart2d"):
        IID2DModel.from_term("i", np.arange(1.0, 5.0), {"n": 4, "hyper": {"prec1": {"prior": "loggamma", "param": [1, 1]}}})


def test_hyper_param_override_and_constraints():
    model = build(2, 3, hyper={"prec1": {"param": [5, 2, 0.5, 0.3]}}, constr=True)
    assert model.hyperparameters[0].prior.param == (5.0, 2.0, 0.5, 0.3)
    C = model.constraints().C
    np.testing.assert_array_equal(C, np.kron(np.eye(2), np.ones((1, 3))))
    assert model.rinla_rankdef == 1.0


def test_log_posterior_at_rinla_mode_equals_rinla():
    _, (formula, data, kw), ref, _ = reference_call("iid2d_bivmeta")
    model = adelia.compile(formula, data, **kw)
    assert model.theta_names == ref["mode"]["theta_tags"]
    theta = np.array(ref["mode"]["theta"])
    assert abs(model.log_posterior(theta) - ref["mode"]["log_posterior_mode"]) < 1e-4


@pytest.mark.parametrize("theta", [
    [0.2, -0.4, 1.1, 0.3, -0.5, 0.8],
    [0.0, 0.5, -0.3, 4.0, 4.0, -4.0],  # correlations that R-INLA shrinks (not PD)
])
def test_wishart_prior_gradient_matches_differences(theta):
    prior = make_prior("wishart3d", (7, 1, 1, 1, 0, 0, 0))
    theta = np.array(theta)
    g = np.asarray(jax.grad(lambda t: prior.log_density(t))(jnp.asarray(theta)))
    h = 1e-6
    fd = [(float(prior.log_density(theta + h * e)) - float(prior.log_density(theta - h * e))) / (2 * h) for e in np.eye(6)]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_iid3d_recovers_simulated_truth():
    rng = np.random.default_rng(2)
    k, m = 3, 200
    tau = np.array([1.0, 4.0, 0.5])
    rho = np.array([0.6, -0.3, 0.2])
    S = covariance(tau, rho, k)
    u = rng.multivariate_normal(np.zeros(k), S, size=m)  # (m, k): row i is (u_i, v_i, w_i)
    x = u.T.ravel()  # block layout: all u, then all v, then all w
    y = x + rng.normal(0.0, 0.1, x.size)
    data = {"y": y, "i": np.arange(1.0, k * m + 1.0)}
    res = adelia.inla("y ~ -1 + f(i, model='iid3d', n=600)", data, family="gaussian",
                      control_family={"hyper": {"prec": {"initial": np.log(100.0), "fixed": True}}},
                      control_inla={"int_strategy": "eb"})
    hp = res.summary_hyperpar
    truth = dict(zip([f"Precision for i (component {a})" for a in (1, 2, 3)] + ["Rho1:2 for i", "Rho1:3 for i", "Rho2:3 for i"],
                     list(tau) + list(rho)))
    for name, value in truth.items():
        lo, hi = hp.loc[name, "0.025quant"], hp.loc[name, "0.975quant"]
        assert lo < value < hi, f"{name}: truth {value} outside ({lo:.3g}, {hi:.3g})"
    # and the posterior sits near the sample's own moments (the data's information)
    C = np.cov(u.T, bias=True)
    d = np.sqrt(np.diag(C))
    sample = list(1.0 / np.diag(C)) + [C[a, b] / (d[a] * d[b]) for a, b in pairs(k)]
    for (name, _), value in zip(truth.items(), sample):
        assert abs(hp.loc[name, "mean"] - value) < 2.0 * hp.loc[name, "sd"], (name, value)
