"""parse_formula: a lookup table of R-INLA formulas -> response, fixed part, f() terms."""

from __future__ import annotations

import json
import warnings

import pytest

from adelia.errors import FormulaError, FormulaSyntaxError
from adelia.formula import FTerm, ModelSpec, caller_namespace, parse_formula
from conftest import shared_path


class _Sentinel(str):
    """A stand-in for a graph / SPDE object: a value formula names may refer to (a string),
    recognisable by identity."""

    def __repr__(self):
        return f"<{str.__str__(self)}>"


SPDE = _Sentinel("spde")
GRAPH = _Sentinel("graph")
CMAT = _Sentinel("C")
ZMAT = _Sentinel("Z")
CONTEXT = {"g": GRAPH, "spde": SPDE, "C": CMAT, "ec": {"A": [[1, 1]], "e": [0]}, "v": [1, 2, 3],
           "tv": [0.5, 1.5, 4.0], "Z": ZMAT}


def loggamma(a, b):
    return {"hyper": {"prec": {"prior": "loggamma", "param": [a, b]}}}


# formula -> (response, fixed, intercept, [(covariate, weights, model, args)], offsets)
TABLE = {
    # ../shared/reference/published_inla.json ("r_formula")
    "r ~ x1 + x2 + f(plate, model='iid', hyper=list(prec=list(prior='loggamma', param=c(0.5, 0.0164))))":
        ("r", "1 + x1 + x2", True, [("plate", None, "iid", loggamma(0.5, 0.0164))], []),
    "r ~ x1 + x2 + I(x1*x2) + f(plate, model='iid', hyper=list(prec=list(prior='loggamma', param=c(0.5, 0.0164))))":
        ("r", "1 + x1 + x2 + I(x1*x2)", True, [("plate", None, "iid", loggamma(0.5, 0.0164))], []),
    "Counts ~ 1 + f(Region, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.0014))))":
        ("Counts", "1", True, [("Region", None, "iid", loggamma(1, 0.0014))], []),
    "Counts ~ 1 + I(X/10) + f(Region, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.0014))))":
        ("Counts", "1 + I(X/10)", True, [("Region", None, "iid", loggamma(1, 0.0014))], []),
    "Counts ~ 1 + f(Region, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.0014)))) + "
    "f(Region2, model='besag', graph='scotland.graph', hyper=list(prec=list(prior='loggamma', param=c(1, 0.2/0.59))))":
        ("Counts", "1", True, [("Region", None, "iid", loggamma(1, 0.0014)),
                               ("Region2", None, "besag", {"graph": "scotland.graph", **loggamma(1, 0.2 / 0.59)})], []),
    "Counts ~ 1 + I(X/10) + f(Region, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.0014)))) + "
    "f(Region2, model='besag', graph='scotland.graph', hyper=list(prec=list(prior='loggamma', param=c(1, 0.4/0.59))))":
        ("Counts", "1 + I(X/10)", True, [("Region", None, "iid", loggamma(1, 0.0014)),
                                         ("Region2", None, "besag", {"graph": "scotland.graph", **loggamma(1, 0.4 / 0.59)})], []),
    "cases ~ as.factor(birth.year) + exposed + I(exposed*birth.year) + I(exposed*(birth.year^2-22)) + "
    "f(birth.year, exposed, model='iid', hyper=list(prec=list(prior='loggamma', param=c(0.5, 0.0164))))":
        ("cases", "1 + as.factor(birth.year) + exposed + I(exposed*birth.year) + I(exposed*(birth.year^2-22))", True,
         [("birth.year", "exposed", "iid", loggamma(0.5, 0.0164))], []),
    "y ~ fW + mW + WW + f(f.modA, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.622)))) + "
    "f(m.modA, model='iid', hyper=list(prec=list(prior='loggamma', param=c(1, 0.622))))":
        ("y", "1 + fW + mW + WW", True, [("f.modA", None, "iid", loggamma(1, 0.622)),
                                         ("m.modA", None, "iid", loggamma(1, 0.622))], []),
    # ../shared/reference/rinla/*/spec.json and rinla_perf/*/spec.json ("formula")
    'y ~ 1 + f(t, model="ar1")': ("y", "1", True, [("t", None, "ar1", {})], []),
    'r ~ x1 + x2 + f(plate, model="iid")': ("r", "1 + x1 + x2", True, [("plate", None, "iid", {})], []),
    "y ~ 1 + x": ("y", "1 + x", True, [], []),
    'y ~ 1 + x + f(g, model="iid")': ("y", "1 + x", True, [("g", None, "iid", {})], []),
    'Counts ~ 1 + I(X/10) + f(Region, model="bym2", graph=g)':
        ("Counts", "1 + I(X/10)", True, [("Region", None, "bym2", {"graph": GRAPH})], []),
    "y ~ 0 + b0 + f(s, model=spde)": ("y", "0 + b0", False, [("s", None, SPDE, {})], []),
    'y ~ -1 + f(time, model="rw2", cyclic=TRUE)': ("y", "0", False, [("time", None, "rw2", {"cyclic": True})], []),
    'inla.surv(time, event) ~ age + sex + dis1 + dis2 + dis3 + f(ID, model="iid")':
        ("inla.surv(time, event)", "1 + age + sex + dis1 + dis2 + dis3", True, [("ID", None, "iid", {})], []),
    'y ~ 1 + x + f(g, model="iid") + f(k, model="rw2")':
        ("y", "1 + x", True, [("g", None, "iid", {}), ("k", None, "rw2", {})], []),
    'y ~ 0 + b0 + f(s, model=spde, group=s.group, control.group=list(model="ar1"))':
        ("y", "0 + b0", False, [("s", None, SPDE, {"group": "s.group", "control_group": {"model": "ar1"}})], []),
    'Y ~ 1 + x + f(region, model="bym2", graph=g)':
        ("Y", "1 + x", True, [("region", None, "bym2", {"graph": GRAPH})], []),
    # the reference suite's second batch
    'Y ~ 1 + x + f(region, model="besagproper", graph=g)':
        ("Y", "1 + x", True, [("region", None, "besagproper", {"graph": GRAPH})], []),
    'inla.surv(time, cens) ~ sex + age + wbc + tpi':
        ("inla.surv(time, cens)", "1 + sex + age + wbc + tpi", True, [], []),
    'Y ~ f(diid, model="iid2d", n=92) + lag.tp + lag.tn + ct.tp + ct.tn + mr.tp + mr.tn - 1':
        ("Y", "0 + lag.tp + lag.tn + ct.tp + ct.tn + mr.tp + mr.tn", False,
         [("diid", None, "iid2d", {"n": 92})], []),
    'inla.surv(time, event) ~ 1 + x': ("inla.surv(time, event)", "1 + x", True, [], []),
    'y ~ 1 + f(t, model="ou", values=tv)':
        ("y", "1", True, [("t", None, "ou", {"values": [0.5, 1.5, 4.0]})], []),
    'y ~ -1 + x1 + x2': ("y", "0 + x1 + x2", False, [], []),
    'y ~ 1 + f(node, model="rw2d", nrow=20, ncol=15)':
        ("y", "1", True, [("node", None, "rw2d", {"nrow": 20, "ncol": 15})], []),
    'y ~ 1 + x + f(idx, model="z", Z=Z)': ("y", "1 + x", True, [("idx", None, "z", {"Z": ZMAT})], []),
    # R-INLA documentation examples (inla.doc(...), r-inla.org)
    'y ~ f(region, model = "bym2", graph = g, scale.model = TRUE, constr = TRUE, '
    'hyper = list(phi = list(prior = "pc", param = c(0.5, 2/3), initial = -3), '
    'prec = list(prior = "pc.prec", param = c(0.2/0.31, 0.01), initial = 5)))':
        ("y", "1", True, [("region", None, "bym2", {
            "graph": GRAPH, "scale_model": True, "constr": True,
            "hyper": {"phi": {"prior": "pc", "param": [0.5, 2 / 3], "initial": -3},
                      "prec": {"prior": "pc.prec", "param": [0.2 / 0.31, 0.01], "initial": 5}}})], []),
    'y ~ -1 + f(time, model = "rw2", cyclic = TRUE, scale.model = TRUE, '
    'hyper = list(prec = list(prior = "pc.prec", param = c(1, 0.01))))':
        ("y", "0", False, [("time", None, "rw2", {"cyclic": True, "scale_model": True,
                                                   "hyper": {"prec": {"prior": "pc.prec", "param": [1, 0.01]}}})], []),
    'y ~ f(i, model = "ar1", group = j, control.group = list(model = "ar1", scale.model = TRUE, '
    'hyper = list(rho = list(prior = "pc.cor1", param = c(0.9, 0.9)))))':
        ("y", "1", True, [("i", None, "ar1", {"group": "j", "control_group": {
            "model": "ar1", "scale_model": True,
            "hyper": {"rho": {"prior": "pc.cor1", "param": [0.9, 0.9]}}}})], []),
    'Y ~ -1 + alpha1 + alpha2 + f(u, model = "iid") + f(u2, copy = "u", hyper = list(beta = list(fixed = FALSE)))':
        ("Y", "0 + alpha1 + alpha2", False, [("u", None, "iid", {}),
                                             ("u2", None, "copy", {"copy": "u", "hyper": {"beta": {"fixed": False}}})], []),
    'y ~ f(idx, model = "generic0", Cmatrix = C, rankdef = 1, constr = TRUE, diagonal = 1e-5)':
        ("y", "1", True, [("idx", None, "generic0", {"Cmatrix": CMAT, "rankdef": 1, "constr": True,
                                                      "diagonal": 1e-5})], []),
    'y ~ belt + f(trend, model = "rw2") + f(seasonal, model = "seasonal", season.length = 12)':
        ("y", "1 + belt", True, [("trend", None, "rw2", {}),
                                 ("seasonal", None, "seasonal", {"season_length": 12})], []),
    'y ~ 1 + f(idx, model = "iid", replicate = rep.id, values = 1:10) + offset(log(E))':
        ("y", "1", True, [("idx", None, "iid", {"replicate": "rep.id", "values": list(range(1, 11))})], ["log(E)"]),
    'y ~ x + f(idx, w, model = "rw1", adjust.for.con.comp = FALSE, extraconstr = ec, values = v)':
        ("y", "1 + x", True, [("idx", "w", "rw1", {"adjust_for_con_comp": False,
                                                   "extraconstr": CONTEXT["ec"], "values": [1, 2, 3]})], []),
    "y ~ x - 1 + f(idx)": ("y", "0 + x", False, [("idx", None, "iid", {})], []),
    "y ~ 0 + x + 1": ("y", "1 + x", True, [], []),
    "y ~ x1 * x2 - x1:x2 + log(z)": ("y", "1 + x1 * x2 - x1:x2 + log(z)", True, [], []),
    "~ x + f(a)": (None, "1 + x", True, [("a", None, "iid", {})], []),
    # Python spellings
    'y ~ f("plate", model="iid", scale_model=True, hyper={"prec": {"prior": "loggamma", "param": [0.5, 0.0164]}})':
        ("y", "1", True, [("plate", None, "iid", {"scale_model": True, **loggamma(0.5, 0.0164)})], []),
    # scanner traps: f( inside other names and inside strings, nested parentheses
    'y ~ off(x) + if.f(z) + f(a, model="iid", graph="f(x).graph + 1") + offset(log(E + f.y))':
        ("y", "1 + off(x) + if.f(z)", True, [("a", None, "iid", {"graph": "f(x).graph + 1"})], ["log(E + f.y)"]),
    "y ~ f(inla.group(x, n = 20), model = 'rw2')":
        ("y", "1", True, [("inla.group(x, n = 20)", None, "rw2", {})], []),
    "y ~ INLA::f(x, model = 'iid')": ("y", "1", True, [("x", None, "iid", {})], []),
}


