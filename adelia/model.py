"""``adelia.compile``: an R-INLA formula and data -> a compiled latent Gaussian model.

This is the front half of the pipeline (DESIGN.md §1): parse the formula, materialise the
fixed effects and the f() components on the data, build the likelihood(s), compile the
precision-block graph and set up the Laplace objective. The result, :class:`Model`, exposes
the objective as a plain jit-compiled function of the free hyperparameters θ (internal
scale) with its exact reverse-mode gradient, and ``fit()`` runs INLA on it.

Example:
    >>> import adelia, pandas as pd
    >>> df = adelia.datasets.load("Seeds")
    >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", df, family="binomial", Ntrials="n")
    >>> model.theta_names
    ['Log precision for plate']
    >>> g = model.grad_log_posterior(model.theta0)          # one AD pass
    >>> g.shape
    (1,)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import controls as ctl
from .engine.batching import map_points, on_host
from .engine.graph import CopyTerm, FixedEffects, LatentGraph, ThetaLayout, compile_graph
from .engine.hoisted_jit import hoisted_jit
from .errors import ControlError, DataError, ModelError, unknown_choice
from .user_warnings import fit_scope, warn
from .formula import fixed_design, parse_formula
from .formula.fixed import NA_POLICIES
from .formula.parse import caller_namespace
from .formula.rdata import DataColumns, evaluate_on_data, RFactor
from .formula.response import survival_response
from .formula.rvalues import r_to_python
from .formula.rsyntax import parse_r
from .formula.spec import FTerm, ModelSpec
from .inference.laplace import LaplaceApproximation, NewtonOptions
from .inference.memory import fit_split, points_at_once
from .inference.sanity import check_information
from .inference.observations import FamilyBlock, ObservationModel
from .likelihoods import make_likelihood
from .likelihoods.surv import InlaSurv
from .models.base import Component, Hyperparameter
from .models.build import build_component
from .models.registry import make_prior


# ------------------------------------------------------------------------------------------
# data helpers
# ------------------------------------------------------------------------------------------


def _columns_of(data: Any) -> dict[str, Any]:
    if isinstance(data, pd.DataFrame):
        return {str(c): data[c] for c in data.columns}
    if isinstance(data, Mapping):
        return dict(data)
    raise DataError(f"data must be a pandas DataFrame or a dict of arrays, not {type(data).__name__}")


def _eval_column(expr: str, columns: DataColumns, n: int, where: str):
    """A data column by name, or an R expression over the columns (one value per row)."""
    if expr in columns:
        value = columns.get(expr, where)
    else:
        value = evaluate_on_data(parse_r(expr), columns, expr, n)
    if isinstance(value, RFactor):
        return pd.Categorical.from_codes(value.codes, categories=list(value.names))
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        arr = arr.astype(float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape[0] != n:
        raise DataError(f"{where}: {expr!r} has {arr.shape[0]} values, expected {n} (one per row)")
    return arr


def _obs_vector(value, name: str, columns: dict[str, Any], n_obs: int) -> np.ndarray | None:
    """E / Ntrials / offset / weights / scale: a column name, an array or a scalar."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in columns:
            raise DataError(unknown_choice(f"column for {name}=", value, list(columns)).replace("unknown", "no", 1))
        value = columns[value]
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size == 1:
        arr = np.full(n_obs, float(arr[0]))
    if arr.size != n_obs:
        raise DataError(f"{name} has {arr.size} values but there are {n_obs} observations (rows of the response)")
    return arr


