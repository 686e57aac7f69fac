"""Batches of θ points: host threads on the CPU give the same numbers as one point at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adelia
from adelia.engine.batching import host_workers, threaded_points


def test_threaded_points_equal_a_loop_and_a_vmap():
    @jax.jit
    def single(theta, shift):
        return jnp.sum(jnp.sin(theta)) + shift, {"sq": theta**2}

    thetas = np.random.default_rng(0).normal(size=(7, 3))
    vals, tree = threaded_points(single, thetas, 0.5, workers=3)
    loop = [single(t, 0.5) for t in thetas]
    np.testing.assert_array_equal(vals, np.array([float(v) for v, _ in loop]))
    np.testing.assert_array_equal(tree["sq"], np.stack([np.asarray(t["sq"]) for _, t in loop]))
    vv, vt = jax.jit(jax.vmap(single, in_axes=(0, None)))(jnp.asarray(thetas), 0.5)
    np.testing.assert_allclose(vals, vv, rtol=1e-15)
    np.testing.assert_allclose(tree["sq"], vt["sq"], rtol=1e-15)


def test_worker_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("ADELIA_NUM_THREADS", "3")
    assert host_workers() == 3
    monkeypatch.delenv("ADELIA_NUM_THREADS")
    assert host_workers() >= 1


@pytest.mark.parametrize("n_groups", [20, 800])  # the tiny-model path and the plain one
def test_log_posterior_batch_equals_single_evaluations(n_groups):
    rng = np.random.default_rng(1)
    g = rng.integers(1, n_groups + 1, 2000)
    df = {"y": rng.poisson(np.exp(0.3 + rng.normal(0, 0.4, n_groups)[g - 1])), "g": g}
    model = adelia.compile("y ~ 1 + f(g, model='iid')", df, family="poisson")
    thetas = model.theta0 + np.linspace(-0.5, 0.5, 5)[:, None]
    batch = model.log_posterior_batch(thetas)
    single = [model.log_posterior(t) for t in thetas]
    np.testing.assert_allclose(batch, single, rtol=1e-9)
    grads = model.grad_batch(thetas)
    np.testing.assert_allclose(grads, np.stack([model.grad_log_posterior(t) for t in thetas]), rtol=1e-7, atol=1e-9)
