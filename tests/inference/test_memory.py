"""The fit's memory estimate (adelia/inference/memory.py): close to the measured peak, and a
fit that cannot fit fails before any numeric work with both numbers in the message."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import adelia
from adelia.inference import memory


def _poisson_iid(ng: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=ng)
    u = rng.normal(size=ng) / 2.0
    y = rng.poisson(np.exp(0.5 + 0.3 * x + u))
    return pd.DataFrame({"y": y, "x": x, "g": np.arange(1, ng + 1)})


# A fresh process, so that the resident set is not inflated by earlier tests: compile, estimate,
# then sample the RSS on a thread while run_inla runs and report the peak growth.
_MEASURE = textwrap.dedent(
    """
    import json, threading, time, sys
    import numpy as np, pandas as pd
    import adelia
    from adelia.inference.memory import estimate_fit_memory
    from adelia.inference.run import run_inla

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    ng = int(sys.argv[1])
    rng = np.random.default_rng(1)
    x = rng.normal(size=ng); u = rng.normal(size=ng) / 2.0
    df = pd.DataFrame({"y": rng.poisson(np.exp(0.5 + 0.3 * x + u)), "x": x, "g": np.arange(1, ng + 1)})
    model = adelia.compile("y ~ x + f(g, model='iid')", df, family="poisson")
    est = estimate_fit_memory(model)
    start = peak = rss()
    done = False
    def sample():
        global peak
        while not done:
            peak = max(peak, rss()); time.sleep(0.005)
    t = threading.Thread(target=sample); t.start()
    run_inla(model)
    done = True; t.join()
    print(json.dumps({"estimate": est.total, "growth": max(peak, rss()) - start}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_estimate_is_within_a_factor_two_of_the_measured_peak():
    out = subprocess.run([sys.executable, "-c", _MEASURE, "60000"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = r["estimate"] / r["growth"]
    assert 0.5 <= ratio <= 2.0, r


def test_estimate_terms_follow_the_structure():
    model = adelia.compile("y ~ x + f(g, model='iid')", _poisson_iid(2000), family="poisson")
    est = memory.estimate_fit_memory(model, threads=2)
    assert est.sizes["n_latent"] == 2002 and est.sizes["design points"] == 11
    # iid + two fixed effects: the factor holds about the 3n entries of Q_c (arrowhead)
    assert 3 * 2002 <= est.sizes["factor"] <= 4 * 2002
    assert est.total == pytest.approx(sum(est.terms.values()))
    assert est.terms["vb"] > 0  # Poisson: the VB mean correction runs
    gauss = adelia.compile("y ~ x + f(g, model='iid')", _poisson_iid(2000).astype({"y": float}), family="gaussian")
    assert memory.estimate_fit_memory(gauss).terms["vb"] == 0


def test_fit_that_cannot_fit_raises_before_any_numeric_work(monkeypatch, capsys):
    model = adelia.compile("y ~ x + f(g, model='iid')", _poisson_iid(3000), family="poisson")
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    est = memory.estimate_fit_memory(model)
    with pytest.raises(MemoryError) as info:
        model.fit(verbose=True)
    msg = str(info.value)
    assert f"{est.total / 1e9:.3g} GB" in msg and "1e-06 GB is available" in msg
    # nothing was compiled or evaluated: no objective program, the warm start untouched
    assert model._f._cache_size() == 0 and model._vg._cache_size() == 0
    assert not np.any(model._x_warm)
    assert "fit memory estimate" in capsys.readouterr().out


def test_the_check_can_be_skipped(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    res = adelia.inla("y ~ x + f(g, model='iid')", _poisson_iid(200), family="poisson",
                      control_inla={"memory.check": False})
    assert np.isfinite(res.summary_fixed["mean"]).all()
    model = adelia.compile("y ~ x + f(g, model='iid')", _poisson_iid(200), family="poisson")
    monkeypatch.setenv(memory.SKIP_ENV, "1")
    res = model.fit()
    assert np.isfinite(res.summary_fixed["mean"]).all()


def test_available_memory_reads_the_system():
    avail = memory.available_memory()
    assert avail is None or avail > 0


def test_vb_correction_by_products_equals_the_column_path(monkeypatch):
    """Large models run the VB correction with products Σ v instead of the n × m columns
    Σ_{:,S} (run.vb_products); forced on a small model it must give the same posterior."""
    from adelia.inference import run

    df = _poisson_iid(3000)
    reference = adelia.inla("y ~ x + f(g, model='iid')", df, family="poisson")
    assert not run.vb_products(3002, 30)  # the default path above
    monkeypatch.setattr(run, "VB_COLUMNS_MAX_BYTES", 0)
    monkeypatch.setattr(run, "VB_BLOCK_NUMBERS", 3 * 3002)  # three unit columns per solve
    products = adelia.inla("y ~ x + f(g, model='iid')", df, family="poisson")
    assert np.max(products.posterior.points.vb_iterations) > 0  # the correction ran
    for table in ("summary_fixed", "summary_hyperpar"):
        a, b = getattr(reference, table), getattr(products, table)
        np.testing.assert_allclose(b.to_numpy(dtype=float), a.to_numpy(dtype=float), rtol=1e-9, atol=1e-12)
    a, b = reference.summary_random["g"], products.summary_random["g"]
    cols = ["mean", "sd", "0.5quant"]
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].to_numpy(), rtol=1e-9, atol=1e-9 * a["sd"].min())


# --- per device: the BTA backend's factor, selected inverse and batch (memory.check_device_memory) ---


def _spacetime(nt: int = 4, **control):
    """A small DEMF space-time model on the BTA backend (nt time blocks of the mesh's nodes)."""
    rng = np.random.default_rng(7)
    mesh = adelia.spde.mesh_2d(rng.random((12, 2)), max_edge=(0.35, 0.7), offset=(0.15, 0.3), cutoff=0.1)
    st = adelia.spde.spacetime_demf(mesh, nt, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(2.0, 0.05))
    loc = rng.random((20 * nt, 2))
    time = np.repeat(np.arange(1, nt + 1), 20)
    A = adelia.spde.make_A(mesh, loc, group=time, n_group=nt)
    y = 1.0 + np.sin(3 * loc[:, 0]) + rng.standard_normal(time.size) * 0.2
    stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * nt + 1)}, {"b0": np.ones(y.size)}])
    return adelia.compile("y ~ 0 + b0 + f(st, model=demf)", data=adelia.spde.stack_data(stk), context={"demf": st},
                          control_predictor={"A": adelia.spde.stack_A(stk)}, control_inla={"solver": "bta", **control})


