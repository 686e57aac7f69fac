"""The fixed-effects design matrix, column for column as R-INLA builds it.

R-INLA builds the fixed effects with R's ``model.matrix`` (``inla.R``: ``model.frame`` +
``MatrixModels::model.Matrix``) and names each fixed effect by its column. This module
does the same from a :class:`~adelia.formula.spec.ModelSpec`:

* terms from R's formula algebra (:mod:`adelia.formula.terms`): ``x1*x2`` ->
  ``x1``, ``x2``, ``x1:x2``; terms sorted by order; ``(Intercept)`` first;
* variables evaluated on the data with R semantics (:mod:`adelia.formula.rdata`):
  ``I(X/10)``, ``log(Base/4)``, ``I(exposed*(birth.year^2-22))``, dotted names;
* column names are R's: the deparsed variable (``"I(x1 * x2)"``, ``"log(x)"``); a factor
  adds its level (``"as.factor(birth.year)2"``, ``"factor(g)b"``; logical ``"xTRUE"``;
  ordered factors ``".L"``, ``".Q"``, ...); interaction columns join the parts with
  ``":"``, the first variable varying fastest (``"factor(g)b:x"``);
* factor coding as R: treatment contrasts (first level dropped) when the term without the
  factor is empty or in an earlier term, all levels otherwise, all levels for the first
  factor when there is no intercept; ``contr.poly`` for ordered factors;
* strings become factors (sorted levels), a pandas ``Categorical`` keeps its categories.

Missing values: R-INLA silently replaces NA in numeric covariates by 0 and stops on NA in
a factor. By default (``na_covariates="error"``) adelia stops on both, naming the column
and the rows; ``na_covariates="zero"`` reproduces R-INLA (needed for ``inla.stack`` data,
where covariates are NA on the rows of other effects). Inf is always an error (as in R-INLA).

Rows: a DataFrame's rows; for a dict of arrays, the common length of the columns the
fixed part uses (other entries, e.g. f() indices of another length in stack data, are
ignored); pass ``n_rows`` when the formula uses no column (intercept only) and the
number of rows is not the length of the response. R-INLA's rows are those of the linear
predictor before ``control.predictor$A`` (ncol(A) when A is given).

:meth:`FixedDesign.materialise` re-encodes new data with the frozen factor levels and
codings (prediction); a level not seen when fitting is an error naming it.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"X": [10.0, 20.0, 30.0], "g": ["a", "b", "a"]})
    >>> d = fixed_design(parse_formula("y ~ 1 + I(X/10) + g"), df)
    >>> d.names, d.matrix.tolist()
    (('(Intercept)', 'I(X/10)', 'gb'), [[1.0, 1.0, 0.0], [1.0, 2.0, 1.0], [1.0, 3.0, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, unknown_choice
from .parse import parse_formula  # noqa: F401  (docstring example)
from .rdata import (
    DataColumns, RFactor, codes_for, evaluate_on_data, factor_values, level_name, make_factor,
    missing_mask,
)
from .rsyntax import Node, names_in, parse_r
from .spec import ModelSpec
from .terms import Terms, parse_fixed, term_codes

NA_POLICIES = ("error", "zero")


@dataclass(frozen=True)
class FixedVariable:
    """One variable of the fixed part, as frozen at fitting time.

    Attributes:
        label: R's name (deparsed expression).
        node: its syntax tree.
        kind: "numeric", "factor" or "logical".
        levels: factor level values (logical: (False, True)).
        level_names: R's names of the levels.
        ordered: ordered factor (polynomial contrasts).
    """

    label: str
    node: Node
    kind: str
    levels: tuple = ()
    level_names: tuple[str, ...] = ()
    ordered: bool = False


@dataclass(frozen=True)
class FixedEncoding:
    """Everything needed to build the design again for new data (no data inside)."""

    fixed: str
    terms: Terms
    variables: tuple[FixedVariable, ...]
    codes: tuple[tuple[tuple[int, int], ...], ...]
    offsets: tuple[str, ...]
    response: str | None
    na_covariates: str


@dataclass(frozen=True, eq=False)
class FixedDesign:
    """The fixed-effects design for one data set.

    Attributes:
        matrix: (n_rows, p) float64, rows = data rows, columns = fixed effects.
        names: the p column names, as R-INLA names the fixed effects.
        column_terms: for each column the R term label it belongs to ("(Intercept)" too).
        offset: (n_rows,) float64 sum of the formula's ``offset()`` terms, or None.
        encoding: frozen terms, levels and codings (for :meth:`materialise`).
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    column_terms: tuple[str, ...]
    offset: np.ndarray | None
    encoding: FixedEncoding = field(repr=False)

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    @property
    def intercept(self) -> bool:
        return self.encoding.terms.intercept

    def frame(self) -> pd.DataFrame:
        """The design as a DataFrame with R-INLA's column names."""
        return pd.DataFrame(self.matrix, columns=list(self.names))

    def materialise(self, new_data: Any, *, n_rows: int | None = None) -> "FixedDesign":
        """The design of ``new_data`` with the same columns (frozen levels and codings).

        Raises:
            DataError: a factor level not seen in the original data, missing values
                (as for fitting), an unknown column.

        Example:
            >>> df = pd.DataFrame({"g": ["a", "b", "c"]})
            >>> d = fixed_design(parse_formula("y ~ g"), df)
            >>> d.materialise(pd.DataFrame({"g": ["c", "a"]})).matrix.tolist()
            [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        """
        return _build(self.encoding, DataColumns(new_data), n_rows, frozen=True)


