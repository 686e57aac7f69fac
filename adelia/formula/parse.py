"""Parse an R-INLA formula string into a :class:`~adelia.formula.spec.ModelSpec`.

The formula is read as R code (:mod:`adelia.formula.rsyntax`), so nested parentheses,
strings containing ``f(`` or ``+``, and names such as ``if(``/``off(``/``birth.year`` are
handled by the grammar, not by pattern matching. The right-hand side is split at its
top-level ``+``/``-`` into summands, as R-INLA's ``inla.interpret.formula`` does with
``terms.formula(..., specials="f")``:

* ``f(...)`` -> an :class:`FTerm`; arguments converted by :mod:`adelia.formula.rvalues`;
* ``offset(expr)`` -> ``expr`` in ``ModelSpec.offsets``;
* ``1`` / ``0`` / ``-1`` -> the intercept flag (the last one written wins, as in R);
* everything else -> the fixed part, kept in R syntax with an explicit intercept
  (``"1 + x1 + I(x1*x2)"``, ``"0 + b0"``) for :func:`adelia.formula.fixed_design`.

Inside ``f()`` the first positional argument is the covariate (a column name, or the
deparsed expression as R-INLA labels it, e.g. ``"inla.group(x)"``), the second the
weights. Argument names are R-INLA's in Python spelling (``scale.model`` ->
``scale_model``; checked against R-INLA's ``f()`` signature); dictionaries given to
``control.group``/``control.scopy``/``args.*`` get Python-spelled keys too, while
``hyper`` keeps R-INLA's names (``prec``, ``rho``, ``theta1``; ``prior``, ``param``,
``initial``, ``fixed``). ``group=``, ``replicate=`` and ``weights=`` refer to the data
(R-INLA evaluates them there): a column name, or an expression over columns kept as
text (``group=as.integer(year)``), like the covariate.
Every other bare name (``graph=g``, ``model=spde``, ``Cmatrix=C``, ``values=v``) is
looked up in ``context`` first, then in ``namespace`` (the caller's variables, see
:func:`caller_namespace`); ``a.b`` that is not a name there is tried as element ``b``
of the dict ``a``. Strings stay strings (``graph="scotland.graph"`` is a path).

The formula is data, never code (:mod:`adelia.formula.allowed`): a name may only refer to
data or to adelia objects -- never to a module, a function or a class -- dunder names
are refused, and nothing in the text can reach an attribute or call anything but the R
functions of :mod:`adelia.formula.rvalues`.

Example:
    >>> spec = parse_formula('y ~ 1 + x + f(idx, model="rw2", scale.model=TRUE)')
    >>> spec.fixed, spec.f_terms[0].covariate, spec.f_terms[0].args
    ('1 + x', 'idx', {'scale_model': True})
"""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from ..errors import FormulaError, FormulaSyntaxError, did_you_mean
from ..user_warnings import warn
from .allowed import check_value, dunder_message, is_dunder, nesting_guard
from .rsyntax import (
    BinOp, Call, Name, Node, Num, Str, UnaryOp, one_line, deparse, located, parse_r,
)
from .rvalues import CONSTANTS, evaluate, normalise_dict_keys, normalise_key
from .spec import FTerm, ModelSpec

#: R-INLA's f() arguments (rinla/R/f.R), Python spelling; "weights" is the second
#: positional argument, accepted by keyword too.
F_ARGUMENTS = frozenset(normalise_key(a) for a in (
    "model", "copy", "scopy", "same.as", "n", "nrep", "replicate", "ngroup", "group",
    "control.group", "control.scopy", "hyper", "initial", "prior", "param", "fixed",
    "season.length", "constr", "extraconstr", "values", "cyclic", "diagonal", "graph",
    "graph.file", "cdf", "quantiles", "Cmatrix", "rankdef", "Z", "nrow", "ncol", "nu",
    "bvalue", "spde.prefix", "spde2.prefix", "spde2.transform", "spde3.prefix",
    "spde3.transform", "mean.linear", "prec.linear", "compute", "of", "precision", "range",
    "adjust.for.con.comp", "order", "scale", "strata", "rgeneric", "cgeneric", "scale.model",
    "args.slm", "args.ar1c", "args.intslope", "vb.correct", "correct", "locations", "debug",
    "weights",
))
#: arguments whose bare-name value is a data column (R-INLA evaluates them in the data)
DATA_COLUMN_ARGS = frozenset({"group", "replicate", "weights"})
#: dictionary-valued arguments whose keys get Python spelling (except below "hyper")
NORMALISED_DICT_ARGS = frozenset({"control_group", "control_scopy", "args_slm", "args_ar1c",
                                  "args_intslope"})


