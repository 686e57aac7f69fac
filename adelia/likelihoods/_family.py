"""Shared machinery of the observation families: hyperparameter tables, ``control_family``,
weights, data defaults and support checks.

R-INLA describes each family in ``rinla/R/models.R`` (section ``likelihood``): its
hyperparameters (short name, internal scale, initial value, default prior), its links (the
first is the default) and its variants. :class:`HyperSpec` is one row of such a table and
:class:`Family` turns the table plus the user's ``control_family`` into a
:class:`~adelia.likelihoods.base.Likelihood`.

Weights: R-INLA's ``weights`` multiply each observation's log-likelihood term,
``w_i · log π(y_i | η_i, θ)`` (normalising constant included), for every family; this is
done here once, so families implement the unweighted :meth:`Family._log_density`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ControlError, DataError, PriorError, unknown_choice
from ..models.base import Hyperparameter
from ..models.registry import make_prior
from .base import Likelihood, ObservationData
from .links import make_link

#: Observation-data names every family accepts.
COMMON_DATA = ("weights",)

_CONTROL_KEYS = ("hyper", "link", "variant", "control_link")
_HYPER_KEYS = ("prior", "param", "initial", "fixed")


@dataclass(frozen=True)
class HyperSpec:
    """One hyperparameter of a family as R-INLA's ``models.R`` defines it.

    Attributes:
        key: R-INLA's ``short.name`` ("prec", "size", ...), a key of ``hyper=``.
        theta_key: the models.R list name ("theta", "theta1", ...), also a key of ``hyper=``.
        internal_name: row name in ``internal_summary_hyperpar``.
        name: row name in ``summary_hyperpar``.
        to_user: internal → user scale (``from.theta``).
        prior, param: default prior (R-INLA's name) and its parameters.
        initial: default initial value on the internal scale.
        fixed: fixed by default.
    """

    key: str
    theta_key: str
    internal_name: str
    name: str
    to_user: Callable[[jax.Array], jax.Array]
    prior: str
    param: tuple[float, ...]
    initial: float
    fixed: bool = False


def _norm(key: Any) -> str:
    """R's dotted names in Python spelling: ``control.link`` → ``control_link``."""
    return str(key).replace(".", "_")


def _as_dict(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ControlError(f"{what} must be a dict, got {type(value).__name__}")
    return {_norm(k): v for k, v in value.items()}


class Family(Likelihood):
    """Base of adelia's families: builds ``link``, ``variant`` and ``hyperparameters`` from
    class-level tables and ``control_family``; applies ``weights``.

    Subclasses set ``family``, ``links`` (first = default), ``hyper_specs``, ``data_names``
    (observation data they read, besides ``weights``), ``variants`` (first = default) and
    implement :meth:`_log_density` (unweighted, full normalising constant) and
    :meth:`_check_rows` (support of y and of their data).

    Args:
        control_family: R-INLA's ``control.family`` in Python spelling, e.g.
            ``{"hyper": {"prec": {"prior": "pc.prec", "param": (1, 0.01)}},
            "link": "probit", "variant": 1}``. R's dotted keys are accepted.
    """

    hyper_specs: ClassVar[tuple[HyperSpec, ...]] = ()
    #: family-specific ``control_family`` keys (R's ``cenpoisson.I``, ``control.pom``), kept
    #: in ``self.family_control`` for the family to read
    extra_control_keys: ClassVar[tuple[str, ...]] = ()
    #: user-data rows of the entries being validated (set only during :meth:`validate`)
    _row_numbers: np.ndarray | None = None
    data_names: ClassVar[tuple[str, ...]] = ()
    variants: ClassVar[tuple[int, ...]] = (0,)

    def __init__(self, control_family: Mapping[str, Any] | None = None):
        control = _as_dict(control_family, f'control_family for family "{self.family}"')
        valid_keys = _CONTROL_KEYS + self.extra_control_keys
        for k in control:
            if k not in valid_keys:
                raise ControlError(unknown_choice(f'control_family key for family "{self.family}"', k, valid_keys))
        self.family_control = {k: control[k] for k in self.extra_control_keys if k in control}
        link_name = control.get("link", "default")
        if "control_link" in control:
            cl = _as_dict(control["control_link"], "control_family['control_link']")
            for k in cl:
                if k != "model":
                    raise ControlError(unknown_choice("control_link key", k, ("model",)))
            link_name = cl.get("model", link_name)
        self.link = make_link(link_name, self.links, self.family)
        variant = control.get("variant", self.variants[0])
        if variant not in self.variants:
            raise ControlError(
                f'family "{self.family}": variant {variant!r} is not available; valid variants: '
                f'{", ".join(str(v) for v in self.variants)}'
            )
        self.variant = int(variant)
        self.hyperparameters = self._build_hyper(_as_dict(control.get("hyper"), "control_family['hyper']"))

    # --- control_family["hyper"] ------------------------------------------------------------
    def _hyper_aliases(self) -> dict[str, int]:
        aliases: dict[str, int] = {}
        for j, spec in enumerate(self.hyper_specs):
            aliases[spec.key] = j
            aliases[spec.theta_key] = j
            aliases[f"theta{j + 1}"] = j
            if len(self.hyper_specs) == 1:
                aliases["theta"] = j
        return aliases

    def _build_hyper(self, hyper: dict) -> tuple[Hyperparameter, ...]:
        aliases = self._hyper_aliases()
        overrides: dict[int, dict] = {}
        for key, value in hyper.items():
            if key not in aliases:
                raise ControlError(unknown_choice(f'hyperparameter of family "{self.family}"', key, aliases))
            spec_over = _as_dict(value, f"control_family['hyper']['{key}']")
            for k in spec_over:
                if k not in _HYPER_KEYS:
                    raise ControlError(unknown_choice(f"key in control_family['hyper']['{key}']", k, _HYPER_KEYS))
            overrides.setdefault(aliases[key], {}).update(spec_over)
        out = []
        for j, spec in enumerate(self.hyper_specs):
            o = overrides.get(j, {})
            prior_name = o.get("prior", spec.prior)
            param = o.get("param", spec.param if "prior" not in o else None)
            try:
                prior = make_prior(prior_name, param)
            except PriorError:
                raise
            except (TypeError, ValueError) as exc:
                raise PriorError(
                    f'family "{self.family}", hyperparameter "{spec.key}": prior "{prior_name}" '
                    f"cannot take param={param!r} ({exc})"
                ) from exc
            out.append(
                Hyperparameter(
                    key=spec.key,
                    internal_name=spec.internal_name,
                    name=spec.name,
                    to_user=spec.to_user,
                    prior=prior,
                    initial=float(o.get("initial", spec.initial)),
                    fixed=bool(o.get("fixed", spec.fixed)),
                )
            )
        return tuple(out)

    def initial_theta(self) -> np.ndarray:
        return np.array([h.initial for h in self.hyperparameters], dtype=float)

    # --- log-density with weights -----------------------------------------------------------
    def _log_density(self, y: jax.Array, eta: jax.Array, theta: jax.Array, data: ObservationData) -> jax.Array:
        raise NotImplementedError

    def log_density(self, y, eta, theta, data):
        """w_i · log π(y_i | η_i, θ) with R-INLA's normalising constants; shape (n,)."""
        y = jnp.asarray(y, dtype=jnp.float64)
        eta = jnp.asarray(eta, dtype=jnp.float64)
        theta = jnp.asarray(theta, dtype=jnp.float64)
        ll = self._log_density(y, eta, theta, data)
        return self._weighted(ll, data)

    # --- cdf (PIT values) ----------------------------------------------------------------
    def _cdf(self, y: jax.Array, eta: jax.Array, theta: jax.Array, data: ObservationData) -> jax.Array:
        raise NotImplementedError(f'family "{self.family}" has no cdf, so PIT values are not available for it')

    def cdf(self, y, eta, theta, data):
        """P(Y_i ≤ y_i | η_i, θ) for every i, shape (n,): the cdf for continuous families,
        P(Y ≤ y) for discrete ones (R-INLA's ``loglFunc`` with m < 0, used for the PIT).
        Unweighted, as in R-INLA.

        Raises:
            NotImplementedError: the family has no cdf (the message says why).
        """
        y = jnp.asarray(y, dtype=jnp.float64)
        eta = jnp.asarray(eta, dtype=jnp.float64)
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return self._cdf(y, eta, theta, data)

    @staticmethod
    def _weighted(values: jax.Array, data: ObservationData) -> jax.Array:
        w = data.get("weights") if data is not None else None
        return values if w is None else jnp.asarray(w) * values

    @staticmethod
    def _get(data: ObservationData, name: str, like: jax.Array, default: float) -> jax.Array:
        """Observation data ``name`` (or the R-INLA default when absent), as float64."""
        v = data.get(name) if data is not None else None
        if v is None:
            return jnp.full(jnp.shape(like), default, dtype=jnp.float64)
        return jnp.asarray(v, dtype=jnp.float64)

    # --- validation ------------------------------------------------------------------------
    def validate(self, y, data, rows=None):
        """Check observed y (NaN = missing, skipped) and the family's data against the support.

        Args:
            y, data: the family's responses and observation data.
            rows: optional 0-based row of the user's data for each entry of ``y`` (when ``y``
                is a subset: the family's rows of a multi-likelihood response, the observed
                rows), so that messages name the user's row; default 0, 1, ..., n − 1.

        Raises:
            DataError: naming the family, the (1-based) row and the offending value.
        """
        y = np.asarray(y, dtype=float).reshape(-1)
        if rows is not None:
            rows = np.asarray(rows, dtype=np.int64).reshape(-1)
            if rows.shape != y.shape:
                raise ValueError(f"validate: rows has length {rows.size} but y has length {y.size}")
        self._row_numbers = rows
        try:
            self._validate(y, data)
        finally:
            self._row_numbers = None

    def _validate(self, y, data):
        data = {} if data is None else dict(data)
        allowed = set(self.data_names) | set(COMMON_DATA)
        arrays: dict[str, np.ndarray] = {}
        for name, value in data.items():
            if value is None:
                continue
            if name not in allowed:
                # families ignore data they do not use (e.g. E given with a binomial family)
                continue
            arr = np.asarray(value, dtype=float).reshape(-1)
            if arr.shape != y.shape:
                raise DataError(
                    f'family "{self.family}": data "{name}" has length {arr.size} but the response has length {y.size}'
                )
            arrays[name] = arr
        observed = ~np.isnan(y)
        w = arrays.get("weights")
        if w is not None:
            self._require(observed & ~np.isfinite(w), w, "weights", "must be finite")
            self._require(observed & (w < 0), w, "weights", "is negative; weights multiply the log-likelihood and must be >= 0")
        self._check_rows(y, arrays, observed)

    def _check_rows(self, y: np.ndarray, data: dict[str, np.ndarray], observed: np.ndarray) -> None:
        """Family-specific support checks on the observed rows (override)."""

    def _require(self, bad: np.ndarray, values: np.ndarray, what: str, rule: str) -> None:
        """Raise for the first row where ``bad`` holds: '<what> = <value> <rule>'."""
        idx = np.flatnonzero(bad)
        if idx.size:
            i = int(idx[0])
            row = i if self._row_numbers is None else int(self._row_numbers[i])
            more = ""
            if idx.size > 1:
                rows = idx[1:6] if self._row_numbers is None else self._row_numbers[idx[1:6]]
                shown = ", ".join(str(int(r) + 1) for r in rows) + (", ..." if idx.size > 6 else "")
                more = f" ({idx.size - 1} more rows like it: {shown})"
            raise DataError(f'family "{self.family}": row {row + 1}: {what} = {values[i]:g} {rule}{more}')

    def _require_counts(self, y: np.ndarray, observed: np.ndarray) -> None:
        self._require(observed & ((y < 0) | (y != np.round(y)) | ~np.isfinite(y)), y, "y", "is not a non-negative integer count")

    def _require_positive(self, values: np.ndarray, observed: np.ndarray, what: str = "y") -> None:
        self._require(observed & ~(values > 0) | observed & ~np.isfinite(values), values, what, "must be positive and finite")

    def _require_finite(self, values: np.ndarray, observed: np.ndarray, what: str = "y") -> None:
        self._require(observed & ~np.isfinite(values), values, what, "must be finite")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(family={self.family!r}, link={self.link.name}, variant={self.variant}, theta={[h.internal_name for h in self.hyperparameters]})"
