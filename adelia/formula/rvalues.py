"""R expressions as Python values: ``list(prior="pc.prec", param=c(1, 0.01))`` -> a dict.

R-INLA users write argument values in R: ``f()`` arguments inside the formula, and
``control.*`` settings (the reference specs store them as R text). This module turns such
an expression into plain Python values:

==========================================  ==========================================
R                                           Python
==========================================  ==========================================
``TRUE``/``T``, ``FALSE``/``F``, ``NULL``   ``True``, ``False``, ``None``
``NA``, ``Inf``, ``NaN``, ``pi``            ``nan``, ``inf``, ``nan``, ``math.pi``
``1``, ``0.5``, ``1e-3``, ``2L``, ``-1``    ``1``, ``0.5``, ``0.001``, ``2``, ``-1``
``"a"`` / ``'a'``                           ``"a"``
``c(1, 0.01)``                              ``[1, 0.01]`` (``c(x)`` with one element -> ``x``)
``list(a=1, b=2)`` / ``list(1, 2)``         ``{"a": 1, "b": 2}`` / ``[1, 2]``
``1:10``, ``seq(0, 1, by=0.5)``             ``[1, ..., 10]``, ``[0.0, 0.5, 1.0]``
``rep(1, 3)``, ``rep(c(1, 2), each=2)``     ``[1, 1, 1]``, ``[1, 1, 2, 2]``
``0.2/0.59``, ``2^3``, ``exp(1)``, ``log(2)``  numbers (R's arithmetic, vectorised over lists)
``matrix(0, 2, 3)``, ``diag(3)``            numpy arrays
==========================================  ==========================================

Python spellings are accepted as well: ``True``/``False``/``None``, ``[..]``, ``(..)``,
``{"key": value}``, ``dict(key=value)``, ``**``.

Names other than these constants are looked up through a ``resolve`` callback (the
formula parser resolves them in ``context`` and the caller's namespace); without one an
unknown name is an error. Keys of ``list(...)`` keep R's spelling (``int.strategy``);
:func:`normalise_key` gives the Python spelling (``int_strategy``).

The evaluator computes values and nothing else (:mod:`adelia.formula.allowed`): names
resolve only to data, ``$``/``@`` take elements of lists (dicts), never attributes, only
the R functions of the table above can be called, and no vector may exceed
:data:`~adelia.formula.allowed.MAX_ELEMENTS` elements. Arithmetic is R's: on doubles, so
``2^64`` is ``1.8e19``, not an overflowed integer (integral results within 2⁵³ stay ints).

Example:
    >>> r_to_python('list(prior="loggamma", param=c(0.5, 0.0164))')
    {'prior': 'loggamma', 'param': [0.5, 0.0164]}
    >>> r_to_python('list(int.strategy="ccd")', normalise_keys=True)
    {'int_strategy': 'ccd'}
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormulaError, did_you_mean
from .allowed import (
    check_size, check_value, dunder_message, is_dunder, located_compute_errors, nesting_guard,
)
from .rsyntax import (
    BinOp, Call, Index, Name, Node, Num, Paren, PyDict, PyList, PyTuple, Str, UnaryOp,
    deparse, format_r_number, located, parse_r,
)

#: R's constants and their Python spellings (R lets T and F be overwritten; formulas never do).
CONSTANTS: dict[str, Any] = {
    "TRUE": True, "T": True, "True": True,
    "FALSE": False, "F": False, "False": False,
    "NULL": None, "None": None,
    "NA": math.nan, "NA_real_": math.nan, "NA_integer_": math.nan, "NaN": math.nan,
    "Inf": math.inf, "pi": math.pi,
}

Resolver = Callable[[Name], Any]


def normalise_key(key: str) -> str:
    """R-INLA's dotted argument name in Python spelling: dots -> underscores.

    Example:
        >>> normalise_key("scale.model"), normalise_key("adjust.for.con.comp")
        ('scale_model', 'adjust_for_con_comp')
    """
    return key.replace(".", "_")


def normalise_dict_keys(value: Any, keep_below: frozenset[str] = frozenset()) -> Any:
    """``value`` with every dict key normalised, recursively, except below keys in
    ``keep_below`` (e.g. ``{"hyper"}``: hyperparameter names keep R-INLA's spelling)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nk = normalise_key(k) if isinstance(k, str) else k
            out[nk] = v if nk in keep_below else normalise_dict_keys(v, keep_below)
        return out
    if isinstance(value, list):
        return [normalise_dict_keys(v, keep_below) for v in value]
    return value


def r_to_python(text: str, *, normalise_keys: bool = False,
                names: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an R expression of constants (as in ``control.*`` arguments) to Python.

    Args:
        text: R (or Python-literal) code, e.g. ``'list(int.strategy="ccd")'``.
        normalise_keys: convert dotted keys of every ``list(...)`` to Python spelling.
        names: values for names the expression refers to (else an unknown name is an error).

    Raises:
        FormulaSyntaxError: the text is not valid R, with a caret at the position.
        FormulaError: an unknown name or function, or arguments a function does not take.

    Example:
        >>> r_to_python("list(A=NULL, compute=TRUE, link=1)")
        {'A': None, 'compute': True, 'link': 1}
    """
    node = parse_r(text)
    resolve = None
    if names is not None:
        def resolve(name: Name) -> Any:
            if name.id in names:
                return names[name.id]  # dunders refused and the value checked by the evaluator
            raise FormulaError(located(
                f'name "{name.id}" is not defined.{did_you_mean(name.id, names)}', text, name.start))
    value = evaluate(node, text, resolve)
    if normalise_keys:
        value = normalise_dict_keys(value)
    return value


# ---------------------------------------------------------------------------------------
# evaluation


def evaluate(node: Node, source: str, resolve: Resolver | None = None) -> Any:
    """The Python value of an R expression (see the module table).

    Args:
        node: parsed expression; positions refer to ``source``.
        source: the text shown (with a caret) in error messages.
        resolve: called with a :class:`Name` node for names that are not R constants;
            returns the value or raises. ``None``: unknown names are errors. What it
            returns is checked to be data (:func:`~adelia.formula.allowed.check_value`).

    Raises:
        FormulaError: anything that is not a value computation (see the module doc), with a
            caret under the offending text; errors of the arithmetic itself name the
            expression.
    """
    with nesting_guard(source):
        return _Evaluator(source, resolve).eval(node)


def _from_array(a: Any) -> Any:
    """numpy results back to plain Python: scalars to int/float/bool, 1-d to lists."""
    if isinstance(a, np.ndarray):
        if a.ndim == 0:
            return a.item()
        if a.ndim == 1:
            return a.tolist()
        return a
    if isinstance(a, np.generic):
        return a.item()
    return a


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": np.true_divide,
    "^": np.power, "%%": np.mod, "%/%": np.floor_divide,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
    "<=": operator.le, ">=": operator.ge, "&": np.logical_and, "|": np.logical_or,
}


def _numeric(x: Any) -> np.ndarray | None:
    """``x`` as a numeric (or logical) array, or None when it is not numbers."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return arr if arr.dtype.kind in "biuf" else None


#: operators computed on doubles (R's numbers), then returned as ints when exact
_ON_DOUBLES = ("+", "-", "*", "^", "%%", "%/%")
_EXACT_INT = 2.0 ** 53


class _Evaluator:
    def __init__(self, source: str, resolve: Resolver | None):
        self.source = source
        self.resolve = resolve

    def error(self, message: str, node: Node) -> FormulaError:
        return FormulaError(located(message, self.source, node.start))

    def eval(self, node: Node) -> Any:
        with located_compute_errors(node, self.source):
            return self._eval(node)

    def name(self, node: Name) -> Any:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if is_dunder(node.id):
            raise self.error(dunder_message(node.id), node)
        if self.resolve is None:
            raise self.error(f'unknown name "{node.id}" (only constants are allowed here)', node)
        try:
            return check_value(self.resolve(node), node.id)
        except FormulaError as e:
            if "\n" in str(e):  # already located
                raise
            raise self.error(str(e), node) from None

    def _eval(self, node: Node) -> Any:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Paren):
            return self.eval(node.inner)
        if isinstance(node, PyList):
            return [self.eval(i) for i in node.items]
        if isinstance(node, PyTuple):
            return tuple(self.eval(i) for i in node.items)
        if isinstance(node, PyDict):
            out = {}
            for k, v in node.items:
                key = self.eval(k)
                if not isinstance(key, (str, int, float, bool)) or is_dunder(key):
                    raise self.error(f"a dictionary key must be a string or a number, not {key!r}", k)
                out[key] = self.eval(v)
            return out
        if isinstance(node, UnaryOp):
            v = self.eval(node.operand)
            if node.op == "-":
                return self.arith("*", -1, v, node)
            if node.op == "+":
                return v
            if node.op == "!":
                x = _numeric(v)
                if x is None:
                    raise self.error(f"invalid argument type to '!' in {deparse(node)!r}", node)
                return _from_array(np.logical_not(x))
            raise self.error(f"the operator '{node.op}' cannot be used in a value", node)
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Index):
            return self.index(node)
        raise self.error(f"cannot evaluate {deparse(node)!r}", node)

    def arith(self, op: str, a: Any, b: Any, node: Node) -> Any:
        if isinstance(a, str) or isinstance(b, str):
            if op in ("==", "!=") and isinstance(a, str) and isinstance(b, str):
                return _ARITH[op](a, b)
            raise self.error(f"non-numeric argument to '{op}' in {deparse(node)!r}", node)
        x, y = _numeric(a), _numeric(b)
        if x is None or y is None:
            raise self.error(f"non-numeric argument to '{op}' in {deparse(node)!r}", node)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op in _ON_DOUBLES:
                out = _ARITH[op](x.astype(float), y.astype(float))
                exact = np.all(np.isfinite(out)) and np.all(np.abs(out) < _EXACT_INT) and \
                    np.all(out == np.floor(out))
                if x.dtype.kind in "iub" and y.dtype.kind in "iub" and exact:
                    out = out.astype(np.int64)  # whole numbers stay ints, as they were written
            else:
                out = _ARITH[op](x, y)
        return _from_array(out)

    def binop(self, node: BinOp) -> Any:
        op = node.op
        if op in ("$", "@"):
            return self.element(node)
        if op == ":":
            a, b = self.eval(node.left), self.eval(node.right)
            return _colon(a, b)
        if op in ("&&", "||"):
            a = bool(self.eval(node.left))
            if op == "&&":
                return a and bool(self.eval(node.right))
            return a or bool(self.eval(node.right))
        if op in _ARITH:
            return self.arith(op, self.eval(node.left), self.eval(node.right), node)
        raise self.error(f"the operator '{op}' cannot be used in a value", node)

    def element(self, node: BinOp) -> Any:
        """R's ``x$name`` / ``x@name``: an element of a list (dict) or a DataFrame's column.

        Never an attribute: formula text reaches data, not the objects' methods."""
        obj = self.eval(node.left)
        if isinstance(node.right, Name):
            key: Any = node.right.id
        elif isinstance(node.right, Str):
            key = node.right.value
        else:
            raise self.error(f"'{node.op}' needs a name on its right, e.g. x{node.op}prec", node.right)
        if is_dunder(key):
            raise self.error(dunder_message(key, "element"), node.right)
        if isinstance(obj, Mapping):
            if key in obj:
                return check_value(obj[key], f"{deparse(node.left)}{node.op}{key}")
            raise self.error(f"{deparse(node.left)!r} has no element {key!r}"
                             f"{did_you_mean(key, [k for k in obj if isinstance(k, str)])}", node.right)
        if isinstance(obj, pd.DataFrame):
            if key in obj.columns:
                return obj[key]
            raise self.error(f"{deparse(node.left)!r} has no column {key!r}", node.right)
        raise self.error(
            f"'{node.op}' takes an element of a list (a dict) or a column of a DataFrame; "
            f"{deparse(node.left)!r} is {type(obj).__name__}, whose attributes formula text cannot "
            "reach (pass the value itself)", node)

    def index(self, node: Index) -> Any:
        obj = self.eval(node.obj)
        if len(node.args) != 1 or node.args[0].name is not None:
            raise self.error("only single-index subsetting x[i] is supported", node)
        i = self.eval(node.args[0].value)
        if isinstance(obj, Mapping):
            if is_dunder(i) or i not in obj:
                raise self.error(f"{deparse(node.obj)!r} has no element {i!r}", node.args[0].value)
            return check_value(obj[i], deparse(node))
        arr = np.asarray(obj)
        if arr.dtype.kind == "O" or arr.ndim == 0:
            raise self.error(f"{deparse(node.obj)!r} cannot be subset with [...]", node)
        idx = np.asarray(i)
        if idx.dtype.kind in "iuf":
            if not np.all(np.isfinite(idx)) or np.any(np.abs(idx) > arr.shape[0]):
                raise self.error(f"the index {deparse(node.args[0].value)!r} is outside "
                                 f"1..{arr.shape[0]}", node.args[0].value)
            idx = idx.astype(int) - 1  # R is 1-based
        elif idx.dtype.kind != "b":
            raise self.error(f"an index must be numbers or logicals, not {i!r}", node.args[0].value)
        return _from_array(arr[idx])

    # -- calls: only the R functions of _BUILTINS, never a callable found in data
    def call(self, node: Call) -> Any:
        name = node.fname
        if name is None:
            raise self.error(f"only R functions can be called here ({', '.join(_listed())}); "
                             f"{deparse(node.func)!r} is not one", node)
        builtin = _BUILTINS.get(name)
        if builtin is not None:
            if name in ("list", "dict"):  # keep argument order, named or not
                return self.make_list(node)
            pos = [self.eval(a.value) for a in node.args if a.name is None]
            kw = {}
            for a in node.args:
                if a.name is not None:
                    if is_dunder(a.name):
                        raise self.error(f'the argument name "{a.name}" is not allowed', a)
                    kw[a.name] = self.eval(a.value)
            try:
                return builtin(*pos, **kw)
            except TypeError as e:
                raise self.error(f"bad arguments to {name}(): {e}", node) from None
            except FormulaError as e:
                if "\n" in str(e):  # already located
                    raise
                raise self.error(str(e), node) from None
            except (ValueError, ZeroDivisionError, OverflowError, IndexError, MemoryError) as e:
                raise self.error(f"cannot compute {deparse(node)!r}: {e}", node) from None
        raise self.error(
            f'unknown function "{name}()".{did_you_mean(name, _BUILTINS)} Functions available in '
            f'values: {", ".join(_listed())}; compute other values in Python and pass '
            "them as data (context=...)", node)

    def make_list(self, node: Call) -> Any:
        named = [a for a in node.args if a.name is not None]
        if not named:
            return [self.eval(a.value) for a in node.args]
        if len(named) != len(node.args):
            bad = next(a for a in node.args if a.name is None)
            raise self.error(
                f"{node.fname}() mixes named and unnamed elements; name every element", bad)
        out: dict[str, Any] = {}
        for a in named:
            if is_dunder(a.name):
                raise self.error(f'the element name "{a.name}" is not allowed', a)
            if a.name in out:
                raise self.error(f'{node.fname}() has the element "{a.name}" twice', a)
            out[a.name] = self.eval(a.value)
        return out


