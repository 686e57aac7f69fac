"""Several ``jax.distributed`` processes on one machine (CPU, gloo collectives), launched by
``benchmarks/launch_multihost.py``: a batch of θ points sharded over the devices of both
processes, and a whole space-time fit.

The oracle is the one-process computation: every point of a batch is evaluated by the same
single-point program wherever it runs, and every process's driver takes the same steps, so
each process must end with exactly what one process computes alone (to rounding).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "benchmarks" / "launch_multihost.py"


def launch(tmp_path: Path, script: str, processes: int = 2, devices_per_process: int = 1, timeout: int = 240) -> list[dict]:
    """``script`` (its first line joins the run) in ``processes`` processes; each process's
    JSON (the script writes ``argv[1]/<process index>.json``)."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    out = subprocess.run(
        [sys.executable, str(LAUNCHER), "-n", str(processes), "--devices-per-process", str(devices_per_process), "--cpu",
         "--timeout", str(timeout), str(path), str(tmp_path)],
        capture_output=True, text=True, timeout=timeout + 30,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(processes)]


def single(theta, shift, data):
    """One θ point: a while loop and a Cholesky (LAPACK), as a Newton solve has."""
    a = jnp.diag(data + theta[0] ** 2) + 0.1
    x = jax.lax.while_loop(
        lambda c: c[1] < 3 + (theta[1] > 0), lambda c: (c[0] + jnp.linalg.solve(a, c[0]), c[1] + 1), (jnp.ones(5), 0)
    )[0]
    return jnp.sum(x) + shift, {"chol": jnp.linalg.cholesky(a), "x": x}


BATCH = """
    import json, sys
    from adelia.engine import multihost
    multihost.initialize()
    import numpy as np, jax, jax.numpy as jnp
    from adelia.engine.batching import map_points, points_mesh
    from adelia.engine.hoisted_jit import hoisted_jit
    assert jax.process_count() == 2 and len(jax.local_devices()) == 2 and len(jax.devices()) == 4

    data = np.linspace(1.0, 2.0, 5)
    SINGLE
    f = hoisted_jit(lambda theta, shift: single(theta, shift, jnp.asarray(data)))
    rng = np.random.default_rng(0)
    out = {}
    # None: every process's devices; 3: the first three global devices (both of process 0's,
    # one of process 1's); a list of devices of both processes
    for name, devices, sizes in [("all", None, [3, 7]), ("three", 3, [7]), ("list", jax.devices()[1:4], [1])]:
        mesh = points_mesh(devices)
        assert mesh.is_multi_process, name
        run = map_points(f, devices)
        for K in sizes:
            thetas = rng.normal(size=(K, 2))
            value, parts = run(thetas, 0.5)
            out[f"{name}{K}"] = {"thetas": thetas.tolist(), "value": value.tolist(),
                                 "chol": parts["chol"].tolist(), "x": parts["x"].tolist()}
    json.dump(out, open(f"{sys.argv[1]}/{jax.process_index()}.json", "w"))
"""


def test_a_batch_sharded_over_two_processes_is_read_whole_by_each(tmp_path):
    """Four devices over two processes, batches of 1, 3 and 7 points (uneven: padded),
    ``devices`` as None, an int that splits a process's devices, and a list: each process
    reads every point's outputs, equal to the point evaluated alone in this process."""
    script = BATCH.replace("    SINGLE\n", textwrap.indent(inspect.getsource(single), "    "))
    results = launch(tmp_path, script, devices_per_process=2, timeout=120)
    data = jnp.linspace(1.0, 2.0, 5)
    one = jax.jit(lambda t: single(t, 0.5, data))
    assert results[0].keys() == results[1].keys() and len(results[0]) == 4
    for got in results:
        for key, r in got.items():
            for i, theta in enumerate(r["thetas"]):
                value, parts = one(jnp.asarray(theta))
                np.testing.assert_allclose(r["value"][i], value, rtol=1e-12, err_msg=key)
                np.testing.assert_allclose(r["chol"][i], parts["chol"], rtol=1e-12, atol=1e-14, err_msg=key)
                np.testing.assert_allclose(r["x"][i], parts["x"], rtol=1e-12, err_msg=key)


