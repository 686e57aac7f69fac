"""One hierarchy of errors that speak the user's language (DESIGN.md §8, §9).

Every error names the thing at fault (argument, column, row, term, hyperparameter) and,
where there is a finite set of valid choices, lists them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdeliaError(Exception):
    """Base class of every error adelia raises on purpose."""


class FormulaError(AdeliaError, ValueError):
    """A formula could not be parsed or refers to something unknown."""


class FormulaSyntaxError(FormulaError):
    """A syntax error in a formula; the message shows the offending text with a caret."""

    def __init__(self, message: str, formula: str | None = None, position: int | None = None):
        self.formula = formula
        self.position = position
        if formula is not None and position is not None:
            message = f"{message}\n    {formula}\n    {' ' * position}^"
        super().__init__(message)


class DataError(AdeliaError, ValueError):
    """Bad data: a missing column, a wrong length, a value outside a family's support."""


class ModelError(AdeliaError, ValueError):
    """A latent model or likelihood was specified inconsistently (unknown name, bad graph...)."""


class PriorError(ModelError):
    """An unknown prior or bad prior parameters."""


class ControlError(AdeliaError, ValueError):
    """An unknown key or value in one of the control_* dictionaries."""


class NumericalError(AdeliaError, ArithmeticError):
    """A numerical failure that could not be recovered (not positive definite, no convergence)."""


class NotPositiveDefiniteError(NumericalError):
    """A matrix that must be symmetric positive definite is not."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest valid choice, or ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f' Did you mean "{close[0]}"?' if close else ""


def unknown_choice(kind: str, word: str, choices: Iterable[str]) -> str:
    """The message for an unknown name among valid ones, e.g. an unknown model."""
    choices = sorted(set(str(c) for c in choices))
    return f'unknown {kind} "{word}".{did_you_mean(word, choices)} Valid choices: {", ".join(choices)}.'


class ConfigurationError(AdeliaError, ValueError):
    """A bad setting in the environment (e.g. ``ADELIA_NUM_THREADS``): names the variable,
    its value and what is valid."""