def _flatten(values: tuple) -> list:
    out: list = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, np.ndarray):
            out.extend(v.ravel().tolist())
        elif isinstance(v, (list, tuple)):
            out.extend(_flatten(tuple(v)))
        else:
            out.append(v)
    return out


def _r_c(*values: Any, **named: Any) -> Any:
    """R's c(): flatten; one element -> the element; none -> None (NULL)."""
    if named:
        if values:
            raise TypeError("c() with both named and unnamed elements is not supported")
        return dict(named)
    flat = _flatten(values)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else flat


def _colon(a: Any, b: Any) -> list:
    """R's a:b -- from a in steps of +-1 while not past b."""
    a, b = float(np.asarray(a).ravel()[0]), float(np.asarray(b).ravel()[0])
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError("NA/NaN/Inf argument to ':'")
    step = 1.0 if b >= a else -1.0
    n = check_size(math.floor(abs(b - a) + 1e-10) + 1, "a:b")
    vals = [a + step * k for k in range(n)]
    if float(a).is_integer():
        return [int(v) for v in vals]
    return vals


def _r_seq(from_: Any = 1, to: Any = None, by: Any = None, length_out: Any = None) -> list:
    if to is None and by is None and length_out is None:
        return _colon(1, from_)
    if length_out is not None and by is None:
        vals = np.linspace(float(from_), float(to), check_size(length_out, "seq()"))
        return _from_array(vals)
    if by is None:
        return _colon(from_, to)
    span = (float(to) - float(from_)) / float(by)
    if not math.isfinite(span) or span < 0:
        raise ValueError("wrong sign in 'by' argument" if math.isfinite(span) else "non-finite seq()")
    n = check_size(math.floor(span + 1e-10) + 1, "seq()")
    vals = [from_ + by * k for k in range(n)]
    return [int(v) if all(isinstance(z, int) for z in (from_, by)) else float(v) for v in vals]


