"""Checks that stop adelia from returning a number that cannot be right (issue 12).

Two kinds, both cheap and on the host:

* before the fit (:func:`check_information`): observations that carry no information about a
  fixed effect with a flat prior make the posterior improper — every observed count 0 (or
  every binomial y = Ntrials) with R-INLA's flat intercept prior (``prec.intercept = 0``)
  sends the intercept to ±∞; every observed row with Ntrials = 0 leaves nothing to fit.
  These raise :class:`~adelia.errors.DataError` naming the cause and the fix.
* after the fit (:func:`check_fit`): a positive log marginal likelihood for discrete data
  (π(y) is a probability, so log π(y) ≤ 0), a fixed effect whose contribution to the linear
  predictor is absurd (|β_j| · range(X_j) > :data:`ABSURD_ETA` on a non-identity link), and
  complete separation of binomial responses by one covariate. Each gives one
  :class:`SuspiciousFitWarning` per fit naming the likely cause, recorded in the
  result's ``diagnostics["warnings"]``.

R-INLA's behaviour is a reference, not a target: it returns such fits silently.
"""

from __future__ import annotations


import numpy as np

from ..errors import DataError
from ..user_warnings import warn

#: a linear-predictor contribution beyond this on a log/logit-type link is not a real estimate
#: (exp(500) ≈ 1e217): the posterior of that fixed effect is improper or the fit diverged
ABSURD_ETA = 500.0


class SuspiciousFitWarning(UserWarning):
    """The fit finished but a result cannot be right as it stands (improper posterior,
    separation, impossible marginal likelihood); the message names the likely cause."""


def _discrete(family: str) -> bool:
    return "poisson" in family or "binomial" in family


def _ntrials(block) -> np.ndarray | None:
    if "binomial" not in block.likelihood.family:
        return None
    return np.asarray(block.data.get("Ntrials", np.ones_like(block.y)), dtype=float)


def check_information(blocks, fixed, has_A: bool) -> None:
    """Raise DataError when the observations cannot identify the model (module docstring).

    Args:
        blocks: the :class:`~adelia.inference.observations.FamilyBlock` of every family.
        fixed: the :class:`~adelia.engine.graph.FixedEffects`.
        has_A: whether a ``control_predictor`` A maps effects to observations (then the
            intercept's column is not the plain η offset and the all-zero check is skipped).
    """
    n_obs = sum(int(np.sum(~np.isnan(b.y))) for b in blocks)
    informative = 0
    for b in blocks:
        obs = ~np.isnan(b.y)
        n = _ntrials(b)
        informative += int(np.sum(obs & (n > 0))) if n is not None else int(np.sum(obs))
    if n_obs and not informative:
        raise DataError(
            f"no observation carries information: every one of the {n_obs} observed rows has Ntrials = 0 "
            "(a binomial with 0 trials has no likelihood). Give the rows their number of trials, or drop them."
        )
    names = list(fixed.names)
    if has_A or "(Intercept)" not in names or not n_obs:
        return
    j = names.index("(Intercept)")
    if fixed.prior_prec[j] != 0 or not all(_discrete(b.likelihood.family) for b in blocks):
        return
    low = high = True  # every observed y at the lower (0) / upper (Ntrials) end of its support
    for b in blocks:
        obs = ~np.isnan(b.y)
        y = b.y[obs]
        n = _ntrials(b)
        low &= bool(np.all(y == 0))
        high &= n is not None and bool(np.all(y == n[obs]))
    if low or high:
        what = "0" if low else "equal to Ntrials"
        direction = "−∞" if low else "+∞"
        raise DataError(
            f"every observed response is {what} ({n_obs} rows) and the intercept has R-INLA's flat prior "
            f"(control_fixed prec.intercept = 0): the posterior is improper (the intercept goes to {direction}) and "
            "no finite estimate or marginal likelihood exists. Give the intercept a proper prior, e.g. "
            'control_fixed={"prec.intercept": 0.001}, or check the response column.'
        )


