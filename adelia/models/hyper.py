"""Hyperparameters from R-INLA's defaults plus the user's ``hyper=`` overrides.

A model declares its hyperparameters as a tuple of :class:`HyperSpec` — one entry of
``inla.models()$latent$<model>$hyper`` each (``rinla/R/models.R``): key, short name, long name,
default prior and parameters, initial value (internal scale), fixed flag, and the map from the
internal θ to the user's scale. :func:`build_hyperparameters` merges the user's choices the way
R-INLA's ``inla.set.hyper`` does and returns the :class:`~adelia.models.base.Hyperparameter`
tuple, priors built.

Matching rules (R-INLA's): an entry of ``hyper`` is found for hyperparameter k (1-based) under
the key ``theta<k>``, or ``theta`` when the model has one hyperparameter, or the long name
("log precision"), or the short name ("prec"); keys are case-insensitive and ``_`` may stand for
``.`` (``prec_unstruct``). Inside an entry the keys are ``initial`` (internal scale),
``fixed``, ``prior`` and ``param``. The obsolete f() arguments ``initial=``, ``fixed=``,
``prior=``, ``param=`` (vectors running over all hyperparameters in order) are honoured too, and
``hyper`` entries take precedence over them.

Prior parameters: when the prior is changed but ``param`` is not given, R-INLA keeps the
default parameters, truncated to the new prior's parameter count (so ``prior="pc.prec"`` alone
gives pc.prec(1, 5e-05) for a precision whose default is loggamma(1, 5e-05)); a prior needing
more parameters than the default had must be given ``param``.

Example:
    >>> import jax.numpy as jnp
    >>> spec = HyperSpec("theta", "prec", "log precision", "Log precision for {label}",
    ...                  "Precision for {label}", "loggamma", (1.0, 5e-05), 4.0)
    >>> (h,) = build_hyperparameters([spec], "idx", {"prec": {"prior": "pc.prec", "param": [1, 0.01]}})
    >>> h.name, h.internal_name, h.prior, h.initial
    ('Precision for idx', 'Log precision for idx', pc.prec(1, 0.01), 4.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..errors import ModelError, PriorError, unknown_choice
from . import registry
from .base import Hyperparameter

__all__ = [
    "HyperSpec",
    "build_hyperparameters",
    "canonical_prior_name",
    "obsolete_hyper_args",
    "to_precision",
    "to_rho",
    "to_probability",
    "to_identity",
    "to_exchangeable_rho",
]

#: Keys accepted inside one ``hyper`` entry.
ENTRY_KEYS = ("initial", "fixed", "prior", "param")


# ---- maps from the internal θ to the user's scale (jnp-traceable, monotone) ----------------
def to_precision(theta):
    """τ = e^θ (``map_precision``)."""
    return jnp.exp(theta)


def to_rho(theta):
    """ρ = 2 e^θ/(1 + e^θ) − 1 = tanh(θ/2) (``map_rho``)."""
    return jnp.tanh(0.5 * theta)


def to_probability(theta):
    """p = e^θ/(1 + e^θ) (``map_probability``)."""
    return 1.0 / (1.0 + jnp.exp(-theta))


def to_identity(theta):
    return theta


def to_exchangeable_rho(ngroup: int) -> Callable:
    """ρ = (e^θ − 1)/(e^θ + ngroup − 1) (``map_group_rho``), ρ ∈ (−1/(ngroup−1), 1)."""

    def to_user(theta):
        e = jnp.exp(theta)
        return (e - 1.0) / (e + ngroup - 1.0)

    return to_user


@dataclass(frozen=True)
class HyperSpec:
    """One default hyperparameter, as in ``inla.models()`` (internal scale throughout).

    Attributes:
        key: R-INLA's list name ("theta" for one-parameter models, else "theta1", ...).
        short_name: R-INLA's ``short.name`` ("prec", "rho", "pacf1"): the Python ``hyper`` key.
        long_name: R-INLA's ``name`` ("log precision").
        internal_name: row name template of ``internal_summary_hyperpar``, with ``{label}``.
        name: row name template of ``summary_hyperpar``, with ``{label}``.
        prior: default prior name; ``param``: its parameters.
        initial: default initial value (internal scale); ``fixed``: default fixed flag.
        to_user: internal -> user scale map.
    """

    key: str
    short_name: str
    long_name: str
    internal_name: str
    name: str
    prior: str
    param: tuple
    initial: float
    fixed: bool = False
    to_user: Callable = to_precision


def _norm_key(key: str) -> str:
    return str(key).strip().lower().replace("_", ".").replace(" ", ".")


def _squeeze(name: str) -> str:
    return str(name).strip().lower().replace("_", "").replace(".", "").replace(" ", "")


def canonical_prior_name(name: str) -> str:
    """The registered spelling of a prior name: case-insensitive, ``_`` for ``.`` and the
    dot-less spelling accepted (``"PC_PREC"``, ``"pcprec"`` -> ``"pc.prec"``); PriorError
    listing the known priors otherwise."""
    registry._load_all()
    raw = str(name).strip()
    for cand in (raw, raw.lower(), raw.lower().replace("_", ".")):
        if cand in registry.PRIORS:
            canonical = getattr(registry.PRIORS[cand], "name", cand)
            return canonical if registry.PRIORS.get(canonical) is registry.PRIORS[cand] else cand
    squeezed = _squeeze(raw)
    for key in registry.PRIORS:  # dot-less spellings ("pcrange" for "pc.range")
        if _squeeze(key) == squeezed:
            return canonical_prior_name(key)
    if raw.lower().startswith(("table:", "expression:")):
        raise PriorError(
            f'prior "{raw[:20]}..." (an R-INLA "table:"/"expression:" prior) is not supported here; '
            "register a Prior subclass for it instead"
        )
    raise PriorError(unknown_choice("prior", raw, registry.PRIORS))


def _n_param(prior_name: str) -> int | None:
    return getattr(registry.PRIORS[prior_name], "n_param", None)


def obsolete_hyper_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The obsolete vector arguments ``initial``, ``fixed``, ``prior``, ``param`` of f()."""
    return {k: args[k] for k in ENTRY_KEYS if args.get(k) is not None}


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes, bool, int, float, np.generic)):
        return [value]
    return list(np.asarray(value, dtype=object).ravel())


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))


