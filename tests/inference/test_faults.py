"""Faults during a fit are survived and reported, never turned into NaN summaries:

* an inner Newton iteration that does not converge (here: at most one iteration allowed) is
  retried with step halving, then reported by a NewtonWarning naming a θ where it failed;
* a Hessian of −log π(θ|y) at the mode that is not positive definite falls back as R-INLA
  does (the diagonal Hessian when some eigenvalue is positive), with a warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import adelia
from adelia.inference.run import NewtonWarning
from adelia.inference import run as run_module


def _finite_tables(res):
    for table in (res.summary_fixed, res.summary_hyperpar, res.internal_summary_hyperpar):
        assert np.all(np.isfinite(table.drop(columns=["kld"], errors="ignore").to_numpy(dtype=float))), table


def test_newton_not_converging_is_reported_with_theta_and_summaries_stay_finite():
    seeds = adelia.datasets.load("Seeds")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n",
                          control_inla={"newton.max.iter": 1})
    newton = [str(w.message) for w in caught if issubclass(w.category, NewtonWarning)]
    assert newton, [str(w.message) for w in caught]
    assert "did not converge" in newton[0] and "θ = [" in newton[0]
    _finite_tables(res)


def test_indefinite_hessian_falls_back_to_the_diagonal_with_a_warning(monkeypatch):
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(1, 21), 5)
    y = 1.0 + rng.normal(0, 0.7, 20)[g - 1] + rng.normal(0, 0.5, g.size)
    df = {"y": y, "g": g}
    real = run_module.hessian_from_values
    seen = {}

    def indefinite(*args, **kwargs):
        out = real(*args, **kwargs)
        h = out.hessian.copy()
        off = 2.0 * np.sqrt(h[0, 0] * h[1, 1])  # |H01| > sqrt(H00 H11): one negative eigenvalue
        h[0, 1] = h[1, 0] = off
        seen["diag"] = np.diag(h).copy()
        out.hessian = h
        return out

    monkeypatch.setattr(run_module, "hessian_from_values", indefinite)
    with pytest.warns(UserWarning, match="not positive definite.*diagonal Hessian"):
        res = adelia.inla("y ~ 1 + f(g, model='iid')", df)
    cov = res.posterior.axes.covariance()
    np.testing.assert_allclose(cov, np.diag(1.0 / seen["diag"]), rtol=1e-12)
    _finite_tables(res)
