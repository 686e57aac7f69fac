"""R expressions -> Python values (adelia.formula.rvalues) and R's number formatting."""

from __future__ import annotations

import importlib.util
import json
import math
import re

import numpy as np
import pytest

from adelia.errors import FormulaError, FormulaSyntaxError
from adelia.formula import format_r_number, normalise_dict_keys, normalise_key, r_to_python
from conftest import shared_path

# R expression -> the value R would give, written out by hand in Python
CASES = [
    ("TRUE", True), ("FALSE", False), ("T", True), ("F", False), ("NULL", None),
    ("True", True), ("None", None), ("Inf", math.inf), ("-Inf", -math.inf),
    ("1", 1), ("-1", -1), ("0.5", 0.5), (".5", 0.5), ("1e-3", 0.001), ("2L", 2), ("0x10", 16),
    ("'pc.prec'", "pc.prec"), ('"it\'s"', "it's"), (r'"a\"b"', 'a"b'), (r"'tab\t'", "tab\t"),
    ("c(1, 0.01)", [1, 0.01]), ("c(5)", 5), ("c()", None), ("c(1, c(2, 3))", [1, 2, 3]),
    ('c("a", "b")', ["a", "b"]),
    ("list(1, 2)", [1, 2]), ("list()", []),
    ('list(prior="loggamma", param=c(0.5, 0.0164))', {"prior": "loggamma", "param": [0.5, 0.0164]}),
    ("list(prec=list(initial=4, fixed=TRUE))", {"prec": {"initial": 4, "fixed": True}}),
    ("1:5", [1, 2, 3, 4, 5]), ("3:1", [3, 2, 1]), ("-1:2", [-1, 0, 1, 2]),
    ("seq(0, 1, by=0.25)", [0.0, 0.25, 0.5, 0.75, 1.0]), ("seq(1, 3)", [1, 2, 3]),
    ("seq(0, 1, length.out=3)", [0.0, 0.5, 1.0]), ("seq_len(3)", [1, 2, 3]),
    ("rep(1, 3)", [1, 1, 1]), ("rep(c(1, 2), 2)", [1, 2, 1, 2]),
    ("rep(c(1, 2), each=2)", [1, 1, 2, 2]), ("rep(0, length.out=2)", [0, 0]),
    ("0.2/0.59", 0.2 / 0.59), ("2^3", 8), ("2**3", 8), ("-2^2", -4), ("7 %% 3", 1), ("-7 %% 3", 2),
    ("7 %/% 2", 3), ("(1 + 2) * 3", 9), ("1/0", math.inf),
    ("exp(1)", math.e), ("log(100, 10)", 2.0), ("log(8, base=2)", 3.0), ("log10(1000)", 3.0),
    ("sqrt(16)", 4.0), ("abs(-3)", 3.0), ("1/sqrt(2)", 1 / math.sqrt(2)),
    ("c(1, 2) * 2", [2, 4]), ("-c(1, 2)", [-1, -2]), ("c(1, 2) + c(10, 20)", [11, 22]),
    ("[1, 2.5]", [1, 2.5]), ("(1, 2)", (1, 2)), ("(1,)", (1,)),
    ('{"prec": {"prior": "pc.prec", "param": [1, 0.01]}}', {"prec": {"prior": "pc.prec", "param": [1, 0.01]}}),
    ("dict(a=1, b=list(c=2))", {"a": 1, "b": {"c": 2}}),
    ("1 == 1", True), ("!TRUE", False), ("TRUE && FALSE", False),
    ("c(10, 20, 30)[2]", 20), ("list(a=1, b=2)$b", 2),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_r_values(text, expected):
    got = r_to_python(text)
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-15)
    elif isinstance(expected, list) and any(isinstance(v, float) for v in expected):
        assert got == pytest.approx(expected, rel=1e-15)
    else:
        assert got == expected
        assert type(got) is type(expected)


def test_nan_constants():
    assert math.isnan(r_to_python("NA")) and math.isnan(r_to_python("NaN"))


