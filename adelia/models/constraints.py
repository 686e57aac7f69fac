"""Linear constraints of f() terms and R-INLA's rank-deficiency bookkeeping.

R-INLA semantics (``rinla/R/f.R``, ``inlaprog/src/inla-parse.c``):

* ``constr`` defaults to the model's ``constr`` in ``inla.models()`` (TRUE for rw1, rw2, besag,
  ..., FALSE for iid, ar1, ar, seasonal, generic0/1), and to FALSE when ``cyclic=TRUE``.
  ``constr=TRUE`` is the sum-to-zero constraint 1ᵀx = 0.
* ``extraconstr = list(A=, e=)`` adds the rows A x = e (A has one column per node).
* ``diagonal`` defaults to 1e-4 (``inla.set.f.default()$diagonal``) when ``constr`` or
  ``extraconstr`` is active, else 0.
* the rank deficiency R-INLA uses in the normalising constant of the component is the user's
  ``rankdef`` when given; otherwise the model's own (rw1: 1, rw2: 2, ...), or 1 when the model
  is proper and ``constr=TRUE``, plus the number of ``extraconstr`` rows.
* ``group``/``replicate``: every constraint is repeated on every group block and every
  replicate (``inla_make_constraint2``).

Public functions: :func:`sum_to_zero`, :func:`parse_extraconstr`, :func:`model_constraints`,
:func:`default_diagonal`, :func:`rinla_rankdef`, :func:`repeat_constraints`.

Example:
    >>> c = model_constraints(4, constr=True, extraconstr={"A": [[1, 0, 0, 0]], "e": [0.5]})
    >>> c.C.tolist(), c.e.tolist()
    ([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]], [0.0, 0.5])
    >>> rinla_rankdef(model_rankdef=0, constr=True, n_extra=1)
    2.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from .base import LinearConstraints

__all__ = [
    "DEFAULT_DIAGONAL",
    "sum_to_zero",
    "parse_extraconstr",
    "model_constraints",
    "default_diagonal",
    "rinla_rankdef",
    "repeat_constraints",
]

#: R-INLA's ``inla.set.f.default()$diagonal``.
DEFAULT_DIAGONAL = 1.0e-4


def sum_to_zero(n: int) -> LinearConstraints:
    """1ᵀx = 0 on n nodes."""
    return LinearConstraints(np.ones((1, n)), np.zeros(1))


def parse_extraconstr(extraconstr: Any, n: int, label: str = "f") -> LinearConstraints | None:
    """``extraconstr`` as R-INLA takes it: ``{"A": (k, n) matrix, "e": (k,) vector}`` (also a
    pair ``(A, e)`` or a :class:`LinearConstraints`); None or an empty A gives None.

    Raises ModelError naming the term when the shapes do not fit."""
    if extraconstr is None:
        return None
    if isinstance(extraconstr, LinearConstraints):
        A, e = extraconstr.C, extraconstr.e
    elif isinstance(extraconstr, Mapping):
        keys = {str(k).lower(): v for k, v in extraconstr.items()}
        unknown = set(keys) - {"a", "e"}
        if unknown:
            raise ModelError(f"f({label}, ...): extraconstr has unknown entries {sorted(unknown)}; use {{'A': ..., 'e': ...}}")
        if "a" not in keys:
            raise ModelError(f"f({label}, ...): extraconstr needs the matrix 'A' (and the vector 'e')")
        A, e = keys["a"], keys.get("e")
    elif isinstance(extraconstr, (tuple, list)) and len(extraconstr) == 2:
        A, e = extraconstr
    else:
        raise ModelError(f"f({label}, ...): extraconstr must be {{'A': matrix, 'e': vector}}, got {type(extraconstr).__name__}")
    A = A.toarray() if sp.issparse(A) else np.asarray(A, dtype=float)
    A = np.atleast_2d(A)
    if A.size == 0:
        return None
    e = np.zeros(A.shape[0]) if e is None else np.atleast_1d(np.asarray(e, dtype=float))
    if A.shape[1] != n:
        raise ModelError(
            f"f({label}, ...): extraconstr$A has {A.shape[1]} columns but the model has {n} nodes "
            "(one column per node is needed)"
        )
    if e.shape != (A.shape[0],):
        raise ModelError(f"f({label}, ...): extraconstr$A has {A.shape[0]} rows but e has {e.size} values")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(e))):
        raise ModelError(f"f({label}, ...): extraconstr contains non-finite values")
    return LinearConstraints(A, e)


def model_constraints(n: int, constr: bool, extraconstr: Any = None, label: str = "f") -> LinearConstraints | None:
    """The constraints of one model copy: the sum-to-zero row first (when ``constr``), then the
    ``extraconstr`` rows."""
    parts = [sum_to_zero(n) if constr else None, parse_extraconstr(extraconstr, n, label)]
    return LinearConstraints.stack(parts)


def default_diagonal(constr: bool, extraconstr: Any) -> float:
    """R-INLA's default of f()'s ``diagonal``: 1e-4 with constraints, 0 without."""
    has_extra = extraconstr is not None and not (isinstance(extraconstr, LinearConstraints) and extraconstr.k == 0)
    return DEFAULT_DIAGONAL if (constr or has_extra) else 0.0


def rinla_rankdef(model_rankdef: float, constr: bool, n_extra: int, user_rankdef: float | None = None) -> float:
    """The rank deficiency R-INLA puts in the component's normalising constant
    (``inla-parse.c``: a given ``rankdef`` wins; else the model's, 1 for a proper model with
    ``constr=TRUE``, plus the number of extra constraints)."""
    if user_rankdef is not None:
        return float(user_rankdef)
    rd = float(model_rankdef)
    if rd == 0.0 and constr:
        rd = 1.0
    return rd + float(n_extra)


def repeat_constraints(c: LinearConstraints | None, n_block: int, n_copies: int) -> LinearConstraints | None:
    """The constraints of one block repeated on each of ``n_copies`` consecutive blocks of
    size ``n_block`` (block-diagonal C, e tiled), as for group and replicate copies."""
    if c is None or c.k == 0 or n_copies == 1:
        return c
    if c.C.shape[1] != n_block:
        raise ValueError(f"constraints have {c.C.shape[1]} columns, block size is {n_block}")
    C = np.kron(np.eye(n_copies), c.C)
    return LinearConstraints(C, np.tile(c.e, n_copies))
