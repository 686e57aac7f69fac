"""User-defined latent models (adelia.models.custom).

Oracles: the built-in models the custom ones rewrite (ar1: the whole fit to 1e-8; besagproper2
and rw1: the Laplace objective at several θ), central finite differences of the objective for
the AD gradient, dense eigen-decompositions for the normalising constants, and the module's
own doctest.
"""

from __future__ import annotations

import doctest
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.errors import ModelError
from adelia.models.registry import make_prior

custom_module = importlib.import_module("adelia.models.custom")


# ---- ar1 written as a custom model --------------------------------------------------------------
def ar1_custom(n: int, closed_form_normaliser: bool = True):
    """R-INLA's ar1 (θ₁ = log marginal precision κ, θ₂ = log((1+ρ)/(1−ρ)); loggamma(1, 5e-05),
    normal(0, 0.15); initial 4, 2) written with adelia.models.custom."""
    i = np.arange(n)
    rows, cols = np.concatenate([i, i[1:]]), np.concatenate([i, i[:-1]])
    on_diag = rows == cols
    ends = on_diag & ((rows == 0) | (rows == n - 1))
    inner, end, off = (jnp.asarray(m * 1.0) for m in (on_diag & ~ends, ends, ~on_diag))
    prior_prec, prior_rho = make_prior("loggamma", (1.0, 5e-05)), make_prior("normal", (0.0, 0.15))

    def precision(theta):
        rho = jnp.tanh(0.5 * theta[1])
        return jnp.exp(theta[0]) / (1.0 - rho**2) * ((1.0 + rho**2) * inner + end - rho * off)

    def log_prior(theta):
        return prior_prec.log_density(theta[0]) + prior_rho.log_density(theta[1])

    def log_normaliser(theta):  # ½ n log(κ/(1−ρ²)) + ½ log(1−ρ²) − ½ n log 2π
        log1m = jnp.log1p(-jnp.tanh(0.5 * theta[1]) ** 2)
        return 0.5 * n * (theta[0] - log1m) + 0.5 * log1m - 0.5 * n * np.log(2 * np.pi)

    return adelia.models.custom(
        precision, (rows, cols), log_prior=log_prior, theta0=[4.0, 2.0],
        names=[("Log precision for {label}", "Precision for {label}"), ("Rho_intern for {label}", "Rho for {label}")],
        to_user=[jnp.exp, lambda t: jnp.tanh(0.5 * t)],
        log_normaliser=log_normaliser if closed_form_normaliser else None,
    )


@pytest.fixture(scope="module")
def ar1_data():
    rng = np.random.default_rng(7)
    n, reps = 25, 3
    x = np.zeros(n)
    x[0] = rng.normal()
    for t in range(1, n):
        x[t] = 0.7 * x[t - 1] + np.sqrt(1 - 0.49) * rng.normal()
    t = np.repeat(np.arange(1, n + 1), reps)
    return pd.DataFrame({"t": t, "y": 1.0 + x[t - 1] + 0.4 * rng.normal(size=t.size)}), n


def _numbers(df):
    return df.select_dtypes("number").to_numpy()


def test_ar1_as_custom_model_gives_the_builtin_fit(ar1_data):
    df, n = ar1_data
    my_ar1 = ar1_custom(n)
    builtin = adelia.inla("y ~ 1 + f(t, model='ar1')", df)
    mine = adelia.inla("y ~ 1 + f(t, model=my_ar1)", df)  # the model found among the caller's variables
    assert list(mine.summary_hyperpar.index) == list(builtin.summary_hyperpar.index)
    assert list(mine.summary_fixed.index) == list(builtin.summary_fixed.index)
    for a, b in ((mine.summary_fixed, builtin.summary_fixed), (mine.summary_hyperpar, builtin.summary_hyperpar),
                 (mine.summary_random["t"], builtin.summary_random["t"]),
                 (mine.internal_summary_hyperpar, builtin.internal_summary_hyperpar)):
        np.testing.assert_allclose(_numbers(a), _numbers(b), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(mine.mlik), np.asarray(builtin.mlik), rtol=0, atol=1e-8)