def _check(formula, expected, spec):
    response, fixed, intercept, terms, offsets = expected
    assert isinstance(spec, ModelSpec)
    assert spec.formula == formula
    assert spec.response == response
    assert spec.fixed == fixed
    assert spec.intercept is intercept
    assert list(spec.offsets) == offsets
    assert len(spec.f_terms) == len(terms)
    for term, (cov, weights, model, args) in zip(spec.f_terms, terms):
        assert isinstance(term, FTerm)
        assert (term.covariate, term.weights) == (cov, weights)
        assert term.model is model if isinstance(model, _Sentinel) else term.model == model
        assert term.args == args
        assert term.text in formula and term.text.startswith(("f(", "INLA::f(")) and term.text.endswith(")")
        assert term.label == cov


@pytest.mark.parametrize("formula", list(TABLE), ids=range(len(TABLE)))
def test_lookup_table(formula):
    _check(formula, TABLE[formula], parse_formula(formula, context=CONTEXT))


def _reference_formulas():
    published = json.loads(shared_path("reference", "published_inla.json").read_text())
    out = [c["r_formula"] for c in published["cases"] if "r_formula" in c]
    for folder in ("rinla", "rinla_perf"):
        for f in sorted(shared_path("reference", folder).glob("*/spec.json")):
            out.append(json.loads(f.read_text())["formula"])
    return out


