"""Survival responses: R-INLA's ``inla.surv`` and the censored log-likelihood it implies.

An :class:`InlaSurv` holds, per observation, a time, an event code, an interval end and a
left-truncation time, as R's ``inla.surv(time, event, time2, truncation)``:

====  ================  ================================================
code  meaning           log-likelihood term (F = cdf, S = 1 − F, f = pdf)
====  ================  ================================================
1     observed event    log f(time)
0     right censored    log S(time)
2     left censored     log F(time)
3     interval          log(F(time2) − F(time))
====  ================  ================================================

With left truncation t₀ > 0 every term is conditioned on T > t₀: − log S(t₀) is added
(R-INLA's ``loglikelihood_generic_surv``). The survival families receive
``y = time`` and the data ``event``, ``time2`` and ``truncation`` (defaults 1, 0, 0).
Difference from R-INLA: it clips every cdf value into [ε, 1 − ε], ε ≈ 1.2e-10, so its
censored terms never go below log ε ≈ −22.8; adelia evaluates log S and log F exactly (in
log space), which only differs for extremely improbable censoring times.

Example:
    >>> s = inla_surv([2.0, 3.5, 1.0], [1, 0, 3], time2=[0.0, 0.0, 2.0])
    >>> s.event.tolist(), s.lower.tolist(), s.upper.tolist()
    ([1.0, 0.0, 3.0], [0.0, 3.5, 1.0], [0.0, 0.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DataError
from ..user_warnings import warn
from .links import log1mexp

EVENT_RIGHT, EVENT_OBSERVED, EVENT_LEFT, EVENT_INTERVAL = 0, 1, 2, 3
SURVIVAL_DATA = ("event", "time2", "truncation")


@dataclass(frozen=True)
class InlaSurv:
    """A survival response (R's ``inla.surv`` object); arrays of one length n.

    Attributes:
        time: event/censoring time; interval start for event 3 (NaN = missing response).
        event: 1 observed, 0 right censored, 2 left censored, 3 interval censored.
        time2: interval end for event 3 (0 elsewhere).
        truncation: left-truncation time (0 = none).
    """

    time: np.ndarray
    event: np.ndarray
    time2: np.ndarray
    truncation: np.ndarray

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def lower(self) -> np.ndarray:
        """R-INLA's ``lower``: the censoring time for right/interval censoring, else 0."""
        return np.where((self.event == EVENT_RIGHT) | (self.event == EVENT_INTERVAL), self.time, 0.0)

    @property
    def upper(self) -> np.ndarray:
        """R-INLA's ``upper``: time for left censoring, time2 for interval censoring, else 0."""
        return np.where(self.event == EVENT_LEFT, self.time, np.where(self.event == EVENT_INTERVAL, self.time2, 0.0))

    def observation_data(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(y, data) as the survival families read them: y = time and event/time2/truncation."""
        return self.time.copy(), {"event": self.event.copy(), "time2": self.time2.copy(), "truncation": self.truncation.copy()}

    def __repr__(self) -> str:
        marks = {EVENT_OBSERVED: "", EVENT_RIGHT: "+", EVENT_LEFT: "-"}
        items = []
        for t, e, t2 in zip(self.time[:8], self.event[:8], self.time2[:8]):
            items.append(f"[{t:g},{t2:g}]" if e == EVENT_INTERVAL else f"{t:g}{marks.get(int(e), '?')}")
        more = ", ..." if len(self) > 8 else ""
        return f"InlaSurv({', '.join(items)}{more})"


def _column(x, n: int | None, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1)
    if n is not None and arr.size != n:
        raise DataError(f"inla_surv: '{what}' has length {arr.size} but 'time' has length {n}")
    return arr


def inla_surv(time, event=None, time2=None, truncation=None) -> InlaSurv:
    """Create a survival response, as R-INLA's ``inla.surv(time, event, time2, truncation)``.

    Args:
        time: follow-up time (right censoring) or interval start (event 3); NaN = missing.
        event: 1 observed, 0 right, 2 left, 3 interval censored; missing → all observed
            (with a warning, as R-INLA); NaN entries → observed.
        time2: interval end, required when some event is 3.
        truncation: left truncation times (default 0).

    Raises:
        DataError: negative times, unknown event codes, missing time2 for interval rows,
            time2 < time, truncation after the time. Rows are named 1-based.

    Example:
        >>> inla_surv([5.0, 8.0], [1, 0])
        InlaSurv(5, 8+)
    """
    t = _column(time, None, "time")
    n = t.size
    missing = np.isnan(t)
    if event is None:
        warn("inla_surv: 'event' is missing: assuming all are observed failures")
        ev = np.ones(n)
    else:
        ev = _column(event, n, "event").copy()
        if np.any(np.isnan(ev) & ~missing):
            warn("inla_surv: some elements in 'event' are NaN: set them to observed failures")
        ev[np.isnan(ev)] = 1.0
    ev[missing] = 1.0
    t2 = np.zeros(n) if time2 is None else _column(time2, n, "time2").copy()
    tr = np.zeros(n) if truncation is None else _column(truncation, n, "truncation").copy()
    t2[missing] = 0.0
    tr[missing] = 0.0

    def fail(bad, values, what, rule):
        idx = np.flatnonzero(bad)
        if idx.size:
            i = int(idx[0])
            raise DataError(f"inla_surv: row {i + 1}: {what} = {values[i]:g} {rule}")

    fail(~missing & ~np.isin(ev, (0, 1, 2, 3)), ev, "event", "is not a valid event code; valid codes: 0 (right censored), 1 (observed), 2 (left censored), 3 (interval censored)")
    fail(~missing & ((t < 0) | ~np.isfinite(t)), t, "time", "is negative or not finite")
    interval = ~missing & (ev == EVENT_INTERVAL)
    if np.any(interval) and time2 is None:
        raise DataError("inla_surv: 'time2' is required for interval censored rows (event = 3)")
    if not np.any(interval) and time2 is not None:
        warn("inla_surv: 'time2' is ignored for data that are not interval censored")
    fail(interval & ~(t2 >= t), t2, "time2", "is smaller than time for an interval censored row")
    t2[~interval] = 0.0
    fail(~missing & ((tr < 0) | ~np.isfinite(tr)), tr, "truncation", "is negative or not finite")
    fail(~missing & (tr > t), tr, "truncation", "is after the time")
    return InlaSurv(time=t, event=ev, time2=t2, truncation=tr)


def censored_log_likelihood(
    y: jax.Array,
    data,
    log_pdf: Callable[[jax.Array], jax.Array],
    log_sf: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """The censored, left-truncated log-likelihood of a survival family, elementwise.

    Args:
        y: times, shape (n,).
        data: ``event``, ``time2``, ``truncation`` (defaults 1, 0, 0).
        log_pdf: t ↦ log f(t) (elementwise on arrays of shape (n,), t > 0).
        log_sf: t ↦ log S(t) = log(1 − F(t)) (elementwise, t ≥ 0; log S(0) = 0).

    Every branch is evaluated at safe arguments and selected with ``jnp.where`` so that
    values and gradients stay finite on the rows that do not use it.
    """
    y = jnp.asarray(y, dtype=jnp.float64)
    ones, zeros = jnp.ones_like(y), jnp.zeros_like(y)
    event = jnp.asarray(data.get("event", ones), dtype=jnp.float64)
    time2 = jnp.asarray(data.get("time2", zeros), dtype=jnp.float64)
    trunc = jnp.asarray(data.get("truncation", zeros), dtype=jnp.float64)

    def safe_log_sf(t):
        pos = t > 0
        return jnp.where(pos, log_sf(jnp.where(pos, t, 1.0)), 0.0)

    observed = event == EVENT_OBSERVED
    left = event == EVENT_LEFT
    interval = event == EVENT_INTERVAL
    ls1 = safe_log_sf(y)
    ls2 = safe_log_sf(jnp.where(interval, time2, 2.0 * y + 1.0))
    lf = log_pdf(jnp.where(observed, y, 1.0))
    # log F = log(1 − S) = log1mexp(−log S); interval: log(S(t) − S(t2)) = log S(t) + log1mexp(log S(t) − log S(t2))
    gap_left = jnp.where(left, -ls1, 1.0)
    gap_int = jnp.where(interval, ls1 - ls2, 1.0)
    val = jnp.where(
        observed,
        lf,
        jnp.where(left, log1mexp(gap_left), jnp.where(interval, ls1 + log1mexp(gap_int), ls1)),
    )
    return val - safe_log_sf(trunc)


def censored_pit_message(family: str) -> str:
    """Why a survival family has no cdf for PIT values (the survival families' ``cdf`` raises
    NotImplementedError with this message; CPO is still defined, PIT is reported as NaN)."""
    return (
        f'family "{family}": PIT values are not defined for censored/truncated survival responses '
        "(P(Y ≤ y) of a censoring time is not a probability integral transform); R-INLA has no cdf "
        "for its survival families either and reports PIT = 0, adelia reports NaN"
    )


def check_survival_rows(fam, y, data, observed) -> None:
    """Support checks of the survival families (``fam`` a Family): valid event codes,
    times ≥ 0 (> 0 for observed events and left censoring), time2 ≥ time on interval rows,
    0 ≤ truncation ≤ time."""
    event = data.get("event", np.ones_like(y))
    valid = "is not a valid event code (0 right, 1 observed, 2 left, 3 interval censored)"
    fam._require(observed & ~np.isin(event, (0, 1, 2, 3)), event, "event", valid)
    fam._require(observed & ~((y >= 0) & np.isfinite(y)), y, "time", "must be non-negative and finite")
    needs_positive = (event == EVENT_OBSERVED) | (event == EVENT_LEFT)
    fam._require(observed & needs_positive & ~(y > 0), y, "time", "must be positive for an observed or left censored event")
    time2 = data.get("time2", np.zeros_like(y))
    fam._require(observed & (event == EVENT_INTERVAL) & ~(time2 >= y), time2, "time2", "is smaller than time on an interval censored row")
    tr = data.get("truncation", np.zeros_like(y))
    fam._require(observed & ~((tr >= 0) & (tr <= y)), tr, "truncation", "must be between 0 and the time")