def _numeric_response(value, name: str, families) -> np.ndarray:
    """The response column as float, or a DataError naming the column, a bad value and the family."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        flat = np.asarray(value, dtype=object).ravel()
        bad = next((v for v in flat if not _is_number(v)), None)
        fams = ", ".join(f'"{f}"' for f in families)
        shown = repr(bad) if len(repr(bad)) <= 40 else repr(bad)[:37] + "..."
        raise DataError(
            f"the response column {name!r} holds non-numeric values (e.g. {shown}); family {fams} needs numbers. "
            "Convert the column (e.g. a 0/1 indicator for a binary outcome) before fitting."
        ) from None


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


#: covariate values beyond this overflow once multiplied and squared in the Laplace objective
MAX_COVARIATE = 1e150


def _check_design_scale(X: np.ndarray, names: Sequence[str]) -> None:
    """DataError for non-finite or astronomically large fixed-effect covariates (name + row)."""
    X = np.asarray(X, dtype=float)
    if X.size == 0:
        return
    bad = ~np.isfinite(X) | (np.abs(X) > MAX_COVARIATE)
    if np.any(bad):
        i, j = (int(v[0]) for v in np.nonzero(bad))
        n_bad = int(bad[:, j].sum())
        more = f" ({n_bad - 1} more rows like it)" if n_bad > 1 else ""
        raise DataError(
            f"covariate {names[j]!r}: row {i + 1} has the value {X[i, j]:g}{more}; values this large (|x| > {MAX_COVARIATE:g}) "
            "overflow in the linear predictor and its derivatives. Rescale the column (e.g. divide by its sd or "
            "take a log) before fitting."
        )


def check_quantiles(quantiles) -> tuple[float, ...]:
    """``quantiles`` as a tuple of floats strictly inside (0, 1), else ControlError naming the bad one."""
    try:
        qs = tuple(float(q) for q in np.atleast_1d(np.asarray(quantiles, dtype=float)))
    except (TypeError, ValueError):
        raise ControlError(f"quantiles must be numbers in (0, 1), got {quantiles!r}") from None
    for q in qs:
        if not (0.0 < q < 1.0):
            raise ControlError(f"quantiles: {q:g} is not a probability strictly between 0 and 1 (got quantiles={list(qs)})")
    return qs


def _fixed_priors(names: Sequence[str], control_fixed: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Prior means and precisions of the fixed effects from R-INLA's control.fixed."""

    def pick(spec, name, default):
        if isinstance(spec, Mapping):
            if name in spec:
                return float(spec[name])
            return float(spec.get("default", default))
        return float(spec)

    mean = np.zeros(len(names))
    prec = np.zeros(len(names))
    for j, name in enumerate(names):
        if name == "(Intercept)":
            mean[j] = float(control_fixed["mean.intercept"])
            prec[j] = float(control_fixed["prec.intercept"])
        else:
            mean[j] = pick(control_fixed["mean"], name, 0.0)
            prec[j] = pick(control_fixed["prec"], name, 0.001)
        if prec[j] < 0:
            raise ModelError(f"control_fixed: the prior precision of {name!r} is negative ({prec[j]})")
    return mean, prec


def _suffix(name: str, k: int) -> str:
    """R-INLA's naming of the k-th (0-based) family's hyperparameters: "...[2]" from the second."""
    return name if k == 0 else f"{name}[{k + 1}]"


# ------------------------------------------------------------------------------------------
# copy terms
# ------------------------------------------------------------------------------------------


def _copy_term(term: FTerm, columns: DataColumns, n_rows: int, components: list[Component], theta_pos: int):
    """Resolve f(idx, copy="src", hyper=list(beta=...)) against the component it copies."""
    source = term.args.get("copy") or term.args.get("of")
    match = [c for c in components if c.label == source]
    if not match:
        raise ModelError(
            f'{term.text or term.label}: copy="{source}" refers to no earlier f() term; terms are {[c.label for c in components]}'
        )
    src = match[0]
    cov = _eval_column(term.covariate, columns, n_rows, f"f({term.label}, copy=...)")
    cov = np.asarray(cov, dtype=float)
    ids = np.asarray(src.ids, dtype=float)
    n_src = src.model.n
    index = np.full(n_rows, -1, dtype=np.int64)
    ok = ~np.isnan(cov)
    lookup = {float(v): i for i, v in enumerate(ids[:n_src])}
    bad = sorted({float(v) for v in cov[ok] if float(v) not in lookup})
    if bad:
        raise ModelError(f'f({term.label}, copy="{source}"): values {bad[:10]} are not among the values of "{source}"')
    index[ok] = [lookup[float(v)] for v in cov[ok]]
    w = term.weights
    weights = np.ones(n_rows) if w is None else np.nan_to_num(_eval_column(w, columns, n_rows, "weights").astype(float))
    hyper = (term.args.get("hyper") or {}).get("beta", {}) if isinstance(term.args.get("hyper"), Mapping) else {}
    fixed = bool(hyper.get("fixed", True))
    initial = float(hyper.get("initial", 1.0))
    prior_name = hyper.get("prior", "normal")
    param = hyper.get("param", (1.0, 10.0))
    h = Hyperparameter(
        key="beta",
        internal_name=f"Beta_intern for {term.label}",
        name=f"Beta for {term.label}",
        to_user=lambda t: t,
        prior=make_prior(prior_name, param),
        initial=initial,
        fixed=fixed,
    )
    cp = CopyTerm(term.label, source, index, weights, np.asarray(src.ids[:n_src]), beta=initial, theta_index=None if fixed else theta_pos)
    return cp, h


