"""Names in InlaResult equal R-INLA's, for the R-INLA reference cases.

Oracle: R-INLA's results.json (../shared/reference/rinla/<case>): row names of
summary_fixed, summary_hyperpar, internal_summary_hyperpar, the keys of summary_random and
their ID columns, the row names of summary_linear_predictor / summary_fitted_values, and the
column names of every table. Each case is fitted as an R-INLA user would write it
(../shared/tools/rinla_compare.py's build_call). All eleven cases take about a minute and
are marked slow; three small ones run by default.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import SHARED, reference_case_params, shared_path

import adelia

ALL_CASES = sorted(p.name for p in (SHARED / "reference" / "rinla").glob("*") if (p / "results.json").exists()) if SHARED.exists() else []
FAST_CASES = ["seeds_iid", "na_prediction", "tokyo_rw2_cyclic"]


def _build_call():
    path = shared_path("tools", "rinla_compare.py")
    spec = importlib.util.spec_from_file_location("rinla_compare", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_call


def _fit(case):
    d = shared_path("reference", "rinla", case)
    spec = json.loads((d / "spec.json").read_text())
    ref = json.loads((d / "results.json").read_text())
    formula, data, kw = _build_call()(d, spec)
    return adelia.inla(formula, data=data, **kw), ref


def _columns(ref_table):
    return [c for c in ref_table if c != "name"]


def _check_table(ours, ref_table, what, problems):
    """Row names and column names of one table against R-INLA's (None/[] = absent)."""
    if not ref_table:
        if ours is not None and len(ours):
            problems.append(f"{what}: R-INLA has none, adelia has {len(ours)} rows")
        return
    if ours is None:
        problems.append(f"{what}: missing (R-INLA has {len(ref_table['name'])} rows)")
        return
    if list(ours.index) != list(ref_table["name"]):
        r, o = list(ref_table["name"]), list(ours.index)
        diff = next((i for i, (a, b) in enumerate(zip(r, o)) if a != b), min(len(r), len(o)))
        problems.append(f"{what} rows: R-INLA {len(r)} {r[diff:diff + 3]} vs adelia {len(o)} {o[diff:diff + 3]} (first difference at {diff})")
    if list(ours.columns) != _columns(ref_table):
        problems.append(f"{what} columns: R-INLA {_columns(ref_table)} vs adelia {list(ours.columns)}")


def name_problems(res, ref) -> list[str]:
    problems: list[str] = []
    _check_table(res.summary_fixed, ref.get("summary_fixed"), "summary_fixed", problems)
    _check_table(res.summary_hyperpar, ref.get("summary_hyperpar"), "summary_hyperpar", problems)
    _check_table(res.internal_summary_hyperpar, ref.get("internal_summary_hyperpar"), "internal_summary_hyperpar", problems)
    _check_table(res.summary_linear_predictor, ref.get("summary_linear_predictor"), "summary_linear_predictor", problems)
    _check_table(res.summary_fitted_values, ref.get("summary_fitted_values"), "summary_fitted_values", problems)
    ref_random = ref.get("summary_random") or {}
    if list(res.summary_random) != list(ref_random):
        problems.append(f"summary_random keys: R-INLA {list(ref_random)} vs adelia {list(res.summary_random)}")
    for label, table in ref_random.items():
        ours = res.summary_random.get(label)
        if ours is None:
            continue
        if list(ours.columns) != list(table):
            problems.append(f"summary_random[{label!r}] columns: R-INLA {list(table)} vs adelia {list(ours.columns)}")
        ids, ref_ids = ours["ID"].to_numpy(), np.asarray(table["ID"])
        if ids.shape != ref_ids.shape or not np.array_equal(ids.astype(float), ref_ids.astype(float)):
            problems.append(f"summary_random[{label!r}] ID: R-INLA {ref_ids.size} values {ref_ids[:3].tolist()}... vs adelia {ids.size} {ids[:3].tolist()}...")
    return problems


@pytest.mark.parametrize("case", FAST_CASES)
def test_names_match_rinla_small_cases(case):
    res, ref = _fit(case)
    assert name_problems(res, ref) == []


@pytest.mark.slow
@pytest.mark.parametrize("case", reference_case_params(ALL_CASES))
def test_names_match_rinla_all_cases(case):
    res, ref = _fit(case)
    assert name_problems(res, ref) == []
