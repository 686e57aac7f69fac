"""R-INLA's Cox proportional-hazards family ``coxph``: data augmentation to a Poisson model.

R-INLA does not fit ``family="coxph"`` with a likelihood of its own. ``inla()`` calls
``inla.coxph()`` (``rinla/R/coxph.R``, ``inla.expand.dataframe.1``,
``inla.get.poisson.data.1``), which turns the survival data into a Poisson regression on an
expanded data set, and then calls itself on that. adelia does the same (this module is data
preparation, before the formula and the models are compiled):

* cut points 0 = c₀ < c₁ < … < c_K (``control_hazard``: ``cutpoints``, else
  ``seq(0, max(time), length.out = n.intervals + 1)``, n.intervals = 15), the intervals
  I_k = (c_{k−1}, c_k] (the first one closed at c₀);
* subject i with time tᵢ (event or censoring time), event δᵢ ∈ {0, 1} and left truncation
  t₀ᵢ is at risk in the intervals from the one holding t₀ᵢ (or the first, when t₀ᵢ ≤ c₀) to
  the one holding tᵢ; one expanded row per such interval k, with exposure
  E_ik = |I_k ∩ (t₀ᵢ, tᵢ]| and response y_ik = δᵢ in tᵢ's interval, 0 before;
* the hazard hᵢ(t) = h₀(t) exp(xᵢᵀβ) with a piecewise-constant baseline log h₀(t) = β₀ + b_k
  on I_k, b an rw1 (default) or rw2 over the cut points (``f(baseline.hazard, model="rw1",
  values = cutpoints, constr=TRUE, diagonal=1e-4, scale.model=FALSE)``), gives
  y_ik ~ Poisson(E_ik exp(η_ik)), η_ik = β₀ + b_k + xᵢᵀβ.

The Poisson log-likelihood equals the piecewise-exponential survival log-likelihood
Σᵢ [δᵢ log hᵢ(tᵢ) − ∫_{t₀ᵢ}^{tᵢ} hᵢ(s) ds] plus Σᵢ δᵢ log E_{i,last}, a constant (Holford
1980; Laird & Olivier 1981), so both give the same posterior.

The expanded formula is R-INLA's: the user's right-hand side (intercept kept or dropped as
written) plus the baseline-hazard term, response ``y..coxph``; the term is named
``baseline.hazard`` in the results, its IDs are the cut points (all K + 1 of them, the last
one carrying no data, as R-INLA), and the linear predictor has one row per expanded row.
The baseline precision has R-INLA's hazard prior, loggamma(1, 5e-5) on τ, initial log τ = 4.

Difference from R-INLA: when the truncation time and the event time fall in the same
interval, R-INLA gives that row the exposure tᵢ − c_{k−1} (it ignores the truncation there,
``inla.get.poisson.data.1``); adelia uses tᵢ − t₀ᵢ, the time actually at risk.

Example:
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"time": [2.0, 5.0, 3.0], "event": [1, 0, 1], "x": [0.1, 0.4, -0.2]})
    >>> p = inla_coxph("inla.surv(time, event) ~ x", df, control_hazard={"cutpoints": [0, 2.5, 5]})
    >>> p.data[["y..coxph", "E..coxph", "expand..coxph", "baseline.hazard"]].to_numpy().tolist()
    [[1.0, 2.0, 1.0, 0.0], [0.0, 2.5, 2.0, 0.0], [0.0, 2.5, 2.0, 2.5], [0.0, 2.5, 3.0, 0.0], [1.0, 0.5, 3.0, 2.5]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ControlError, DataError, ModelError, unknown_choice
from ..formula.rdata import DataColumns, RFactor, evaluate_on_data
from ..formula.response import survival_response
from ..formula.rsyntax import parse_r
from ..formula.rvalues import r_to_python
from ..user_warnings import warn
from .surv import EVENT_OBSERVED, EVENT_RIGHT, InlaSurv

#: the baseline-hazard models R-INLA allows (``control.hazard$model``)
HAZARD_MODELS = ("rw1", "rw2")

#: R-INLA's ``control.hazard`` defaults (``inla.set.control.hazard.default``, rinla/R/set.default.arguments.R)
CONTROL_HAZARD_DEFAULTS: dict[str, Any] = {
    "model": "rw1",
    "hyper": None,
    "fixed": False,
    "initial": None,
    "prior": None,
    "param": None,
    "constr": True,
    "diagonal": None,
    "n.intervals": 15,
    "cutpoints": None,
    "strata.name": None,
    "scale.model": None,
}

#: R-INLA's prior of the baseline-hazard precision (models.R, section "hazard": rw1 and rw2)
HAZARD_PRECISION_PRIOR = {"prior": "loggamma", "param": [1.0, 5e-05], "initial": 4.0, "fixed": False}

#: ``inla.set.f.default()$diagonal``: added to Q when constr=TRUE and no diagonal is given
DEFAULT_DIAGONAL = 1e-04


# ------------------------------------------------------------------------------------------
# control_hazard
# ------------------------------------------------------------------------------------------


def resolve_control_hazard(control_hazard: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """R-INLA's ``control.hazard`` with its defaults filled in (keys in R's dotted spelling).

    Keys may be written ``n.intervals`` or ``n_intervals``; the whole control may be an R
    ``list(...)`` string. ``hyper``, or the obsolete ``prior``/``param``/``initial``/``fixed``,
    set the prior of the baseline precision (``hyper=list(prec=list(prior=..., param=...))``).

    Raises:
        ControlError: an unknown key (listing the valid ones), an unknown model, a bad
            ``n.intervals`` or ``cutpoints``.

    Example:
        >>> resolve_control_hazard({"n_intervals": 10})["n.intervals"]
        10
    """
    if control_hazard is None:
        given: Mapping[str, Any] = {}
    elif isinstance(control_hazard, str):
        given = r_to_python(control_hazard)
        if not isinstance(given, Mapping):
            raise ControlError(f"control_hazard must be an R list(...) of settings, got {control_hazard!r}")
    elif isinstance(control_hazard, Mapping):
        given = control_hazard
    else:
        raise ControlError(f"control_hazard must be a dict of settings, not {type(control_hazard).__name__}")
    out = dict(CONTROL_HAZARD_DEFAULTS)
    for key, value in given.items():
        k = str(key).replace("_", ".")
        if k == "strata":  # R's partial matching: control.hazard=list(strata="x")
            k = "strata.name"
        if k not in CONTROL_HAZARD_DEFAULTS:
            raise ControlError(unknown_choice("control_hazard key", str(key), list(CONTROL_HAZARD_DEFAULTS)))
        out[k] = value
    if out["model"] not in HAZARD_MODELS:
        raise ControlError(unknown_choice("control_hazard model", str(out["model"]), HAZARD_MODELS))
    n = out["n.intervals"]
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or n != int(n) or int(n) < 1:
        raise ControlError(f"control_hazard n.intervals must be a positive integer, got {n!r}")
    out["n.intervals"] = int(n)
    if out["cutpoints"] is not None:
        cut = np.asarray(out["cutpoints"], dtype=float).ravel()
        if cut.size < 2 or not np.all(np.isfinite(cut)) or np.any(np.diff(cut) <= 0):
            raise ControlError(
                f"control_hazard cutpoints must be at least two finite, strictly increasing values, got {cut.tolist()}"
            )
        out["cutpoints"] = cut
    return out


def hazard_hyper(ch: Mapping[str, Any]) -> dict[str, Any]:
    """The ``hyper`` of the baseline-hazard term: R-INLA's default prior of the precision,
    overridden by ``control_hazard`` (``hyper=list(prec=...)`` or ``theta=...``, or the
    obsolete ``prior``/``param``/``initial``/``fixed``), as ``inla.set.hyper`` merges them."""
    prec = dict(HAZARD_PRECISION_PRIOR)
    hyper = ch.get("hyper")
    if isinstance(hyper, str):
        hyper = r_to_python(hyper)
    if hyper:
        if not isinstance(hyper, Mapping):
            raise ControlError(f"control_hazard hyper must be a list/dict like list(prec=list(prior=..., param=...)), got {hyper!r}")
        for name, spec in hyper.items():
            if name not in ("prec", "theta", "theta1"):
                raise ControlError(unknown_choice("control_hazard hyper name", str(name), ("prec", "theta")))
            if not isinstance(spec, Mapping):
                raise ControlError(f"control_hazard hyper${name} must be a list/dict of prior settings, got {spec!r}")
            prec.update({str(k): v for k, v in spec.items()})
    for key in ("prior", "param", "initial"):
        if ch.get(key) is not None:
            prec[key] = ch[key]
    if ch.get("fixed"):
        prec["fixed"] = True
    return {"prec": prec}


# ------------------------------------------------------------------------------------------
# the expansion
# ------------------------------------------------------------------------------------------


def default_cutpoints(time: np.ndarray, n_intervals: int = 15) -> np.ndarray:
    """R-INLA's cut points: ``seq(0, max(time), length.out = n.intervals + 1)``.

    Example:
        >>> default_cutpoints(np.array([1.0, 3.0]), 3).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    return np.linspace(0.0, float(np.max(time)), int(n_intervals) + 1)


