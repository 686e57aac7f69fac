"""``adelia.inla``: R-INLA's ``inla()`` in Python."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .model import check_quantiles
from .model import compile as compile_model
from .results import InlaResult
from .user_warnings import fit_scope


def inla(
    formula: str,
    data: Any,
    family: str | Sequence[str] = "gaussian",
    E=None,
    Ntrials=None,
    offset=None,
    weights=None,
    scale=None,
    control_compute: Mapping | None = None,
    control_predictor: Mapping | None = None,
    control_family: Mapping | Sequence[Mapping] | None = None,
    control_fixed: Mapping | None = None,
    control_inla: Mapping | None = None,
    control_mode: Mapping | None = None,
    control_vb: Mapping | None = None,
    inla_mode: str = "compact",
    quantiles: Sequence[float] = (0.025, 0.5, 0.975),
    verbose: bool = False,
    context: Mapping[str, Any] | None = None,
    na_covariates: str | None = None,
    lincomb=None,
    control_hazard: Mapping | None = None,
) -> InlaResult:
    """Fit a latent Gaussian model with INLA, as R-INLA's ``inla()`` does.

    Args:
        formula: an R-INLA formula, R syntax inside ``f()`` accepted verbatim, e.g.
            ``"y ~ 1 + x + f(idx, model='iid') + f(t, model='ar1')"``.
        data: a pandas DataFrame or a dict of arrays (e.g. ``adelia.spde.stack_data(stk)``).
        family: an R-INLA family name, or one per response column for multi-likelihood models.
        E: a column name, an array or a scalar (one value per observation).
        Ntrials: as ``E``.
        offset: as ``E``.
        weights: as ``E``.
        scale: as ``E``.
        control_compute: R-INLA's control lists as dicts; keys in R's dotted spelling
            (``{"int.strategy": "ccd"}``) or Python's (``{"int_strategy": "ccd"}``).
        control_predictor: as ``control_compute``.
        control_family: as ``control_compute``.
        control_fixed: as ``control_compute``.
        control_inla: as ``control_compute``; ``control_inla={"solver": "dense"|"sparse"|"bta"}``
            picks the kernel backend.
        control_mode: as ``control_compute``.
        control_vb: as ``control_compute``.
        inla_mode: R-INLA's ``inla.mode``: "compact" (default; R-INLA's current algorithm) or
            "classic" (adaptive grid over θ for d ≤ 2, simplified-Laplace latent marginals) —
            use it when the hyperparameter posterior is multimodal or far from Gaussian.
        quantiles: the quantile columns of the summaries.
        verbose: show progress during the mode search and the integration.
        context: names used inside f() (graphs, SPDE models, matrices); by default they are
            looked up in the caller's namespace.
        na_covariates: what NA (NaN/None) in a numeric fixed-effect covariate means: "error"
            (stop, naming the column and the rows) or "zero" (R-INLA's rule: NA is read as 0).
            Left out: "error" for single-likelihood data, where an NA covariate is usually a
            data error; "zero" for multi-likelihood data (several families, e.g. the layout
            ``Y ~ -1 + mu1 + mu2`` with ``mu1 = (1,…,1, NA,…,NA)``) and when
            ``control_predictor={"A": ...}`` is given (``inla.stack`` data), which rely on it.
            NA in a factor is always an error, as in R-INLA.
        control_hazard: R-INLA's ``control.hazard`` for ``family="coxph"`` (baseline hazard:
            model "rw1"/"rw2", n.intervals=15, cutpoints, constr, hyper, scale.model,
            strata.name); see :mod:`adelia.likelihoods.coxph`.
        lincomb: linear combinations of the latent field (R-INLA's ``lincomb=``):
            ``adelia.make_lincomb(...)``, a list of them or a dict name -> combination (e.g.
            ``adelia.make_lincombs(...)``); results in ``summary_lincomb_derived`` and
            ``marginals_lincomb_derived`` (see :mod:`adelia.lincomb`).

    Returns:
        An :class:`InlaResult`.

    Example:
        >>> import adelia
        >>> seeds = adelia.datasets.load("Seeds")
        >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n")
        >>> round(float(res.summary_fixed.loc["x2", "mean"]), 2)
        1.07
    """
    with fit_scope():  # each kind of warning once per fit, at the user's line
        t0 = time.perf_counter()
        quantiles = check_quantiles(quantiles)
        model = compile_model(
            formula,
            data,
            family=family,
            E=E,
            Ntrials=Ntrials,
            offset=offset,
            weights=weights,
            scale=scale,
            control_compute=control_compute,
            control_predictor=control_predictor,
            control_family=control_family,
            control_fixed=control_fixed,
            control_inla=control_inla,
            control_mode=control_mode,
            control_vb=control_vb,
            inla_mode=inla_mode,
            context=context,
            na_covariates=na_covariates,
            lincomb=lincomb,
            control_hazard=control_hazard,
            _namespace_depth=2,
        )
        pre = time.perf_counter() - t0
        from .inference.run import run_inla

        t1 = time.perf_counter()
        posterior = run_inla(model, quantiles=quantiles, verbose=verbose)
        running = time.perf_counter() - t1
        res = InlaResult(model, posterior, quantiles=quantiles, cpu_used={"Pre": pre, "Running": running, "Post": 0.0})
    return res