def test_adelia_computes_the_normaliser_of_a_proper_custom_model(ar1_data):
    """log_normaliser=None: ½ log|Q(θ)| from the sparse Cholesky factor equals ar1's closed form."""
    df, n = ar1_data
    my_ar1 = ar1_custom(n, closed_form_normaliser=False)
    assert my_ar1.log_normaliser(jnp.array([1.0, 0.5])) is None
    builtin = adelia.compile("y ~ 1 + f(t, model='ar1')", df)
    mine = adelia.compile("y ~ 1 + f(t, model=m)", df, context={"m": my_ar1})
    for theta in ([1.0, 0.5, 2.0], [0.0, 3.0, -1.5]):
        theta = np.asarray(theta)
        assert mine.log_posterior(theta) == pytest.approx(builtin.log_posterior(theta), rel=1e-11, abs=1e-9)
    theta = np.array([2.5, -1.0, 0.3])
    np.testing.assert_allclose(mine.grad_log_posterior(theta), builtin.grad_log_posterior(theta), rtol=1e-7, atol=1e-8)


# ---- a Leroux CAR model (R-INLA's besagproper2) ---------------------------------------------------
def chain_graph_laplacian(n):
    R = np.zeros((n, n))
    for a in range(n - 1):
        R[a, a + 1] = R[a + 1, a] = -1.0
    R[np.diag_indices(n)] = -R.sum(axis=1)
    return R


def leroux_custom(R):
    rows, cols = np.nonzero(np.tril(R))
    r_vals, diag = jnp.asarray(R[rows, cols]), jnp.asarray((rows == cols) * 1.0)
    prior_prec, prior_lam = make_prior("loggamma", (1.0, 0.0005)), make_prior("gaussian", (0.0, 0.45))

    def precision(theta):
        tau, lam = jnp.exp(theta[0]), jax.nn.sigmoid(theta[1])
        return tau * ((1.0 - lam) * diag + lam * r_vals)

    return adelia.models.custom(
        precision, (rows, cols), theta0=[2.0, 3.0],
        log_prior=lambda t: prior_prec.log_density(t[0]) + prior_lam.log_density(t[1]),
        names=[("Log precision for {label}", "Precision for {label}"), ("Logit lambda for {label}", "Lambda for {label}")],
        to_user=[jnp.exp, jax.nn.sigmoid])


@pytest.fixture(scope="module")
def area_data():
    rng = np.random.default_rng(11)
    n = 12
    region = np.tile(np.arange(1, n + 1), 4)
    x = rng.normal(-0.2, 0.3, size=region.size)
    return pd.DataFrame({"region": region, "x": x, "y": rng.poisson(np.exp(0.5 + x + 0.3 * np.sin(region)))}), n


def test_leroux_custom_model_is_besagproper2(area_data):
    df, n = area_data
    R = chain_graph_laplacian(n)
    G = (np.abs(R) > 0) & ~np.eye(n, dtype=bool)
    leroux = leroux_custom(R)
    builtin = adelia.compile("y ~ 1 + x + f(region, model='besagproper2', graph=G)", df, family="poisson",
                             context={"G": G.astype(float)})
    mine = adelia.compile("y ~ 1 + x + f(region, model=leroux)", df, family="poisson", context={"leroux": leroux})
    assert mine.theta_names == builtin.theta_names
    for theta in ([2.0, 3.0], [0.5, -1.0], [1.5, 0.7]):
        theta = np.asarray(theta)
        assert mine.log_posterior(theta) == pytest.approx(builtin.log_posterior(theta), rel=1e-10, abs=1e-8)


def test_ad_gradient_through_a_custom_model_equals_finite_differences(area_data):
    df, n = area_data
    leroux = leroux_custom(chain_graph_laplacian(n))
    model = adelia.compile("y ~ 1 + x + f(region, model=leroux)", df, family="poisson", context={"leroux": leroux})
    for theta in (np.array([1.2, 0.4]), np.array([2.5, -0.8])):
        ad = model.grad_log_posterior(theta)
        h = 1e-4
        fd = np.array([(model.log_posterior(theta + h * e) - model.log_posterior(theta - h * e)) / (2 * h)
                       for e in np.eye(theta.size)])
        assert np.all(np.isfinite(ad))
        np.testing.assert_allclose(ad, fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))