def caller_namespace(depth: int = 1) -> ChainMap:
    """The variables visible in a caller's frame: its locals, then its globals.

    Args:
        depth: how many frames above the function calling ``caller_namespace``: 1 = the
            caller of that function. ``adelia.inla`` calls ``caller_namespace(1)`` so that
            ``f(s, model=spde)`` finds the user's ``spde``.

    Example:
        >>> def api(formula):
        ...     return parse_formula(formula, namespace=caller_namespace(1))
        >>> my_graph = "germany.graph"
        >>> api('y ~ f(r, model="besag", graph=my_graph)').f_terms[0].args["graph"]
        'germany.graph'
    """
    frame = sys._getframe(depth + 1)
    try:
        return ChainMap(dict(frame.f_locals), frame.f_globals)
    finally:
        del frame


def parse_formula(formula: str, context: Mapping[str, Any] | None = None,
                  namespace: Mapping[str, Any] | None = None) -> ModelSpec:
    """Split an R-INLA formula into response, fixed part, ``f()`` terms and offsets.

    Args:
        formula: the formula as R-INLA users write it, e.g.
            ``'Counts ~ 1 + I(X/10) + f(Region, model="bym2", graph=g)'``.
        context: values for names used inside ``f()`` (wins over ``namespace``).
        namespace: further names, usually :func:`caller_namespace` of the user's call.

    Returns:
        A :class:`ModelSpec`; ``ModelSpec.fixed`` is R syntax with an explicit intercept.

    Raises:
        FormulaSyntaxError: not valid R, with a caret under the position in ``formula``.
        FormulaError: an unknown ``f()`` argument, a name that cannot be resolved, an
            ``f()`` term inside another expression, the same covariate in two ``f()`` terms.

    Example:
        >>> s = parse_formula('y ~ -1 + f(time, model="rw2", cyclic=TRUE)')
        >>> s.intercept, s.fixed, s.f_terms[0].model, s.f_terms[0].args
        (False, '0', 'rw2', {'cyclic': True})
    """
    if not isinstance(formula, str):
        raise FormulaError(f"the formula must be a string such as 'y ~ 1 + x', not {type(formula).__name__}")
    with nesting_guard(formula):
        return _parse_formula(formula, context, namespace)


def _parse_formula(formula: str, context: Mapping[str, Any] | None,
                   namespace: Mapping[str, Any] | None) -> ModelSpec:
    node = parse_r(formula)
    if isinstance(node, BinOp) and node.op == "~":
        lhs, rhs = node.left, node.right
        if _contains_tilde(lhs):
            raise FormulaSyntaxError("a formula has one '~'; found a second one", one_line(formula),
                                     _first_tilde(formula, lhs))
        response = formula[lhs.start:lhs.end].strip()
    elif isinstance(node, UnaryOp) and node.op == "~":
        rhs, response = node.operand, None
    else:
        raise FormulaSyntaxError("a formula needs '~' between the response and the terms "
                                 "(e.g. 'y ~ 1 + x')", one_line(formula), node.end)

    intercept = True
    fixed: list[tuple[int, Node]] = []
    f_terms: list[FTerm] = []
    offsets: list[str] = []
    for sign, term in _summands(rhs):
        kind = _special(term)
        if kind is not None:
            if sign < 0:
                raise FormulaError(located(f"an {kind}() term cannot be removed with '-'",
                                           formula, term.start))
            if kind == "f":
                f_terms.append(_f_term(term, formula, context, namespace))
            else:
                offsets.append(_offset(term, formula))
            continue
        if isinstance(term, Num) and term.value in (0, 1):
            intercept = (term.value == 1) == (sign > 0)
            continue
        nested = _nested_special(term)
        if nested is not None:
            raise FormulaError(located(
                f"{nested.fname}() must be a term of its own, added with '+' at the top level "
                f"of the formula, not part of {deparse(term)!r}", formula, nested.start))
        fixed.append((sign, term))

    _check_unique_covariates(f_terms, formula)
    parts = ["1" if intercept else "0"]
    for sign, term in fixed:
        parts.append(("+ " if sign > 0 else "- ") + formula[term.start:term.end])
    return ModelSpec(formula=formula, response=response, fixed=" ".join(parts), intercept=intercept,
                     f_terms=tuple(f_terms), offsets=tuple(offsets))