@dataclass(frozen=True)
class CoxphExpansion:
    """One row per (subject, interval at risk), subjects in data order, intervals increasing.

    Attributes:
        y: event indicator of the row (δᵢ in the subject's last interval, else 0).
        exposure: time at risk in the interval, E_ik = |I_k ∩ (t₀ᵢ, tᵢ]|.
        subject: the subject's row in the data (0-based).
        interval: the interval k (1-based, R-INLA's ``baseline.hazard.idx``).
        cutpoints: c₀ < … < c_K.
    """

    y: np.ndarray
    exposure: np.ndarray
    subject: np.ndarray
    interval: np.ndarray
    cutpoints: np.ndarray

    @property
    def n_subjects(self) -> int:
        """The number of subjects (data rows); each has at least one row."""
        return int(self.subject[-1]) + 1 if self.subject.size else 0

    @property
    def start(self) -> np.ndarray:
        """The interval's left cut point (R-INLA's ``baseline.hazard`` value of the row)."""
        return self.cutpoints[self.interval - 1]

    @property
    def length(self) -> np.ndarray:
        """The interval's length (R-INLA's ``baseline.hazard.length``)."""
        return np.diff(self.cutpoints)[self.interval - 1]


def _bad_rows(mask: np.ndarray) -> str:
    rows = (np.flatnonzero(mask) + 1).tolist()
    return ", ".join(str(r) for r in rows[:10]) + (f", ... ({len(rows) - 10} more)" if len(rows) > 10 else "")


