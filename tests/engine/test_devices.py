"""Batches of θ points sharded over several devices (``control_inla={"devices": k}``).

The oracle is the one-device computation: every point of a batch is evaluated by the same
vmapped program whatever the number of devices, so a fit on k devices must give the summaries
of the fit on one (to rounding). Several CPU devices exist only when
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before jax is imported, so
those checks run in a subprocess; the main test process (one device) checks the errors.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import adelia
from adelia.engine.batching import map_points, points_mesh
from adelia.errors import ControlError

SEEDS = "r ~ x1 + x2 + f(plate, model='iid')"


def run_on_four_devices(script: str, timeout: int = 300) -> str:
    """``script`` in a fresh interpreter with four CPU devices; its stdout (fails on an error)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    prelude = "import numpy as np, jax, adelia\nassert len(jax.devices()) == 4, jax.devices()\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


# --- in the main process (one device) --------------------------------------------------------------


def test_one_device_keeps_todays_path():
    assert points_mesh(None) is None if jax.default_backend() == "cpu" else True
    assert points_mesh(1) is None
    assert points_mesh([jax.devices()[0]]) is None
    assert points_mesh(Mesh(np.array(jax.devices()[:1]), ("points",))) is None
    assert map_points(jax.jit(lambda t: t * 2.0), 1).threaded == (jax.default_backend() == "cpu")


@pytest.mark.parametrize("devices", [0, -1, len(jax.devices()) + 1, True, "two", 2.0, []])
def test_bad_devices_are_named_with_the_available_ones(devices):
    with pytest.raises(ControlError, match=r"devices = .*Available devices: .*" + re.escape(str(jax.devices()[0]))):
        adelia.compile(SEEDS, adelia.datasets.load("Seeds"), family="binomial", Ntrials="n", control_inla={"devices": devices})


def test_a_mesh_needs_a_points_axis():
    mesh = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("time", "space"))
    with pytest.raises(ControlError, match='axes .*"points"'):
        points_mesh(mesh)


# --- in a subprocess with four CPU devices ----------------------------------------------------------


def test_sharded_batches_equal_one_device_for_every_form_of_devices():
    """Uneven batches (K not a multiple of k), ``devices`` as an int, a list and a Mesh, data
    hoisted from the closure, a pytree of outputs and a shared argument, each device's shard
    point by point (the CPU's way) and vmapped (the accelerators' way; its function without
    LAPACK calls, which deadlock as batches on four host devices, see the module); the named
    error for more devices than there are."""
    out = run_on_four_devices(
        """
        import jax.numpy as jnp
        from jax.sharding import Mesh
        from adelia.engine.batching import ShardedPoints, map_points, points_mesh
        from adelia.engine.hoisted_jit import hoisted_jit
        from adelia.errors import ControlError

        data = np.linspace(1.0, 2.0, 5)
        def single(theta, shift):  # closes over data; a while loop and LAPACK, as a Newton solve has
            a = jnp.diag(jnp.asarray(data) + theta[0] ** 2) + 0.1
            x = jax.lax.while_loop(lambda c: c[1] < 3 + (theta[1] > 0), lambda c: (c[0] + jnp.linalg.solve(a, c[0]), c[1] + 1), (jnp.ones(5), 0))[0]
            return jnp.sum(x) + shift, {"chol": jnp.linalg.cholesky(a), "x": x}
        def elementwise(theta, shift):  # the same without LAPACK (vmapped per device)
            a = jnp.outer(jnp.asarray(data), jnp.cos(theta)) + theta[0] ** 2
            x = jax.lax.while_loop(lambda c: c[1] < 3 + (theta[1] > 0), lambda c: (c[0] + a @ jnp.sin(theta) / 7, c[1] + 1), (jnp.ones(5), 0))[0]
            return jnp.sum(x) + shift, {"a": a, "x": x}
        rng = np.random.default_rng(0)
        for fun, vectorised in [(single, False), (elementwise, True)]:
            f = hoisted_jit(fun)
            one = map_points(f, 1)
            for devices in [4, 3, 2, jax.devices()[1:4], Mesh(np.array(jax.devices()), ("points",)),
                            Mesh(np.array(jax.devices()).reshape(2, 2), ("points", "time"))]:
                sharded = ShardedPoints(f, points_mesh(devices), vectorised=vectorised)
                assert not map_points(f, devices).threaded
                for K in [1, 3, 4, 7, 9]:
                    thetas = rng.normal(size=(K, 2))
                    want, got = one(thetas, 0.5), sharded(thetas, 0.5)
                    for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
                        assert g.shape == w.shape, (g.shape, w.shape)
                        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
        try:
            map_points(f, 5)
        except ControlError as e:
            assert str(jax.devices()[3]) in str(e), e
            print("named")
        print("ok")
        """
    )
    assert out.split() == ["named", "ok"]


