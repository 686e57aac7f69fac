"""Formula text is data: no escape from the R evaluators (adelia.formula.allowed).

Each attempt below is what an adversarial formula, f() argument, factor(levels=) or control
string could try in order to run code: dunder walks from literals, builtins reached through
names, getattr chains through $ and @, lambdas, comprehensions, f-strings, format strings,
attribute calls on data columns and context values, R's own ways to run code. Every one must
raise FormulaError (a syntax error is one too) and must never create the canary file that
its payload would write. A hypothesis fuzz test checks that random formula text raises
nothing but adelia's own errors.
"""

from __future__ import annotations

import os
import re
import warnings
import subprocess  # noqa: F401  (in the caller's namespace on purpose: must not be reachable)
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adelia
from adelia import controls
from adelia.errors import AdeliaError, FormulaError
from adelia.formula import fixed_design, parse_formula, r_to_python
from adelia.formula.allowed import MAX_ELEMENTS, check_value

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "formula text ran code: the canary file was created"


def _data():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"y": rng.poisson(3, 12).astype(float), "x": rng.normal(size=12),
                         "g": np.repeat(np.arange(1, 5), 3), "s": ["a", "b", "c"] * 4})


def _payloads(path: Path) -> dict[str, str]:
    """Python code that creates the canary, in the forms an attacker would smuggle it."""
    p = str(path)
    return {
        "open": f"open('{p}', 'w')",
        "system": f"__import__('os').system('touch {p}')",
    }


# {P} is replaced by a payload string literal, {C} by the canary path
F_ARGUMENT_ATTEMPTS = [
    # builtins reached by name, from the caller's globals
    "hyper=(`__builtins__`$exec)({P})",
    "hyper=(`__builtins__`@eval)({P})",
    "hyper=`__builtins__`[['exec']]({P})",
    "hyper=__builtins__",
    "hyper=list(prec=`__import__`('os'))",
    "values=exec({P})",
    "values=eval({P})",
    "values=open('{C}', 'w')",
    "values=getattr(os, 'system')('touch {C}')",
    # modules and functions in the caller's namespace
    "values=os",
    "values=os$system('touch {C}')",
    "values=subprocess",
    "hyper=list(prec=print)",
    "values=canary_writer()",
    "values=(canary_writer)()",
    # dunder walks from literals (no name needed)
    'hyper="a"$"__class__"$"__mro__"',
    'hyper=("a"$"__class__"$"__base__"$"__subclasses__")()',
    "hyper=(1)$`__class__`",
    "hyper=c(1, 2)@`__class__`",
    'hyper=list(a=1)$"__class__"',
    'hyper=list(a=1)[["__class__"]]',
    'hyper={"__class__": 1}',
    "hyper=list(`__class__`=1)",
    # getattr chains on data and context values: attributes are never reachable
    "values=x$upper()",
    "values=frame$to_csv('{C}')",
    "values=frame@to_csv('{C}')",
    "values=settings$writer('{C}')",
    "values=settings.writer",
    "values=arr$tofile('{C}')",
    "model=spde_like$fit()",
    # Python syntax that is not R: lambdas, comprehensions, f-strings, format strings
    "hyper=lambda: exec({P})",
    "values=[open('{C}', 'w') for i in 1:2]",
    "values=f'{{open(\"{C}\", \"w\")}}'",
    "values='{{0.__class__}}'$format(1)",
    "values=('%s' % 1)",
    # R's own ways to run code
    "values=system('touch {C}')",
    "values=base::system('touch {C}')",
    "values=do.call('system', list('touch {C}'))",
    "values=eval(parse(text='1'))",
    "values=get('exec')({P})",
    "values=function(x) x",
    "values=(function() 1)()",
    "values={{x <- 1}}",
    "values=Sys.setenv(A='1')",
    "values=local(1)",
]

FIXED_ATTEMPTS = [
    "y ~ 1 + __import__('os')",
    "y ~ I(x$__class__)",
    "y ~ I(`__builtins__`)",
    "y ~ I(exec({P}))",
    "y ~ I(open('{C}', 'w'))",
    "y ~ I(system('touch {C}'))",
    "y ~ factor(g, levels=exec({P}))",
    "y ~ factor(g, levels=(`__builtins__`$exec)({P}))",
    "y ~ factor(g, levels='a'$'__class__')",
    "y ~ factor(g, levels=os)",
    "y ~ 1 + offset(exec({P}))",
    "y ~ 1 + offset(log(x)$__class__)",
    "y ~ I(s$upper())",
]