def check_coxph_response(time, event, truncation=None, names: Mapping[str, str] | None = None) -> None:
    """DataError for survival data the Cox expansion cannot use: a missing, non-finite,
    zero or negative time, an event other than 0/1, a negative truncation or one after the
    time. ``names`` maps "time"/"event"/"truncation" to the user's column expressions."""
    names = dict(names or {})
    tn, en, trn = names.get("time", "time"), names.get("event", "event"), names.get("truncation", "truncation")
    t = np.asarray(time, dtype=float)
    if np.any(np.isnan(t)):
        raise DataError(
            f'family "coxph": the time column {tn!r} is missing (NA) in row(s) {_bad_rows(np.isnan(t))}; '
            "every subject needs an event or censoring time (drop those rows first)"
        )
    bad = ~np.isfinite(t) | (t <= 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f'family "coxph": the time column {tn!r} must hold positive finite times; row(s) {_bad_rows(bad)} '
            f"have e.g. {t[i]:g} (a subject with no time at risk adds nothing but an impossible event)"
        )
    if event is not None:
        e = np.asarray(event, dtype=float)
        bad = ~np.isin(e, (EVENT_RIGHT, EVENT_OBSERVED))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f'family "coxph": the event column {en!r} must be 0 (censored) or 1 (event); row(s) {_bad_rows(bad)} '
                f"have e.g. {e[i]:g}. Left (2) and interval (3) censoring are not possible in the Cox model's "
                "Poisson expansion (as in R-INLA)"
            )
    if truncation is not None:
        tr = np.asarray(truncation, dtype=float)
        bad = ~np.isfinite(tr) | (tr < 0) | (tr > t)
        if np.any(bad):
            raise DataError(
                f'family "coxph": the truncation column {trn!r} must be between 0 and the time; row(s) {_bad_rows(bad)} are not'
            )


