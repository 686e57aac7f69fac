"""Batches of θ points: host threads on the CPU, and one device's vmapped program with its
padded batches, give the same numbers as one point at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adelia
from adelia.engine import batching
from adelia.engine.batching import VmappedPoints, bucket_size, host_workers, map_points, threaded_points
from adelia.engine.hoisted_jit import hoisted_jit
from adelia.inference.optimize import hessian_from_values
from conftest import backend_compiles


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


# --- one device's vmapped program (the accelerators' path, forced on the CPU) ---------------------
# Oracle: the single-point program at each row (every row of the vmapped program is that
# computation, so padding the batch must change nothing), and JAX's monitoring events for
# the programs compiled (one event per XLA compilation or persistent-cache load).


@pytest.fixture
def vmapped_on_host(monkeypatch):
    monkeypatch.setattr(batching, "_VMAPPED_ON_HOST", True)


def _single_point(data: np.ndarray):
    """A single-point function closing over data, with a θ-dependent while loop and a linear
    solve (as a Newton solve has), a pytree of outputs and a shared argument."""

    def single(theta, shift):
        a = jnp.diag(jnp.asarray(data) + theta[0] ** 2) + 0.1 * jnp.outer(jnp.sin(theta), jnp.cos(theta))[0, 0]
        x = jax.lax.while_loop(
            lambda c: c[1] < 2 + (theta[1] > 0), lambda c: (c[0] + jnp.linalg.solve(a, c[0]), c[1] + 1), (jnp.ones(len(data)), 0)
        )[0]
        return jnp.sum(x) + shift, {"x": x, "n": jnp.sum(theta > 0)}

    return hoisted_jit(single)


def test_bucket_sizes_are_powers_of_two_from_eight():
    assert [bucket_size(n) for n in (1, 3, 8, 9, 17, 32, 33)] == [8, 8, 8, 16, 32, 32, 64]
    assert [bucket_size(n, 1) for n in (1, 2, 3, 5)] == [1, 2, 4, 8]


@pytest.mark.parametrize("n", [1, 3, 8, 9])
def test_vmapped_rows_equal_the_single_point_program(vmapped_on_host, n):
    single = _single_point(np.linspace(1.0, 2.0, 5))
    run = map_points(single, 1)
    assert isinstance(run, VmappedPoints) and not run.threaded
    thetas = np.random.default_rng(n).normal(size=(n, 2))
    got = run(thetas, 0.5)
    for i, theta in enumerate(thetas):
        want = single(theta, 0.5)
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            assert g.shape == (n, *np.shape(w))  # the padded rows are dropped
            np.testing.assert_allclose(g[i], w, rtol=1e-12, atol=1e-14)
    # the padded program is the one of bucket_size(n) rows
    assert [key[1][0][0] for key in run.batched._programs] == [(bucket_size(n), 2)]  # (treedef, ((shape, ...), ...))


def test_a_batch_larger_than_max_rows_runs_in_chunks_of_one_program(vmapped_on_host):
    """max_rows (the points a device holds at once, memory.points_at_once): 8 points in
    chunks of 3 (the last padded) give the single-point values, through one program of 3 rows."""
    single = _single_point(np.linspace(1.0, 2.0, 4))
    run = map_points(single, 1)
    run.max_rows = 3
    thetas = np.random.default_rng(5).normal(size=(8, 2))
    got = run(thetas, 0.25)
    for i, theta in enumerate(thetas):
        for w, g in zip(jax.tree.leaves(single(theta, 0.25)), jax.tree.leaves(got)):
            assert g.shape == (8, *np.shape(w))
            np.testing.assert_allclose(g[i], w, rtol=1e-12, atol=1e-14)
    assert [key[1][0][0] for key in run.batched._programs] == [(3, 2)]
    run.max_rows = None  # unlimited again: the bucket of 8 rows
    np.testing.assert_allclose(run(thetas, 0.25)[0], got[0], rtol=1e-12)


def test_a_hessian_and_a_skewness_batch_share_one_program(vmapped_on_host):
    d = 4
    stencil = []
    hessian_from_values(lambda t: stencil.append(len(t)) or -0.5 * np.sum(t**2, axis=1), np.zeros(d), 0.0, step=0.01)
    n_hessian, n_skewness = stencil[0], 2 * d  # 32 and 8 points
    run = map_points(_single_point(np.linspace(1.0, 3.0, 6)), 1)
    rng = np.random.default_rng(2)
    thetas = rng.normal(size=(n_hessian, d))
    assert run(thetas, 0.0)[0].shape == (n_hessian,)
    assert backend_compiles(lambda: run(thetas[:n_skewness] + 0.1, 0.0)) == 0
    assert run.batched._cache_size() == 1
    # a much smaller batch pads to its own bucket instead (at most 4 times its rows)
    assert run(thetas[:3], 0.0)[0].shape == (3,)
    assert run.batched._cache_size() == 2


def test_same_model_structure_on_new_data_compiles_no_new_batch_program(vmapped_on_host):
    rng = np.random.default_rng(4)
    thetas = rng.normal(size=(5, 2))
    first = map_points(_single_point(np.linspace(1.0, 2.0, 5)), 1, {})
    first(thetas, 0.5)
    data = rng.uniform(1.0, 2.0, 5)
    second = map_points(_single_point(data), 1, {})  # a second model: its own data and pool
    assert backend_compiles(lambda: second(thetas, 0.5)) == 0
    np.testing.assert_allclose(second(thetas, 0.5)[0], [float(_single_point(data)(t, 0.5)[0]) for t in thetas], rtol=1e-12)


def test_sharded_programs_are_shared_by_models_and_batch_sizes():
    """Four CPU devices (a subprocess): a second model of the same structure (new data)
    compiles no sharded program, and vectorised, a 32-point and an 8-point batch (8 and 2
    rows per device) share one; the rows equal the single-point program's."""
    from test_devices import run_on_four_devices

    out = run_on_four_devices(
        """
        import jax.numpy as jnp
        from adelia.engine.batching import ShardedPoints, points_mesh
        from adelia.engine.hoisted_jit import hoisted_jit

        compiles = []
        jax.monitoring.register_event_duration_secs_listener(
            lambda event, duration, **kw: compiles.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)

        def model(data):
            return hoisted_jit(lambda theta, shift: (jnp.sum(jnp.asarray(data) * jnp.sin(theta[0])) + shift, theta ** 2))

        rng = np.random.default_rng(0)
        thetas = rng.normal(size=(32, 4))
        mesh = points_mesh(4)
        for vectorised in (False, True):
            first = ShardedPoints(model(np.arange(5.0)), mesh, {}, vectorised=vectorised)
            first(thetas[:8], 0.5)
            data = rng.normal(size=5)
            single = model(data)
            second = ShardedPoints(single, mesh, {}, vectorised=vectorised)
            compiles.clear()
            got = second(thetas[:8], 0.5)
            print(len(compiles))
            want = [single(t, 0.5) for t in thetas[:8]]
            np.testing.assert_allclose(got[0], [float(w[0]) for w in want], rtol=1e-12)
            np.testing.assert_allclose(got[1], np.stack([np.asarray(w[1]) for w in want]), rtol=1e-12)
        third = ShardedPoints(model(np.arange(6.0)), mesh, {}, vectorised=True)  # a new structure
        third(thetas, 0.5)
        compiles.clear()
        third(thetas[:8], 0.5)
        print(len(compiles))
        """
    )
    assert out.split() == ["0", "0", "0"]