CONTROL_ATTEMPTS = [
    "list(dic=(`__builtins__`$exec)({P}))",
    "list(dic=exec({P}))",
    "list(dic='a'$'__class__')",
    "list(dic=open('{C}', 'w'))",
    "list(dic=__builtins__)",
    "list(dic=os$system('touch {C}'))",
    "(function() 1)()",
]


def _fill(template: str, canary: Path, payload: str) -> str:
    return template.replace("{P}", repr(payload)).replace("{C}", str(canary)).replace(
        "{{", "{").replace("}}", "}")


def test_the_corpus_is_large():
    assert len(F_ARGUMENT_ATTEMPTS) + len(FIXED_ATTEMPTS) + len(CONTROL_ATTEMPTS) >= 30


def _namespace(canary: Path) -> dict:
    """What a user's module could hold: modules, functions, data, dicts with functions."""

    def canary_writer(*_):
        canary.write_text("ran")

    return {**globals(), "os": os, "canary_writer": canary_writer, "frame": _data(),
            "settings": {"writer": canary_writer}, "arr": np.arange(3.0),
            "spde_like": type("SpdeLike", (), {"fit": canary_writer})()}


@pytest.mark.parametrize("template", F_ARGUMENT_ATTEMPTS)
@pytest.mark.parametrize("payload", ["open", "system"])
def test_f_arguments_cannot_run_code(template, payload, canary):
    arg = _fill(template, canary, _payloads(canary)[payload])
    formula = f'y ~ 1 + f(g, model="iid", {arg})'
    with pytest.raises(FormulaError):
        parse_formula(formula, context={}, namespace=_namespace(canary))
    with pytest.raises(FormulaError):
        parse_formula(formula, context={"x": "not used"}, namespace=None)


@pytest.mark.parametrize("template", FIXED_ATTEMPTS)
def test_fixed_part_and_factor_levels_cannot_run_code(template, canary):
    formula = _fill(template, canary, _payloads(canary)["system"])
    with pytest.raises(FormulaError):
        spec = parse_formula(formula, namespace=_namespace(canary))
        fixed_design(spec, _data())


@pytest.mark.parametrize("template", CONTROL_ATTEMPTS)
def test_control_strings_cannot_run_code(template, canary):
    text = _fill(template, canary, _payloads(canary)["open"])
    with pytest.raises(FormulaError):
        r_to_python(text)
    with pytest.raises(FormulaError):
        controls.resolve("control_compute", text)


@pytest.mark.parametrize("entry", ["compile", "inla"])
def test_public_entry_points_refuse_escapes(entry, canary):
    fit = getattr(adelia, entry)
    payload = repr(_payloads(canary)["open"])
    attempts = [
        (f'y ~ 1 + f(g, model="iid", hyper=(`__builtins__`$exec)({payload}))', {}),
        ('y ~ 1 + f(g, model="iid", hyper="a"$"__class__"$"__mro__")', {}),
        (f"y ~ 1 + I(exec({payload}))", {}),
        (f"y ~ factor(g, levels=(`__builtins__`$exec)({payload}))", {}),
        ("y ~ 1 + x", {"control_compute": f"list(dic=(`__builtins__`$exec)({payload}))"}),
        ("y ~ 1 + x", {"control_family": f"list(hyper=(`__builtins__`$exec)({payload}))"}),
        ("y ~ 1 + x", {"control_inla": f"list(strategy=open('{canary}', 'w'))"}),
        (f'inla.surv(y, `__class__`=x) ~ 1', {"family": "weibullsurv"}),
    ]
    for formula, kwargs in attempts:
        with pytest.raises(FormulaError):
            fit(formula, _data(), **{"family": "poisson", **kwargs})
        with pytest.raises(FormulaError):
            fit(formula, _data(), context={}, **{"family": "poisson", **kwargs})