def _seq(*args: Any, **kw: Any) -> list:
    kw = {k.replace(".", "_"): v for k, v in kw.items()}
    if "from" in kw:
        kw["from_"] = kw.pop("from")
    return _r_seq(*args, **kw)


def _rep(x: Any, times: Any = 1, each: Any = 1, length_out: Any = None, **kw: Any) -> list:
    if "length.out" in kw:
        length_out = kw.pop("length.out")
    if kw:
        raise TypeError(f"unexpected arguments {sorted(kw)}")
    base = _flatten((x,))
    each = int(each)
    check_size(len(base) * each, "rep()")
    base = [v for v in base for _ in range(each)]
    if isinstance(times, (list, tuple)):
        if len(times) != len(base):
            raise ValueError("invalid 'times' argument")
        check_size(sum(int(t) for t in times), "rep()")
        out = [v for v, t in zip(base, times) for _ in range(int(t))]
    else:
        check_size(len(base) * int(times), "rep()")
        out = base * int(times)
    if length_out is not None:
        n = check_size(length_out, "rep()")
        out = (out * (n // max(len(out), 1) + 1))[:n]
    return out


def _matrix(data: Any = math.nan, nrow: Any = None, ncol: Any = None, byrow: bool = False) -> np.ndarray:
    flat = np.asarray(_flatten((data,)), dtype=float)
    if nrow is None and ncol is None:
        nrow, ncol = flat.size, 1
    elif nrow is None:
        nrow = int(math.ceil(flat.size / int(ncol)))
    elif ncol is None:
        ncol = int(math.ceil(flat.size / int(nrow)))
    nrow, ncol = int(nrow), int(ncol)
    vals = np.resize(flat, check_size(nrow * ncol, "matrix()"))  # R recycles
    return vals.reshape((nrow, ncol)) if byrow else vals.reshape((ncol, nrow)).T


def _diag(x: Any = 1.0, nrow: Any = None, ncol: Any = None) -> np.ndarray:
    if np.ndim(x) == 0 and nrow is None and float(x).is_integer():
        check_size(int(x) ** 2, "diag()")
        return np.eye(int(x))
    if np.ndim(x) == 0:
        nrow = int(nrow)
        ncol = int(ncol) if ncol is not None else nrow
        check_size(nrow * ncol, "diag()")
        return float(x) * np.eye(nrow, ncol)
    values = np.asarray(_flatten((x,)), dtype=float)
    check_size(values.size ** 2, "diag()")
    return np.diag(values)


def _log(x: Any, base: Any = math.e) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return _from_array(np.log(np.asarray(x, dtype=float)) / math.log(float(base)))


def _unary(fn: Callable) -> Callable:
    def f(x: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _from_array(fn(np.asarray(x, dtype=float) if not isinstance(x, bool) else float(x)))
    return f


def _as_integer(x: Any) -> Any:
    """R's as.integer: truncation; NA (NaN here) outside R's 32-bit integers, as R does."""
    with np.errstate(invalid="ignore"):
        t = np.trunc(np.asarray(x, dtype=float))
    inside = np.isfinite(t) & (np.abs(t) < 2.0 ** 31)
    return _from_array(t.astype(np.int64) if np.all(inside) else np.where(inside, t, np.nan))


def _reduce(fn: Callable) -> Callable:
    def f(*xs: Any) -> Any:
        return _from_array(fn(np.asarray(_flatten(xs), dtype=float)))
    return f


_BUILTINS: dict[str, Callable[..., Any]] = {
    "c": _r_c, "list": _r_c, "dict": _r_c,  # list/dict are handled by make_list
    "rep": _rep, "seq": _seq, "seq_len": lambda n: _colon(1, n) if check_size(n, "seq_len()") > 0 else [],
    "seq.int": _seq, "numeric": lambda n=0: [0.0] * check_size(n, "numeric()"),
    "matrix": _matrix, "diag": _diag,
    "exp": _unary(np.exp), "log": _log, "log10": _unary(np.log10), "log2": _unary(np.log2),
    "log1p": _unary(np.log1p), "expm1": _unary(np.expm1), "sqrt": _unary(np.sqrt),
    "abs": _unary(np.abs), "floor": _unary(np.floor), "ceiling": _unary(np.ceil),
    "round": lambda x, digits=0: _from_array(np.round(np.asarray(x, dtype=float), int(digits))),
    "as.integer": _as_integer, "as.numeric": _unary(lambda v: v), "as.double": _unary(lambda v: v),
    "as.character": lambda x: format_r_number(x) if isinstance(x, float) else str(x),
    # NumPy 2 writes repr(np.float64(0.5)) as "np.float64(0.5)": a number formatted into a
    # formula with !r reads back as that number (our conversion; nothing of numpy is called)
    **{f"{prefix}{kind}{bits}": _unary(lambda v: v) if kind == "float" else _as_integer
       for prefix in ("np.", "numpy.") for kind in ("float", "int") for bits in ("16", "32", "64")},
    "float": _unary(lambda v: v), "int": _as_integer,
    "sum": _reduce(np.sum), "max": _reduce(np.max), "min": _reduce(np.min),
    "mean": _reduce(np.mean), "length": lambda x: len(_flatten((x,))),
}


def _listed() -> list[str]:
    """The R functions named in error messages (NumPy's spellings of numbers not listed)."""
    return sorted(n for n in _BUILTINS if not n.startswith(("np.", "numpy.")))