# ---- an intrinsic custom model: rw1 -----------------------------------------------------------------
def test_intrinsic_custom_model_normaliser_is_the_generalised_determinant(ar1_data):
    """rw1 as a custom model (rankdef=1): the objective differs from the built-in rw1 by the θ-free
    ½ log|R|* that R-INLA's rw1 drops, and the dense normaliser equals ½ Σ log(non-zero eigenvalues)."""
    df, n = ar1_data
    R = chain_graph_laplacian(n)
    rows, cols = np.nonzero(np.tril(R))
    r_vals = jnp.asarray(R[rows, cols])
    prior = make_prior("loggamma", (1.0, 5e-05))
    rw1 = adelia.models.custom(lambda t: jnp.exp(t[0]) * r_vals, (rows, cols), rankdef=1, theta0=[4.0],
                               log_prior=lambda t: prior.log_density(t[0]),
                               names=[("Log precision for {label}", "Precision for {label}")], to_user=jnp.exp)
    w = np.linalg.eigvalsh(R)[1:]
    for t in (0.0, 1.7):
        expected = 0.5 * ((n - 1) * t + np.sum(np.log(w))) - 0.5 * (n - 1) * np.log(2 * np.pi)
        assert float(rw1.log_normaliser(jnp.array([t]))) == pytest.approx(expected, rel=1e-12)
    builtin = adelia.compile("y ~ 1 + f(t, model='rw1')", df)
    mine = adelia.compile("y ~ 1 + f(t, model=rw1, constr=TRUE)", df, context={"rw1": rw1})
    diffs = [mine.log_posterior(th) - builtin.log_posterior(th) for th in (np.array([1.0, 2.0]), np.array([0.3, 3.0]))]
    np.testing.assert_allclose(diffs, 0.5 * np.sum(np.log(w)), rtol=0, atol=1e-8)


def test_names_default_and_label_substitution():
    m = adelia.models.custom(lambda t: jnp.exp(t) * jnp.ones(2), (np.arange(2), np.arange(2)),
                             log_prior=lambda t: -0.5 * t[0] ** 2, theta0=[0.0])
    bound, index, ids = m.from_term("g", np.array([2.0, 1.0, np.nan]), {})
    assert [h.internal_name for h in bound.hyperparameters] == ["Theta1 for g"]
    assert index.tolist() == [1, 0, -1] and ids.tolist() == [1.0, 2.0]
    assert bound.label == "g" and m.label == "custom"  # binding copies the model


def test_own_constraints_and_f_constraints_stack():
    A = np.array([[1.0, 0.0, -1.0]])
    m = adelia.models.custom(lambda t: jnp.exp(t[0]) * jnp.ones(3), (np.arange(3), np.arange(3)),
                             log_prior=lambda t: 0.0 * t[0], theta0=[1.0], constraints={"A": A, "e": [0.5]})
    bound, _, _ = m.from_term("g", np.array([1.0, 2.0, 3.0]), {"constr": True})
    C = bound.constraints()
    np.testing.assert_allclose(C.C, np.vstack([A, np.ones((1, 3))]))
    np.testing.assert_allclose(C.e, [0.5, 0.0])


# ---- bad custom models -----------------------------------------------------------------------------
DIAG3 = (np.arange(3), np.arange(3))


def _custom(**kw):
    args = dict(precision=lambda t: jnp.exp(t[0]) * jnp.ones(3), pattern=DIAG3, log_prior=lambda t: -t[0] ** 2,
                theta0=[0.0])
    args.update(kw)
    return adelia.models.custom(**args)