# ------------------------------------------------------------------------------------------
# the compiled model
# ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Model:
    """A compiled latent Gaussian model: the Laplace objective as a function of θ.

    Attributes:
        spec: the parsed formula.
        graph: the compiled precision-block graph.
        observations: responses, families, offsets.
        layout: all hyperparameters (likelihoods first, then f() terms, R-INLA's order).
        laplace: the Laplace approximation.
        controls: the resolved control_* dicts.
        fixed_names: R-INLA names of the fixed effects.

    Example:
        The model that the examples of the methods and properties below use:

        >>> seeds = adelia.datasets.load("Seeds")
        >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds,
        ...                        family="binomial", Ntrials="n")
        >>> model.graph.n_latent, model.fixed_names   # 21 plates + 3 fixed effects
        (24, ('(Intercept)', 'x1', 'x2'))
    """

    spec: ModelSpec
    graph: LatentGraph
    observations: ObservationModel
    layout: ThetaLayout
    laplace: LaplaceApproximation
    controls: dict[str, dict[str, Any]]
    fixed_names: tuple[str, ...]
    family_names: tuple[str, ...]
    y: np.ndarray
    n_rows: int
    effect_offset: np.ndarray | None = None  # the formula's offset on its own rows (stack models)
    lincombs: Any = None  # adelia.lincomb.LincombDesign of lincomb= (None without)
    fixed_encoding: Any = None  # adelia.formula.fixed.FixedEncoding: re-encodes new data (res.predict)

    def __post_init__(self):
        self._x_warm = np.zeros(self.graph.n_latent)
        lay = self.layout

        def f_and_mode(theta_free, x0):
            return self.laplace.log_posterior_and_mode(lay.expand(theta_free), x0)

        # the data arrays the objective closes over are hoisted to arguments (engine/hoisted_jit.py),
        # one device copy of each shared by all of this model's programs
        self._const_pool = {}
        self._f = hoisted_jit(f_and_mode, self._const_pool)
        self._vg = hoisted_jit(jax.value_and_grad(f_and_mode, has_aux=True), self._const_pool)
        # batches of θ: the compiled single-point functions on host threads (CPU) or vmapped,
        # sharded over control_inla["devices"] when there are several
        devices = self.controls.get("control_inla", {}).get("devices")
        solver = self.graph.solver
        if getattr(solver, "devices", None) is not None and hasattr(solver, "use_split"):
            # the BTA solver on k devices: p groups for θ points × t time partitions, from the
            # model's batches, time blocks and the devices' memory (inference.memory.fit_split)
            solver.use_split(*fit_split(self))
        solver_mesh = getattr(solver, "mesh", None)
        if solver_mesh is not None:
            # the time blocks are partitioned over the mesh's "time" axis: the batch of points is
            # sharded over its "points" groups (a 2-D mesh), or not at all (a "time"-only mesh:
            # each point's kernels span every device)
            devices = solver_mesh if "points" in solver_mesh.axis_names else 1
        self._points_devices = devices
        self._f_batch = map_points(self._f, devices, self._const_pool)
        self._vg_batch = map_points(self._vg, devices, self._const_pool)
        # an accelerator whose memory cannot hold a whole padded batch runs it in chunks
        self._points_at_once = points_at_once(self)
        for batch in (self._f_batch, self._vg_batch):
            if hasattr(batch, "max_rows"):
                batch.max_rows = self._points_at_once

    # --- θ ---------------------------------------------------------------------------------
    @property
    def free(self) -> np.ndarray:
        """Positions in ``layout`` of the free hyperparameters (those not fixed), θ's order.

        Example:
            >>> model.free
            array([0])
        """
        return self.layout.free

    @property
    def theta0(self) -> np.ndarray:
        """R-INLA's initial values of the free hyperparameters (internal scale).

        Example:
            >>> model.theta0   # log precision 4, R-INLA's initial value for iid
            array([4.])
        """
        return self.layout.initial[self.free]

    @property
    def theta_names(self) -> list[str]:
        """Internal-scale names of the free hyperparameters, R-INLA's order.

        Example:
            >>> model.theta_names
            ['Log precision for plate']
        """
        return [self.layout.hyperparameters[i].internal_name for i in self.free]

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        """The free hyperparameters: names on both scales, map to the user scale, prior,
        initial value.

        Example:
            >>> h = model.hyperparameters[0]
            >>> h.name, float(h.to_user(2.0)) == float(np.exp(2.0))
            ('Precision for plate', True)
        """
        return [self.layout.hyperparameters[i] for i in self.free]

    def _theta(self, theta) -> np.ndarray:
        # NumPy, not jnp: an eager jnp operation is a small program of its own to compile
        theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
        if theta.shape != (self.free.size,):
            raise ValueError(f"θ must have shape ({self.free.size},) (one value per free hyperparameter: {self.theta_names}), got {theta.shape}")
        return theta

    # --- the objective ------------------------------------------------------------------------
    def log_posterior(self, theta) -> float:
        """log π̃(θ | y) up to its normalising constant (R-INLA's Laplace approximation), at
        the free hyperparameters θ (internal scale). Jit-compiled once; θ is traced.

        Example:
            >>> round(model.log_posterior([2.0]), 2)
            -75.05
        """
        val, x = self._f(self._theta(theta), jnp.asarray(self._x_warm))
        if np.all(np.isfinite(np.asarray(x))):
            self._x_warm = np.asarray(x)
        return float(val)

    def value_and_grad(self, theta) -> tuple[float, np.ndarray]:
        """(log π̃(θ|y), ∇ log π̃(θ|y)) with the exact reverse-mode gradient.

        Example:
            >>> value, grad = model.value_and_grad([2.0])
            >>> round(value, 2), grad.round(3)
            (-75.05, array([1.12]))
        """
        (val, x), g = self._vg(self._theta(theta), jnp.asarray(self._x_warm))
        if np.all(np.isfinite(np.asarray(x))):
            self._x_warm = np.asarray(x)
        return float(val), np.asarray(g)

    def grad_log_posterior(self, theta, method: str = "ad", step: float = 0.005) -> np.ndarray:
        """∇θ log π̃(θ | y).

        Args:
            method: "ad" — reverse-mode AD through the structured kernels (about one objective
                evaluation); "fd" — R-INLA's central differences (2d evaluations at θ ± step·e_j,
                evaluated as one batch).

        Example:
            >>> ad = model.grad_log_posterior([2.0])
            >>> fd = model.grad_log_posterior([2.0], method="fd")
            >>> bool(abs(ad - fd)[0] < 1e-3)
            True
        """
        theta = self._theta(theta)
        if method == "ad":
            return self.value_and_grad(theta)[1]
        if method != "fd":
            raise ValueError(unknown_choice("gradient method", method, ("ad", "fd")))
        d = theta.size
        E = np.eye(d) * step
        vals = self.log_posterior_batch(np.concatenate([np.asarray(theta) + E, np.asarray(theta) - E], axis=0))
        return (vals[:d] - vals[d:]) / (2 * step)

    def log_posterior_batch(self, thetas) -> np.ndarray:
        """log π̃ at a batch of θ (k, d), all from the current warm start: on the CPU the
        compiled objective on host threads (tiny models: the compiled value-and-gradient,
        one trace fewer), on accelerators one vmapped call.

        Example:
            >>> model.log_posterior_batch(np.array([[1.0], [2.0], [3.0]])).round(2)
            array([-77.38, -75.05, -74.73])
        """
        x0 = jnp.asarray(self._x_warm)
        if on_host() and self.graph.n_latent <= 500:
            (vals, _), _ = self._vg_batch(thetas, x0)
        else:
            vals, _ = self._f_batch(thetas, x0)
        return vals

    def grad_batch(self, thetas) -> np.ndarray:
        """∇ log π̃ at a batch of θ (k, d) (host threads on the CPU, one vmapped call else).

        Example:
            >>> model.grad_batch(np.array([[1.0], [2.0]])).round(3)   # one row per θ
            array([[3.642],
                   [1.12 ]])
        """
        (_, _), g = self._vg_batch(thetas, jnp.asarray(self._x_warm))
        return g

    def sample_theta(self, n: int = 500, chains: int = 4, seed: int = 0, **options):
        """NUTS draws of θ from log π̃(θ | y) with its exact gradient, as an xarray DataArray
        (chain, draw, theta); ``options``: warmup, target_accept, max_tree_depth, verbose.
        See :func:`adelia.inference.nuts_theta.sample_theta`.

        Example:
            >>> draws = model.sample_theta(100, chains=1, seed=1, warmup=100)
            >>> draws.dims, draws.shape
            (('chain', 'draw', 'theta'), (1, 100, 1))
        """
        from .inference.nuts_theta import sample_theta

        return sample_theta(self, n, chains=chains, seed=seed, **options)

    # --- fitting ---------------------------------------------------------------------------------
    def fit(self, quantiles=(0.025, 0.5, 0.975), verbose: bool = False):
        """Run INLA (mode search, integration over θ, marginals) -> :class:`InlaResult`.

        Example:
            >>> res = model.fit()   # what adelia.inla() does after compiling
            >>> round(float(res.summary_fixed.loc["x2", "mean"]), 2)
            1.07
        """
        from .inference.run import run_inla
        from .results import InlaResult

        quantiles = check_quantiles(quantiles)
        with fit_scope():
            posterior = run_inla(self, quantiles=quantiles, verbose=verbose)
        return InlaResult(self, posterior, quantiles=quantiles)

    def __repr__(self) -> str:
        comps = ", ".join(f"{c.label}:{c.model.model_name}({c.model.n})" for c in self.graph.components)
        return (
            f"Model({self.spec.formula!r}, families={list(self.family_names)}, n_obs={self.observations.n_obs}, "
            f"n_latent={self.graph.n_latent}, components=[{comps}], fixed={list(self.fixed_names)}, "
            f"theta={self.theta_names}, solver={type(self.graph.solver).__name__})"
        )


