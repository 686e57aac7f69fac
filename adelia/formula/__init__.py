"""adelia.formula: R-INLA formulas -> :class:`ModelSpec`, and the fixed-effects design.

* :func:`parse_formula` -- response, fixed part, ``f()`` terms (arguments as Python
  values, names resolved in ``context``/the caller's namespace) and offsets.
* :func:`fixed_design` -- the fixed-effects model matrix with R-INLA's column names
  ("(Intercept)", "I(X/10)", "as.factor(birth.year)2", "x1:x2"), re-materialisable on
  new data.
* :func:`r_to_python` -- an R value expression (``list(int.strategy="ccd")``) as Python.

Example:
    >>> import pandas as pd
    >>> spec = parse_formula('y ~ 1 + x + f(g, model="iid")')
    >>> fixed_design(spec, pd.DataFrame({"x": [0.5, 1.5], "g": [1, 2]})).names
    ('(Intercept)', 'x')
"""

from .fixed import FixedDesign, FixedEncoding, FixedVariable, contr_poly, fixed_design
from .parse import F_ARGUMENTS, caller_namespace, parse_formula
from .rsyntax import deparse, format_r_number, parse_r
from .rvalues import normalise_dict_keys, normalise_key, r_to_python
from .spec import FTerm, ModelSpec

__all__ = [
    "FTerm", "ModelSpec", "parse_formula", "caller_namespace", "F_ARGUMENTS",
    "fixed_design", "FixedDesign", "FixedEncoding", "FixedVariable", "contr_poly",
    "r_to_python", "normalise_key", "normalise_dict_keys", "parse_r", "deparse",
    "format_r_number",
]
