"""The ``control_*`` arguments of :func:`adelia.inla`, with R-INLA's names and defaults.

Every control is a dict; keys may be written in R's dotted spelling (``"int.strategy"``)
or Python's (``"int_strategy"``). Unknown keys raise :class:`adelia.errors.ControlError`
naming the key and listing the valid ones. Values that are R expressions in a string
(``"list(int.strategy='ccd')"``) are accepted for the whole control too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ControlError, unknown_choice

# Defaults follow R-INLA (control.R) where R-INLA has the key; adelia's own keys are marked.
DEFAULTS: dict[str, dict[str, Any]] = {
    "control_inla": {
        "strategy": "auto",  # "gaussian" | "simplified.laplace" | "laplace" | "auto"
        "int.strategy": "auto",  # "auto" | "grid" | "ccd" | "eb"
        "h": 0.005,
        "dz": 0.75,
        "diff.logdens": 6.0,
        "tolerance": 0.005,
        "optimiser": "default",
        "reordering": "auto",
        "cmin": None,
        "b.strategy": "keep",
        "stupid.search": True,
        "use.directions": True,
        "compute.initial.values": True,
        "interpolator": "auto",
        "numint.maxfeval": 100000,
        # "compact" (R-INLA's default: fixed designs, Gaussian + VB marginals) or "classic"
        # (adaptive dz/diff.logdens grid for d ≤ 2, simplified Laplace): R-INLA's inla.mode
        "inla.mode": "compact",
        # adelia's own
        "solver": "auto",  # "auto" | "dense" | "sparse" | "bta"
        "gradient": "ad",  # "ad" | "fd"  (how the mode search gets ∇f)
        "vb.correction": True,  # R-INLA's compact-mode variational mean correction
        "newton.max.iter": 100,
        "newton.tol": 1e-10,
        # "values": R-INLA's second differences of log π̃ (2d² evaluations); "gradients":
        # central differences of AD gradients (2d gradients); "auto": values for d ≤ 4 and at
        # most 10 000 latent variables (run.hessian_method)
        "hessian.method": "auto",
    },
    "control_compute": {
        "dic": False,
        "waic": False,
        "cpo": False,
        "po": False,
        "config": False,
        "mlik": True,
        "return.marginals": True,
        "return.marginals.predictor": False,
        "hyperpar": True,
        "graph": False,
        "internal.opt": True,
        "save.memory": False,
    },
    "control_predictor": {
        "compute": False,
        "link": None,
        "A": None,
        "cdf": None,
        "quantiles": None,
    },
    "control_fixed": {
        "mean": 0.0,
        "prec": 0.001,
        "mean.intercept": 0.0,
        "prec.intercept": 0.0,
        "expand.factor.strategy": "model.matrix",
        "correlation.matrix": False,
    },
    "control_mode": {
        "theta": None,
        "x": None,
        "restart": True,
        "fixed": False,
    },
    "control_vb": {
        "enable": "auto",
        "strategy": "mean",
        "iter.max": 25,
        "emergency": 25.0,
        "f.enable.limit": (30, 25, 1024, 768),
        "hessian.update": 2,
        "hessian.strategy": "full",
        "verbose": False,
    },
}

_VALID_CHOICES = {
    ("control_inla", "strategy"): ("auto", "gaussian", "simplified.laplace", "laplace", "adaptive"),
    ("control_inla", "int.strategy"): ("auto", "grid", "ccd", "eb", "user", "user.std"),
    ("control_inla", "solver"): ("auto", "dense", "sparse", "bta"),
    ("control_inla", "inla.mode"): ("compact", "classic"),
    ("control_inla", "gradient"): ("ad", "fd"),
    ("control_inla", "hessian.method"): ("auto", "values", "gradients"),
}


def normalise_key(key: str) -> str:
    """R's dotted spelling as the canonical one: ``int_strategy`` -> ``int.strategy``."""
    return str(key).replace("_", ".")


def resolve(name: str, given: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Defaults of control ``name`` updated by the user's ``given`` dict (validated).

    Example:
        >>> resolve("control_inla", {"int_strategy": "ccd"})["int.strategy"]
        'ccd'
    """
    if name not in DEFAULTS:
        raise ControlError(unknown_choice("control argument", name, DEFAULTS))
    out = dict(DEFAULTS[name])
    if given is None:
        return out
    if isinstance(given, str):
        from .formula.rvalues import r_to_python

        given = r_to_python(given)
    if not isinstance(given, Mapping):
        raise ControlError(f"{name} must be a dict (or an R list(...) string), got {type(given).__name__}")
    valid = set(DEFAULTS[name])
    for key, value in given.items():
        k = normalise_key(key)
        if k not in valid:
            raise ControlError(f"{name}: " + unknown_choice("key", key, sorted(valid)))
        choices = _VALID_CHOICES.get((name, k))
        if choices is not None and value not in choices:
            raise ControlError(f'{name}: {k} = "{value}" is not valid. Valid choices: {", ".join(choices)}.')
        out[k] = value
    return out
