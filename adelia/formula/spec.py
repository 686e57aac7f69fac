"""What a parsed R-INLA formula says (parse -> spec -> materialise, as formulaic does).

:class:`ModelSpec` is the frozen result of parsing a formula string; it holds no data.
The fixed-effects part stays a formulaic right-hand side; every ``f()`` term becomes an
:class:`FTerm` whose arguments are plain Python values with R-INLA's argument names in
Python spelling (dots -> underscores: ``scale.model`` -> ``scale_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FTerm:
    """One ``f(covariate, [weights,] model=..., ...)`` term.

    Attributes:
        covariate: the first argument: a column name, or ``None`` for R-INLA's ``f(NULL, ...)``
            style terms that carry their own index (rare).
        weights: the optional second positional argument (a column name) or None.
        model: a model name ("iid") or a model object resolved from the caller's namespace
            (an SPDE model).
        args: every other keyword argument, Python spelling, values converted from R
            (``TRUE`` -> True, ``c(1, 2)`` -> [1, 2], ``list(a=1)`` -> {"a": 1}, ``NULL`` -> None,
            names resolved from the namespace or ``context``).
        text: the term exactly as written, for error messages.
    """

    covariate: str | None
    model: Any
    weights: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def label(self) -> str:
        """R-INLA's name for the term in the output (the covariate's name)."""
        return self.covariate if self.covariate is not None else str(self.args.get("copy", "f"))


@dataclass(frozen=True)
class ModelSpec:
    """A parsed R-INLA formula.

    Attributes:
        formula: the formula as given.
        response: the left-hand side as written (a column name, or an expression such as
            ``inla.surv(time, event)``); None for a one-sided formula.
        fixed: the fixed-effects right-hand side for formulaic (f() terms and offsets removed,
            intercept handling explicit: "1 + x1 + x2" or "0 + b0").
        intercept: whether the fixed part has an intercept.
        f_terms: the f() terms in formula order.
        offsets: expressions inside ``offset(...)`` terms.
    """

    formula: str
    response: str | None
    fixed: str
    intercept: bool
    f_terms: tuple[FTerm, ...] = ()
    offsets: tuple[str, ...] = ()
