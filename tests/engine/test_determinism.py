"""Results bit-identical whatever ADELIA_NUM_THREADS and from run to run (issue 12).

The supernodal kernels split the elimination tree over as many cores as are free at each
call, so the split varies with the thread count and with timing. The numbers must not:
every supernode gets the same operations in the same order wherever it runs, and every
BLAS call runs on one thread (OpenBLAS's results change with its thread count).
``_PARALLEL_FLOPS`` is set to 0 so that these small problems split as large ones do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import adelia
from adelia.engine import supernodal
from adelia.engine.fill_ordering import fill_reducing_ordering
from adelia.engine.supernodal import SupernodalCholesky
from test_supernodal import dense_trailing_block


def iid_rw2_posterior_precision(rng, n_obs=6000, n_iid=600, n_rw2=300):
    """prior + Aᵀ W A of iid + rw2 + intercept observed together, large enough that the
    last supernodes (the ``top`` of a split) are dense blocks of a few hundred columns,
    where multi-threaded BLAS rounds differently from single-threaded BLAS."""
    return dense_trailing_block(rng, n_iid=n_iid, n_rw2=n_rw2, n_obs=n_obs, rw2_ridge=1e-4, fixed_prec=1e-3)


def test_supernodal_kernels_do_not_depend_on_the_thread_count(rng, monkeypatch):
    monkeypatch.setattr(supernodal, "_PARALLEL_FLOPS", 0.0)
    pattern, values = iid_rw2_posterior_precision(rng)
    chol = SupernodalCholesky(pattern, fill_reducing_ordering(pattern))
    rhs = rng.standard_normal((pattern.n, 3))
    outputs = {}
    for threads in ("1", "2", "3", "2", "1", "3"):  # each count twice: run to run as well
        monkeypatch.setenv("ADELIA_NUM_THREADS", threads)
        factor = chol.factorise(values)
        outputs.setdefault(threads, []).append(
            (factor, chol.logdet(factor), chol.selected_inverse(factor), chol.solve(factor, rhs))
        )
    for threads in ("2", "3"):
        plan = chol.schedule(int(threads))
        assert plan is not None and len(plan.top) > 0  # the kernels really split
    reference = outputs["1"][0]
    for runs in outputs.values():
        for run in runs:
            for got, want in zip(run, reference):
                assert np.array_equal(got, want)


def _summaries(res) -> list[np.ndarray]:
    out = [res.summary_fixed.to_numpy(float), res.summary_hyperpar.to_numpy(float), np.asarray(res.mlik, float)]
    for name in sorted(res.summary_random):
        out.append(res.summary_random[name].select_dtypes("number").to_numpy(float))
    return out


def test_fit_is_bit_identical_for_one_two_and_three_threads(monkeypatch):
    """The issue's case, scaled down: a Poisson iid + rw2 fit on the sparse backend."""
    monkeypatch.setattr(supernodal, "_PARALLEL_FLOPS", 0.0)
    rng = np.random.default_rng(1)
    n, n_iid, n_rw2 = 4000, 400, 100
    g, t = rng.integers(0, n_iid, n), rng.integers(0, n_rw2, n)
    eta = 0.5 + 0.3 * rng.standard_normal(n_iid)[g] + np.sin(t / 15)
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "g": g, "t": t})
    results = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("ADELIA_NUM_THREADS", threads)
        res = adelia.inla(
            "y ~ 1 + f(g, model='iid') + f(t, model='rw2')", df, family="poisson", control_inla={"solver": "sparse"}
        )
        results[threads] = _summaries(res)
    for threads in ("2", "3"):
        for got, want in zip(results[threads], results["1"]):
            assert np.array_equal(got, want, equal_nan=True), threads
