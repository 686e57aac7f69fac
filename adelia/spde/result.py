"""SPDE parameters on interpretable scales from a fit (R-INLA's ``inla.spde2.result`` /
``inla.spde.result``).

An spde2 model's hyperparameters θ enter through log τ = B_τ·(1, θ) and log κ = B_κ·(1, θ).
R-INLA's ``param2.matern.orig`` stacks the rows of interest into a matrix BLC of linear
combinations of (1, θ) (d = 2, ν = α − d/2, ν' = max(½, ν), α' = max(ν' + d/2, α)):

    theta.k               = θ_k
    tau.i                 = log τ        = B_τ·(1, θ)
    kappa.i               = log κ        = B_κ·(1, θ)
    variance.nominal.i    = log σ²       = −[lgamma α' − lgamma ν' + (d/2) log 4π] − 2ν' B_κ·(1, θ) − 2 B_τ·(1, θ)
    range.nominal.i       = log ρ        = ½ log(8ν') − B_κ·(1, θ)

i.e. σ² = Γ(ν)/(Γ(α)(4π)^{d/2} κ^{2ν} τ²) and ρ = √(8ν)/κ. For ``spde2_pcmatern``
(θ = (log ρ, log σ)) this gives range.nominal = θ₁ and variance.nominal = 2θ₂.

Each row's posterior marginal is computed from the fit's hyperparameter posterior:

* a row that involves one free θ_k (every row of pcmatern except tau; all but variance of
  the default matern) is the affine image of θ_k's marginal, pushed through the same code
  that makes ``res.marginals_hyperpar``/``res.summary_hyperpar``
  (:class:`adelia.inference.hyperpar.HyperMarginal`), so e.g. exp(range.nominal.1) reproduces
  "Range for s" exactly;
* a row c·θ over several free θ uses the construction R-INLA uses for a hyperparameter's
  marginal when dim θ ≥ 2: the two-sided (skewness-corrected) Gaussian along the line
  θ(t) = θ* + Σc t/(cᵀΣc) where the other directions sit at their conditional means;
* fixed θ enter as constants; a row with no free θ has sd 0 and no marginal (None).

Differences from R-INLA, none in meaning: R's ``summary.spde2.blc`` tables also carry a
``kld`` column (omitted); R's ``marginals.hyperpar`` element is never filled (its code reads
``inla$marginals$hyperpar``, an ambiguous partial match that is NULL), so it is absent here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ModelError, did_you_mean
from ..inference.hyperpar import HyperMarginal, _normalised
from .matern import SPDE2
from .spde2_model import SPDE2Model

__all__ = ["SpdeResult", "spde_result"]

#: the element names, in R-INLA's order
_ELEMENTS = (
    "summary.values", "marginals.values", "summary.hyperpar",
    "summary.theta", "summary.log.tau", "summary.log.kappa", "summary.log.variance.nominal", "summary.log.range.nominal",
    "marginals.theta", "marginals.log.tau", "marginals.log.kappa", "marginals.log.variance.nominal",
    "marginals.log.range.nominal",
    "marginals.tau", "marginals.kappa", "marginals.variance.nominal", "marginals.range.nominal",
)
#: BLC row prefix of each group, and the element suffix R-INLA files it under
_GROUPS = (("theta", "theta"), ("tau", "log.tau"), ("kappa", "log.kappa"),
           ("variance.nominal", "log.variance.nominal"), ("range.nominal", "log.range.nominal"))
_TRANSFORMED = (("log.tau", "tau"), ("log.kappa", "kappa"),
                ("log.variance.nominal", "variance.nominal"), ("log.range.nominal", "range.nominal"))


class SpdeResult(Mapping):
    """The result of :func:`spde_result` (R-INLA's ``inla.spde2.result`` list).

    Elements under R-INLA's names, by mapping access (``r["summary.log.range.nominal"]``) or as
    attributes with ``.`` → ``_`` (``r.summary_log_range_nominal``). Summaries are DataFrames
    (rows named as R-INLA's BLC rows: "theta.1", "tau.1", "kappa.1", "variance.nominal.1",
    "range.nominal.1"; columns ID, mean, sd, quantiles, mode); marginals are dicts of xarray
    DataArrays over ``x``, like ``res.marginals_hyperpar``.
    """

    def __init__(self, elements: dict[str, Any]):
        self._elements = elements

    def __getitem__(self, key: str):
        key = str(key)
        if key in self._elements:
            return self._elements[key]
        dotted = key.replace("_", ".")
        if dotted in self._elements:
            return self._elements[dotted]
        hint = ""
        m = re.fullmatch(r"summary\.(tau|kappa|variance\.nominal|range\.nominal)", dotted)
        if m:
            hint = (f"; R-INLA gives no {dotted} (only its marginals): use "
                    f'adelia.marginals.zmarginal(r["marginals.{m.group(1)}"]["{m.group(1)}.1"]) for its summaries')
        raise KeyError(f"{key!r} is not an element of the SPDE result; elements are {', '.join(self._elements)}{hint}")

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(err.args[0]) from None

    def __iter__(self):
        return iter(self._elements)

    def __len__(self) -> int:
        return len(self._elements)

    def __dir__(self):
        return [*super().__dir__(), *(k.replace(".", "_") for k in self._elements)]

    def __repr__(self) -> str:
        return f"SpdeResult({', '.join(self._elements)})"


def spde_blc(spde: SPDE2) -> tuple[np.ndarray, list[str]]:
    """R-INLA's ``spde$param.inla$BLC`` for a Matérn spde2 model: rows of coefficients on (1, θ)
    and their names (theta.k, tau.i, kappa.i, variance.nominal.i, range.nominal.i)."""
    d = 2
    alpha = float(spde.alpha)
    nu = alpha - d / 2
    nu_nom = max(0.5, nu)
    alpha_nom = max(nu_nom + d / 2, alpha)
    B0 = np.atleast_2d(np.asarray(spde.B0, dtype=float))
    B1 = np.atleast_2d(np.asarray(spde.B1, dtype=float))
    # undo matern._operator's map (B_tau, B_kappa) -> (B0, B1) for this alpha
    if alpha == 2:
        B_kappa, B_tau = B1 / 2, B0
    elif alpha == 1:
        B_kappa, B_tau = B1, B0
    elif 1 < alpha < 2:
        B_kappa = B1 / 2
        B_tau = B0 - (alpha - 2) * B_kappa
    else:
        B_kappa = B1
        B_tau = B0 - (alpha - 1) * B_kappa
    if len(B_tau) != len(B_kappa):
        B_tau, B_kappa = np.broadcast_arrays(B_tau, B_kappa)
    n_theta = B0.shape[1] - 1
    B_prec = 2 * nu_nom * B_kappa + 2 * B_tau
    B_prec[:, 0] += math.lgamma(alpha_nom) - math.lgamma(nu_nom) + (d / 2) * math.log(4 * math.pi)
    B_variance = -B_prec
    B_range = -B_kappa.copy()
    B_range[:, 0] += 0.5 * math.log(8 * nu_nom)
    B_theta = np.hstack([np.zeros((n_theta, 1)), np.eye(n_theta)])
    blocks = [("theta", B_theta), ("tau", B_tau), ("kappa", B_kappa), ("variance.nominal", B_variance),
              ("range.nominal", B_range)]
    rows, names = [], []
    for prefix, B in blocks:
        rows.append(B)
        names += [f"{prefix}.{i + 1}" for i in range(len(B))]
    return np.vstack(rows), names


def spde_result(res, name: str, spde: SPDE2, do_transform: bool = True) -> SpdeResult:
    """SPDE field and parameter posteriors on interpretable scales (R-INLA's
    ``inla.spde2.result(inla, name, spde, do.transform=TRUE)``, alias ``inla.spde.result``).

    The rows of R-INLA's BLC matrix (see the module docstring) are linear combinations of the
    term's internal θ: log τ, log κ, the nominal log variance
    log σ² = log Γ(ν) − log Γ(α) − (d/2) log 4π − 2ν log κ − 2 log τ and the nominal log range
    log ρ = ½ log(8ν) − log κ (d = 2, ν = α − d/2). Their marginals come from the fit's
    hyperparameter marginals; ``do_transform`` adds the marginals of exp(·) of each, τ, κ, σ²
    and ρ (R's ``inla.tmarginal(exp, ·)``).

    Args:
        res: the :class:`adelia.results.InlaResult` of a fit with the term ``f(name, model=spde)``.
        name: the term's name (R's ``name``; a key of ``res.summary_random``).
        spde: the :class:`SPDE2` object of that term (from :func:`spde2_pcmatern` or
            :func:`spde2_matern`).
        do_transform: also return marginals.tau, marginals.kappa, marginals.variance.nominal,
            marginals.range.nominal.

    Returns:
        :class:`SpdeResult` with R-INLA's elements: summary.values, marginals.values,
        summary.hyperpar (the "Theta<k> for name" rows of ``res.summary_hyperpar``; none for
        pcmatern), summary.theta, summary.log.tau, summary.log.kappa,
        summary.log.variance.nominal, summary.log.range.nominal, the matching marginals.*,
        and with ``do_transform`` marginals.tau, marginals.kappa, marginals.variance.nominal,
        marginals.range.nominal. R-INLA has no summary.range.nominal: use
        ``adelia.marginals.zmarginal(r["marginals.range.nominal"]["range.nominal.1"])``.

    Raises:
        ModelError: ``res`` has no term ``name`` (the error lists the terms), the term is not an
            SPDE model, or ``spde`` is not an spde2 Matérn model / not the one of that term.

    Example:
        A PC-Matérn fit of R-INLA's SPDEtoy data on a coarse mesh:

        >>> toy = adelia.datasets.load("SPDEtoy")
        >>> loc = toy[["s1", "s2"]].to_numpy()
        >>> mesh = adelia.spde.mesh_2d(loc, max_edge=(0.3, 0.6), cutoff=0.1)
        >>> spde = adelia.spde.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> stk = adelia.spde.stack(data={"y": toy["y"].to_numpy()}, A=[adelia.spde.make_A(mesh, loc), 1],
        ...                         effects=[{"s": np.arange(1, mesh.n + 1)}, {"b0": np.ones(len(toy))}])
        >>> res = adelia.inla("y ~ 0 + b0 + f(s, model=spde)", data=adelia.spde.stack_data(stk),
        ...                   control_predictor={"A": adelia.spde.stack_A(stk)}, context={"spde": spde})
        >>> r = adelia.spde.spde_result(res, "s", spde)
        >>> round(float(r["summary.log.range.nominal"].loc["range.nominal.1", "mean"]), 2)
        -1.09
        >>> round(float(adelia.marginals.zmarginal(r.marginals_range_nominal["range.nominal.1"])["mean"]), 2)
        0.35
    """
    from ..results import InlaResult

    if not isinstance(res, InlaResult):
        raise ModelError(f"spde_result: res must be the result of adelia.inla (an InlaResult), got {type(res).__name__}")
    if not isinstance(spde, SPDE2):
        raise ModelError(
            f"spde_result: spde must be an spde2 model from spde2_pcmatern or spde2_matern, got {type(spde).__name__}"
        )
    name = str(name)
    model = res.model
    labels = [c.label for c in model.graph.components]
    comp = next((c for c in model.graph.components if c.label == name), None)
    if comp is None:
        raise ModelError(
            f"spde_result: the result has no f() term {name!r}; its f() terms are: "
            f"{', '.join(labels) or 'none'}.{did_you_mean(name, labels)}"
        )
    if not isinstance(comp.model, SPDE2Model):
        kind = getattr(comp.model, "model_name", type(comp.model).__name__)
        raise ModelError(f"spde_result: term {name!r} is model {kind!r}, not an SPDE model (spde2)")
    _check_same_model(comp.model, spde, name)

    blc, blc_names = spde_blc(spde)
    layout = model.layout
    owned = [i for i, owner in enumerate(layout.owners) if owner == name]
    if len(owned) != spde.n_theta:
        raise ModelError(f"spde_result: term {name!r} has {len(owned)} hyperparameters, the spde model {spde.n_theta}")
    free_pos = {int(i): k for k, i in enumerate(layout.free)}
    post = res.posterior
    quantiles = res.quantiles

    summaries: dict[str, list] = {suffix: [] for _, suffix in _GROUPS}
    marginals: dict[str, dict] = {suffix: {} for _, suffix in _GROUPS}
    transformed: dict[str, dict] = {t: {} for _, t in _TRANSFORMED}
    for row, (coef, row_name) in enumerate(zip(blc, blc_names)):
        suffix = dict(_GROUPS)[row_name.rsplit(".", 1)[0]]
        const = float(coef[0])
        free_coef = np.zeros(len(layout.free))
        for k, i in enumerate(owned):
            if i in free_pos:
                free_coef[free_pos[i]] += coef[1 + k]
            else:  # a fixed θ is a constant
                const += coef[1 + k] * float(layout.hyperparameters[i].initial)
        summary, marg, marg_exp = _row_marginal(post, const, free_coef, quantiles, do_transform)
        summaries[suffix].append({"ID": row + 1, **summary})
        marginals[suffix][row_name] = marg
        if do_transform and suffix in dict(_TRANSFORMED):
            transformed[dict(_TRANSFORMED)[suffix]][row_name] = marg_exp

    cols = ["ID", "mean", "sd", *(f"{q:g}quant" for q in quantiles), "mode"]
    elements: dict[str, Any] = {
        "summary.values": res.summary_random[name],
        "marginals.values": res.marginals_random[name],
    }
    hp = res.summary_hyperpar
    pattern = re.compile(rf"Theta[^ ]+ for {re.escape(name)}$")
    elements["summary.hyperpar"] = hp.loc[[r for r in hp.index if pattern.search(str(r))]]
    for _, suffix in _GROUPS:
        rows = summaries[suffix]
        idx = [n for n in blc_names if dict(_GROUPS)[n.rsplit(".", 1)[0]] == suffix]
        elements[f"summary.{suffix}"] = pd.DataFrame(rows, index=idx, columns=cols)
    for _, suffix in _GROUPS:
        elements[f"marginals.{suffix}"] = marginals[suffix]
    if do_transform:
        for _, t in _TRANSFORMED:
            elements[f"marginals.{t}"] = transformed[t]
    return SpdeResult(elements)


def _check_same_model(model: SPDE2Model, spde: SPDE2, name: str) -> None:
    """The spde object must be the one the term was fitted with (same size and B matrices)."""
    same = model.n == spde.n_spde and len(model.hyperparameters) == spde.n_theta
    if same:
        for b_fit, b_spde in zip(model._B_np, (spde.B0, spde.B1, spde.B2)):
            b_spde = np.atleast_2d(np.asarray(b_spde, dtype=float))
            if b_fit.shape[1] != b_spde.shape[1] or not np.allclose(b_fit, b_spde, rtol=1e-12, atol=1e-12):
                same = False
                break
    if not same:
        raise ModelError(
            f"spde_result: spde ({spde.model}, {spde.n_spde} nodes, {spde.n_theta} θ) is not the model of term "
            f"{name!r} ({model.n} nodes, {len(model.hyperparameters)} θ); pass the spde object used in f({name}, model=spde)"
        )


def _row_marginal(post, const: float, coef: np.ndarray, quantiles, do_transform: bool):
    """Summary and marginal(s) of u = const + coefᵀθ_free (internal scale) and of exp(u)."""
    nz = np.flatnonzero(coef != 0)
    if nz.size == 0:
        summary = {"mean": const, "sd": 0.0, **{f"{q:g}quant": const for q in quantiles}, "mode": const}
        return summary, None, None
    if nz.size == 1:
        # an affine image of one hyperparameter's marginal: the code behind summary_hyperpar
        k = int(nz[0])
        s = float(coef[k])
        hm = post.hyper[k]
        affine = lambda t, s=s: const + s * t  # noqa: E731
    else:
        hm = _linear_combination_marginal(post, coef)
        affine = lambda t: const + t  # noqa: E731
    summary = hm.user_summary(affine, quantiles)
    x, y = hm.transformed(affine)
    marg = xr.DataArray(y, coords={"x": x}, dims="x")
    marg_exp = None
    if do_transform:
        xe, ye = hm.transformed(lambda t: np.exp(affine(np.asarray(t))))
        marg_exp = xr.DataArray(ye, coords={"x": xe}, dims="x")
    return summary, marg, marg_exp


def _linear_combination_marginal(post, coef: np.ndarray, n_grid: int = 401, width: float = 8.0) -> HyperMarginal:
    """Marginal of u = cᵀθ (free, internal), centred at 0 = cᵀθ*: the two-sided Gaussian along
    θ(t) = θ* + Σc t/(cᵀΣc) (the other directions at their conditional means given u), as
    R-INLA builds a hyperparameter's marginal for dim θ ≥ 2 (``hyperparameter_marginals``)."""
    mode = np.asarray(post.theta_mode, dtype=float)
    cov = post.axes.covariance()
    c = np.asarray(coef, dtype=float)
    var_u = float(c @ cov @ c)
    sd_u = math.sqrt(var_u)
    direction = cov @ c / var_u
    t = np.linspace(-width, width, n_grid) * sd_u
    theta = mode[None, :] + t[:, None] * direction[None, :]
    z = post.axes.theta_to_z(mode, theta)
    scale = np.where(z > 0, np.asarray(post.stdev_corr_pos, dtype=float), np.asarray(post.stdev_corr_neg, dtype=float))
    logd = -0.5 * np.sum((z / scale) ** 2, axis=1)
    dens = np.exp(logd - logd.max())
    return _normalised(float(c @ mode) + t, dens)
