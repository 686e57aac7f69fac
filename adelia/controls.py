"""The ``control_*`` arguments of :func:`adelia.inla`, with R-INLA's names and defaults.

Every control is a dict; keys may be written in R's dotted spelling (``"int.strategy"``)
or Python's (``"int_strategy"``). Unknown keys raise :class:`adelia.errors.ControlError`
naming the key and listing the valid ones. Values that are R expressions in a string
(``"list(int.strategy='ccd')"``) are accepted for the whole control too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ControlError, unknown_choice

# Defaults follow R-INLA (control.R) where R-INLA has the key; adelia's own keys are marked.
DEFAULTS: dict[str, dict[str, Any]] = {
    "control_inla": {
        "strategy": "auto",  # "gaussian" | "simplified.laplace" | "laplace" | "auto"
        "int.strategy": "auto",  # "auto" | "grid" | "ccd" | "eb" | "nuts" (adelia's own: NUTS over θ)
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
        "lincomb.derived.correlation.matrix": False,
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
        # adelia's own: estimate the fit's peak memory first and raise MemoryError when it
        # exceeds what is available (adelia.inference.memory); False runs regardless
        "memory.check": True,
        # adelia's own: settings of int.strategy "nuts" (adelia.inference.nuts_theta.NUTS_DEFAULTS)
        "nuts": None,
        # adelia's own: the devices that batches of θ points are sharded over (an int, a list of
        # jax.Device or a jax.sharding.Mesh); None: one device on the CPU, every local
        # accelerator else (adelia.engine.batching.points_mesh)
        "devices": None,
        # adelia's own: the memory of one device (bytes or "16GB"), for the per-device memory
        # check (adelia.inference.memory.check_device_memory); None: $ADELIA_DEVICE_MEMORY, else
        # the accelerator's bytes_limit, else the host's available memory
        "device.memory": None,
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
    ("control_inla", "int.strategy"): ("auto", "grid", "ccd", "eb", "user", "user.std", "nuts"),
    ("control_inla", "solver"): ("auto", "dense", "sparse", "bta"),
    ("control_inla", "inla.mode"): ("compact", "classic"),
    ("control_inla", "gradient"): ("ad", "fd"),
    ("control_inla", "hessian.method"): ("auto", "values", "gradients"),
}


#: keys R-INLA has withdrawn: passing them is an error there too (the message says why)
_DISABLED = {
    ("control_inla", "lincomb.derived.only"): (
        "R-INLA disabled this option in version 20.08.02 (its inla() stops with \"Option "
        "'control.inla$lincomb.derived.only' is disabled\"): linear combinations are always derived "
        "ones, reported in summary_lincomb_derived / marginals_lincomb_derived. Remove the key."
    ),
}


#: keys whose value is a boolean (R's TRUE/FALSE; the strings "TRUE"/"FALSE"/"T"/"F" accepted)
_BOOLEAN_KEYS = {
    "control_inla": ("stupid.search", "use.directions", "compute.initial.values", "vb.correction",
                     "memory.check", "lincomb.derived.correlation.matrix"),
    "control_compute": (
        "dic", "waic", "cpo", "po", "config", "mlik", "return.marginals", "return.marginals.predictor",
        "hyperpar", "graph", "internal.opt", "save.memory",
    ),
    "control_predictor": ("compute",),
    "control_fixed": ("correlation.matrix",),
    "control_mode": ("restart", "fixed"),
    "control_vb": ("enable", "verbose"),  # enable: also "auto"
}
#: keys whose value is a finite number (control_fixed's mean/prec: also a dict name -> number)
_NUMERIC_KEYS = {
    "control_inla": ("h", "dz", "diff.logdens", "tolerance", "numint.maxfeval", "newton.max.iter", "newton.tol"),
    "control_fixed": ("mean", "prec", "mean.intercept", "prec.intercept"),
    "control_vb": ("iter.max", "emergency", "hessian.update", "f.enable.limit"),
}
_R_BOOLEANS = {"TRUE": True, "T": True, "true": True, "True": True, "FALSE": False, "F": False, "false": False, "False": False}


def check_value(name: str, key: str, value: Any) -> Any:
    """The value of ``name[key]`` checked against its type (normalised: R's "TRUE" -> True).

    Raises:
        ControlError: naming the control, the key, the value and what is valid.

    Example:
        >>> check_value("control_compute", "dic", "TRUE")
        True
    """
    if key in _BOOLEAN_KEYS.get(name, ()):
        if name == "control_vb" and key == "enable" and value == "auto":
            return value
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, str) and value in _R_BOOLEANS:
            return _R_BOOLEANS[value]
        valid = '"auto", True or False' if key == "enable" else "True or False (R's TRUE/FALSE)"
        raise ControlError(f"{name}: {key} = {value!r} is not valid; it must be {valid}.")
    if name == "control_inla" and key == "nuts" and value is not None:
        from .inference.nuts_theta import nuts_settings  # validated now, not after the mode search

        return nuts_settings(value)
    if name == "control_inla" and key == "devices" and value is not None:
        from .engine.batching import points_mesh  # validated now (the devices exist), kept as given

        points_mesh(value)
        return value
    if name == "control_inla" and key == "device.memory" and value is not None:
        from .inference.memory import parse_bytes  # validated now, kept as given

        parse_bytes(value)
        return value
    if key in _NUMERIC_KEYS.get(name, ()):
        if name == "control_fixed" and key in ("mean", "prec") and isinstance(value, Mapping):
            return {k: _number(name, f"{key}[{k!r}]", v) for k, v in value.items()}
        if key == "f.enable.limit":
            vals = np.atleast_1d(value) if not isinstance(value, str) else [value]
            return tuple(_number(name, key, v) for v in vals)
        return _number(name, key, value)
    return value


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise ControlError(f"{name}: {key} = {value!r} is not valid; it must be a finite number.")
    return value


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
        if (name, k) in _DISABLED:
            raise ControlError(f"{name}: {k} = {value!r} is not accepted. " + _DISABLED[(name, k)])
        if k not in valid:
            raise ControlError(f"{name}: " + unknown_choice("key", key, sorted(valid)))
        choices = _VALID_CHOICES.get((name, k))
        if choices is not None and value not in choices:
            raise ControlError(f'{name}: {k} = "{value}" is not valid. Valid choices: {", ".join(choices)}.')
        out[k] = check_value(name, k, value)
    return out
