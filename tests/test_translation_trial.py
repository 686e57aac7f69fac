"""The Python translations in docs/translation_trial.md run, and give what their R scripts ask.

Each "## Trial" section's ```python blocks are executed in order in one fresh namespace (as a
reader would paste them), with stdout captured. Oracles: the same model written the other way
(the prior as an R list inside the formula instead of a Python dict variable), two integration
schemes of the same model (compact CCD and the classic grid that stands in for
``inla.hyperpar``), and the linearity of the SPDE predictor (the prediction stack's fitted
values against β0 + A·u from the fit without the prediction rows).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import adelia
from adelia.marginals import zmarginal

PAGE = Path(__file__).resolve().parents[1] / "docs" / "translation_trial.md"


def _sections() -> dict[str, str]:
    parts = re.split(r"^## ", PAGE.read_text(), flags=re.M)
    return {p.split("\n", 1)[0]: p for p in parts[1:] if p.startswith("Trial")}


def _run(title_start: str) -> dict:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (body,) = [b for t, b in _sections().items() if t.startswith(title_start)]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    assert blocks, f"no python block in {title_start}"
    namespace: dict = {"__name__": "translation_trial"}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for code in blocks:
            exec(compile(code, f"{PAGE.name}: {title_start}", "exec"), namespace)
    plt.close("all")
    return namespace


def test_page_has_three_trials_each_with_r_and_python():
    sections = _sections()
    assert len(sections) == 3
    for title, body in sections.items():
        assert "```r\n" in body and "```python\n" in body, title
        assert "What the page lacked" in body, title


def test_trial1_surg_hospital_model():
    ns = _run("Trial 1")
    res = ns["res"]
    fitted = res.summary_fitted_values["mean"].to_numpy()
    assert fitted.shape == (12,) and np.all((fitted > 0) & (fitted < 1))
    assert res.dic is not None and np.isfinite(res.dic["dic"])
    # the prior given as a Python dict variable equals the prior written in the formula
    inline = adelia.inla("r ~ f(hospital, model='iid', hyper=list(prec=list(prior='pc.prec', param=c(1, 0.01))))",
                         ns["Surg"], family="binomial", Ntrials="n")
    np.testing.assert_allclose(res.summary_hyperpar["mean"], inline.summary_hyperpar["mean"], rtol=1e-10)
    # sqrt(E[v^2] - E[v]^2) from emarginal equals zmarginal's sd of the transformed marginal
    sd_moments = float(np.sqrt(ns["mm"] - ns["m"] ** 2))
    assert sd_moments == pytest.approx(zmarginal(ns["marg_variance"])["sd"], rel=1e-2)
    assert 0.0 < ns["m"] < 1.0


def test_trial2_epil_glmm_and_the_inla_hyperpar_substitute():
    ns = _run("Trial 2")
    result, hyper = ns["result"], ns["hyper"]
    assert result.summary_fixed.index.tolist() == ["(Intercept)", "ClBase4", "CTrt", "CBT", "ClAge", "CV4"]
    assert set(result.summary_hyperpar.index) == {"Precision for Ind", "Precision for rand"}
    # the grid integration (inla.hyperpar's role) agrees with the compact CCD fit
    a, b = result.internal_summary_hyperpar, hyper.internal_summary_hyperpar
    assert np.all(np.abs(a["mean"] - b["mean"]) < 0.1 * a["sd"])
    f, g = result.summary_fixed, hyper.summary_fixed
    assert np.all(np.abs(f["mean"] - g["mean"]) < 0.05 * f["sd"])
    # the centred covariates of the R script have mean zero
    for col in ["CTrt", "ClBase4", "CV4", "ClAge", "CBT"]:
        assert abs(ns["Epil"][col].mean()) < 1e-12


def test_trial3_spde_toy_prediction_stack():
    ns = _run("Trial 3")
    res5, r5pts3, S = ns["res5"], ns["r5pts3"], ns["S"]
    assert ns["ind"].tolist() == [200, 201, 202]           # 0-based rows of the three points
    pred = r5pts3.summary_fitted_values.iloc[ns["ind"]]
    # the identity link and linearity: E[b0 + A u] = mean(b0) + A mean(u) from the first fit
    direct = res5.summary_fixed.loc["beta0", "mean"] + ns["A5pts3"] @ res5.summary_random["i"]["mean"].to_numpy()
    assert np.all(np.abs(pred["mean"].to_numpy() - direct) < 0.1 * pred["sd"].to_numpy())
    # the posterior range is near the PC prior's median scale and the simulation's (sqrt(8)/7)
    assert 0.2 < ns["res5_field"]["marginals.range.nominal"]["range.nominal.1"]["x"].mean() < 1.0
    assert S.spde_result is not None