def compile(
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
    context: Mapping[str, Any] | None = None,
    na_covariates: str | None = None,
    lincomb=None,
    control_hazard: Mapping | str | None = None,
    _namespace_depth: int = 1,
) -> Model:
    """Compile an R-INLA formula and data into a :class:`Model` (arguments as :func:`adelia.inla`).

    ``na_covariates`` says what NA (NaN/None) in a numeric fixed-effect covariate means:
    "error" (stop, naming the column and rows) or "zero" (R-INLA's rule: NA is read as 0).
    Left out, it is "error" for a single-likelihood model without ``control_predictor$A``
    and "zero" for multi-likelihood data (several families) or when ``A`` is given, whose
    layouts (``Y ~ -1 + mu1 + mu2``, ``inla.stack``) rely on that rule. NA in a factor is
    always an error, as in R-INLA. ``lincomb``: linear combinations (:mod:`adelia.lincomb`),
    their effect names resolved here against the compiled model. ``control_hazard``
    (R-INLA's ``control.hazard``): the baseline hazard of ``family="coxph"``
    (:mod:`adelia.likelihoods.coxph`).

    Example:
        >>> seeds = adelia.datasets.load("Seeds")
        >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds,
        ...                        family="binomial", Ntrials="n")
        >>> model.theta_names, model.observations.n_obs
        (['Log precision for plate'], 21)
    """
    namespace = caller_namespace(_namespace_depth)
    if "coxph" in ([family] if isinstance(family, str) else list(family)):
        # R-INLA's inla() calls itself on inla.coxph()'s expanded data, a Poisson model
        from .likelihoods.coxph import coxph_call

        cox = coxph_call(formula, data, family, control_hazard, control_predictor, E=E, Ntrials=Ntrials,
                         offset=offset, weights=weights, scale=scale, context=context)
        formula, data, family, E, Ntrials = cox.formula, cox.data, cox.family, cox.E, None
        offset, weights, scale, context = cox.offset, cox.weights, cox.scale, cox.context
    elif control_hazard is not None:
        raise ModelError('control_hazard is only used by family "coxph"')
    controls = {
        "control_compute": ctl.resolve("control_compute", control_compute),
        "control_predictor": ctl.resolve("control_predictor", control_predictor),
        "control_fixed": ctl.resolve("control_fixed", control_fixed),
        "control_inla": ctl.resolve("control_inla", control_inla),
        "control_mode": ctl.resolve("control_mode", control_mode),
        "control_vb": ctl.resolve("control_vb", control_vb),
    }
    if inla_mode not in ("compact", "classic"):
        raise ModelError(unknown_choice("inla_mode", inla_mode, ("compact", "classic")))
    if na_covariates is not None and na_covariates not in NA_POLICIES:
        raise ModelError(unknown_choice("na_covariates", na_covariates, NA_POLICIES))
    controls["control_inla"]["inla.mode"] = inla_mode
    spec = parse_formula(formula, context=context, namespace=namespace)
    raw = _columns_of(data)
    columns = DataColumns(data)

    # --- the predictor matrix and the two row counts -------------------------------------------
    A_pred = controls["control_predictor"].get("A")
    if A_pred is not None:
        A_pred = sp.csr_matrix(A_pred)
        n_obs, n_rows = A_pred.shape
    else:
        n_rows = None
        n_obs = None

    # --- the response ---------------------------------------------------------------------------
    families = [family] if isinstance(family, str) else list(family)
    if spec.response is None:
        raise ModelError(f"the formula {formula!r} has no response (left-hand side)")
    surv = None
    surv_columns: dict[int, InlaSurv] = {}
    kw = survival_response(spec.response)
    if kw is not None:
        from .likelihoods.surv import inla_surv

        n_guess = n_obs if n_obs is not None else len(next(iter(raw.values())))
        args = {k: _eval_column(v, columns, n_guess, "inla.surv()") for k, v in kw.items()}
        try:
            surv = inla_surv(**args)
        except DataError as error:
            raise DataError(f'family "{families[0]}": {error}') from error
        Y = surv.time[:, None]
    else:
        if spec.response not in raw:
            if spec.response in columns:
                Y = _numeric_response(raw[spec.response], spec.response, families)
            else:
                try:
                    n_guess = n_obs if n_obs is not None else (len(data) if isinstance(data, pd.DataFrame) else None)
                    Y = np.asarray(_eval_column(spec.response, columns, n_guess, "the response"), dtype=float)
                except DataError:
                    raise DataError(unknown_choice("response column", spec.response, list(raw)).replace("unknown", "no", 1))
        else:
            try:
                Y, surv_columns = _response_columns(raw[spec.response], len(families))
            except (TypeError, ValueError) as exc:
                if isinstance(exc, DataError):
                    raise
                Y = _numeric_response(raw[spec.response], spec.response, families)
        if np.size(Y) == 0:
            raise DataError(f"data has no rows: the response {spec.response!r} is empty; give at least one observation")
        Y = Y.reshape(Y.shape[0], -1)
    if Y.shape[1] != len(families):
        raise ModelError(
            f"the response has {Y.shape[1]} column(s) but {len(families)} famil{'y was' if len(families) == 1 else 'ies were'} given "
            "(multi-likelihood models: one response column per family, NA elsewhere, as in R-INLA)"
        )
    if n_obs is None:
        n_obs = Y.shape[0]
        n_rows = n_obs
    if Y.shape[0] != n_obs:
        raise DataError(f"the response has {Y.shape[0]} rows but control_predictor A has {n_obs} rows")

    present = ~np.isnan(Y)
    if np.any(present.sum(axis=1) > 1):
        rows = np.flatnonzero(present.sum(axis=1) > 1)[:10] + 1
        raise DataError(f"rows {rows.tolist()} of the response have values for more than one family; each observation belongs to one family")
    observed = present.any(axis=1)
    family_of = np.where(observed, np.argmax(present, axis=1), 0)
    y = np.where(observed, np.nansum(np.where(present, Y, 0.0), axis=1), np.nan)

    # --- fixed effects --------------------------------------------------------------------------------
    # R-INLA always reads NA in a numeric fixed-effect covariate as 0. adelia does so only where
    # a data layout relies on it: multi-likelihood data (intercepts mu1 = (1,..,1, NA,..,NA),
    # mu2 = (NA,..,NA, 1,..,1) for Y = cbind(y1, y2)) and inla.stack data given through
    # control_predictor$A (covariates NA on the rows of other effects). For single-likelihood
    # data an NA covariate is usually a data error (a missing measurement silently set to 0
    # biases the fit), so there the default stops and names the rows; na_covariates="zero"
    # asks for R-INLA's rule explicitly.
    if na_covariates is None:
        na_covariates = "zero" if (A_pred is not None or len(families) > 1) else "error"
    fd = fixed_design(spec, data, n_rows=n_rows, na_covariates=na_covariates)
    if fd.n_rows != n_rows:
        raise DataError(f"the fixed effects have {fd.n_rows} rows, expected {n_rows}")
    _check_design_scale(fd.matrix, fd.names)
    mean, prec = _fixed_priors(fd.names, controls["control_fixed"])
    fixed = FixedEffects(tuple(fd.names), fd.matrix, mean, prec)

    # --- likelihoods and their hyperparameters (R-INLA order: families first) ----------------------------
    cf = control_family
    if isinstance(cf, str):  # R text, e.g. 'list(hyper=list(prec=list(prior="pc.prec")))'
        cf = r_to_python(cf)  # list(...) of settings, or list(list(...), ...): one per family
        if not isinstance(cf, (Mapping, list)):
            raise ControlError(f"control_family must be an R list(...) of settings, got {control_family!r}")
    if cf is None or isinstance(cf, Mapping):
        cf_list = [cf] * len(families) if len(families) == 1 or cf is None else [cf] + [None] * (len(families) - 1)
    else:
        cf_list = list(cf)
        if len(cf_list) != len(families):
            raise ModelError(f"control_family has {len(cf_list)} entries but there are {len(families)} families")
    obs_arrays = {
        "E": _obs_vector(E, "E", raw, n_obs),
        "Ntrials": _obs_vector(Ntrials, "Ntrials", raw, n_obs),
        "weights": _obs_vector(weights, "weights", raw, n_obs),
        "scale": _obs_vector(scale, "scale", raw, n_obs),
    }
    surv_data_of = {k: s.observation_data()[1] for k, s in surv_columns.items()}
    if surv is not None:
        surv_data_of[0] = surv.observation_data()[1]
    hypers: list[Hyperparameter] = []
    owners: list[str] = []
    blocks = []
    for k, fam in enumerate(families):
        lik = make_likelihood(fam, cf_list[k])
        names = set(getattr(lik, "data_names", ())) | {"weights"}
        rows = np.flatnonzero(observed & (family_of == k))
        fdata = {}
        for nm, arr in list(obs_arrays.items()) + list(surv_data_of.get(k, {}).items()):
            if arr is not None and nm in names:
                fdata[nm] = np.asarray(arr, dtype=float)[rows]
            elif arr is not None and nm not in names and nm in ("E", "Ntrials", "scale") and len(families) == 1:
                warn(f'{nm}= is not used by family "{fam}" and is ignored', UserWarning)
        lik.validate(y[rows], fdata, rows=rows)
        tidx = []
        for h in lik.hyperparameters:
            tidx.append(len(hypers))
            hypers.append(replace(h, internal_name=_suffix(h.internal_name, k), name=_suffix(h.name, k)) if len(families) > 1 else h)
            owners.append(f"likelihood:{k}")
        blocks.append(FamilyBlock(lik, rows, y[rows], fdata, np.asarray(tidx, dtype=np.int64)))
    off_arg = _obs_vector(offset, "offset", raw, n_obs)
    offset_obs = np.zeros(n_obs) if off_arg is None else off_arg
    if fd.offset is not None:
        offset_obs = offset_obs + (A_pred @ fd.offset if A_pred is not None else fd.offset)

    # --- latent components (formula order), copy terms ---------------------------------------------------
    components: list[Component] = []
    comp_theta: list[np.ndarray] = []
    copies: list[CopyTerm] = []
    for term in spec.f_terms:
        where = f"f({term.label}, ...)"
        if term.model == "copy" or term.args.get("copy") is not None:
            cp, h = _copy_term(term, columns, n_rows, components, len(hypers))
            copies.append(cp)
            if not h.fixed:
                hypers.append(h)
                owners.append(term.label)
            continue
        cov = None if term.covariate is None else _eval_column(term.covariate, columns, n_rows, where)
        grp = term.args.get("group")
        rep = term.args.get("replicate")
        grp = None if grp is None else _eval_column(grp, columns, n_rows, where + " group")
        rep = None if rep is None else _eval_column(rep, columns, n_rows, where + " replicate")
        w = None if term.weights is None else _eval_column(term.weights, columns, n_rows, where + " weights")
        comp = build_component(term, cov, group=grp, replicate=rep, weights=w, context=context)
        components.append(comp)
        comp_theta.append(np.arange(len(hypers), len(hypers) + comp.model.n_theta, dtype=np.int64))
        for h in comp.model.hyperparameters:
            hypers.append(h)
            owners.append(comp.label)
    layout = ThetaLayout(tuple(hypers), tuple(owners))

    ci = controls["control_inla"]
    block_structure = _block_structure(components, fixed, ci["solver"])
    graph = compile_graph(
        components,
        fixed,
        n_rows,
        A_pred=A_pred,
        copies=copies,
        component_theta=comp_theta,
        backend=ci["solver"],
        block_structure=block_structure,
        devices=ci.get("devices") if ci["solver"] == "bta" else None,
    )
    check_information(blocks, fixed, has_A=A_pred is not None)
    observations = ObservationModel(n_obs, offset_obs, tuple(blocks), family_of, observed)
    laplace = LaplaceApproximation(
        graph,
        observations,
        layout,
        NewtonOptions(max_iter=int(ci["newton.max.iter"]), tol=float(ci["newton.tol"])),
    )
    effect_offset = np.zeros(n_rows) if fd.offset is None else np.asarray(fd.offset, dtype=float)
    lincombs = None
    if lincomb is not None:
        from .lincomb import resolve_lincombs

        lincombs = resolve_lincombs(lincomb, graph, has_stack_A=A_pred is not None)
    return Model(spec, graph, observations, layout, laplace, controls, tuple(fd.names), tuple(families), y, n_rows, effect_offset,
                 lincombs, fd.encoding)