def fixed_design(spec: ModelSpec, data: Any, *, n_rows: int | None = None,
                 na_covariates: str = "error") -> FixedDesign:
    """Build the fixed-effects design matrix of a parsed formula on data.

    Args:
        spec: the parsed formula (its ``fixed`` part and ``offsets`` are used).
        data: a pandas DataFrame or a dict of 1-d arrays.
        n_rows: the number of rows, when it cannot be read from the data (see module doc).
        na_covariates: "error" (default) or "zero" (R-INLA: NA in numeric covariates -> 0).

    Returns:
        A :class:`FixedDesign` with R-INLA's column names.

    Raises:
        DataError: unknown column (with the available ones and a did-you-mean), missing or
            infinite values (naming the column and the 1-based rows), columns of unequal
            length, a factor with one level where contrasts are needed.
        FormulaError: an unsupported function or formula operator in the fixed part.

    Example:
        >>> df = pd.DataFrame({"x1": [1.0, 2.0], "x2": [3.0, 5.0]})
        >>> d = fixed_design(parse_formula("r ~ x1 + x2 + I(x1*x2)"), df)
        >>> d.names, d.matrix[:, 3].tolist()
        (('(Intercept)', 'x1', 'x2', 'I(x1 * x2)'), [3.0, 10.0])
    """
    if na_covariates not in NA_POLICIES:
        raise DataError(unknown_choice("na_covariates policy", na_covariates, NA_POLICIES))
    terms = parse_fixed(spec.fixed)
    variables = tuple(FixedVariable(label, node, "numeric")
                      for label, node in zip(terms.labels, terms.variables))
    encoding = FixedEncoding(spec.fixed, terms, variables, (), tuple(spec.offsets),
                             spec.response, na_covariates)
    return _build(encoding, DataColumns(data), n_rows, frozen=False)


# ---------------------------------------------------------------------------------------


def _build(enc: FixedEncoding, columns: DataColumns, n_rows: int | None, frozen: bool) -> FixedDesign:
    offset_nodes = [parse_r(o) for o in enc.offsets]
    referenced = _referenced(list(enc.terms.variables) + offset_nodes, columns)
    n = _row_count(columns, enc.response, referenced, n_rows)

    values: list[Any] = []
    variables: list[FixedVariable] = []
    for var in enc.variables:
        v = evaluate_on_data(var.node, columns, var.label, n)
        if frozen:
            v = _recode(var, v)
        else:
            var, v = _classify(var, v)
        v = _check_missing(var, v, columns, enc.na_covariates)
        values.append(v)
        variables.append(var)

    if frozen:
        codes = [dict(c) for c in enc.codes]
    else:
        codes = term_codes(enc.terms, lambda i: variables[i].kind != "numeric")
        enc = replace(enc, variables=tuple(variables),
                      codes=tuple(tuple(sorted(c.items())) for c in codes))

    names: list[str] = []
    cols: list[np.ndarray] = []
    col_terms: list[str] = []
    if enc.terms.intercept:
        names.append("(Intercept)")
        cols.append(np.ones(n))
        col_terms.append("(Intercept)")
    for k, term in enumerate(enc.terms.terms):
        parts = [_variable_columns(variables[i], values[i], codes[k][i]) for i in term]
        combined = parts[0]
        for part in parts[1:]:  # the earlier variable varies fastest, as in R
            combined = [(f"{an}:{bn}", av * bv) for bn, bv in part for an, av in combined]
        for name, col in combined:
            names.append(name)
            cols.append(col)
            col_terms.append(enc.terms.label(k))
    matrix = np.column_stack(cols).astype(np.float64) if cols else np.zeros((n, 0))

    offset = None
    for text, node in zip(enc.offsets, offset_nodes):
        v = evaluate_on_data(node, columns, f"offset({text})", n)
        var = FixedVariable(f"offset({text})", node, "numeric")
        if isinstance(v, RFactor) or np.asarray(v).dtype.kind not in "biuf":
            raise DataError(f"offset({text}) must be numeric")
        v = _check_missing(var, np.asarray(v, dtype=np.float64), columns, enc.na_covariates)
        offset = v if offset is None else offset + v
    return FixedDesign(matrix, tuple(names), tuple(col_terms), offset, enc)