def test_every_reference_formula_is_in_the_table():
    formulas = _reference_formulas()
    assert len(formulas) >= 20
    for formula in formulas:
        assert formula in TABLE, f"add the expected parse of {formula!r} to TABLE"
        _check(formula, TABLE[formula], parse_formula(formula, context=CONTEXT))


def test_exact_text_kept():
    formula = "y ~ x +  f( idx ,model = 'iid' ,\n  hyper = list(prec = list(initial = 4, fixed = TRUE)) )"
    spec = parse_formula(formula)
    assert spec.f_terms[0].text == formula[formula.index("f("):]
    assert spec.f_terms[0].args == {"hyper": {"prec": {"initial": 4, "fixed": True}}}


def test_namespace_and_context():
    g_local = "from-namespace.graph"  # noqa: F841  (found through caller_namespace)
    spec = parse_formula("y ~ f(r, model='besag', graph=g_local)", namespace=caller_namespace(0))
    assert spec.f_terms[0].args["graph"] == "from-namespace.graph"
    spec = parse_formula("y ~ f(r, model='besag', graph=g_local)", context={"g_local": "ctx.graph"},
                         namespace=caller_namespace(0))
    assert spec.f_terms[0].args["graph"] == "ctx.graph"  # context wins

    def api(formula):  # how adelia.inla will capture its caller's variables
        return parse_formula(formula, namespace=caller_namespace(1))

    my_spde = _Sentinel("user spde")  # noqa: F841
    assert api("y ~ 0 + b0 + f(s, model=my_spde)").f_terms[0].model is my_spde