@pytest.mark.parametrize("kw,match", [
    (dict(names=["a", "b"]), r"2 names for 1 hyperparameters"),
    (dict(theta0=[0.0, 1.0], names=["a"]), r"1 names for 2 hyperparameters \(theta0 has 2 values\)"),
    (dict(names=["a"], to_user=[jnp.exp, jnp.exp]), r"to_user has 2 maps for 1"),
    (dict(theta0=[np.nan]), r"theta0 must be finite"),
    (dict(pattern=(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 0])), n=3), r"\(3, 0\) lies outside the 3 x 3"),
    (dict(pattern=(np.array([0, 1, -1]), np.array([0, 1, 0]))), r"outside"),
    (dict(pattern=(np.array([0, 2]), np.array([0, 2])), precision=lambda t: jnp.ones(2)), r"lacks 1 diagonal entry \(1, 1\)"),
    (dict(pattern=(np.array([0, 1, 2, 1]), np.array([0, 1, 2, 1])), precision=lambda t: jnp.ones(4)), r"\(1, 1\) is given 2 times"),
    (dict(precision=lambda t: jnp.ones(4)), r"returned shape \(4,\), but the pattern has 3 entries"),
    (dict(precision=lambda t: jnp.array([1.0, jnp.nan, 1.0]) * t[0]), r"non-finite value.*\(1, 1\)"),
    (dict(precision=lambda t: np.exp(np.asarray(t)) * np.ones(3)), r"jax.numpy"),
    (dict(pattern=(np.array([0, 1, 2, 1, 0]), np.array([0, 1, 2, 0, 1])),
          precision=lambda t: jnp.array([2.0, 2.0, 2.0, -1.0, -0.5])), r"not symmetric: Q\[1, 0\] = -1 but Q\[0, 1\] = -0.5"),
    (dict(precision=lambda t: jnp.array([1.0, -1.0, 1.0])), r"not positive definite: its smallest eigenvalue is -1"),
    (dict(pattern=(np.array([0, 1, 1]), np.array([0, 1, 0])), precision=lambda t: jnp.array([1.0, 1.0, -1.0]), n=2),
     r"1 \(numerically\) zero eigenvalue\(s\) but rankdef=0; declare rankdef=1"),
    (dict(rankdef=1), r"0 \(numerically\) zero eigenvalue\(s\) but rankdef=1"),
    (dict(log_prior=lambda t: jnp.ones(2)), r"log_prior\(theta0\) must be one finite number"),
    (dict(log_normaliser=lambda t: jnp.inf * t[0]), r"log_normaliser\(theta0\) must be one finite number"),
    (dict(rankdef=-1), r"rankdef must be a non-negative integer"),
    (dict(precision="Q"), r"precision must be a function"),
])
def test_bad_custom_models_are_refused_with_a_clear_error(kw, match):
    with pytest.raises(ModelError, match=match):
        _custom(**kw)


def test_theta_dependent_null_space_needs_log_normaliser():
    # Q(θ) = [[a, −a], [−a, a]] + diag(0, 0)... the null vector (1, θ) moves with θ
    rows, cols = np.array([0, 1, 1]), np.array([0, 1, 0])
    with pytest.raises(ModelError, match="null space of Q\\(θ\\) changes with θ"):
        adelia.models.custom(lambda t: jnp.stack([t[0] ** 2, jnp.ones(()), -t[0]]), (rows, cols), rankdef=1,
                             theta0=[1.0], log_prior=lambda t: 0.0 * t[0])


def test_f_arguments_a_custom_model_does_not_take():
    m = _custom()
    with pytest.raises(ModelError, match="argument 'hyper' is not used by a custom model"):
        m.from_term("g", np.array([1.0, 2.0, 3.0]), {"hyper": {"theta1": {"initial": 1}}})
    with pytest.raises(ModelError, match="n=4 but the custom model has 3 nodes"):
        m.from_term("g", np.array([1.0, 2.0, 3.0]), {"n": 4})
    with pytest.raises(ModelError, match="extraconstr"):
        m.from_term("g", np.array([1.0, 2.0, 3.0]), {"extraconstr": {"A": np.ones((1, 4)), "e": [0.0]}})


def test_module_docstring_examples_run():
    result = doctest.testmod(custom_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
