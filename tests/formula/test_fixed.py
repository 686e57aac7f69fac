"""fixed_design: R-INLA's fixed-effects columns (names and values) from a formula and data."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from adelia.errors import DataError, FormulaError
from adelia.formula import contr_poly, deparse, fixed_design, parse_formula, parse_r
from adelia.formula.terms import expand_terms, term_codes
from conftest import shared_path


def design(formula, data, **kw):
    return fixed_design(parse_formula(formula), data, **kw)


# ---------------------------------------------------------------------------------------
# R's deparse of variables = the column names


@pytest.mark.parametrize("text, r_name", [
    ("I(X/10)", "I(X/10)"),
    ("I(x1*x2)", "I(x1 * x2)"),
    ("I(exposed*(birth.year^2-22))", "I(exposed * (birth.year^2 - 22))"),
    ("I(x>1)", "I(x > 1)"),
    ("I(a==b & c<=d | !e)", "I(a == b & c <= d | !e)"),
    ("I(x%%2)", "I(x%%2)"),
    ("I(x%in%y)", "I(x %in% y)"),
    ("I(-x)", "I(-x)"),
    ("log(x,base=2)", "log(x, base = 2)"),
    ("log(Base/4)", "log(Base/4)"),
    ("I(x/1000000)", "I(x/1e+06)"),
    ("I(x*0.10)", "I(x * 0.1)"),
    ("I(x+2L)", "I(x + 2L)"),
    ("factor(g=='a')", 'factor(g == "a")'),
    ("`my var`", "`my var`"),
])
def test_deparse_like_r(text, r_name):
    # expectations: R's deparse() (spaces around + - * comparisons & | %op%, none around / ^ %% :)
    assert deparse(parse_r(text)) == r_name


# ---------------------------------------------------------------------------------------
# R's formula algebra and factor coding


ALGEBRA = [
    ("1 + a*b", ["a", "b", "a:b"], True),
    ("1 + a:b + a", ["a", "a:b"], True),
    ("0 + (a + b + c)^2", ["a", "b", "c", "a:b", "a:c", "b:c"], False),
    ("1 + (a + b + c)^2 - a:b", ["a", "b", "c", "a:c", "b:c"], True),
    ("1 + a/b", ["a", "a:b"], True),
    ("1 + (a + b)/c", ["a", "b", "a:b:c"], True),
    ("1 + a %in% b", ["a:b"], True),
    ("1 + x + x + I(x*1) + I(x * 1)", ["x", "I(x * 1)"], True),
    ("1 + a:b + b", ["b", "b:a"], True),  # R-INLA re-expands 'y ~ b + a:b': b comes first
    ("1 + x - 1", ["x"], False),
    ("0 + x - 0", ["x"], True),
    ("1 + b:a:c + a", ["a", "a:b:c"], True),  # plain R: "b:a:c"; R-INLA's second pass: a first
]


@pytest.mark.parametrize("fixed, labels, intercept", ALGEBRA)
def test_formula_algebra(fixed, labels, intercept):
    t = expand_terms(parse_r(fixed))
    assert [t.label(k) for k in range(len(t.terms))] == labels
    assert t.intercept is intercept


def test_term_codes_follow_r():
    # Chambers & Hastie p. 38: a factor is coded by contrasts when the term without it
    # is empty or an earlier term; otherwise by all its levels.
    t = expand_terms(parse_r("1 + a + a:b"))
    assert term_codes(t, lambda i: True) == [{0: 1}, {0: 2, 1: 1}]
    t = expand_terms(parse_r("0 + a + b"))  # no intercept: the first factor gets all levels
    assert term_codes(t, lambda i: True) == [{0: 2}, {1: 1}]
    t = expand_terms(parse_r("0 + x + a"))  # ... the first *factor*, not the first term
    assert term_codes(t, lambda i: i == 1) == [{0: 1}, {1: 2}]


FACTOR_DATA = pd.DataFrame({
    "a": ["p", "q", "p", "q", "q"], "b": ["u", "u", "v", "v", "u"],
    "x": [1.0, 2.0, 3.0, 4.0, 5.0], "z": [0.5, -1.0, 2.0, 0.0, 1.5],
})


def _ind(col, level):
    return (FACTOR_DATA[col] == level).to_numpy(float)


@pytest.mark.parametrize("formula, expected", [
    ("y ~ a*b", {"(Intercept)": np.ones(5), "aq": _ind("a", "q"), "bv": _ind("b", "v"),
                 "aq:bv": _ind("a", "q") * _ind("b", "v")}),
    ("y ~ a:b", {"(Intercept)": np.ones(5), "ap:bu": _ind("a", "p") * _ind("b", "u"),
                 "aq:bu": _ind("a", "q") * _ind("b", "u"), "ap:bv": _ind("a", "p") * _ind("b", "v"),
                 "aq:bv": _ind("a", "q") * _ind("b", "v")}),
    ("y ~ 0 + a + x", {"ap": _ind("a", "p"), "aq": _ind("a", "q"), "x": FACTOR_DATA.x.to_numpy()}),
    ("y ~ x:a", {"(Intercept)": np.ones(5), "x:ap": FACTOR_DATA.x * _ind("a", "p"),
                 "x:aq": FACTOR_DATA.x * _ind("a", "q")}),
    ("y ~ a + a:x", {"(Intercept)": np.ones(5), "aq": _ind("a", "q"),
                     "ap:x": _ind("a", "p") * FACTOR_DATA.x, "aq:x": _ind("a", "q") * FACTOR_DATA.x}),
    ("y ~ x*z", {"(Intercept)": np.ones(5), "x": FACTOR_DATA.x, "z": FACTOR_DATA.z,
                 "x:z": FACTOR_DATA.x * FACTOR_DATA.z}),
    ("y ~ log(x/4) + I(x^2 - 1)", {"(Intercept)": np.ones(5), "log(x/4)": np.log(FACTOR_DATA.x / 4),
                                    "I(x^2 - 1)": FACTOR_DATA.x ** 2 - 1}),
    ("y ~ log(x) + I(z^2) + exp(z)", {"(Intercept)": np.ones(5), "log(x)": np.log(FACTOR_DATA.x),
                                      "I(z^2)": FACTOR_DATA.z ** 2, "exp(z)": np.exp(FACTOR_DATA.z)}),
    ("y ~ I(x>2) + factor(x)", {"(Intercept)": np.ones(5), "I(x > 2)TRUE": (FACTOR_DATA.x > 2) * 1.0,
                                "factor(x)2": _ind("x", 2.0), "factor(x)3": _ind("x", 3.0),
                                "factor(x)4": _ind("x", 4.0), "factor(x)5": _ind("x", 5.0)}),
    ("y ~ -1 + I(x %/% 2) + I(x %% 2) + ifelse(z > 0, x, -x)",
     {"I(x%/%2)": FACTOR_DATA.x // 2, "I(x%%2)": FACTOR_DATA.x % 2,
      "ifelse(z > 0, x, -x)": np.where(FACTOR_DATA.z > 0, FACTOR_DATA.x, -FACTOR_DATA.x)}),
])
def test_columns_names_and_values(formula, expected):
    d = design(formula, FACTOR_DATA)
    assert d.names == tuple(expected)
    np.testing.assert_allclose(d.matrix, np.column_stack([np.asarray(v, float) for v in expected.values()]),
                               rtol=0, atol=1e-15)
    assert d.matrix.dtype == np.float64 and d.matrix.shape[0] == 5


def test_r_inla_second_pass_names():
    # R-INLA rebuilds 'y ~ b + a:b' from the term labels, so the interaction is "b:a"
    d = design("y ~ a:b + b", FACTOR_DATA)
    assert d.names == ("(Intercept)", "bv", "bu:aq", "bv:aq")
    np.testing.assert_array_equal(d.matrix[:, 2], _ind("b", "u") * _ind("a", "q"))


def test_factor_levels_from_data_types():
    df = pd.DataFrame({
        "cat": pd.Categorical(["lo", "hi", "mid", "lo"], categories=["lo", "mid", "hi"]),
        "flag": [True, False, True, True],
        "n": [100000.0, 0.5, 2.0, 0.5],
        "k": [3, 1, 2, 1],
    })
    d = design("y ~ cat + flag + factor(n) + as.factor(k)", df)
    assert d.names == ("(Intercept)", "catmid", "cathi", "flagTRUE", "factor(n)2", "factor(n)1e+05",
                       "as.factor(k)2", "as.factor(k)3")
    np.testing.assert_array_equal(d.matrix[:, 1:3], [[0, 0], [0, 1], [1, 0], [0, 0]])
    np.testing.assert_array_equal(d.matrix[:, 3], [1, 0, 1, 1])
    np.testing.assert_array_equal(d.matrix[:, 4:6], [[0, 1], [0, 0], [1, 0], [0, 0]])


def test_ordered_factor_uses_polynomial_contrasts():
    # contr.poly(4) in closed form: (-3,-1,1,3)/sqrt(20), (1,-1,-1,1)/2, (-1,3,-3,1)/sqrt(20)
    expected = np.column_stack([np.array([-3, -1, 1, 3]) / math.sqrt(20), np.array([1, -1, -1, 1]) / 2,
                                np.array([-1, 3, -3, 1]) / math.sqrt(20)])
    np.testing.assert_allclose(contr_poly(4), expected, atol=1e-14)
    df = pd.DataFrame({"o": pd.Categorical(list("abdc"), categories=list("abcd"), ordered=True)})
    d = design("y ~ o", df)
    assert d.names == ("(Intercept)", "o.L", "o.Q", "o.C")
    np.testing.assert_allclose(d.matrix[:, 1:], expected[[0, 1, 3, 2]], atol=1e-14)


def test_offsets_are_evaluated_and_summed():
    df = pd.DataFrame({"x": [1.0, 2.0], "E": [0.5, 4.0], "w": [1.0, -1.0]})
    d = design("y ~ x + offset(log(E)) + offset(w) + f(i)", df)
    np.testing.assert_allclose(d.offset, np.log(df.E) + df.w)
    assert design("y ~ x", df).offset is None


# ---------------------------------------------------------------------------------------
# data from ../shared


def _oxford():
    df = pd.read_csv(shared_path("datasets", "oxford.csv"))
    df["birth.year"] = df["birth.year"] - 54  # the published preprocessing
    return df


def test_oxford_birth_year_factor():
    published = json.loads(shared_path("reference", "published_inla.json").read_text())
    case = next(c for c in published["cases"] if c["name"] == "oxford")
    df = _oxford()
    d = fixed_design(parse_formula(case["r_formula"]), df)
    by, exposed = df["birth.year"].to_numpy(), df["exposed"].to_numpy(float)
    levels = sorted(set(by.tolist()))
    assert levels[0] == -10 and levels[-1] == 10
    factor_names = [f"as.factor(birth.year){int(v)}" for v in levels[1:]]  # "-9", ..., "10"
    assert d.names == ("(Intercept)", *factor_names, "exposed", "I(exposed * birth.year)",
                       "I(exposed * (birth.year^2 - 22))")
    for name in case["values"]:  # the published fixed effects are columns of the design
        assert name in d.names or name.startswith("sigma_")
    expected = np.column_stack([np.ones(len(df))] + [(by == v) * 1.0 for v in levels[1:]] +
                               [exposed, exposed * by, exposed * (by ** 2 - 22)])
    np.testing.assert_array_equal(d.matrix, expected)


def test_published_seeds_and_scotland_columns():
    published = json.loads(shared_path("reference", "published_inla.json").read_text())
    seeds = pd.read_csv(shared_path("datasets", "Seeds.csv"))
    scot = pd.read_csv(shared_path("datasets", "Scotland.csv"))
    for case in published["cases"]:
        data = {"Seeds.csv": seeds, "Scotland.csv": scot}.get(case["data"])
        if data is None or "r_formula" not in case:
            continue
        d = fixed_design(parse_formula(case["r_formula"]), data)
        assert [n for n in case["values"] if not n.startswith("sigma_")] == list(d.names)
        if "I(x1 * x2)" in d.names:
            np.testing.assert_array_equal(d.matrix[:, d.names.index("I(x1 * x2)")], seeds.x1 * seeds.x2)
        if "I(X/10)" in d.names:
            np.testing.assert_allclose(d.matrix[:, d.names.index("I(X/10)")], scot.X / 10, rtol=1e-15)


def test_names_match_r_inla_reference_results():
    root = shared_path("reference", "rinla")
    checked = 0
    for case in sorted(p for p in root.iterdir() if (p / "spec.json").exists()):
        spec = json.loads((case / "spec.json").read_text())
        results = json.loads((case / "results.json").read_text())
        r_names = tuple((results.get("summary_fixed") or {"name": []})["name"])
        parsed = parse_formula(spec["formula"], context={"g": "graph", "spde": "spde", "tv": [0.0],
                                                          "Z": [[0.0]]})
        if "spde" in spec:  # inla.stack data: observations and effects have different lengths
            obs = pd.read_csv(case / "data_stack_obs.csv")
            eff = pd.read_csv(case / "data_stack_effects.csv")
            data = {"y": obs["y"].to_numpy(), **{c: eff[c].to_numpy() for c in eff.columns}}
            with pytest.raises(DataError, match=r'column "b0" has missing values.*rows 1, 2, 3'):
                fixed_design(parsed, data)
            d = fixed_design(parsed, data, na_covariates="zero")  # R-INLA's rule for NA covariates
            assert d.n_rows == len(eff)
            np.testing.assert_array_equal(d.matrix[:, 0], eff["b0"].fillna(0.0))
        else:
            d = fixed_design(parsed, pd.read_csv(case / "data.csv"))
        assert d.names == r_names, case.name
        checked += 1
    assert checked >= 10


# ---------------------------------------------------------------------------------------
# data as a dict, rows, materialise


def test_dict_data_ignores_entries_of_other_lengths():
    data = {"y": np.arange(4.0), "x": np.array([1.0, 2.0, 3.0]), "idx": np.arange(7)}
    d = design("y ~ 1 + x + f(idx)", data)
    assert d.n_rows == 3
    np.testing.assert_array_equal(d.matrix, [[1, 1], [1, 2], [1, 3]])
    assert design("y ~ 1 + f(idx)", data).n_rows == 4  # intercept only: the response's length
    assert design("y ~ 1", data, n_rows=7).matrix.shape == (7, 1)
    with pytest.raises(DataError, match='column "x" has 3 values but the fixed effects have 4 rows'):
        design("y ~ x", data, n_rows=4)
    with pytest.raises(DataError, match="different lengths"):
        design("y ~ x + idx", data)


def test_materialise_new_data():
    df = pd.DataFrame({"X": [10.0, 20.0, 30.0], "g": ["a", "b", "c"]})
    d = design("y ~ I(X/10) + g + g:X", df)
    new = pd.DataFrame({"X": [5.0, 50.0], "g": ["c", "a"]})
    m = d.materialise(new)
    assert m.names == d.names
    # columns: (Intercept), I(X/10), gb, gc, ga:X, gb:X, gc:X
    np.testing.assert_allclose(m.matrix, [[1, 0.5, 0, 1, 0, 0, 5], [1, 5, 0, 0, 50, 0, 0]])
    with pytest.raises(DataError, match=r'levels in the new data that the fitted model has not seen: "z" \(rows 2\)'):
        d.materialise(pd.DataFrame({"X": [1.0, 2.0], "g": ["a", "z"]}))
    # frozen levels: a single level in the new data still gives every column
    assert d.materialise(pd.DataFrame({"X": [1.0], "g": ["b"]})).matrix.shape == (1, 7)


# ---------------------------------------------------------------------------------------
# bad input


def test_unknown_column_lists_available():
    scot = pd.DataFrame({"Counts": [1, 2], "E": [1.0, 2.0], "X": [3.0, 4.0], "Region": [1, 2]})
    with pytest.raises(DataError) as e:
        design("Counts ~ 1 + I(X2/10)", scot)
    msg = str(e.value)
    assert 'column "X2"' in msg and "I(X2/10)" in msg and 'Did you mean "X"' in msg
    assert "Available columns: Counts, E, X, Region" in msg


def test_nan_in_covariate_names_column_and_rows():
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0, np.nan], "z": np.arange(5.0)})
    with pytest.raises(DataError, match=r'column "x" has missing values \(NaN/None\) in rows 2, 5') as e:
        design("y ~ z + I(x*z)", df)
    assert "'I(x * z)'" in str(e.value) and 'na_covariates="zero"' in str(e.value)
    d = design("y ~ z + I(x*z)", df, na_covariates="zero")  # R-INLA: NA covariates count as 0
    np.testing.assert_array_equal(d.matrix[:, 2], [0, 0, 6, 12, 0])
    with pytest.raises(DataError, match=r"'log\(z - 1\)' has missing values: it is NaN in rows 1"):
        design("y ~ log(z - 1)", df)  # log(-1) = NaN, not from a column
    with pytest.raises(DataError, match=r"'log\(z - 1\)' is infinite in rows 1 "):
        design("y ~ log(z - 1)", df.iloc[1:].reset_index(drop=True))
    with pytest.raises(DataError, match='factor .*"g" has missing values.*rows 2'):
        design("y ~ g", pd.DataFrame({"g": ["a", None, "b"]}))


def test_other_bad_input():
    with pytest.raises(DataError, match="only one level"):
        design("y ~ g", pd.DataFrame({"g": ["a", "a"]}))
    with pytest.raises(FormulaError, match='"poly\\(\\)" is not supported.*Supported: '):
        design("y ~ poly(x, 2)", pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(DataError, match="not meaningful for the factor"):
        design("y ~ I(factor(x) + 1)", pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(DataError, match="unknown na_covariates policy"):
        design("y ~ x", pd.DataFrame({"x": [1.0]}), na_covariates="drop")
    with pytest.raises(FormulaError, match="wrap arithmetic in I"):
        design("y ~ x + 2", pd.DataFrame({"x": [1.0]}))