def test_matrices():
    np.testing.assert_array_equal(r_to_python("matrix(1:6, 2, 3)"), np.array([[1, 3, 5], [2, 4, 6]]))
    np.testing.assert_array_equal(r_to_python("matrix(1:6, nrow=2, byrow=TRUE)"), np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(r_to_python("matrix(1, 1, 3)"), np.ones((1, 3)))
    np.testing.assert_array_equal(r_to_python("diag(3)"), np.eye(3))


def test_dotted_keys_kept_or_normalised():
    text = "list(int.strategy='ccd', control.vb=list(enable=FALSE), strategy='laplace')"
    assert r_to_python(text) == {"int.strategy": "ccd", "control.vb": {"enable": False}, "strategy": "laplace"}
    assert r_to_python(text, normalise_keys=True) == {
        "int_strategy": "ccd", "control_vb": {"enable": False}, "strategy": "laplace"}


def test_normalise_key_and_keep_below():
    assert normalise_key("scale.model") == "scale_model"
    assert normalise_key("adjust.for.con.comp") == "adjust_for_con_comp"
    assert normalise_key("season.length") == "season_length"
    value = {"scale.model": True, "hyper": {"theta.1": {"prior": "pc.prec"}}}
    assert normalise_dict_keys(value, keep_below=frozenset({"hyper"})) == {
        "scale_model": True, "hyper": {"theta.1": {"prior": "pc.prec"}}}


def test_names_from_mapping():
    assert r_to_python("list(A=A, e=0)", names={"A": "matrix"}) == {"A": "matrix", "e": 0}
    with pytest.raises(FormulaError, match='name "B" is not defined'):
        r_to_python("list(A=B)", names={"A": 1})


def test_errors_point_at_the_problem():
    with pytest.raises(FormulaSyntaxError) as e:
        r_to_python("c(1 0.01)")
    assert e.value.position == len("c(1 ")
    assert str(e.value).splitlines()[-1] == " " * 4 + " " * len("c(1 ") + "^"
    with pytest.raises(FormulaSyntaxError, match="never closed"):
        r_to_python("list(a=1")
    with pytest.raises(FormulaSyntaxError, match="unterminated string"):
        r_to_python("list(a='x)")
    with pytest.raises(FormulaError, match='unknown name "x"'):
        r_to_python("list(a=x)")
    with pytest.raises(FormulaError, match='unknown function "lisst\\(\\)". Did you mean "list"'):
        r_to_python("lisst(a=1)")
    with pytest.raises(FormulaError, match="mixes named and unnamed"):
        r_to_python("list(a=1, 2)")
    with pytest.raises(FormulaError, match='element "a" twice'):
        r_to_python("list(a=1, a=2)")


FORMAT_CASES = [
    (1.0, "1"), (22.0, "22"), (0.5, "0.5"), (0.1, "0.1"), (100000.0, "1e+05"), (123456.0, "123456"),
    (1e-4, "1e-04"), (1e-3, "0.001"), (1e15, "1e+15"), (-10.0, "-10"), (1 / 3, "0.333333333333333"),
    (2.5e-10, "2.5e-10"), (0.0, "0"), (1234.5678, "1234.5678"), (math.inf, "Inf"),
]


@pytest.mark.parametrize("x, text", FORMAT_CASES)
def test_format_r_number(x, text):
    # expectations: R's print/as.character of the same doubles (15 significant digits)
    assert format_r_number(x) == text


def _lead_tool():
    """The lead's own R-value reader in ../shared/tools (an independent implementation)."""
    path = shared_path("tools", "rinla_compare.py")
    spec = importlib.util.spec_from_file_location("rinla_compare_tool", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_reference_control_string():
    tool = _lead_tool()
    root = shared_path("reference", "rinla")
    n = 0
    for spec_file in sorted(root.glob("*/spec.json")):
        for key, text in (json.loads(spec_file.read_text()).get("controls") or {}).items():
            text = re.sub(r"inla\.stack\.A\([^)]*\)", "NULL", text)
            assert r_to_python(text) == tool.r_to_py(text), (spec_file.parent.name, key, text)
            n += 1
    assert n >= 20
