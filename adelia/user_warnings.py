"""Warnings that point at the user's line, each kind once per fit.

Python's ``warnings.warn(msg, stacklevel=k)`` attributes a warning to the frame ``k`` levels
up, and a fixed ``k`` names whichever adelia function happens to sit there
(``adelia/inference/run.py:361: NewtonWarning ...``), which tells a user nothing about which
of their calls it concerns. :func:`warn` attributes every warning to the first frame outside
the adelia package: the user's ``adelia.inla(...)`` line, or their ``mesh_2d(...)`` line.

Inside :func:`fit_scope` (``adelia.inla``, ``adelia.compile``, ``Model.fit``) each kind of
warning — its category and the adelia line that issues it — is shown once: a Newton failure
at seven design points is one warning, not seven. Every message, shown or not, still reaches
the fit's record (``res.diagnostics["warnings"]``) through the callers' notes.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     with fit_scope():
    ...         for k in range(3):
    ...             warn(f"point {k} did not converge")
    >>> [str(w.message) for w in seen]
    ['point 0 did not converge']
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings
from collections.abc import Iterator

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: the kinds already shown in the running fit (None outside a fit)
_shown: contextvars.ContextVar[set | None] = contextvars.ContextVar("adelia_warnings_shown", default=None)


def _user_stacklevel() -> int:
    """``stacklevel`` for a ``warnings.warn`` call made in :func:`warn` that names the first
    frame outside the adelia package (the outermost frame when there is none, as in a worker
    thread)."""
    frame = sys._getframe(2)  # warn()'s caller, stacklevel 2 of warnings.warn called in warn()
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: type[Warning] = UserWarning, kind: str | None = None) -> None:
    """``warnings.warn(message, category)`` at the user's line, once per kind within a fit.

    ``kind``: what makes two warnings the same (default: the adelia line that calls ``warn``;
    a helper that warns for its callers names the kind instead)."""
    shown = _shown.get()
    if shown is not None:
        caller = sys._getframe(1)
        key = (category, kind) if kind is not None else (category, caller.f_code.co_filename, caller.f_lineno)
        if key in shown:
            return
        shown.add(key)
    warnings.warn(message, category, stacklevel=_user_stacklevel())


@contextlib.contextmanager
def fit_scope() -> Iterator[None]:
    """Within the block, each kind of :func:`warn` warning is shown once (nested scopes
    belong to the outermost: ``adelia.inla`` compiles and fits in one scope)."""
    if _shown.get() is not None:
        yield
        return
    token = _shown.set(set())
    try:
        yield
    finally:
        _shown.reset(token)
