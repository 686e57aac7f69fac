"""print(res.summary()) (adelia.printing): R-INLA's summary layout and R's number formatting.

Oracle: R-INLA's own printed summaries (../shared/reference/rinla/*/summary.txt) against
the blocks formatted here from the same numbers (results.json, full precision), and the
section layout of a small fit.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED, reference_case_params, shared_path

import adelia
from adelia.printing import (
    criteria_block,
    fixed_block,
    format_column,
    hyperpar_block,
    lincomb_block,
    mlik_line,
    model_name,
    time_block,
)

CASES = sorted(p.name for p in (SHARED / "reference" / "rinla").glob("*") if (p / "summary.txt").exists()) if SHARED.exists() else []


def _reference(case):
    d = shared_path("reference", "rinla", case)
    return json.loads((d / "results.json").read_text()), (d / "summary.txt").read_text().splitlines()


def _block(lines, header):
    """The lines after ``header`` up to the next blank line."""
    i = lines.index(header)
    j = lines.index("", i)
    return lines[i + 1 : j]


def _table(ref_table):
    t = dict(ref_table)
    names = t.pop("name")
    return pd.DataFrame(t, index=names)


@pytest.mark.parametrize("case", CASES)
def test_blocks_reproduce_rinla_summary_text(case):
    ref, lines = _reference(case)
    t = ref["timing"]["cpu_used"]
    assert time_block(pd.Series(t)) == lines[:2]
    if ref.get("summary_fixed"):
        assert fixed_block(_table(ref["summary_fixed"]))[1].splitlines() == _block(lines, "Fixed effects:")
    assert hyperpar_block(_table(ref["summary_hyperpar"]))[1].splitlines() == _block(lines, "Model hyperparameters:")
    for key, header in (("summary_lincomb_derived", "Linear combinations (derived):"), ("summary_lincomb", "Linear combinations:")):
        if ref.get(key):
            assert lincomb_block(_table(ref[key]), derived=key.endswith("derived"))[1].splitlines() == _block(lines, header)
        else:
            assert header not in lines
    assert mlik_line(ref["mlik"]["gaussian"]) in lines
    dic = ref.get("dic") if ref.get("dic") else None
    waic = ref.get("waic") if ref.get("waic") else None
    crit = criteria_block(dic, waic)
    if crit:
        i = lines.index(crit[0])
        assert lines[i : i + len(crit)] == crit


def _rinla_build_call():
    path = shared_path("tools", "rinla_compare.py")
    spec = importlib.util.spec_from_file_location("rinla_compare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_call


def _has_random_effects(case) -> bool:
    return "Random effects:" in (SHARED / "reference" / "rinla" / case / "summary.txt").read_text()


@pytest.mark.parametrize("case", reference_case_params(CASES, _has_random_effects))
def test_random_effect_model_names_match_rinla(case):
    ref, lines = _reference(case)
    if "Random effects:" not in lines:
        return
    build_call = _rinla_build_call()
    d = shared_path("reference", "rinla", case)
    spec = json.loads((d / "spec.json").read_text())
    formula, data, kw = build_call(d, spec)
    model = adelia.compile(formula, data, **kw)
    ours = [f"    {c.label} {model_name(c.model.model_name)}" for c in model.graph.components]
    assert ours == _block(lines, "Random effects:")[1:]


def test_format_column_follows_r():
    # values R prints this way (print/format with the digits given)
    assert format_column([-0.428, -0.278, 1.066]) == ["-0.428", "-0.278", "1.066"]
    assert format_column([1.03, 0.5]) == ["1.03", "0.50"]
    assert format_column([0.0, -0.0]) == ["0", "0"]
    assert format_column([12.22, 0.92], 3, 2) == ["12.22", "0.92"]
    assert format_column([123456789.0, 1.5]) == ["123456789.0", "1.5"]
    assert format_column([1e-10, 1.0], 3) == ["1e-10", "1e+00"]
    assert format_column([np.nan, 1.0], 3) == ["NaN", "1"]


def test_summary_layout_of_a_small_fit():
    df = adelia.datasets.load("Seeds")
    res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", df, family="binomial", Ntrials="n", control_predictor={"compute": True})
    text = str(res.summary())
    lines = text.splitlines()
    heads = ["Time used:", "Fixed effects:", "Random effects:", "Model hyperparameters:"]
    pos = [lines.index(h) for h in heads]
    assert pos == sorted(pos)
    assert lines[1].startswith("    Pre = ") and ", Total = " in lines[1]
    fixed = _block(lines, "Fixed effects:")
    assert fixed[0].split() == ["mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode", "kld"]
    for row, (name, values) in zip(fixed[1:], res.summary_fixed.iterrows()):
        assert row.startswith(name)
        np.testing.assert_allclose([float(v) for v in row[len(name):].split()], values.to_numpy(float), atol=5e-4)
    assert _block(lines, "Random effects:") == ["  Name\t  Model", "    plate IID model"]
    hyper = _block(lines, "Model hyperparameters:")
    assert hyper[1].startswith("Precision for plate")
    assert "Posterior summaries for the linear predictor and the fitted values are computed" in lines
    assert f"Marginal log-Likelihood:  {res.mlik.iloc[1]:.2f} " in lines
    assert "Deviance Information Criterion (DIC)" not in text
    # with criteria computed, their lines sit between the hyperparameters and the mlik
    res.posterior.criteria = {"dic": {"dic": 121.0256, "p.eff": 3.1995, "dic.sat": 44.4277}, "waic": {"waic": 125.7608, "p.eff": 7.1051}}
    lines = str(res.summary()).splitlines()
    i = lines.index("Deviance Information Criterion (DIC) ...............: 121.03")
    assert lines[i + 1 : i + 3] == [
        "Deviance Information Criterion (DIC, saturated) ....: 44.43",
        "Effective number of parameters .....................: 3.20",
    ]
    assert "Watanabe-Akaike information criterion (WAIC) ...: 125.76" in lines
    assert lines.index("Model hyperparameters:") < i < lines.index(f"Marginal log-Likelihood:  {res.mlik.iloc[1]:.2f} ")