@pytest.fixture(scope="module")
def spacetime():
    return _spacetime()


def test_bta_factor_numbers_count_the_kernels_arrays(spacetime):
    """The factor and selected inverse of bta.py (their shapes, jax.eval_shape) hold the
    numbers of bta_factor_numbers, less the one sub-diagonal block that does not exist; split
    over P time partitions a device holds its share plus the boundaries and reduced system."""
    import jax

    from adelia.engine import bta

    solver = spacetime.graph.solver
    bs = solver.block_structure
    Q = jax.eval_shape(solver.bta_matrix, jax.ShapeDtypeStruct((spacetime.graph.posterior_pattern.nnz,), np.float64))
    numbers = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))  # noqa: E731
    n_b, b, a = bs.n_blocks, bs.block_size, bs.arrow_size
    assert (n_b, a) == (4, 1)
    want = memory.bta_factor_numbers(n_b, b, a)
    assert numbers(jax.eval_shape(bta.cholesky, Q)) == want - b * b
    assert numbers(jax.eval_shape(bta.selected_inverse, Q)) == want - b * b
    # P = 2 partitions of 2 blocks: no interior, only the reduced system of 4 boundary blocks
    assert memory.bta_factor_numbers(n_b, b, a, 2) == 4 * (2 * b * b + a * b) + 1
    # 3 blocks per partition (n_b = 12, P = 4): one interior block each, with its fill block
    assert memory.bta_factor_numbers(12, b, a, 4) == (3 * b * b + a * b) + 8 * (2 * b * b + a * b) + 1
    assert memory.bta_factor_numbers(100, b, a, 4) < memory.bta_factor_numbers(100, b, a) / 2


def test_device_estimate_terms_follow_the_structure(spacetime):
    est = memory.estimate_device_memory(spacetime, 1, 1)
    bs = spacetime.graph.solver.block_structure
    B = est.sizes["points at once"]
    F = memory.bta_factor_numbers(bs.n_blocks, bs.block_size, bs.arrow_size)
    assert est.terms["factor"] == est.terms["selected inverse"] == est.terms["precision"] == B * 8 * F
    assert est.sizes["batch"] >= 9  # d = 4: a CCD design or the Hessian stencil (2d² = 32)
    split = memory.estimate_device_memory(spacetime, 1, 2)
    assert split.terms["factor"] == 8 * memory.bta_factor_numbers(bs.n_blocks, bs.block_size, bs.arrow_size, 2)
    # a device assembles its 2 of the 4 blocks, and keeps Σ on them and on the reduced system's 4
    per_block = 2 * bs.block_size**2 + bs.arrow_size * bs.block_size
    assert split.terms["precision"] == 8 * (2 * per_block + bs.arrow_size**2)
    assert split.terms["selected inverse"] == 8 * (2 * per_block + bs.arrow_size**2 + 4 * per_block)
    # the sparse backend's kernels run on the host: no device estimate
    assert memory.estimate_device_memory(_spacetime(solver="sparse")) is None