def build_hyperparameters(
    specs: Sequence[HyperSpec],
    label: str,
    hyper: Mapping[str, Any] | None = None,
    *,
    initial=None,
    fixed=None,
    prior=None,
    param=None,
    where: str | None = None,
    prior_context: Mapping[str, Any] | None = None,
) -> tuple[Hyperparameter, ...]:
    """Merge the defaults ``specs`` with the user's choices; build the priors.

    Args:
        specs: the model's default hyperparameters, in R-INLA's order.
        label: the term's name, substituted into the row-name templates.
        hyper: the ``hyper=`` dictionary (R or Python spelling of keys).
        initial, fixed, prior, param: the obsolete vector arguments of f().
        where: how to name the caller in errors (default ``f(<label>, ...)``).
        prior_context: extra keyword arguments for ``Prior.from_param`` (e.g. ``dim``).

    Returns:
        One :class:`Hyperparameter` per spec (fixed ones included, flagged).

    Raises:
        ModelError: unknown ``hyper`` key or entry key (listing the valid ones), bad values.
        PriorError: unknown prior (listing the known ones) or wrong parameters.
    """
    where = where or f"f({label}, ...)"
    nh = len(specs)
    entries = _match_entries(specs, hyper, where)
    vec = {"initial": _as_list(initial), "fixed": _as_list(fixed), "prior": _as_list(prior), "param": _as_list(param)}
    if nh == 0 and any(vec.values()):
        raise ModelError(f"{where}: this model has no hyperparameters, but initial/fixed/prior/param were given")
    offset = dict.fromkeys(vec, 0)
    out = []
    for k, spec in enumerate(specs):
        cur = {"initial": float(spec.initial), "fixed": bool(spec.fixed), "prior": spec.prior, "param": tuple(spec.param)}
        prior_changed = False
        user = entries.get(k, {})
        for key in ENTRY_KEYS:
            # obsolete vector form first, then the hyper entry (R-INLA's order of precedence)
            value = None
            if vec[key]:
                if key == "param":
                    npar = _param_count(cur["prior"], cur["param"])
                    chunk = vec[key][offset[key] : offset[key] + npar]
                    offset[key] += npar
                    if chunk and not all(_is_missing(v) for v in chunk):
                        value = chunk
                else:
                    if offset[key] < len(vec[key]) and not _is_missing(vec[key][offset[key]]):
                        value = vec[key][offset[key]]
                    offset[key] += 1
            if key in user and user[key] is not None and (key == "param" or not _is_missing(user[key])):
                value = user[key]
            if value is None:
                if key == "param" and prior_changed:
                    cur["param"] = _default_param_for(cur["prior"], spec, where)
                continue
            if key == "initial":
                cur["initial"] = _as_float(value, f"{where}: initial value of {spec.short_name!r}")
            elif key == "fixed":
                cur["fixed"] = _as_bool(value, f"{where}: fixed flag of {spec.short_name!r}")
            elif key == "prior":
                new = canonical_prior_name(value)
                prior_changed = new != canonical_prior_name(spec.prior)
                cur["prior"] = new
            else:
                cur["param"] = _merge_param(cur, spec, value, where)
        name = canonical_prior_name(cur["prior"])
        npar = _n_param(name)
        if npar is not None and len(cur["param"]) != npar:
            raise PriorError(
                f'{where}: prior "{name}" of hyperparameter {spec.short_name!r} needs {npar} '
                f"parameter{'s' if npar != 1 else ''}, got {len(cur['param'])}: {list(cur['param'])}"
            )
        the_prior = registry.make_prior(name, cur["param"], **dict(prior_context or {}))
        out.append(
            Hyperparameter(
                key=spec.short_name,
                internal_name=spec.internal_name.format(label=label),
                name=spec.name.format(label=label),
                to_user=spec.to_user,
                prior=the_prior,
                initial=cur["initial"],
                fixed=cur["fixed"],
            )
        )
    for key, values in vec.items():
        if values and len(values) > offset[key]:
            raise ModelError(
                f"{where}: argument {key!r} has {len(values)} values but the model's hyperparameters use {offset[key]}"
            )
    return tuple(out)


