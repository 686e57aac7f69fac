"""Evaluate the R expressions of a formula on data columns, with R's vector semantics.

A fixed-effects variable such as ``I(exposed*(birth.year^2-22))``, ``log(Base/4)`` or
``as.factor(birth.year)`` is computed from the data the way R's ``model.frame`` would:
element-wise arithmetic (``^`` is power, ``%%`` modulo, ``%/%`` integer division),
comparisons giving logicals, R's maths functions, and factors with R's level order
(sorted unique values; a pandas ``Categorical`` keeps its categories) and R's level names
(``as.character``: ``2`` -> ``"2"``, ``0.5`` -> ``"0.5"``, ``1e5`` -> ``"1e+05"``, ``TRUE``).

Data is a pandas DataFrame or a mapping of 1-d arrays; names are looked up verbatim, so
dotted R names (``birth.year``) are ordinary column names.

Example:
    >>> cols = DataColumns({"x": [1.0, 4.0], "g": ["b", "a"]})
    >>> evaluate_on_data(parse_r("I(x^2 - 1)"), cols, "I(x^2 - 1)", 2)
    array([ 0., 15.])
    >>> evaluate_on_data(parse_r("factor(g)"), cols, "factor(g)", 2).names
    ('a', 'b')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, did_you_mean
from .rsyntax import (
    BinOp, Call, Name, Node, Num, Paren, Str, UnaryOp, deparse, format_r_number, located,
    parse_r,
)
from .allowed import dunder_message, is_dunder, located_compute_errors, nesting_guard
from .rgroup import inla_group
from .rvalues import evaluate as evaluate_value

__all__ = ["RFactor", "DataColumns", "evaluate_on_data", "level_name", "make_factor", "codes_for",
           "factor_values", "missing_mask"]


@dataclass(frozen=True)
class RFactor:
    """An R factor: integer codes into ``levels`` (-1 = missing).

    Attributes:
        codes: (n,) int64.
        levels: the level values (Python scalars), in R's level order.
        names: R's names of the levels (``as.character``).
        ordered: an ordered factor (polynomial contrasts in R).
    """

    codes: np.ndarray
    levels: tuple
    names: tuple[str, ...]
    ordered: bool = False


def level_name(value: Any) -> str:
    """R's ``as.character`` of a level value (``True`` -> ``"TRUE"``, ``2.0`` -> ``"2"``)."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_r_number(float(value))
    return str(value)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def make_factor(values: Any, levels: list | None = None, ordered: bool = False) -> RFactor:
    """An :class:`RFactor` from values (numeric, logical, strings, or a factor).

    ``levels=None`` takes the sorted unique non-missing values, as R's ``factor()``; a
    value outside given ``levels`` becomes missing (R's NA).
    """
    if isinstance(values, RFactor):
        if levels is None:  # factor(f) drops unused levels, keeping their order
            used = np.unique(values.codes[values.codes >= 0])
            levels = [values.levels[i] for i in used]
        values = factor_values(values)
    arr = np.asarray(values)
    miss = missing_mask(arr)
    if levels is None:
        present = arr[~miss]
        if present.dtype.kind in "biuf":
            levels = [_scalar(v) for v in np.unique(present)]
        else:
            try:
                levels = sorted(set(present.tolist()))
            except TypeError:
                kinds = sorted({type(v).__name__ for v in present.tolist()})
                raise DataError(f"cannot make a factor of values of mixed types ({kinds})") from None
    else:
        names = [level_name(lv) for lv in levels]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:  # R: 'factor level [2] is duplicated'
            raise DataError(f"factor(levels=): the levels {duplicated} are given more than once")
    return RFactor(codes_for(arr, levels), tuple(levels), tuple(level_name(lv) for lv in levels), ordered)