def _block_structure(components, fixed, solver: str):
    """A BTA layout when the latent field is organised in time blocks (space-time models).

    Every component that declares ``n_blocks``/``block_size`` (a DEMF space-time field, an
    SPDE with ``group=`` and an ar1 group model, ...) must have the same number of time
    blocks; block t holds time slice t of all of them (all variates of a coregional model at
    time t), in component order. Everything else — fixed effects, small components — goes to
    the arrow; when that arrow would be larger than a block there is no BTA layout.
    Returns None when the model has no time-block structure or another solver was asked for.
    """
    if solver not in ("auto", "bta"):
        return None
    timed, offset, others = [], 0, []
    for c in components:
        nb = getattr(c.model, "n_blocks", None)
        if nb:
            timed.append((offset, int(nb), int(c.model.block_size)))
        else:
            others.append(np.arange(offset, offset + c.model.n))
        offset += c.model.n
    if not timed or len({nb for _, nb, _ in timed}) != 1:
        return None
    block_size = sum(bs for _, _, bs in timed)
    arrow = np.concatenate(others + [offset + np.arange(fixed.p)]) if (others or fixed.p) else np.zeros(0, np.int64)
    if arrow.size > block_size:
        return None
    from .engine.ordering import interleaved_time_blocks

    return interleaved_time_blocks(timed[0][1], [(o, bs) for o, _, bs in timed], arrow)


def _response_columns(value, n_families: int) -> tuple[np.ndarray, dict[int, InlaSurv]]:
    """The response as an (n, k) array; R-INLA's ``Y = list(y1, inla.surv(...))`` (one entry per
    family, NA outside its rows) is accepted too: a survival entry contributes its times, and
    its event/time2/truncation are returned per family index."""
    if isinstance(value, InlaSurv):
        return value.time[:, None].astype(float), {0: value}
    if isinstance(value, (list, tuple)) and len(value) == n_families and n_families > 1 and any(
        isinstance(v, InlaSurv) or np.ndim(v) == 1 for v in value
    ):
        cols, survs = [], {}
        for k, v in enumerate(value):
            if isinstance(v, InlaSurv):
                survs[k] = v
                cols.append(np.asarray(v.time, dtype=float))
            else:
                cols.append(np.asarray(v, dtype=float).ravel())
        lengths = {c.size for c in cols}
        if len(lengths) != 1:
            raise DataError(f"the response list has entries of lengths {sorted(lengths)}; each must have one value per observation (NA outside its family's rows)")
        return np.column_stack(cols), survs
    return np.asarray(value, dtype=float), {}