def expand_survival(surv: InlaSurv, cutpoints) -> CoxphExpansion:
    """R-INLA's ``inla.get.poisson.data.1``: the (subject, interval) rows of the Cox model.

    With intervals I_k = (c_{k−1}, c_k] (I₁ closed at c₀; R's ``cut(..., include.lowest=TRUE)``),
    subject i has rows for k = s_i, …, e_i, where e_i is the interval of tᵢ and s_i that of
    the truncation t₀ᵢ (``cut(..., include.lowest=FALSE)``; s_i = 1 when t₀ᵢ ≤ c₀), exposure
    E_ik = min(c_k, tᵢ) − max(c_{k−1}, t₀ᵢ) and y_ik = δᵢ [k = e_i].

    Raises:
        DataError: bad times/events (:func:`check_coxph_response`), times outside
            [c₀, c_K] of given cut points.

    Example:
        >>> from adelia.likelihoods.surv import inla_surv
        >>> ex = expand_survival(inla_surv([1.0, 2.5], [1, 0]), [0.0, 1.0, 2.0, 3.0])
        >>> ex.subject.tolist(), ex.interval.tolist(), ex.exposure.tolist(), ex.y.tolist()
        ([0, 1, 1, 1], [1, 1, 2, 3], [1.0, 1.0, 1.0, 0.5], [1.0, 0.0, 0.0, 0.0])
    """
    cut = np.asarray(cutpoints, dtype=float).ravel()
    t = np.asarray(surv.time, dtype=float)
    tr = np.asarray(surv.truncation, dtype=float)
    check_coxph_response(t, surv.event, tr)
    outside = (t < cut[0]) | (t > cut[-1])
    if np.any(outside):
        raise DataError(
            f'family "coxph": row(s) {_bad_rows(outside)} have times outside the cut points [{cut[0]:g}, {cut[-1]:g}] '
            "(control_hazard cutpoints must cover every time)"
        )
    # number of cut points < t: the interval (c_{k-1}, c_k] holding t is k; t = c_0 is in I_1
    end = np.maximum(np.searchsorted(cut, t, side="left"), 1)
    truncated = (tr > cut[0]) & (tr <= cut[-1])
    first = np.where(truncated, np.maximum(np.searchsorted(cut, tr, side="left"), 1), 1)
    counts = end - first + 1
    subject = np.repeat(np.arange(t.size), counts)
    within = np.arange(subject.size) - np.repeat(np.cumsum(counts) - counts, counts)
    interval = first[subject] + within
    lower = np.maximum(cut[interval - 1], np.where(truncated, tr, -np.inf)[subject])
    upper = np.minimum(cut[interval], t[subject])
    last = interval == end[subject]
    y = np.where(last, np.asarray(surv.event, dtype=float)[subject], 0.0)
    return CoxphExpansion(y=y, exposure=upper - lower, subject=subject, interval=interval.astype(np.int64), cutpoints=cut)


# ------------------------------------------------------------------------------------------
# inla.coxph: formula + data -> the Poisson model's formula + expanded data
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxphData:
    """What R-INLA's ``inla.coxph`` returns.

    Attributes:
        formula: the Poisson model's formula (``y..coxph ~ <rhs> + f(baseline.hazard, ...)``).
        data: the expanded rows: ``y..coxph``, ``E..coxph``, ``expand..coxph`` (1-based
            subject row), ``baseline.hazard`` (the interval's left cut point),
            ``baseline.hazard.idx``, ``baseline.hazard.time``, ``baseline.hazard.length``,
            then every data column repeated per row (a DataFrame, or a dict for dict data).
        data_list: names the formula uses that are not rows: ``baseline.hazard.values``
            (the cut points) and ``baseline.hazard.hyper``; pass them as ``context=``.
        family: "poisson".
        E: the exposures (``E..coxph``).
        expand: the 0-based data row of each expanded row (R's ``expand.df`` − 1).
        control_hazard: the resolved control.
        expansion: the :class:`CoxphExpansion`.
    """

    formula: str
    data: Any
    data_list: dict[str, Any]
    family: str
    E: np.ndarray
    expand: np.ndarray
    control_hazard: dict[str, Any]
    expansion: CoxphExpansion
    strata_coding: list | None = field(default=None)