def test_an_accelerator_that_holds_few_points_runs_its_batches_in_chunks(monkeypatch):
    """On an accelerator (the vmapped path, forced here on the CPU) whose stated memory holds
    the programs' data and 3 points but not the padded batch: points_at_once = 3, the estimate
    counts 3 points at once (it fits; 4 would not), the batches run in chunks of 3 and their
    gradients equal the one-point evaluations."""
    from adelia.engine import batching

    monkeypatch.setattr(batching, "on_host", lambda: False)
    monkeypatch.setattr(batching, "_VMAPPED_ON_HOST", True)
    probe = _spacetime()
    whole = memory.estimate_device_memory(probe)
    rows = whole.sizes["points at once"]
    assert rows >= 16  # the Hessian stencil's 2d² = 32 points, padded
    per_point = (whole.total - whole.terms["programs"]) / rows
    limit = int(whole.terms["programs"] + 3.5 * per_point)
    model = _spacetime(**{"device.memory": limit})
    assert memory.points_at_once(model) == 3 and model._points_at_once == 3
    est = memory.estimate_device_memory(model)
    assert est.sizes["points at once"] == 3 and est.total <= limit
    assert memory.estimate_device_memory(model, at_once=4).total > limit
    assert model._vg_batch.max_rows == 3
    thetas = model.theta0 + np.linspace(-0.2, 0.2, 7)[:, None]
    got = model.grad_batch(thetas)
    for i, theta in enumerate(thetas):
        np.testing.assert_allclose(got[i], model.grad_batch(theta[None])[0], rtol=1e-10, atol=1e-12)
    # memory for the whole padded batch: no chunks
    assert memory.points_at_once(_spacetime(**{"device.memory": "1TB"})) is None


def test_a_fit_too_large_for_the_stated_device_memory_names_the_devices_that_would_fit(monkeypatch):
    """device.memory between what 2 devices and 1 device need: DeviceMemoryError (a MemoryError)
    before any numeric work, naming the estimate, the stated memory and devices=2."""
    monkeypatch.delenv(memory.SKIP_ENV, raising=False)
    probe = _spacetime()
    one = memory.estimate_device_memory(probe, 1, 1).total
    two = min(memory.estimate_device_memory(probe, p, P).total for p, P in [(2, 1), (1, 2)])
    assert two < one
    limit = int((one + two) / 2)
    model = _spacetime(**{"device.memory": limit})
    with pytest.raises(memory.DeviceMemoryError) as info:
        model.fit()
    msg = str(info.value)
    assert isinstance(info.value, MemoryError)
    assert f"about {one / 1e9:.3g} GB per device on 1 device(s)" in msg
    assert f"{limit / 1e9:.3g} GB (control_inla['device.memory'])" in msg
    assert "devices=2" in msg and f"about {two / 1e9:.3g} GB per device" in msg
    assert model._f._cache_size() == 0 and not np.any(model._x_warm)
    # nothing fits a kilobyte (the programs' data alone is replicated on every device)
    with pytest.raises(memory.DeviceMemoryError, match="no number of devices up to 1024 would fit"):
        _spacetime(**{"device.memory": "1kB"}).fit()
    # the environment variable states it too; memory.check False runs regardless
    monkeypatch.setenv(memory.DEVICE_MEMORY_ENV, "1kB")
    with pytest.raises(memory.DeviceMemoryError, match=r"\$ADELIA_DEVICE_MEMORY"):
        _spacetime().fit()
    assert memory.check_device_memory(_spacetime(**{"device.memory": "1TB"})) is not None


@pytest.mark.parametrize("value", ["lots", "-2GB", 0, "2 XB", True])
def test_a_bad_device_memory_is_named_with_the_valid_forms(value):
    with pytest.raises(adelia.errors.ControlError, match=r"device.memory = .*\"2GB\""):
        adelia.compile("y ~ x + f(g, model='iid')", _poisson_iid(50), family="poisson", control_inla={"device.memory": value})


def test_parse_bytes_units():
    assert memory.parse_bytes("2GB") == 2 * 10**9
    assert memory.parse_bytes("1.5 GiB") == 3 * 2**29
    assert memory.parse_bytes("16G") == 16 * 2**30
    assert memory.parse_bytes(1e6) == 10**6