def _referenced(nodes: list[Node], columns: DataColumns) -> list[str]:
    out: list[str] = []
    for node in nodes:
        for name in names_in(node):
            if name.id in columns and name.id not in out:
                out.append(name.id)
    return out


def _row_count(columns: DataColumns, response: str | None, referenced: list[str],
               n_rows: int | None) -> int:
    if n_rows is not None:
        n = int(n_rows)
    elif columns.frame_rows is not None:
        n = columns.frame_rows
    else:
        lengths = {name: columns.length(name) for name in referenced}
        distinct = sorted({v for v in lengths.values() if v is not None})
        if len(distinct) == 1:
            n = distinct[0]
        elif len(distinct) > 1:
            detail = ", ".join(f'"{k}": {v}' for k, v in lengths.items())
            raise DataError(f"the columns of the fixed effects have different lengths ({detail}); "
                            "they must have one value per row of the linear predictor")
        elif response is not None and response in columns and columns.length(response) is not None:
            n = columns.length(response)
        else:
            all_lengths = sorted({columns.length(k) for k in columns.names} - {None})
            if len(all_lengths) != 1:
                raise DataError("cannot tell the number of rows of the fixed effects from the data "
                                f"(entries of lengths {all_lengths}); pass n_rows")
            n = all_lengths[0]
    for name in referenced:
        length = columns.length(name)
        if length is not None and length != n:
            raise DataError(f'column "{name}" has {length} values but the fixed effects have {n} rows')
    return n


def _classify(var: FixedVariable, v: Any) -> tuple[FixedVariable, Any]:
    """Decide numeric / factor / logical from the values (first fit only)."""
    if isinstance(v, RFactor):
        return replace(var, kind="factor", levels=v.levels, level_names=v.names, ordered=v.ordered), v
    arr = np.asarray(v)
    if arr.dtype.kind == "b":  # R's model.matrix: a logical has the levels FALSE, TRUE
        var = replace(var, kind="logical", levels=(False, True), level_names=("FALSE", "TRUE"))
        return var, RFactor(arr.astype(np.int64), (False, True), ("FALSE", "TRUE"))
    if arr.dtype.kind == "O":  # strings: R's model.matrix turns them into factors
        f = make_factor(arr)
        return replace(var, kind="factor", levels=f.levels, level_names=f.names), f
    return var, arr.astype(np.float64)


def _recode(var: FixedVariable, v: Any) -> Any:
    """New data on the frozen levels of ``var`` (prediction)."""
    if var.kind == "numeric":
        if isinstance(v, RFactor) or np.asarray(v).dtype.kind == "O":
            raise DataError(f"{var.label!r} was numeric in the data used for fitting but is not in the new data")
        return np.asarray(v, dtype=np.float64)
    raw = factor_values(v) if isinstance(v, RFactor) else np.asarray(v)
    miss = missing_mask(raw)
    codes = codes_for(raw, var.levels)
    unseen = ~miss & (codes < 0)
    if unseen.any():
        rows = np.flatnonzero(unseen)
        values = list(dict.fromkeys(_scalar(raw[i]) for i in rows))[:5]
        what = ", ".join(f'"{level_name(x)}" (rows {_row_list(unseen & _equals(raw, x))})' for x in values)
        raise DataError(f"{var.label!r} has levels in the new data that the fitted model has not seen: "
                        f"{what}. Known levels: {', '.join(var.level_names)}.")
    return RFactor(codes, var.levels, var.level_names, var.ordered)