def test_dotted_name_is_an_element_of_a_dict_never_an_attribute():
    spec = parse_formula("y ~ f(s, model=models.spde)", namespace={"models": {"spde": SPDE}})
    assert spec.f_terms[0].model is SPDE

    class Models:
        spde = SPDE

    with pytest.raises(FormulaError, match='"models.spde" is not defined'):
        parse_formula("y ~ f(s, model=models.spde)", namespace={"models": Models})


def test_copy_overrides_model_with_warning():
    with pytest.warns(UserWarning, match="ignored because copy"):
        spec = parse_formula('y ~ f(a) + f(b, model="iid", copy="a")')
    assert spec.f_terms[1].model == "copy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_formula('y ~ f(a) + f(b, copy="a")').f_terms[1].model == "copy"


def _caret(err, formula, at):
    assert err.position == at
    lines = str(err).splitlines()
    assert lines[-2] == "    " + formula
    assert lines[-1] == "    " + " " * at + "^"


@pytest.mark.parametrize("formula, at, message", [
    ('y ~ x + f(idx, model="iid"', "(", "never closed"),
    ("y ~ x +", "+", "right-hand side"),
    ('y ~ f(idx, hyper=list(prec=list(param=c(1 0.01))))', "0.01", "unexpected"),
    ('y ~ f(idx, model="iid)', '"iid)', "unterminated string"),
    ("y ~ x + )", "+", "right-hand side"),
    ("y ~ x + (a + b", "(", "never closed"),
    ("y ~ x + a)", ")", "unmatched"),
    ("y ~ x y", "y", "operator or a comma"),
    ("y ~ f(idx, model=)", "=)", "no value"),
    ("y ~ f(idx,, model='iid')", ", model", "empty argument"),
])
def test_syntax_errors_show_a_caret(formula, at, message):
    with pytest.raises(FormulaSyntaxError, match=message) as e:
        parse_formula(formula)
    pos = formula.rindex(at) if at == "y" else formula.index(at)
    _caret(e.value, formula, pos)


def test_caret_on_a_multiline_formula():
    formula = "y ~ x +\n    f(idx, model = 'iid',\n      hyper = list(prec = list(param = c(1 0.01))))"
    with pytest.raises(FormulaSyntaxError) as e:
        parse_formula(formula)
    _caret(e.value, formula.replace("\n", " "), formula.index("0.01"))


def test_missing_tilde():
    with pytest.raises(FormulaSyntaxError, match="needs '~'"):
        parse_formula("y + x")
    with pytest.raises(FormulaSyntaxError, match="one '~'"):
        parse_formula("y ~ x ~ z")


def test_unresolvable_name():
    formula = 'Counts ~ 1 + f(Region, model="bym2", graph=gg)'
    with pytest.raises(FormulaError, match='name "gg" is not defined') as e:
        parse_formula(formula, context={"g": "x.graph"})
    assert 'Did you mean "g"' in str(e.value) and "context=" in str(e.value)
    assert str(e.value).splitlines()[-1] == "    " + " " * formula.index("gg)") + "^"
    with pytest.raises(FormulaError, match='model="iid"'):
        parse_formula("y ~ f(idx, model=iid)")


def test_unknown_f_argument():
    with pytest.raises(FormulaError, match='unknown argument "scale.modle".*Did you mean "scale_model"'):
        parse_formula("y ~ f(idx, model='rw1', scale.modle=TRUE)")
    with pytest.raises(FormulaError, match="given twice"):
        parse_formula("y ~ f(idx, scale.model=TRUE, scale_model=FALSE)")


def test_bad_f_terms():
    with pytest.raises(FormulaError, match="at most two unnamed"):
        parse_formula("y ~ f(idx, w, 'iid')")
    with pytest.raises(FormulaError, match="covariate"):
        parse_formula("y ~ f(model='iid')")
    with pytest.raises(FormulaError, match="must be a term of its own"):
        parse_formula("y ~ x:f(idx)")
    with pytest.raises(FormulaError, match="cannot be removed"):
        parse_formula("y ~ x - f(idx)")
    with pytest.raises(FormulaError, match="used in two f\\(\\) terms"):
        parse_formula("y ~ f(idx) + f(idx, model='rw1')")
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(42)