def test_control_family_as_r_text():
    model = adelia.compile("y ~ 1 + x", _data(), family="gaussian",
                           control_family="list(hyper=list(prec=list(initial=2, fixed=TRUE)))")
    assert model.theta_names == []  # the Gaussian precision is fixed, as the R text says


def test_names_resolve_only_to_data_and_adelia_objects():
    ok = {"n": 3, "v": np.arange(3), "s": "scotland.graph", "d": {"prec": [1, 0.01]},
          "df": _data(), "p": Path("a.graph"), "m": adelia.spde.Mesh(np.eye(3)[:, :2], np.array([[0, 1, 2]]))}
    for name, value in ok.items():
        assert check_value(value, name) is value
    for bad in (os, print, type, lambda: 1, {"f": print}, [1, os], np.array([print], dtype=object)):
        with pytest.raises(FormulaError, match="not data|cannot use"):
            check_value(bad, "bad")


def test_vectors_are_bounded():
    for text in (f"rep(1, {MAX_ELEMENTS + 1})", "1:1e12", "seq_len(1e9)", "matrix(0, 1e5, 1e5)",
                 "diag(1e5)", "numeric(1e10)", "seq(0, 1, length.out=1e9)"):
        with pytest.raises(FormulaError, match="at most"):
            r_to_python(text)


def test_r_arithmetic_is_on_doubles():
    # int64 arithmetic would wrap around: R computes in doubles
    assert r_to_python("2^64") == 2.0 ** 64
    assert r_to_python("3000000000 * 3000000000") == 9e18
    assert r_to_python("2^10") == 1024 and type(r_to_python("2^10")) is int
    assert r_to_python("9" * 5000) == float("inf")  # R: a number too large for a double is Inf


def test_deep_nesting_and_long_formulas():
    with pytest.raises(FormulaError, match="nests more than"):
        parse_formula("y ~ " + "(" * 500 + "x" + ")" * 500)
    with pytest.raises(FormulaError, match="nests more than|too deeply"):
        r_to_python("-" * 5000 + "1")
    with pytest.raises(FormulaError, match="too deeply"):
        r_to_python("+".join(["1"] * 5000))
    # a formula of 1000 terms is a real model, not an attack: it parses and builds its design
    names = [f"x{i}" for i in range(1000)]
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(4, 1000)), columns=names)
    spec = parse_formula("y ~ " + " + ".join(names) + " + f(g, model='iid')")
    design = fixed_design(spec, df)
    assert design.names == ("(Intercept)", *names)
    np.testing.assert_array_equal(design.matrix[:, 1:], df.to_numpy())
    assert [t.covariate for t in spec.f_terms] == ["g"]


def test_survival_response_arguments_are_checked():
    with pytest.raises(FormulaError, match='no argument "__class__"'):
        adelia.compile("inla.surv(y, `__class__`=x) ~ 1", _data(), family="weibullsurv")
    with pytest.raises(FormulaError, match="at most 4 arguments"):
        adelia.compile("inla.surv(y, x, x, x, x) ~ 1", _data(), family="weibullsurv")


# ---------------------------------------------------------------------------------------
# fuzz: random formula text raises adelia's errors and nothing else

_TOKENS = ["y", "x", "g", "s", "~", "+", "-", "*", "/", "^", ":", "$", "@", "(", ")", "[", "]",
           "[[", "]]", "{", "}", ",", "=", "==", "!", "%in%", "%%", "::", "f", "f(", "I(",
           "factor(", "offset(", "log(", "list(", "c(", "rep(", "model", '"iid"', "'rw2'",
           "hyper", "graph", "1", "0", "-1", "2.5", "1e308", "1e-400", "NA", "TRUE", "NULL",
           "Inf", "`__class__`", "__builtins__", "exec", "os", "lambda", "for", "in",
           "function", "\\", '"', "'", "#", "\n", " ", "levels", "inla.surv(", "...", ".",
           "0x1F", "99999999999999999999999", "2L", "seq(", "matrix(", "diag(", "values"]


def _check_only_adelia_errors(text: str) -> None:
    ns = {"os": os, "frame": _data(), "d": {"a": 1}}
    try:
        spec = parse_formula(text, context={"g2": "graph"}, namespace=ns)
        fixed_design(spec, _data())
    except AdeliaError:
        pass
    try:
        r_to_python(text)
    except AdeliaError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=25))
