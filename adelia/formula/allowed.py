"""What formula text may reach: the allowlist of the R evaluators.

Formulas, ``f()`` arguments and ``control.*`` strings are *data* written by users -- they
come from files, configuration, notebooks shared by others and web forms of services
built on adelia. Evaluating one may compute a value and nothing else (R-INLA's own
``inla()`` runs R code, so it offers no model here; the rules are ours):

* **Names** resolve only to R's constants, data columns, ``context=`` entries and, for
  ``f()`` arguments, caller variables whose values are *data* (:func:`check_value`):
  numbers, strings, booleans, ``None``, NumPy/JAX arrays, pandas objects, SciPy sparse
  matrices, paths, dicts/lists/tuples of those, and adelia's own objects (graphs, SPDE
  models, meshes, custom latent models -- anything whose class derives from a class
  defined in adelia). Modules, functions, classes and other objects are refused.
* **Dunder names** (``__x__``, ``__builtins__``) are refused everywhere: as names, as
  ``$``/``@`` elements, as keys.
* **``$`` and ``@``** take an element of a dict-like value (R's list) or a column of a
  DataFrame, never an attribute.
* **Calls** go only to the evaluators' own tables of R functions (:mod:`.rvalues`,
  :mod:`.rdata`); a callable found in data is never called.
* **Sizes**: a vector built by ``rep``, ``seq``, ``:``, ``matrix``, ``diag`` and friends has
  at most :data:`MAX_ELEMENTS` elements, so a formula cannot exhaust memory.

Everything else raises :class:`~adelia.errors.FormulaError` with a caret under the
offending text.

Example:
    >>> check_value({"prec": [1, 0.01]}, "hyper") == {"prec": [1, 0.01]}
    True
    >>> import os
    >>> check_value(os, "os")
    Traceback (most recent call last):
    ...
    adelia.errors.FormulaError: "os" is a module, not data: ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import AdeliaError, FormulaError
from .rsyntax import Node, deparse, located

#: the largest vector a formula may build (10⁷ doubles = 80 MB)
MAX_ELEMENTS = 10_000_000
#: how deep dicts/lists given to a formula may nest
_MAX_CONTAINER_DEPTH = 32

_SCALARS = (bool, int, float, complex, str, bytes, type(None), np.number, np.bool_, np.str_,
            np.bytes_, np.datetime64, np.timedelta64)
_PANDAS = (pd.DataFrame, pd.Series, pd.Index, pd.Categorical)


def is_dunder(name: str) -> bool:
    """A Python special name (``__class__``, ``__builtins__``): never reachable from text."""
    return isinstance(name, str) and (name.startswith("__") or name.endswith("__"))


def dunder_message(name: str, what: str = "name") -> str:
    """The message refusing a dunder ``name`` (the caller adds the caret)."""
    return (f'the {what} "{name}" is not allowed: names that begin or end with "__" are Python '
            "internals, which formula text cannot reach")


#: errors of the arithmetic itself (bad operands, out-of-range indices, ...), which the
#: evaluators turn into a FormulaError located at the expression that raised them
COMPUTE_ERRORS = (TypeError, ValueError, IndexError, KeyError, OverflowError, ZeroDivisionError,
                  MemoryError)


@contextlib.contextmanager
def located_compute_errors(node: Node, source: str, what: str = "") -> Iterator[None]:
    """Re-raise :data:`COMPUTE_ERRORS` inside the block as ``cannot compute '<node>'<what>``
    with a caret under ``node`` (adelia's own errors pass unchanged)."""
    try:
        yield
    except AdeliaError:
        raise
    except COMPUTE_ERRORS as e:
        raise FormulaError(located(f"cannot compute {deparse(node)!r}{what}: {e}", source, node.start)) from None


def _from_adelia(value: Any) -> bool:
    """An instance of a class defined in adelia, or of a user's subclass of one."""
    if isinstance(value, type):
        return False
    return any(getattr(c, "__module__", "").split(".")[0] == "adelia" for c in type(value).__mro__)


def _is_jax_array(value: Any) -> bool:
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a dependency
        return False
    return isinstance(value, jax.Array)


def _describe(value: Any) -> str:
    import types

    if isinstance(value, types.ModuleType):
        return "a module"
    if isinstance(value, type):
        return "a class"
    if callable(value):
        return "a function"
    return f"an object of type {type(value).__name__}"


def check_value(value: Any, name: str, _depth: int = 0) -> Any:
    """``value`` unchanged if formula text may use it (see the module doc), else FormulaError.

    Args:
        value: what the name ``name`` resolved to.
        name: the name as written, for the message.

    Raises:
        FormulaError: naming ``name``, what it is, and what is allowed instead.
    """
    if isinstance(value, _SCALARS) or _from_adelia(value):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            for item in value.ravel():
                check_value(item, name, _depth + 1)
        return value
    if isinstance(value, _PANDAS) or sp.issparse(value) or isinstance(value, os.PathLike) \
            or _is_jax_array(value):
        return value
    if isinstance(value, (dict, list, tuple, Mapping)):
        if _depth >= _MAX_CONTAINER_DEPTH:
            raise FormulaError(f'"{name}" nests containers more than {_MAX_CONTAINER_DEPTH} levels deep')
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            if isinstance(value, Mapping):
                if not isinstance(key, (str, int, float, bool, tuple)) or is_dunder(key):
                    raise FormulaError(f'"{name}" has the key {key!r}, which formula text cannot use')
            check_value(item, name, _depth + 1)
        return value
    raise FormulaError(
        f'"{name}" is {_describe(value)}, not data: names in a formula may refer only to data '
        "(numbers, strings, arrays, DataFrames/Series, sparse matrices, dicts/lists of those) or "
        "to adelia objects (graphs, SPDE models, meshes, latent models); compute the value in "
        f'Python and pass it, e.g. context={{"{name}": value}}')


def check_size(n: Any, what: str) -> int:
    """``n`` as an int if a vector of ``n`` elements may be built, else FormulaError."""
    try:
        k = int(n)
    except (TypeError, ValueError, OverflowError):
        raise FormulaError(f"{what}: the length {n!r} is not a number") from None
    if k > MAX_ELEMENTS:
        raise FormulaError(f"{what} would build {k} elements; formula text may build at most "
                           f"{MAX_ELEMENTS} (compute large vectors in Python and pass them as data)")
    return k


@contextlib.contextmanager
def nesting_guard(source: str) -> Iterator[None]:
    """Turn Python's RecursionError on a pathologically deep expression into a FormulaError."""
    try:
        yield
    except RecursionError:
        raise FormulaError(
            f"the expression {source[:60]!r}{'...' if len(source) > 60 else ''} is nested too deeply "
            "to evaluate; simplify it or compute the value in Python") from None
