"""The Laplace objective and its exact gradient against independent oracles.

* Gaussian likelihood: log π̃(θ | y) is exact — it equals the multivariate normal log density
  of y (latent field and fixed effects integrated out in closed form) plus log π(θ).
* Reverse-mode AD gradients equal central finite differences for Gaussian, Poisson and
  binomial models with d = 1..6 hyperparameters (ar1, bym2, constrained rw1/rw2, besag).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.stats as st

import adelia


def _chain_graph_adjacency(n: int, extra=((0, 5), (2, 7))) -> sp.csr_matrix:
    rows = list(range(n - 1)) + [a for a, _ in extra]
    cols = list(range(1, n)) + [b for _, b in extra]
    A = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return (A + A.T).tocsr()


def test_gaussian_log_posterior_is_the_exact_marginal_likelihood(rng):
    n, ng = 60, 7
    g = rng.integers(1, ng + 1, n)
    x = rng.normal(size=n)
    y = 1.0 + 0.5 * x + 0.7 * rng.normal(size=ng)[g - 1] + 0.3 * rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    model = adelia.compile(
        "y ~ 1 + x + f(g, model='iid')", df, control_fixed={"prec.intercept": 0.04, "prec": 0.01}, control_inla={"solver": "dense"}
    )
    theta = np.array([2.3, 0.7])  # log τ_obs, log τ_g
    X = np.c_[np.ones(n), x]
    Z = np.eye(ng)[g - 1]
    cov = X @ np.diag([1 / 0.04, 1 / 0.01]) @ X.T + Z @ Z.T / np.exp(theta[1]) + np.eye(n) / np.exp(theta[0])
    # loggamma(1, 5e-5) on τ = e^θ, density of θ: b e^θ exp(−b e^θ)
    log_prior = sum(np.log(5e-5) + t - 5e-5 * np.exp(t) for t in theta)
    exact = st.multivariate_normal(np.zeros(n), cov).logpdf(y) + log_prior
    assert model.log_posterior(theta) == pytest.approx(exact, abs=1e-8)


def test_gaussian_mode_is_one_exact_newton_step(rng):
    """A Gaussian likelihood: the inner Newton iteration stops after its first step, which is
    already the conditional mean E[η | y, θ] = K (K + I/τ)⁻¹ y (K the prior covariance of η)."""
    import jax.numpy as jnp

    n, ng = 50, 6
    g = rng.integers(1, ng + 1, n)
    x = rng.normal(size=n)
    y = 0.5 + x + 0.8 * rng.normal(size=ng)[g - 1] + 0.4 * rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    model = adelia.compile("y ~ 1 + x + f(g, model='iid')", df, control_fixed={"prec.intercept": 0.04, "prec": 0.01})
    assert model.laplace.obs.quadratic
    theta = np.array([1.7, 0.3])
    full = model.layout.expand(jnp.asarray(theta))
    mode, status = model.laplace._newton(full, jnp.full(model.graph.n_latent, 3.0))
    assert int(status.iterations) == 1 and bool(status.converged)
    eta = np.asarray(model.graph.predictor(model.graph.a_values(full), mode))
    X, Z = np.c_[np.ones(n), x], np.eye(ng)[g - 1]
    K = X @ np.diag([1 / 0.04, 1 / 0.01]) @ X.T + Z @ Z.T / np.exp(theta[1])
    np.testing.assert_allclose(eta, K @ np.linalg.solve(K + np.eye(n) / np.exp(theta[0]), y), atol=1e-10)
    # ... so the VB mean correction, which the fit therefore skips for such models, is zero
    from adelia.inference.run import _point_function

    out = _point_function(model, True)(jnp.asarray(theta), mode)
    assert int(out[-1]) >= 1  # it ran
    np.testing.assert_allclose(out[2], out[1], atol=1e-9)  # corrected mean = mode
    pois = adelia.compile("y ~ 1 + f(g, model='iid')", df.assign(y=rng.poisson(2.0, n)), family="poisson")
    assert not pois.laplace.obs.quadratic
    status = pois.laplace._newton(pois.layout.expand(pois.theta0), jnp.zeros(pois.graph.n_latent))[1]
    assert int(status.iterations) > 1 and bool(status.converged)


def _fd_gradient(model, theta, h=1e-4):
    out = np.zeros(theta.size)
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = h
        out[j] = (model.log_posterior(theta + e) - model.log_posterior(theta - e)) / (2 * h)
    return out


def _data(rng, n=80):
    t = np.arange(1, n + 1)
    region = rng.integers(1, 13, n)
    g = rng.integers(1, 9, n)
    x = rng.normal(size=n)
    eta = 0.3 + 0.4 * x + 0.5 * np.sin(t / 9) + 0.3 * rng.normal(size=8)[g - 1]
    return pd.DataFrame(
        {
            "t": t,
            "t2": t,
            "region": region,
            "g": g,
            "x": x,
            "ygauss": eta + 0.4 * rng.normal(size=n),
            "ypois": rng.poisson(np.exp(eta)),
            "ybin": rng.binomial(10, 1 / (1 + np.exp(-eta))),
            "N": np.full(n, 10),
        }
    )


CASES = [
    # (formula rhs, family, theta at which to check) — d from 1 to 6
    ("1 + x + f(g, model='iid')", "poisson", [1.2]),
    ("1 + x + f(t, model='ar1')", "binomial", [0.5, 1.0]),
    ("1 + f(t, model='rw2') + f(g, model='iid')", "poisson", [3.0, 1.5]),
    ("1 + x + f(region, model='bym2', graph=G) + f(t, model='rw1')", "binomial", [0.4, -0.5, 2.0]),
    ("1 + f(t, model='ar1') + f(region, model='besag', graph=G) + f(g, model='iid')", "gaussian", [1.5, 0.8, 1.2, 1.0, 1.1]),
    ("1 + x + f(t, model='ar1') + f(t2, model='rw1') + f(region, model='bym2', graph=G)", "gaussian", [1.5, 0.5, 0.6, 2.5, 0.3, 0.2]),
]


@pytest.mark.parametrize("rhs,family,theta", CASES)
def test_ad_gradient_equals_finite_differences(rng, rhs, family, theta):
    df = _data(rng)
    G = _chain_graph_adjacency(12)
    y = {"gaussian": "ygauss", "poisson": "ypois", "binomial": "ybin"}[family]
    kw = {"Ntrials": "N"} if family == "binomial" else {}
    model = adelia.compile(f"{y} ~ {rhs}", df, family=family, context={"G": G}, **kw)
    theta = np.asarray(theta, dtype=float)
    assert theta.size == len(model.theta_names)
    ad = model.grad_log_posterior(theta)
    fd = _fd_gradient(model, theta)
    assert np.all(np.isfinite(ad))
    np.testing.assert_allclose(ad, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))


def test_log_posterior_does_not_recompile_per_theta(rng):
    df = _data(rng)
    model = adelia.compile("ypois ~ 1 + x + f(g, model='iid')", df, family="poisson")
    model.log_posterior(np.array([1.0]))
    size = model._f._cache_size()
    for t in (0.0, 2.0, 3.5):
        model.log_posterior(np.array([t]))
        model.grad_log_posterior(np.array([t]))
    assert model._f._cache_size() == size


def test_fd_gradient_method_is_the_r_inla_baseline(rng):
    df = _data(rng)
    model = adelia.compile("ypois ~ 1 + x + f(g, model='iid') + f(t, model='ar1')", df, family="poisson")
    theta = np.array([1.0, 0.5, 1.0])
    np.testing.assert_allclose(model.grad_log_posterior(theta, method="fd", step=1e-4), model.grad_log_posterior(theta), rtol=1e-5)
    with pytest.raises(ValueError, match="gradient method"):
        model.grad_log_posterior(theta, method="nope")


def test_newton_halves_a_first_step_that_overflows():
    """Large counts: the undamped first Newton step from x = 0 sends exp(η) to infinity; step
    halving must bring it back and the objective and gradient stay finite and correct."""
    rng = np.random.default_rng(5)
    n = 400
    g = rng.integers(1, 41, n)
    t = rng.integers(1, 41, n)
    eta = 4.0 + 0.8 * rng.normal(size=40)[g - 1] + np.sin(t / 6)
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "g": g, "t": t})
    model = adelia.compile("y ~ 1 + f(g, model='iid') + f(t, model='ar1')", df, family="poisson")
    theta = model.theta0 + 0.1
    status = model.laplace._newton(model.layout.expand(theta), np.zeros(model.graph.n_latent))[1]
    assert bool(status.converged) and bool(status.finite)
    np.testing.assert_allclose(model.grad_log_posterior(theta), _fd_gradient(model, theta), rtol=1e-5)