def _param_count(prior_name: str, current: tuple) -> int:
    n = _n_param(canonical_prior_name(prior_name))
    return len(current) if n is None else n


def _default_param_for(prior_name: str, spec: HyperSpec, where: str) -> tuple:
    """R-INLA: the default param, truncated to the new prior's parameter count."""
    n = _n_param(prior_name)
    default = tuple(spec.param)
    if n is None:
        return default
    if n <= len(default):
        return default[:n]
    raise PriorError(
        f'{where}: prior "{prior_name}" of hyperparameter {spec.short_name!r} needs {n} parameters; '
        f"give them with param= (the default has only {len(default)})"
    )


def _merge_param(cur: dict, spec: HyperSpec, value, where: str) -> tuple:
    vals = _as_list(value)
    name = canonical_prior_name(cur["prior"])
    n = _n_param(name)
    if n is not None and len(vals) != n:
        # never borrow the missing ones from another prior's defaults (issue 12); an explicit
        # NA entry (R's param = c(NA, 0.01)) still keeps the current value, as in R-INLA
        doc = getattr(registry.PRIORS[name], "param_doc", "")
        raise PriorError(
            f'{where}: prior "{name}" of hyperparameter {spec.short_name!r} needs {n} '
            f"parameter{'s' if n != 1 else ''}{f' ({doc})' if doc else ''}, got {len(vals)}: {list(vals)}"
        )
    old = list(cur["param"])
    merged = []
    for i, v in enumerate(vals):
        if _is_missing(v):
            if i < len(old):
                merged.append(float(old[i]))
            else:
                raise PriorError(f"{where}: parameter {i + 1} of the prior of {spec.short_name!r} is missing")
        else:
            merged.append(_as_float(v, f"{where}: prior parameter of {spec.short_name!r}"))
    return tuple(merged)


def _as_float(value, what: str) -> float:
    try:
        out = float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        raise ModelError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise ModelError(f"{what} must be finite, got {value!r}")
    return out


def _as_bool(value, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ModelError(f"{what} must be True or False, got {value!r}")


def _match_entries(specs: Sequence[HyperSpec], hyper, where: str) -> dict[int, dict]:
    """Map each hyperparameter index to the user's entry (already key-normalised)."""
    if hyper is None:
        return {}
    if not isinstance(hyper, Mapping):
        raise ModelError(f"{where}: hyper must be a dictionary such as {{'prec': {{'prior': 'pc.prec'}}}}, got {hyper!r}")
    nh = len(specs)
    valid = ["theta"] + [f"theta{k + 1}" for k in range(nh)]
    valid += [s.short_name for s in specs] + [s.long_name for s in specs]
    norm_valid = {_norm_key(v) for v in valid}
    for key in hyper:
        if _norm_key(key) not in norm_valid:
            if nh == 0:
                raise ModelError(f"{where}: this model has no hyperparameters, but hyper={dict(hyper)!r} was given")
            raise ModelError(unknown_choice(f"hyper key in {where}", key, valid))
    norm = {_norm_key(k): v for k, v in hyper.items()}
    out: dict[int, dict] = {}
    for k, spec in enumerate(specs):
        cands = [f"theta{k + 1}"]
        if nh == 1:
            cands.append("theta")
        cands += [_norm_key(spec.long_name), _norm_key(spec.short_name)]
        for c in cands:
            if c in norm:
                entry = norm[c]
                if not isinstance(entry, Mapping):
                    raise ModelError(
                        f"{where}: hyper[{c!r}] must be a dictionary with keys {', '.join(ENTRY_KEYS)}, got {entry!r}"
                    )
                clean = {}
                for ek, ev in entry.items():
                    nk = str(ek).strip().lower()
                    if nk == "params":
                        nk = "param"
                    if nk not in ENTRY_KEYS:
                        raise ModelError(unknown_choice(f"key in hyper[{c!r}] of {where}", ek, ENTRY_KEYS))
                    clean[nk] = ev
                out[k] = clean
                break
    return out


def with_initial(h: Hyperparameter, initial: float) -> Hyperparameter:
    """A copy of ``h`` with another initial value."""
    return replace(h, initial=float(initial))