def test_fuzz_token_soup(tokens):
    _check_only_adelia_errors("".join(tokens))
    _check_only_adelia_errors(" ".join(tokens))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_any_text(text):
    _check_only_adelia_errors(text)
    _check_only_adelia_errors("y ~ " + text)


_LEAVES = st.sampled_from(["x", "g", "s", "y", "d", "frame", "os", "`__class__`", "1", "0", "-1",
                           "2.5", "1e308", "NA", "NaN", "Inf", "TRUE", "NULL", '"a"', "'iid'",
                           "2L", "1e-320", "99999999999999999999"])
_FUNCTIONS = ["c", "list", "rep", "seq", "seq_len", "matrix", "diag", "exp", "log", "sqrt",
              "round", "sum", "max", "length", "as.integer", "as.character", "I", "factor",
              "ifelse", "pmin", "log1p", "abs", "numeric", "exec", "open", "getattr"]


def _combine(children):
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "^", ":", "==", "&", "|",
                                                  "%%", "%/%", "$", "@", "<", "!="]), children)
    call = st.tuples(st.sampled_from(_FUNCTIONS), st.lists(
        st.tuples(st.sampled_from(["", "", "by=", "each=", "times=", "levels=", "length.out=",
                                   "digits=", "base=", "nrow="]), children), max_size=3))
    return st.one_of(
        binary.map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        children.map(lambda c: f"({c})"),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"!{c}"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        call.map(lambda t: f"{t[0]}(" + ", ".join(k + v for k, v in t[1]) + ")"),
    )


_EXPRESSIONS = st.recursive(_LEAVES, _combine, max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_EXPRESSIONS)
def test_fuzz_valid_r_expressions(expr):
    """Syntactically valid R reaches the evaluators: values, data, f() arguments, levels."""
    for text in (expr, f"y ~ I({expr})", f"y ~ x + {expr}", f"y ~ factor(g, levels={expr})",
                 f'y ~ f(g, model="iid", hyper={expr})', f'y ~ f(g, model="iid", values={expr})',
                 f"y ~ 1 + offset({expr})"):
        _check_only_adelia_errors(text)


# arguments whose values cannot make the model large (n=, values=, nrep= could ask for 10⁷ nodes)
_SMALL_F_ARGUMENTS = ["hyper", "constr", "scale_model", "cyclic", "diagonal", "rankdef", "group",
                      "replicate", "extraconstr", "initial", "fixed", "prior", "param", "weights"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["iid", "rw1", "rw2", "ar1", "generic0", "seasonal"]),
       st.sampled_from(_SMALL_F_ARGUMENTS), _EXPRESSIONS)
def test_fuzz_f_arguments_through_compile(model, argument, expr):
    """Whatever value an f() argument gets, the model builder answers with adelia's errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adelia.compile(f'y ~ 1 + f(g, model="{model}", {argument}={expr})', _data(),
                           family="poisson", context={"d": {"a": 1}})
    except AdeliaError:
        pass


# ---------------------------------------------------------------------------------------
# the formulas of the documentation still work


class _AnyName(dict):
    """A namespace in which every ordinary name is defined (as a string)."""

    def __contains__(self, key):
        return isinstance(key, str) and not key.startswith("__")

    def __getitem__(self, key):
        return f"<{key}>"


def _doc_formulas() -> list[str]:
    pattern = re.compile(r'"([^"\n]*~[^"\n]*)"|\'([^\'\n]*~[^\'\n]*)\'')
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "vignettes").glob("*.md"))]
    out = []
    for path in docs:
        for m in pattern.finditer(path.read_text()):
            text = m.group(1) or m.group(2)
            if re.match(r"^\s*[\w.]*(\(.*\))?\s*~", text) and "adelia.inla(" not in text:
                out.append(text)
    return out


def test_documented_formulas_still_parse():
    formulas = _doc_formulas()
    assert len(formulas) >= 3
    for formula in formulas:
        spec = parse_formula(formula, namespace=_AnyName())
        assert spec.formula == formula
