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
