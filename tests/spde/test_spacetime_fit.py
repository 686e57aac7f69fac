"""DEMF(1,2,1) end to end: a field simulated from the model's own precision at a known θ,
observed with Gaussian noise at random places and times, fitted with
``y ~ 0 + b0 + f(st, model=demf)`` through a stack.

* the compiled model has the BTA layout of the time blocks (n_times blocks of mesh.n nodes,
  the intercept in the arrow);
* the AD gradient of the Laplace objective equals central finite differences on both the
  CHOLMOD (sparse) and the BTA backend, and the two backends agree on the value;
* INLA recovers θ: the truth (range_s, range_t, σ, noise precision) lies inside every 95%
  posterior interval (one fixed seed; the data are not tuned to the answer).
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import adelia

N_TIMES = 8
N_PER_TIME = 60
TRUTH = {"range_s": 0.5, "range_t": 4.0, "sigma": 1.0, "prec": 25.0, "b0": 1.0}


def simulate_demf(st, theta, rng) -> np.ndarray:
    """One draw of x ~ N(0, Q(θ)⁻¹) from the dense Cholesky factor of the model's precision."""
    Q = st.precision(jnp.asarray(theta)).toarray()
    L = np.linalg.cholesky(Q)
    return scipy.linalg.solve_triangular(L.T, rng.standard_normal(Q.shape[0]), lower=False)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    mesh = adelia.spde.mesh_2d(rng.random((40, 2)), max_edge=(0.2, 0.5), offset=(0.15, 0.3), cutoff=0.05)
    st = adelia.spde.spacetime_demf(mesh, N_TIMES, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(2.0, 0.05))
    theta_field = np.log([TRUTH["range_s"], TRUTH["range_t"], TRUTH["sigma"]])
    x = simulate_demf(st, theta_field, rng)
    loc = rng.random((N_PER_TIME * N_TIMES, 2))
    time = np.repeat(np.arange(1, N_TIMES + 1), N_PER_TIME)
    A = adelia.spde.make_A(mesh, loc, group=time, n_group=N_TIMES)
    y = TRUTH["b0"] + A @ x + rng.standard_normal(time.size) / np.sqrt(TRUTH["prec"])
    stk = adelia.spde.stack(
        data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * N_TIMES + 1)}, {"b0": np.ones(y.size)}], tag="est"
    )
    kw = dict(
        formula="y ~ 0 + b0 + f(st, model=demf)",
        data=adelia.spde.stack_data(stk),
        control_predictor={"A": adelia.spde.stack_A(stk)},
        context={"demf": st},
    )
    theta_true = np.r_[np.log(TRUTH["prec"]), theta_field]
    return mesh, kw, theta_true


@pytest.fixture(scope="module")
def models(problem):
    _, kw, _ = problem
    return {b: adelia.compile(**kw, control_inla={"solver": b}) for b in ("sparse", "bta")}


def test_compiles_to_time_blocks(problem, models):
    mesh, kw, _ = problem
    bs = models["bta"].graph.block_structure
    assert (bs.n_blocks, bs.block_size, bs.arrow_size) == (N_TIMES, mesh.n, 1)
    # block t holds time slice t (x[node + n_s·t], 0-based), the arrow the intercept
    n_field = mesh.n * N_TIMES
    np.testing.assert_array_equal(bs.perm[:n_field], np.arange(n_field))
    assert [b.label for b in models["bta"].graph.blocks] == ["st", "b0"] and bs.perm[-1] == n_field
    assert type(models["bta"].graph.solver).__name__ == "BTASolver"
    # "auto" derives the same layout (and picks CHOLMOD on a CPU)
    auto = adelia.compile(**kw).graph
    np.testing.assert_array_equal(auto.block_structure.perm, bs.perm)


@pytest.mark.parametrize("backend", ["sparse", "bta"])
def test_ad_gradient_equals_finite_differences(problem, models, backend):
    _, _, theta_true = problem
    model = models[backend]
    theta = theta_true + np.array([0.2, -0.1, 0.15, 0.1])  # near the truth, not at a stationary point
    g_ad = model.grad_log_posterior(theta)
    g_fd = model.grad_log_posterior(theta, method="fd", step=1e-4)
    assert np.all(np.abs(g_ad) > 0.1)  # a real test of the gradient, not of zeros
    np.testing.assert_allclose(g_ad, g_fd, rtol=1e-5, atol=1e-7 * np.abs(g_fd).max())


def test_backends_agree_on_the_objective(problem, models):
    _, _, theta_true = problem
    # value_and_grad reuses the compiled gradient of the test above (no new trace)
    vals = [models[b].value_and_grad(theta_true)[0] for b in ("sparse", "bta")]
    assert vals[0] == pytest.approx(vals[1], rel=1e-10, abs=1e-8)


def test_recovers_theta(problem, models):
    _, _, theta_true = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = models["sparse"].fit()
    hy = res.internal_summary_hyperpar
    names = ["Log precision for the Gaussian observations", "Theta1 for st", "Theta2 for st", "Theta3 for st"]
    assert list(hy.index) == names
    for name, truth in zip(names, theta_true):
        lo, hi = hy.loc[name, "0.025quant"], hy.loc[name, "0.975quant"]
        assert lo < truth < hi, f"{name}: truth {truth:.3f} outside the 95% interval ({lo:.3f}, {hi:.3f})"
        assert hi - lo < 2.0  # the data are informative: intervals far narrower than the priors'
    b0 = res.summary_fixed.loc["b0"]
    assert b0["0.025quant"] < TRUTH["b0"] < b0["0.975quant"]