def _n_rows(data: Any) -> int | None:
    if isinstance(data, pd.DataFrame):
        return len(data)
    lengths = []
    for v in data.values():
        if isinstance(v, (str, bytes, Mapping)) or np.ndim(v) == 0 or isinstance(v, InlaSurv):
            continue
        try:
            lengths.append(len(v))
        except TypeError:
            continue
    return max(lengths) if lengths else None


def _survival_of(response: str, data: Any, columns: DataColumns, n: int | None) -> tuple[InlaSurv, dict[str, str], str | None]:
    """The inla.surv response, the expressions of its arguments, and the data column it
    came from when the response names an InlaSurv object in the data."""
    from .surv import inla_surv

    if isinstance(data, Mapping) and isinstance(data.get(response), InlaSurv):
        s = data[response]
        check_coxph_response(s.time, s.event, s.truncation, {k: f"{response}${k}" for k in ("time", "event", "truncation")})
        return s, {}, response
    if isinstance(data, pd.DataFrame) and response in data.columns:
        raise ModelError(
            f'family "coxph" needs a survival response, inla.surv(time, event) ~ ..., but the response {response!r} is a plain column'
        )
    kw = survival_response(response)
    if kw is None:
        raise ModelError(
            f'family "coxph" needs a survival response written as inla.surv(time, event) ~ ..., got {response!r}'
        )
    if n is None:
        raise DataError('family "coxph": data has no row columns')
    values = {}
    for name, expr in kw.items():
        where = f"inla.surv({name}=...)"
        value = columns.get(expr, where) if expr in columns else evaluate_on_data(parse_r(expr), columns, expr, n)
        if isinstance(value, RFactor):
            raise DataError(f'family "coxph": {expr!r} ({name} in inla.surv) is a factor; it must be numeric')
        arr = np.asarray(value, dtype=float).ravel()
        if arr.size == 1:
            arr = np.full(n, float(arr[0]))
        values[name] = arr
    if "time2" in values:
        raise ModelError('family "coxph": inla.surv(..., time2=) (interval censoring) is not possible in the Cox model (as in R-INLA)')
    check_coxph_response(values["time"], values.get("event"), values.get("truncation"), kw)
    return inla_surv(**values), kw, None


def _expand_rows(data: Any, rows: np.ndarray, n: int, drop: str | None):
    """Every data column with one value per subject, repeated per expanded row."""
    if isinstance(data, pd.DataFrame):
        return data.iloc[rows].reset_index(drop=True)
    out = {}
    for k, v in data.items():
        if k == drop:
            continue
        if isinstance(v, (str, bytes, Mapping, InlaSurv)) or np.ndim(v) == 0:
            out[k] = v
            continue
        try:
            length = len(v)
        except TypeError:
            out[k] = v
            continue
        if length != n:
            out[k] = v  # R's inla.fix.data: entries of another length are passed as they are
        elif isinstance(v, pd.Series):
            out[k] = v.iloc[rows].reset_index(drop=True)
        elif isinstance(v, pd.Categorical):
            out[k] = v[rows]
        elif isinstance(v, RFactor):
            out[k] = replace(v, codes=np.asarray(v.codes)[rows])
        else:
            out[k] = np.asarray(v)[rows]
    return out