def _scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _equals(arr: np.ndarray, x: Any) -> np.ndarray:
    return np.array([_scalar(v) == x for v in arr.tolist()], dtype=bool)


def _row_list(mask: np.ndarray, limit: int = 10) -> str:
    rows = (np.flatnonzero(mask) + 1).tolist()
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def _check_missing(var: FixedVariable, v: Any, columns: DataColumns, policy: str) -> Any:
    miss = missing_mask(v)
    if miss.any():
        if not isinstance(v, RFactor) and policy == "zero":
            v = np.where(miss, 0.0, v)  # R-INLA's inla.na.action
        else:
            culprits = []
            for name in dict.fromkeys(n.id for n in names_in(var.node)):
                if name in columns:
                    col_miss = missing_mask(columns.get(name, var.label))
                    if col_miss.shape == miss.shape and (col_miss & miss).any():
                        culprits.append((name, col_miss & miss))
            kind = "factor" if isinstance(v, RFactor) else "covariate"
            if culprits:
                detail = "; ".join(f'column "{c}" has missing values (NaN/None) in rows {_row_list(m)}'
                                   for c, m in culprits)
            else:
                detail = f"it is NaN in rows {_row_list(miss)}"
            fix = ("R-INLA stops here too (factors may not be NA)." if isinstance(v, RFactor) else
                   'R-INLA would silently use 0 for them; adelia does not: remove or impute these '
                   'rows, or pass na_covariates="zero" to adelia.inla() / adelia.compile() '
                   'for R-INLA\'s behaviour.')
            raise DataError(f"the fixed-effects {kind} {var.label!r} has missing values: {detail} "
                            f"(rows counted from 1). {fix}")
    if not isinstance(v, RFactor):
        arr = np.asarray(v, dtype=np.float64)
        inf = np.isinf(arr)
        if inf.any():
            raise DataError(f"the fixed-effects covariate {var.label!r} is infinite in rows "
                            f"{_row_list(inf)} (rows counted from 1); R-INLA does not allow Inf either")
        return arr
    return v


def _variable_columns(var: FixedVariable, v: Any, code: int) -> list[tuple[str, np.ndarray]]:
    """The columns one variable contributes to a term: (name, values)."""
    if var.kind == "numeric":
        return [(var.label, np.asarray(v, dtype=np.float64))]
    codes = v.codes
    k = len(var.levels)
    indicators = [(codes == j).astype(np.float64) for j in range(k)]
    if code == 2:
        return [(var.label + var.level_names[j], indicators[j]) for j in range(k)]
    if k < 2:
        raise DataError(f"the factor {var.label!r} has only one level ({', '.join(var.level_names)}); "
                        "contrasts need at least two levels: remove the term or check the data")
    if var.ordered:
        contr = contr_poly(k)
        basis = np.column_stack(indicators)
        names = poly_names(k)
        return [(var.label + names[j], basis @ contr[:, j]) for j in range(k - 1)]
    return [(var.label + var.level_names[j], indicators[j]) for j in range(1, k)]


def contr_poly(k: int) -> np.ndarray:
    """R's ``contr.poly(k)``: orthonormal polynomial contrasts, (k, k-1).

    Column j is the degree-(j+1) polynomial in the scores 1..k, orthogonal to the lower
    degrees, unit length, with positive leading coefficient (R's ``make.poly``: QR of the
    Vandermonde matrix, columns ``Q_j R_jj`` normalised).

    Example:
        >>> (np.round(contr_poly(3), 4) + 0.0).tolist()
        [[-0.7071, 0.4082], [0.0, -0.8165], [0.7071, 0.4082]]
    """
    scores = np.arange(1, k + 1, dtype=np.float64)
    x = scores - scores.mean()
    vander = np.column_stack([x ** d for d in range(k)])
    q, r = np.linalg.qr(vander)
    raw = q * np.diag(r)
    raw = raw / np.linalg.norm(raw, axis=0)
    return raw[:, 1:]


def poly_names(k: int) -> list[str]:
    """R's names of ``contr.poly`` columns: .L, .Q, .C, ^4, ^5, ..."""
    base = [".L", ".Q", ".C"]
    return (base + [f"^{d}" for d in range(4, k)])[: k - 1]