def test_an_error_in_one_process_ends_the_run(tmp_path):
    """Process 1 raises; process 0 would wait (here: sleeps) — the launcher stops it and
    returns the failure at once instead of hanging in jax.distributed's shutdown barrier."""
    path = tmp_path / "fail.py"
    path.write_text(
        "import time\nfrom adelia.engine import multihost\nmultihost.initialize()\nimport jax\n"
        "if jax.process_index() == 1:\n    raise ValueError('process 1 failed')\ntime.sleep(300)\n"
    )
    start = time.monotonic()
    out = subprocess.run([sys.executable, str(LAUNCHER), "-n", "2", "--cpu", str(path)], capture_output=True, text=True, timeout=200)
    assert out.returncode == 1 and "process 1 failed" in out.stderr, out.stderr[-2000:]
    assert time.monotonic() - start < 150


# --- a whole space-time fit ----------------------------------------------------------------------

FIT = """
    import json, sys, warnings

    def summaries():
        import numpy as np, adelia
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(7)
        mesh = adelia.spde.mesh_2d(rng.random((12, 2)), max_edge=(0.35, 0.7), offset=(0.15, 0.3), cutoff=0.1)
        nt = 4
        st = adelia.spde.spacetime_demf(mesh, nt, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(2.0, 0.05))
        loc = rng.random((30 * nt, 2))
        time = np.repeat(np.arange(1, nt + 1), 30)
        A = adelia.spde.make_A(mesh, loc, group=time, n_group=nt)
        y = 1.0 + np.sin(3 * loc[:, 0]) * np.cos(time / 2.0) + rng.standard_normal(time.size) * 0.2
        stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * nt + 1)}, {"b0": np.ones(y.size)}])
        res = adelia.inla("y ~ 0 + b0 + f(st, model=demf)", data=adelia.spde.stack_data(stk), context={"demf": st},
                          control_predictor={"A": adelia.spde.stack_A(stk)}, control_inla={"solver": "bta"})
        tables = {"fixed": res.summary_fixed, "hyperpar": res.summary_hyperpar, "internal": res.internal_summary_hyperpar,
                  "st": res.summary_random["st"].select_dtypes("number")}
        out = {k: np.asarray(v.to_numpy(float)).tolist() for k, v in tables.items()}
        out["mlik"] = np.asarray(res.mlik, float).tolist()
        out["mode"] = np.asarray(res.mode["theta"], float).tolist()
        out["design points"] = int(len(res.posterior.points.theta))
        return out

    if __name__ == "__main__":
        from adelia.engine import multihost
        multihost.initialize()
        import jax
        out = summaries()
        out["devices"] = len(jax.devices())
        json.dump(out, open(f"{sys.argv[1]}/{jax.process_index()}.json", "w"))
"""


@pytest.mark.slow
def test_two_processes_fit_the_space_time_model_of_one(tmp_path):
    """A DEMF space-time model (BTA backend, 4 time blocks of 59 mesh nodes): two processes
    of one device each, the batches of θ points (Hessian stencil, CCD design) sharded over
    both; each process's summaries, mlik and mode equal a one-process fit to 1e-8.
    Slow: each sharded batch compiles its own program (about a minute on 2 busy cores)."""
    results = launch(tmp_path, FIT, devices_per_process=1, timeout=400)
    namespace: dict = {"__name__": "one_process"}
    exec(compile(textwrap.dedent(FIT), "fit", "exec"), namespace)
    want = namespace["summaries"]()
    assert want["design points"] > 1
    for got in results:
        assert got["devices"] == 2
        for key, value in want.items():
            a, b = np.asarray(value, float), np.asarray(got[key], float)
            np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-8 * np.max(np.abs(a)), err_msg=key)