def _strata_codes(values) -> tuple[np.ndarray, list]:
    """R-INLA's ``inla.strata``: codes 1..k in the order of ``factor()``'s levels."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, pd.Categorical):
        levels = list(values.categories)
        codes = np.asarray(values.codes) + 1
        if np.any(codes == 0):
            raise DataError('control_hazard strata.name: the strata column has missing values')
        return codes.astype(float), levels
    arr = np.asarray(values)
    if pd.isna(arr).any():
        raise DataError('control_hazard strata.name: the strata column has missing values')
    levels, codes = np.unique(arr, return_inverse=True)
    return codes.astype(float) + 1.0, levels.tolist()


def _fmt(value: float) -> str:
    return repr(float(value))


def inla_coxph(
    formula: str,
    data: Any,
    control_hazard: Mapping[str, Any] | str | None = None,
    tag: str = "",
) -> CoxphData:
    """R-INLA's ``inla.coxph(formula, data, control.hazard)``: the Cox model as a Poisson model.

    Expands the data to one row per (subject, interval at risk) (see the module docstring for
    the math) and writes the Poisson model's formula, so that

        ``p = inla_coxph(formula, data); adelia.inla(p.formula, p.data, family=p.family, E=p.E, context=p.data_list)``

    is the same fit as ``adelia.inla(formula, data, family="coxph")``, and the expanded data
    can be combined with other likelihoods (joint models, as in R-INLA's example).

    Args:
        formula: ``inla.surv(time, event[, truncation=]) ~ ...``; the response may also name
            an :class:`InlaSurv` object in ``data`` (a dict).
        data: a DataFrame or a dict of columns (entries of another length pass unchanged).
        control_hazard: R-INLA's ``control.hazard`` (model "rw1"/"rw2", n.intervals,
            cutpoints, constr, diagonal, hyper, scale.model, strata.name).
        tag: appended to the new names, as R-INLA (``y<tag>..coxph``, ``baseline<tag>.hazard``).

    Raises:
        ModelError: the response is not an inla.surv(...) object.
        DataError: missing, zero or negative times, events other than 0/1 (naming the column
            and rows), a strata column that is not in the data.
        ControlError: bad control_hazard settings.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"t": [1.0, 2.0, 4.0], "d": [1, 1, 0], "x": [0.0, 1.0, 0.5]})
        >>> p = inla_coxph("inla.surv(t, d) ~ x", df, {"n.intervals": 2})
        >>> p.formula.split(" + f(")[0], p.data_list["baseline.hazard.values"].tolist()
        ('y..coxph ~ x', [0.0, 2.0, 4.0])
    """
    if not isinstance(data, (pd.DataFrame, Mapping)):
        raise DataError(f"data must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}")
    if not isinstance(tag, str):
        raise ControlError(f"tag must be a string, got {tag!r}")
    ch = resolve_control_hazard(control_hazard)
    if not isinstance(formula, str) or "~" not in formula or not formula.split("~", 1)[0].strip():
        raise ModelError(f'family "coxph" needs a formula inla.surv(time, event) ~ ..., got {formula!r}')
    # a formula's left-hand side cannot hold "~": the first one separates response and terms
    response, rhs = (part.strip() for part in formula.split("~", 1))
    columns = DataColumns(data)
    n = _n_rows(data)
    surv, _, surv_column = _survival_of(response, data, columns, n)
    n = len(surv)
    cut = ch["cutpoints"] if ch["cutpoints"] is not None else default_cutpoints(surv.time, ch["n.intervals"])
    ex = expand_survival(surv, cut)

    y_name, e_name, x_name = f"y{tag}..coxph", f"E{tag}..coxph", f"expand{tag}..coxph"
    bh = f"baseline{tag}.hazard"
    new = {
        y_name: ex.y,
        e_name: ex.exposure,
        x_name: (ex.subject + 1).astype(float),
        bh: ex.start,
        f"{bh}.idx": ex.interval.astype(float),
        f"{bh}.time": ex.start,
        f"{bh}.length": ex.length,
    }
    rows = _expand_rows(data, ex.subject, n, drop=surv_column)
    clash = [k for k in new if (k in rows.columns if isinstance(rows, pd.DataFrame) else k in rows)]
    if clash:
        raise DataError(f'family "coxph": the data already has column(s) {clash}, names the Cox expansion creates; rename them')

    strata_coding = None
    replicate = ""
    strata = ch["strata.name"]
    if strata is not None:
        if not isinstance(strata, str):
            raise ControlError(f"control_hazard strata.name must be the name of a data column, got {strata!r}")
        if strata not in columns:
            raise DataError(unknown_choice("control_hazard strata.name column", strata, columns.names).replace("unknown", "no", 1))
        codes, strata_coding = _strata_codes(data[strata])
        rows[strata] = codes[ex.subject]
        replicate = f", replicate={strata}"

    if isinstance(rows, pd.DataFrame):
        expanded = pd.concat([pd.DataFrame(new), rows], axis=1)
    else:
        expanded = {**new, **rows}

    constr = bool(ch["constr"])
    diagonal = ch["diagonal"] if ch["diagonal"] is not None else (DEFAULT_DIAGONAL if constr else None)
    scale_model = bool(ch["scale.model"]) if ch["scale.model"] is not None else False
    values_name, hyper_name = f"{bh}.values", f"{bh}.hyper"
    term = (
        f'f({bh}, model="{ch["model"]}", values={values_name}, hyper={hyper_name}, '
        f"constr={'TRUE' if constr else 'FALSE'}"
        + (f", diagonal={_fmt(diagonal)}" if diagonal is not None else "")
        + f", scale.model={'TRUE' if scale_model else 'FALSE'}{replicate})"
    )
    new_formula = f"{y_name} ~ {rhs} + {term}"
    data_list = {values_name: ex.cutpoints.copy(), hyper_name: hazard_hyper(ch)}
    if strata_coding is not None:
        data_list[f"{bh}.strata.coding"] = strata_coding
    return CoxphData(
        formula=new_formula,
        data=expanded,
        data_list=data_list,
        family="poisson",
        E=ex.exposure.copy(),
        expand=ex.subject.copy(),
        control_hazard=ch,
        expansion=ex,
        strata_coding=strata_coding,
    )


# ------------------------------------------------------------------------------------------
# the hook used by adelia.compile
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxphCall:
    """``compile``'s arguments rewritten for the Poisson model (R-INLA's recursive inla() call)."""

    formula: str
    data: Any
    family: str
    E: np.ndarray
    offset: Any
    weights: Any
    scale: Any
    context: dict[str, Any]


def _per_row(value, expand: np.ndarray, n: int, name: str):
    """offset/weights/scale given per subject -> per expanded row (R: ``offset[expand..coxph]``).
    Column names resolve in the expanded data; scalars stay scalars."""
    if value is None or isinstance(value, str):
        return value
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size == 1:
        return float(arr[0])
    if arr.size != n:
        raise DataError(f'family "coxph": {name} has {arr.size} values but there are {n} subjects (data rows)')
    return arr[expand]


def coxph_call(
    formula: str,
    data: Any,
    family,
    control_hazard=None,
    control_predictor: Mapping | None = None,
    E=None,
    Ntrials=None,
    offset=None,
    weights=None,
    scale=None,
    context: Mapping[str, Any] | None = None,
) -> CoxphCall:
    """What R-INLA's ``inla()`` does for ``family="coxph"``: ``inla.coxph()`` and a Poisson fit
    of the expanded data, with ``offset``/``weights``/``scale`` taken per expanded row.

    Raises:
        ModelError: coxph among several families (use :func:`inla_coxph` and a multi-family
            fit, as in R-INLA), or with ``control_predictor`` A (R-INLA: not supported).
    """
    families = [family] if isinstance(family, str) else list(family)
    if len(families) != 1:
        raise ModelError(
            'family "coxph" cannot be one of several families in one call (as in R-INLA): expand the Cox part with '
            "adelia.inla_coxph(formula, data) and combine its data and formula with the other likelihoods"
        )
    if control_predictor and control_predictor.get("A") is not None:
        raise ModelError('family "coxph" with control_predictor A is not supported (as in R-INLA); use adelia.inla_coxph and a stack')
    if E is not None:
        warn('E= is not used by family "coxph": the exposures are the times at risk in each interval', UserWarning)
    if Ntrials is not None:
        warn('Ntrials= is not used by family "coxph" and is ignored', UserWarning)
    cph = inla_coxph(formula, data, control_hazard)
    n = cph.expansion.n_subjects
    return CoxphCall(
        formula=cph.formula,
        data=cph.data,
        family=cph.family,
        E=cph.E,
        offset=_per_row(offset, cph.expand, n, "offset"),
        weights=_per_row(weights, cph.expand, n, "weights"),
        scale=_per_row(scale, cph.expand, n, "scale"),
        context={**dict(context or {}), **cph.data_list},
    )