# ---------------------------------------------------------------------------------------
# the right-hand side


def _summands(node: Node, sign: int = 1) -> list[tuple[int, Node]]:
    """Top-level summands with their signs: a - b + c -> [(+, a), (-, b), (+, c)].

    Iterative (a depth-first stack, right child pushed first), so that a formula with
    thousands of terms -- a left-leaning chain of '+' that deep -- is no problem."""
    out: list[tuple[int, Node]] = []
    stack = [(sign, node)]
    while stack:
        s, n = stack.pop()
        if isinstance(n, BinOp) and n.op in ("+", "-"):
            stack.append((s if n.op == "+" else -s, n.right))
            stack.append((s, n.left))
        elif isinstance(n, UnaryOp) and n.op in ("+", "-"):
            stack.append((s if n.op == "+" else -s, n.operand))
        else:
            out.append((s, n))
    return out


def _call_name(node: Node) -> str | None:
    if not isinstance(node, Call):
        return None
    func = node.func
    if isinstance(func, BinOp) and func.op in ("::", ":::") and isinstance(func.right, Name):
        return func.right.id  # INLA::f(...)
    return func.id if isinstance(func, Name) else None


def _special(node: Node) -> str | None:
    name = _call_name(node)
    return name if name in ("f", "offset") else None