def codes_for(values: np.ndarray, levels: list | tuple) -> np.ndarray:
    """Integer codes of ``values`` in ``levels`` (-1: missing or not a level), vectorised."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
        levels = [int(lv) for lv in levels]
    codes = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(arr, dtype=object))
    return np.asarray(codes, dtype=np.int64)


def factor_values(v: "RFactor") -> np.ndarray:
    """The level value of each row of a factor (None where missing), as an object array."""
    lv = np.empty(len(v.levels) + 1, dtype=object)
    lv[:-1] = list(v.levels)
    lv[-1] = None
    return lv[np.where(v.codes >= 0, v.codes, len(v.levels))]


def missing_mask(value: Any) -> np.ndarray:
    """Rows that are missing: NaN numbers, None/NaN strings, code -1 factor entries."""
    if isinstance(value, RFactor):
        return value.codes == -1
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    if arr.dtype.kind in "iub":
        return np.zeros(arr.shape[0], dtype=bool)
    return np.asarray(pd.isna(arr), dtype=bool)


class DataColumns:
    """Named columns of a DataFrame or a mapping of arrays, converted on first use.

    Conversion: categorical -> :class:`RFactor`; bool -> bool; integers -> int64 (float64
    when they hold missing values); floats -> float64; strings -> object array (None for
    missing).
    """

    def __init__(self, data: Any):
        if isinstance(data, pd.DataFrame):
            self._data: Mapping[str, Any] = {str(c): data[c] for c in data.columns}
            self.frame_rows: int | None = len(data)
        elif isinstance(data, Mapping):
            self._data = data
            self.frame_rows = None
        else:
            raise DataError(f"data must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}")
        self._cache: dict[str, Any] = {}

    @property
    def names(self) -> list[str]:
        return [str(k) for k in self._data.keys()]

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def length(self, name: str) -> int | None:
        v = self._data[name]
        try:
            return len(v)
        except TypeError:
            return None

    def get(self, name: str, where: str) -> Any:
        """Column ``name`` converted; DataError naming ``where`` and the available columns."""
        if name in self._cache:
            return self._cache[name]
        if name not in self._data:
            raise DataError(unknown_column(name, self.names, where))
        value = _convert(self._data[name], name)
        self._cache[name] = value
        return value


def unknown_column(name: str, available: list[str], where: str) -> str:
    shown = ", ".join(available[:40]) + (f", ... ({len(available) - 40} more)" if len(available) > 40 else "")
    return (f'column "{name}" (used in {where}) is not in the data.{did_you_mean(name, available)} '
            f"Available columns: {shown}.")


def _convert(value: Any, name: str) -> Any:
    if isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype) or isinstance(value, pd.Categorical):
        cat = value.array if isinstance(value, pd.Series) else value
        levels = [_scalar(v) for v in cat.categories.tolist()]
        return RFactor(np.asarray(cat.codes, dtype=np.int64), tuple(levels),
                       tuple(level_name(lv) for lv in levels), bool(cat.ordered))
    if isinstance(value, pd.Series):
        if value.dtype.kind in "iu" or value.dtype.kind == "f" or value.dtype.kind == "b":
            arr = value.to_numpy()
        elif pd.api.types.is_numeric_dtype(value.dtype) or pd.api.types.is_bool_dtype(value.dtype):
            arr = value.to_numpy(dtype=float, na_value=np.nan)  # nullable Int64/boolean
        else:
            arr = value.to_numpy(dtype=object)
    else:
        arr = np.asarray(value)
    if arr.ndim != 1:
        raise DataError(f'column "{name}" has shape {arr.shape}; a covariate in the fixed effects '
                        "must be one value per row (1-d)")
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(bool)
    if kind in "iu":
        return arr.astype(np.int64)
    if kind == "f":
        return arr.astype(np.float64)
    if kind in "US":
        return arr.astype(object)
    if kind == "O":
        miss = missing_mask(arr)
        present = arr[~miss].tolist()
        if all(isinstance(v, str) for v in present):
            out = arr.copy()
            out[miss] = None
            return out
        if present and not miss.any() and all(isinstance(v, (bool, np.bool_)) for v in present):
            return arr.astype(bool)
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in present):
            out = np.full(arr.shape[0], np.nan)
            out[~miss] = np.asarray(present, dtype=float)
            return out
        raise DataError(f'column "{name}" mixes value types '
                        f"({sorted({type(v).__name__ for v in present})}); use numbers or strings")
    raise DataError(f'column "{name}" has an unsupported type ({arr.dtype}) for a covariate')


# ---------------------------------------------------------------------------------------
# evaluation

_CONSTANTS = {"TRUE": True, "T": True, "FALSE": False, "F": False, "pi": math.pi,
              "Inf": math.inf, "NA": math.nan, "NaN": math.nan}


_MATH1: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp, "log10": np.log10, "log2": np.log2, "log1p": np.log1p, "expm1": np.expm1,
    "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "tanh": np.tanh, "floor": np.floor, "ceiling": np.ceil, "trunc": np.trunc, "sign": np.sign,
}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
          "^": np.power, "%%": np.mod, "%/%": np.floor_divide}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
            "<=": np.less_equal, ">=": np.greater_equal}
#: functions a fixed-effects term may call
SUPPORTED_FUNCTIONS = tuple(sorted(set(_MATH1) | {
    "I", "log", "round", "pmin", "pmax", "ifelse", "as.numeric", "as.double", "as.integer",
    "as.character", "factor", "as.factor", "as.logical", "inla.group", "cbind"}))
#: inla.group's arguments, in R's order
_INLA_GROUP_ARGS = ("x", "n", "method", "idx.only")


def evaluate_on_data(node: Node, columns: DataColumns, source: str, n: int) -> Any:
    """The value of an R expression over the data rows.

    Returns:
        a (n,) float64 / bool / object(str) array, or an :class:`RFactor`.

    Raises:
        DataError: an unknown column (listing the available ones), arithmetic on a factor,
            arrays of the wrong length.
        FormulaError: a function that is not supported (listing the supported ones).
    """
    ev = _DataEvaluator(columns, source, n)
    with nesting_guard(source):
        out = ev.eval(node)
        return ev.full(out, node)


class _DataEvaluator:
    def __init__(self, columns: DataColumns, source: str, n: int):
        self.columns = columns
        self.source = source
        self.n = n
        self.where = repr(source)

    def full(self, v: Any, node: Node) -> Any:
        if isinstance(v, RFactor):
            return v
        arr = np.asarray(v)
        if arr.ndim == 0:
            return np.full(self.n, arr.item(), dtype=arr.dtype if arr.dtype.kind != "U" else object)
        if arr.shape[0] != self.n:
            raise DataError(f"{deparse(node)!r} has {arr.shape[0]} values but the fixed effects have "
                            f"{self.n} rows")
        return arr

    def numeric(self, v: Any, node: Node, op: str) -> np.ndarray:
        if isinstance(v, RFactor):
            raise DataError(f"'{op}' is not meaningful for the factor {deparse(node)!r} (in "
                            f"{self.where}); use as.numeric() on a numeric column instead")
        arr = np.asarray(v)
        if arr.dtype.kind in "OUS":
            raise DataError(f"'{op}' needs numbers but {deparse(node)!r} (in {self.where}) holds "
                            "strings")
        return arr.astype(np.float64)

    def eval(self, node: Node) -> Any:
        with located_compute_errors(node, self.source, " on the data"):
            return self._eval(node)

    def _eval(self, node: Node) -> Any:
        if isinstance(node, Num):
            return np.float64(node.value)
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name):
            if node.id in _CONSTANTS and node.id not in self.columns:
                return _CONSTANTS[node.id]
            if is_dunder(node.id):
                raise FormulaError(located(dunder_message(node.id), self.source, node.start))
            return self.columns.get(node.id, self.where)
        if isinstance(node, Paren):
            return self.eval(node.inner)
        if isinstance(node, UnaryOp):
            v = self.eval(node.operand)
            if node.op == "-":
                return -self.numeric(v, node.operand, "-")
            if node.op == "+":
                return self.numeric(v, node.operand, "+")
            if node.op == "!":
                return np.logical_not(self.logical(v, node.operand))
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Call):
            return self.call(node)
        raise FormulaError(located(f"{deparse(node)!r} cannot be evaluated on data", self.source, node.start))

    def logical(self, v: Any, node: Node) -> np.ndarray:
        arr = np.asarray(v)
        if arr.dtype.kind == "b":
            return arr
        return self.numeric(v, node, "!") != 0

    def binop(self, node: BinOp) -> Any:
        op = node.op
        a, b = self.eval(node.left), self.eval(node.right)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op in _ARITH:
                return _ARITH[op](self.numeric(a, node.left, op), self.numeric(b, node.right, op))
            if op in _COMPARE:
                a = _factor_values(a)
                b = _factor_values(b)
                aa, bb = np.asarray(a), np.asarray(b)
                if aa.dtype.kind in "OUS" or bb.dtype.kind in "OUS":
                    return _COMPARE[op](aa.astype(object), bb.astype(object)).astype(bool)
                return _COMPARE[op](aa.astype(float), bb.astype(float))
            if op in ("&", "&&"):
                return np.logical_and(self.logical(a, node.left), self.logical(b, node.right))
            if op in ("|", "||"):
                return np.logical_or(self.logical(a, node.left), self.logical(b, node.right))
        raise FormulaError(located(f"the operator '{op}' cannot be used inside a term; "
                                   "wrap arithmetic in I(...)", self.source, node.start))

    def call(self, node: Call) -> Any:
        name = node.fname
        pos = [a.value for a in node.args if a.name is None]
        kw = {a.name: a.value for a in node.args if a.name is not None}
        if name == "I" and len(pos) == 1 and not kw:
            return self.eval(pos[0])
        if name in _MATH1 and len(pos) == 1 and not kw:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _MATH1[name](self.numeric(self.eval(pos[0]), pos[0], name))
        if name == "log" and 1 <= len(pos) + len(kw) <= 2:
            x = self.numeric(self.eval(pos[0]), pos[0], "log")
            base_node = pos[1] if len(pos) > 1 else kw.get("base")
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.log(x)
                if base_node is not None:
                    out = out / np.log(self.numeric(self.eval(base_node), base_node, "log"))
            return out
        if name == "round":
            digits = self.eval(pos[1] if len(pos) > 1 else kw["digits"]) if (len(pos) > 1 or "digits" in kw) else 0
            return np.round(self.numeric(self.eval(pos[0]), pos[0], "round"), int(digits))
        if name in ("pmin", "pmax") and pos:
            vals = [self.numeric(self.eval(p), p, name) for p in pos]
            fn = np.minimum if name == "pmin" else np.maximum
            out = vals[0]
            for v in vals[1:]:
                out = fn(out, v)
            return out
        if name == "ifelse" and len(pos) == 3:
            test = self.logical(self.eval(pos[0]), pos[0])
            yes, no = (_factor_values(self.eval(p)) for p in pos[1:])
            return np.where(test, yes, no)
        if name in ("as.numeric", "as.double", "as.integer") and len(pos) == 1:
            v = self.eval(pos[0])
            if isinstance(v, RFactor):  # R: the level codes, 1-based
                out = np.where(v.codes >= 0, v.codes + 1.0, np.nan)
            else:
                out = self.numeric(v, pos[0], name)
            return np.trunc(out) if name == "as.integer" else out
        if name == "as.logical" and len(pos) == 1:
            return self.logical(self.eval(pos[0]), pos[0])
        if name == "as.character" and len(pos) == 1:
            v = _factor_values(self.eval(pos[0]))
            arr = np.asarray(v)
            return np.array([level_name(_scalar(x)) for x in arr.tolist()], dtype=object) \
                if arr.dtype.kind != "O" else arr
        if name in ("factor", "as.factor") and len(pos) == 1:
            v = self.eval(pos[0])
            v = self.full(v, pos[0])
            if name == "as.factor" and isinstance(v, RFactor):
                return v
            levels = None
            if "levels" in kw:
                lv = evaluate_value(kw["levels"], self.source)
                levels = list(lv) if isinstance(lv, (list, tuple)) else [lv]
                if not all(isinstance(v, (str, int, float, bool)) for v in levels):
                    raise FormulaError(located("factor(levels=) takes a vector of numbers or strings, "
                                               "e.g. levels=c(\"a\", \"b\")", self.source, kw["levels"].start))
                if len(set(levels)) != len(levels):
                    raise FormulaError(located(f"factor(levels=) has duplicated levels ({levels})",
                                               self.source, kw["levels"].start))
            return make_factor(v, levels=levels, ordered=bool(kw.get("ordered") is not None and
                                                             evaluate_value(kw["ordered"], self.source)))
        if name == "inla.group":
            return self.inla_group(node, pos, kw)
        if name == "cbind" and pos and not kw:
            return self.cbind(pos)
        if name in SUPPORTED_FUNCTIONS:
            raise FormulaError(located(f"bad arguments to {name}() in {deparse(node)!r}",
                                       self.source, node.start))
        what = deparse(node.func)
        raise FormulaError(located(
            f'the function "{what}()" is not supported in the fixed effects.'
            f"{did_you_mean(what, SUPPORTED_FUNCTIONS)} Supported: {', '.join(SUPPORTED_FUNCTIONS)}. "
            "Compute the covariate as a data column instead.", self.source, node.start))

    def cbind(self, pos: list) -> np.ndarray:
        """R's ``cbind(a, b, ...)`` of numeric columns: an (n, k) float array (coordinates for
        ``f(cbind(s1, s2), model=spde)``)."""
        cols = []
        for p in pos:
            v = self.eval(p)
            if isinstance(v, RFactor) or np.asarray(v).dtype.kind in "OUSb":
                raise DataError(f"cbind() in {self.where} needs numeric columns, but {deparse(p)!r} holds "
                                f"{'a factor' if isinstance(v, RFactor) else 'non-numeric values'}; "
                                "convert it to numbers first")
            cols.append(self.full(np.asarray(v, dtype=np.float64), p))
        return np.column_stack(cols)

    def inla_group(self, node: Call, pos: list, kw: dict) -> np.ndarray:
        """R-INLA's ``inla.group(x, n = 25, method = c("cut", "quantile"), idx.only = FALSE)``."""
        # R matches argument names exactly, then by unique prefix (idx -> idx.only)
        kw = {_match_arg_name(k, _INLA_GROUP_ARGS): v for k, v in kw.items()}
        unknown = [k for k in kw if k not in _INLA_GROUP_ARGS]
        if unknown or len(pos) > len(_INLA_GROUP_ARGS):
            raise FormulaError(located(
                f"bad arguments to inla.group() in {deparse(node)!r}: it takes "
                f"{', '.join(_INLA_GROUP_ARGS)}" + (f" (not {', '.join(unknown)})" if unknown else ""),
                self.source, node.start))
        args = dict(zip(_INLA_GROUP_ARGS, pos))
        for k, v in kw.items():
            if k in args:
                raise FormulaError(located(f"inla.group(): the argument {k} is given twice",
                                           self.source, node.start))
            args[k] = v
        if "x" not in args:
            raise FormulaError(located("inla.group() needs the covariate x", self.source, node.start))
        x = self.numeric(self.full(self.eval(args["x"]), args["x"]), args["x"], "inla.group")

        def scalar(key: str, default: Any) -> Any:
            if key not in args:
                return default
            v = self.eval(args[key])
            arr = np.asarray(v)
            if arr.ndim != 0 and arr.size != 1:
                raise FormulaError(located(f"inla.group(): {key} must be a single value",
                                           self.source, args[key].start))
            return arr.reshape(()).item()

        n = scalar("n", 25)
        if isinstance(n, str):
            raise FormulaError(located("inla.group(): n must be a number", self.source, args["n"].start))
        return inla_group(x, n=n, method=scalar("method", "cut"),
                          idx_only=bool(scalar("idx.only", False)))


def _match_arg_name(name: str, formals: tuple[str, ...]) -> str:
    """R's argument matching: an exact formal name, else a unique prefix of one (else unchanged)."""
    if name in formals:
        return name
    hits = [f for f in formals if f.startswith(name)]
    return hits[0] if len(hits) == 1 else name


def _factor_values(v: Any) -> Any:
    """A factor as its level values (for comparisons: g == "a"), else unchanged."""
    return factor_values(v) if isinstance(v, RFactor) else v