def test_whole_fit_on_four_devices_equals_one_device():
    """Seeds (binomial, iid; the dense backend) fitted with devices=4: every summary table, the
    mode and mlik equal the one-device fit (host threads); the sparse backend's host kernels
    (XLA FFI) under sharding give the one-device objective and gradient at an uneven batch."""
    out = run_on_four_devices(
        """
        import warnings
        warnings.simplefilter("ignore")
        df = adelia.datasets.load("Seeds")
        f = "r ~ x1 + x2 + f(plate, model='iid')"
        fits = [adelia.inla(f, data=df, family="binomial", Ntrials="n", control_inla=dict(solver="dense", **d),
                            control_predictor={"compute": True}) for d in ({}, {"devices": 4})]
        worst = 0.0
        for name in ["summary.fixed", "summary.hyperpar", "internal.summary.hyperpar", "summary.linear.predictor",
                     "summary.fitted.values"]:
            a, b = (r[name].to_numpy(float) for r in fits)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8))))
        for key, table in fits[0].summary_random.items():
            a, b = (r.summary_random[key].select_dtypes("number").to_numpy(float) for r in fits)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8))))
        for a, b in [(fits[0].mlik, fits[1].mlik), (fits[0].mode["theta"], fits[1].mode["theta"])]:
            a, b = np.asarray(a, float), np.asarray(b, float)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8))))
        print("fit", worst)

        one = adelia.compile(f, df, family="binomial", Ntrials="n", control_inla={"solver": "sparse"})
        four = adelia.compile(f, df, family="binomial", Ntrials="n", control_inla={"solver": "sparse", "devices": 4})
        thetas = one.theta0 + np.linspace(-1.0, 1.0, 5)[:, None]
        lp = np.max(np.abs(four.log_posterior_batch(thetas) / one.log_posterior_batch(thetas) - 1))
        g1, g4 = one.grad_batch(thetas), four.grad_batch(thetas)
        print("sparse", max(lp, float(np.max(np.abs(g4 - g1) / np.maximum(np.abs(g1), 1e-8)))))
        """
    )
    errs = dict(line.split() for line in out.splitlines())
    assert float(errs["fit"]) <= 1e-10, out
    assert float(errs["sparse"]) <= 1e-10, out


def test_bta_fit_on_four_devices_equals_one_device():
    """A Gaussian rw2 model on the BTA backend (the space-time backend, where several devices
    matter; its batched kernels deadlocked as vmapped shards on four host devices): the fit
    with devices=4 equals the one-device fit in every summary and mlik."""
    out = run_on_four_devices(
        """
        import warnings
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(3)
        t = np.arange(1, 61)
        df = {"y": np.sin(t / 8.0) + rng.normal(0, 0.3, t.size), "t": t}
        fits = [adelia.inla("y ~ 1 + f(t, model='rw2')", data=df, family="gaussian", control_inla=dict(solver="bta", **d))
                for d in ({}, {"devices": 4})]
        worst = 0.0
        for name in ["summary.fixed", "summary.hyperpar", "mlik"]:
            a, b = (np.asarray(r[name], float) for r in fits)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8))))
        a, b = (r.summary_random["t"].select_dtypes("number").to_numpy(float) for r in fits)
        print(max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-8)))))
        """,
        timeout=120,
    )
    assert float(out.split()[-1]) <= 1e-10, out