def _separating_covariate(model) -> str | None:
    """The first fixed-effect column that completely separates binomial responses at 0 from
    those at Ntrials (every observed row at one end), as '"x" (y = 0 for x ≤ a, ...)'."""
    if model.graph.effect_map is not None:  # a control_predictor A: X's rows are not the observations
        return None
    X = np.asarray(model.graph.fixed.X)
    blocks = model.observations.families
    rows, ys, ns = [], [], []
    for b in blocks:
        n = _ntrials(b)
        if n is None:
            return None
        obs = ~np.isnan(b.y) & (n > 0)
        rows.append(b.rows[obs])
        ys.append(b.y[obs])
        ns.append(n[obs])
    rows, y, n = np.concatenate(rows), np.concatenate(ys), np.concatenate(ns)
    if rows.size < 2 or X.shape[0] != model.observations.n_obs:
        return None
    zero, full = y == 0, y == n
    if not np.all(zero | full) or not zero.any() or not full.any():
        return None
    for j, name in enumerate(model.fixed_names):
        x = X[rows, j]
        if np.ptp(x) == 0:
            continue
        lo0, hi0, lo1, hi1 = x[zero].min(), x[zero].max(), x[full].min(), x[full].max()
        if hi0 < lo1:
            return f'"{name}" (y = 0 for {name} ≤ {hi0:.4g}, y = Ntrials for {name} ≥ {lo1:.4g})'
        if hi1 < lo0:
            return f'"{name}" (y = Ntrials for {name} ≤ {hi1:.4g}, y = 0 for {name} ≥ {lo0:.4g})'
    return None


def check_fit(model, latent_mean: np.ndarray, mlik: float, notes: list[str]) -> None:
    """Warn (once per kind) about results that cannot be right; messages go to ``notes`` too.

    Args:
        model: the compiled :class:`~adelia.model.Model`.
        latent_mean: posterior means of the latent field (fixed effects included).
        mlik: the log marginal likelihood (integration estimate).
        notes: the fit's warning list (``diagnostics["warnings"]``), appended to.
    """
    families = [b.likelihood for b in model.observations.families]
    discrete = bool(families) and all(_discrete(f.family) for f in families)

    def report(kind: str, msg: str) -> None:
        warn(msg, SuspiciousFitWarning, kind=kind)
        notes.append(msg)

    sep = _separating_covariate(model) if discrete else None
    if sep is not None:
        report(
            "separation",
            f"complete separation: the covariate {sep} separates the binomial responses, so its likelihood grows "
            "without bound as the coefficient grows; its posterior (and the marginal likelihood) is set by its prior "
            "alone (control_fixed prec), not by the data. Drop or recode the covariate, or give it an informative prior."
        )
    # fixed effects whose contribution to η is absurd on a non-identity link
    fixed_blocks = [b for b in model.graph.blocks if b.kind == "fixed"]
    if fixed_blocks and not all(f.link.name == "identity" for f in families):
        start = min(b.start for b in fixed_blocks)
        X = np.asarray(model.graph.fixed.X)
        beta = np.asarray(latent_mean)[start:start + X.shape[1]]
        # the effect's spread over the data (a covariate such as the year 2000..2020 has a
        # large level but a small range: β·year itself is no sign of trouble); the intercept's
        # column is constant, so its level counts
        spread = np.ptp(X, axis=0) if X.size else np.zeros(0)
        scale = np.where(spread > 0, spread, np.max(np.abs(X), axis=0) if X.size else 0.0)
        size = np.abs(beta) * scale
        bad = ~np.isfinite(beta) | (size > ABSURD_ETA)
        if np.any(bad):
            j = int(np.flatnonzero(bad)[0])
            name = model.fixed_names[j]
            prec = float(model.graph.fixed.prior_prec[j])
            prior = "a flat prior (precision 0)" if prec == 0 else f"prior precision {prec:g}"
            report(
                "absurd fixed effect",
                f'the fixed effect "{name}" has posterior mean {beta[j]:.4g} (a contribution of {size[j]:.3g} to the '
                f"linear predictor): the fit diverged and this is not an estimate. Its posterior is probably improper: "
                f"it has {prior}, and the data do not bound it (likely causes: separation, a group or level with all-zero "
                f'counts, a flat prior). Give it a proper prior (control_fixed={{"prec": ...}} or "prec.intercept") '
                "or check the data."
            )
    if discrete and np.isfinite(mlik) and mlik > 0 and not _weighted(model):
        report(
            "positive mlik",
            f"the log marginal likelihood is {mlik:.4g} > 0, impossible for discrete data (π(y) is a probability, so "
            "log π(y) ≤ 0): the Laplace approximation has broken down, usually because the posterior is (nearly) "
            "improper — separation of binomial responses by a covariate, all-zero counts, or a flat prior on a fixed "
            "effect. Do not compare models with this value."
        )


def _weighted(model) -> bool:
    """Weights other than 1 make the 'likelihood' a pseudo-likelihood: the mlik bound is void."""
    for b in model.observations.families:
        w = b.data.get("weights")
        if w is not None and np.any(np.asarray(w)[~np.isnan(b.y)] != 1):
            return True
    return False