def _nested_special(node: Node) -> Call | None:
    """The first f()/offset() call anywhere inside ``node``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if _special(n) is not None:
            return n
        for child in _children(n):
            stack.append(child)
    return None


def _children(node: Node) -> list[Node]:
    if isinstance(node, Call):
        return [node.func] + [a.value for a in node.args]
    if isinstance(node, BinOp):
        return [node.left, node.right]
    if isinstance(node, UnaryOp):
        return [node.operand]
    inner = getattr(node, "inner", None)
    return [inner] if inner is not None else []


def _contains_tilde(node: Node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (BinOp, UnaryOp)) and n.op == "~":
            return True
        stack.extend(_children(n))
    return False


def _first_tilde(formula: str, node: Node) -> int:
    return formula.find("~", node.start)


def _offset(call: Call, formula: str) -> str:
    if len(call.args) != 1 or call.args[0].name is not None:
        raise FormulaError(located("offset() takes one expression, e.g. offset(log(E))",
                                   formula, call.start))
    value = call.args[0].value
    return formula[value.start:value.end]


# ---------------------------------------------------------------------------------------
# f() terms


def _f_term(call: Call, formula: str, context: Mapping | None, namespace: Mapping | None) -> FTerm:
    text = formula[call.start:call.end]
    positional = [a for a in call.args if a.name is None]
    keyword = [a for a in call.args if a.name is not None]
    if not positional:
        raise FormulaError(located(
            "f() needs the covariate (the index column) as its first argument, "
            "e.g. f(idx, model=\"iid\")", formula, call.start))
    if len(positional) > 2:
        raise FormulaError(located(
            "f() takes at most two unnamed arguments (the covariate and the weights); "
            "name the others, e.g. model=\"iid\"", formula, positional[2].start))
    covariate = _column_reference(positional[0].value)
    weights = _column_reference(positional[1].value) if len(positional) == 2 else None

    resolve = _resolver(formula, context, namespace)
    args: dict[str, Any] = {}
    model_given = False
    for a in keyword:
        key = normalise_key(a.name)
        if key not in F_ARGUMENTS:
            raise FormulaError(located(
                f'unknown argument "{a.name}" in f().{did_you_mean(key, F_ARGUMENTS)} Valid '
                f'arguments: {", ".join(sorted(F_ARGUMENTS))}.', formula, a.start))
        if key in args or (key == "weights" and weights is not None):
            raise FormulaError(located(f'the argument "{a.name}" is given twice in f()',
                                       formula, a.start))
        if key in DATA_COLUMN_ARGS:
            # R-INLA evaluates these in the data: a column name, or an expression over columns
            # (kept as text, evaluated on the data like the covariate)
            value: Any = _column_reference(a.value)
        elif key == "model" and isinstance(a.value, Name) and a.value.id not in CONSTANTS:
            try:  # not through evaluate(), which checks what names resolve to: checked here
                value = check_value(resolve(a.value, model_hint=True), a.value.id)
            except FormulaError as e:
                if "\n" in str(e):  # already located
                    raise
                raise FormulaError(located(str(e), formula, a.value.start)) from None
        else:
            value = evaluate(a.value, formula, resolve)
        if key in NORMALISED_DICT_ARGS and isinstance(value, dict):
            value = normalise_dict_keys(value, keep_below=frozenset({"hyper"}))
        if key == "model":
            model_given = True
        args[key] = value

    if "weights" in args:
        weights = args.pop("weights")
    model = args.pop("model", "iid")
    if args.get("copy") is not None:
        if model_given and model != "copy":
            warn(f'f({covariate}, ...): model="{model}" is ignored because copy= is given (as R-INLA does)')
        model = "copy"
    return FTerm(covariate=covariate, model=model, weights=weights, args=args, text=text)


def _column_reference(node: Node) -> str | None:
    """A positional f() argument: a column name, None for NULL, else R's deparsed text."""
    if isinstance(node, Name):
        return None if node.id in ("NULL", "None") else node.id
    if isinstance(node, Str):
        return node.value
    return deparse(node)


def _resolver(formula: str, context: Mapping | None, namespace: Mapping | None):
    maps = [m for m in (context, namespace) if m is not None]

    def resolve(name: Name, model_hint: bool = False) -> Any:
        key = name.id
        if is_dunder(key) or any(is_dunder(part) for part in key.split(".")):
            raise FormulaError(located(dunder_message(key), formula, name.start))
        for m in maps:
            if key in m:
                return m[key]
        if "." in key:  # an element of a dict: settings.hyper (never an attribute)
            head, *rest = key.split(".")
            for m in maps:
                if head in m:
                    obj = m[head]
                    for part in rest:
                        if not isinstance(obj, Mapping) or part not in obj:
                            break
                        obj = obj[part]
                    else:
                        return obj
                    break
        known = [k for m in maps for k in m.keys() if isinstance(k, str) and not k.startswith("_")]
        hint = f' A model name is a string: model="{key}".' if model_hint else ""
        raise FormulaError(located(
            f'name "{key}" is not defined.{did_you_mean(key, known)}{hint} Define it in the '
            f'calling scope or pass context={{"{key}": ...}}.', formula, name.start))

    return resolve


def _check_unique_covariates(f_terms: list[FTerm], formula: str) -> None:
    seen: dict[str, FTerm] = {}
    for t in f_terms:
        if t.covariate is None:
            continue
        if t.covariate in seen:
            raise FormulaError(
                f'the covariate "{t.covariate}" is used in two f() terms: {seen[t.covariate].text} '
                f"and {t.text}. R-INLA names f() terms by their covariate, so each needs its own "
                f'column: copy it (data["{t.covariate}2"] = data["{t.covariate}"]) and use '
                f"f({t.covariate}2, ...) in one of them.")
        seen[t.covariate] = t
