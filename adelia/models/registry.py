"""Name -> class registries for latent models and priors.

Model and prior modules register themselves with the decorators below; the lookup
functions import every submodule of :mod:`adelia.models` (and the family-specific priors of
:mod:`adelia.likelihoods`) on first use, so adding a model is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any

from ..errors import ModelError, PriorError, unknown_choice

MODELS: dict[str, type] = {}
PRIORS: dict[str, type] = {}
# The registries fill while _load_all imports the model modules. Threads doing their first
# fit at once must wait for the whole import, not see a half-filled registry ("unknown
# latent model"): _loaded turns True only after the last import, under _load_lock. The
# lock is re-entrant and _loading marks the importing thread, so a module that looks up a
# model or prior while being imported returns at once instead of importing everything again.
_load_lock = threading.RLock()
_loaded = False
_loading = False


def register_model(name: str):
    """Class decorator: make a :class:`LatentModel` subclass available as f(..., model=name)."""

    def deco(cls):
        MODELS[name] = cls
        return cls

    return deco


def register_prior(*names: str):
    """Class decorator: make a :class:`Prior` subclass available as prior=name (and aliases)."""

    def deco(cls):
        for n in names:
            PRIORS[n] = cls
        return cls

    return deco


def _load_all() -> None:
    """Import every model, likelihood and SPDE module once, so that their decorators have
    registered all models and priors (thread-safe; see ``_load_lock``)."""
    global _loaded, _loading
    if _loaded:
        return
    with _load_lock:
        if _loaded or _loading:  # done by another thread meanwhile, or a re-entrant call
            return
        _loading = True
        try:
            for pkg_name in ("adelia.models", "adelia.likelihoods", "adelia.spde"):
                try:
                    pkg = importlib.import_module(pkg_name)
                except ImportError:  # a package still being written must not break the others
                    continue
                for info in pkgutil.iter_modules(pkg.__path__):
                    if not info.name.startswith("_"):
                        importlib.import_module(f"{pkg_name}.{info.name}")
            _loaded = True  # only now: a failed import leaves the next call to try again
        finally:
            _loading = False


def model_class(name: str) -> type:
    """The latent model class registered as ``name``; ModelError listing the known ones."""
    _load_all()
    if name not in MODELS:
        raise ModelError(unknown_choice("latent model", name, MODELS))
    return MODELS[name]


def make_prior(name: str, param: Any = None, **context: Any):
    """A prior instance: ``make_prior("pc.prec", (1, 0.01))``. ``context`` carries what some
    priors need from their model (e.g. the graph's eigenvalues for bym2's phi prior)."""
    _load_all()
    if name not in PRIORS:
        raise PriorError(unknown_choice("prior", name, PRIORS))
    try:
        return PRIORS[name].from_param(param, **context)
    except TypeError as exc:  # a wrong number of parameters for a prior without a count check
        raise PriorError(f'prior "{name}" cannot take param={param!r}: wrong number of parameters ({exc})') from exc
