"""Predictions at new rows without stacks: ``res.predict(new_data)`` (inlabru's ``predict``).

R-INLA predicts by refitting with NA responses (or an ``inla.stack`` of prediction rows).
``res.predict(new_data)`` evaluates the fitted model's terms on new rows instead:

* fixed effects with the fit's encoding (factor levels and contrasts, ``I()``, interactions,
  :meth:`adelia.formula.fixed.FixedDesign.materialise`); a factor level the fit has not seen
  is an error naming it;
* every f() term through its index: the covariate value picks the node with that value
  (R-INLA's ``values``), ``group=``/``replicate=`` and f() weights as when fitting, NA: the
  term does not enter that row;
* a value the fit has no node for: for an ``iid`` term a new level, drawn from its prior
  N(0, 1/τ) at each θ (shared by all rows of that level); for any other (structured) term
  a :class:`~adelia.errors.DataError` naming the term and the values — never a silent reuse
  of another node;
* an SPDE term at coordinates, ``f(cbind(s1, s2), model=spde)``: the projector of the new
  locations built from the mesh (``inla.spde.make.A(mesh, loc)``; a location outside the
  mesh is a :class:`~adelia.errors.DataError` naming its rows), ``group=``/``replicate=``
  placing each row in its node block;
* ``copy`` terms through the term they copy (β fixed or estimated);
* the formula's ``offset()`` terms, plus ``offset=`` given here (the ``offset=`` argument of
  ``inla()`` is per observation and is not carried over).

The linear predictor's summaries come from its exact posterior under INLA's approximation,
a Gaussian mixture over the integration design (:mod:`adelia.inference.predict`): at rows of
the fitted data they equal ``res.summary_linear_predictor``. Fitted values are the family's
inverse link of that mixture (as ``summary_fitted_values``; the first family for a
multi-likelihood fit). Samples (``samples``, ``expr``) are joint posterior draws.

Example:
    >>> import adelia, pandas as pd
    >>> seeds = adelia.datasets.load("Seeds")
    >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
    ...                   Ntrials="n")
    >>> new = pd.DataFrame({"x1": [0, 1], "x2": [1, 1], "plate": [3, 99]})  # plate 99: new level
    >>> p = res.predict(new, expr=lambda e: e["x2"] - e["x1"], n_samples=200)
    >>> p.summary_fitted_values[["mean", "sd"]].round(2)
       mean    sd
    0  0.65  0.03
    1  0.59  0.04
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from .errors import DataError, ModelError
from .formula.fixed import FixedDesign
from .formula.rdata import DataColumns
from .inference.predict import NewLevels, RowsDesign, draw_rows, exact_mixture
from .inference.summaries import Mixture

__all__ = ["predict", "Prediction", "rows_design"]

#: latent models whose unseen levels are new exchangeable draws from the prior
EXCHANGEABLE = ("iid",)


def _n_rows(new_data: Any) -> int:
    if isinstance(new_data, pd.DataFrame):
        return len(new_data)
    if not isinstance(new_data, Mapping):
        raise DataError(f"new_data must be a pandas DataFrame or a dict of arrays, not {type(new_data).__name__}")
    lengths = {k: np.size(v) for k, v in new_data.items() if np.ndim(v) >= 1}
    distinct = sorted(set(lengths.values()))
    if len(distinct) != 1:
        detail = ", ".join(f'"{k}": {v}' for k, v in lengths.items())
        raise DataError(f"new_data: the columns must have one value per new row; their lengths differ ({detail})")
    return distinct[0]


def _fmt(values, limit: int = 10) -> str:
    vals = list(values)
    shown = ", ".join(f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in vals[:limit])
    return shown + (f", ... ({len(vals)} in all)" if len(vals) > limit else "")


def _keys(values) -> tuple[np.ndarray, np.ndarray]:
    """Lookup keys of covariate values and node values: numbers as floats, labels as strings
    (numbers formatted as R prints them, so that a factor "3" meets the node 3)."""
    if isinstance(values, pd.Categorical):
        cats = np.asarray(values.categories.astype(str), dtype=object)
        keys = np.where(values.codes >= 0, cats[np.maximum(values.codes, 0)], None)
        return keys.astype(object), values.codes < 0
    arr = np.asarray(values)
    if arr.dtype.kind == "O" or arr.dtype.kind in "US":
        miss = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in arr.tolist()], dtype=bool)
        keys = np.array([None if m else (f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v))
                         for v, m in zip(arr.tolist(), miss)], dtype=object)
        return keys, miss
    arr = arr.astype(float)
    return arr, np.isnan(arr)


def _node_lookup(ids) -> dict:
    ids = np.asarray(ids)
    if ids.dtype.kind == "O":
        return {str(v): i for i, v in enumerate(ids.tolist())}
    out = {}
    for i, v in enumerate(ids.astype(float).tolist()):
        out[v] = i
        out[f"{v:g}"] = i
    return out


def _group_index(term, columns, n, which: str, top: int, label: str) -> np.ndarray:
    from .model import _eval_column

    expr = term.args.get(which)
    if expr is None:
        return np.zeros(n, dtype=np.int64)
    col = np.asarray(_eval_column(expr, columns, n, f"f({label}, ...) {which}"), dtype=float)
    bad = ~np.isnan(col) & ((col != np.round(col)) | (col < 1) | (col > top))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"f({label}, ...): {which} values {_fmt(np.unique(col[rows]))} in new_data (rows "
                        f"{_fmt((rows + 1).tolist())}, 1-based) are not among the fitted {which}s 1..{top}")
    return np.nan_to_num(col, nan=1.0).astype(np.int64) - 1


def _term_rows(term, ids, n_nodes: int, columns, n: int, model_name: str, covariate_is_weight: bool):
    """(index (n,) node per row, -1 none, -2 unseen; weights (n,); unseen keys (n,) object)."""
    from .model import _eval_column

    label = term.label
    where = f'f({label}, model="{model_name}")'
    if term.covariate is None:
        raise ModelError(f"{where}: a term without a covariate cannot be evaluated on new data")
    cov = _eval_column(term.covariate, columns, n, where)
    w = np.ones(n) if term.weights is None else np.nan_to_num(
        np.asarray(_eval_column(term.weights, columns, n, where + " weights"), dtype=float), nan=0.0)
    if covariate_is_weight:  # f(x, model="linear"): one node, the covariate is its weight
        c = np.asarray(cov, dtype=float)
        return np.where(np.isnan(c), -1, 0).astype(np.int64), w * np.nan_to_num(c), None
    keys, miss = _keys(cov)
    lookup = _node_lookup(np.asarray(ids)[:n_nodes])
    index = np.full(n, -1, dtype=np.int64)
    unseen = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(~miss):
        pos = lookup.get(keys[i])
        if pos is None:
            unseen[i] = True
        else:
            index[i] = pos
    index[unseen] = -2
    return index, w, np.where(unseen, keys, None)


def _projector_rows(term, columns, n: int, ngroup: int, nrep: int, n_nodes: int):
    """(rows, columns within the term's block, values) of an SPDE term at new coordinates:
    the projector ``inla.spde.make.A(mesh, loc)`` of the new locations (an error naming the rows
    outside the mesh), times the f() weights, at each row's group/replicate block."""
    from .model import _eval_column

    label = term.label
    where = f"f({label}, model=spde)"
    coords = _eval_column(term.covariate, columns, n, where)
    A, _ = term.model.projector_rows(coords, label, where="new_data")
    A = A.tocoo()
    w = np.ones(n) if term.weights is None else np.nan_to_num(
        np.asarray(_eval_column(term.weights, columns, n, where + " weights"), dtype=float), nan=0.0)
    gi = _group_index(term, columns, n, "group", ngroup, label) if ngroup > 1 else np.zeros(n, np.int64)
    ri = _group_index(term, columns, n, "replicate", nrep, label) if nrep > 1 else np.zeros(n, np.int64)
    cols = A.col + n_nodes * gi[A.row] + n_nodes * ngroup * ri[A.row]
    return A.row, cols, A.data * w[A.row]


def rows_design(model, new_data: Any, offset=None) -> RowsDesign:
    """η_new = A_new x + u_new + offset for ``new_data`` (see the module docstring).

    Raises:
        DataError: unknown columns, unseen factor levels of the fixed effects, values of a
            structured f() term that are not nodes of the fit (naming term and values),
            group/replicate values beyond the fit's.

    Example:
        >>> design = rows_design(res.model, new)   # res, new: the module's example
        >>> design.n_rows, [label for label, *_ in design.terms]
        (2, ['(Intercept)', 'x1', 'x2', 'plate'])
        >>> design.new_levels[0].levels   # plate 99 is not a node of the fit
        (99.0,)
    """
    from .model import _obs_vector

    g = model.graph
    n = _n_rows(new_data)
    columns = DataColumns(new_data)
    if model.fixed_encoding is None:
        raise ModelError("this model was compiled without its fixed-effects encoding; refit it with adelia.inla() to predict")
    empty = FixedDesign(np.zeros((0, len(model.fixed_names))), tuple(model.fixed_names), (), None, model.fixed_encoding)
    fd = empty.materialise(new_data, n_rows=n)
    n_latent = g.n_latent
    groups: list[list] = [[] for _ in range(1 + len(g.copies))]  # (rows, cols, vals) per scale group
    terms: list[tuple[str, bool, int, sp.csr_matrix]] = []
    new_levels: list[NewLevels] = []

    def add(j, label, r, c, v, fixed=False):
        groups[j].append((r, c, v))
        terms.append((label, fixed, j, sp.csr_matrix((v, (r, c)), shape=(n, n_latent))))

    fixed_blocks = [b for b in g.blocks if b.kind == "fixed"]
    for b, col in zip(fixed_blocks, fd.matrix.T):
        r = np.flatnonzero(col != 0)
        add(0, b.label, r, np.full(r.size, b.start), col[r], fixed=True)

    comps = {c.label: (k, c) for k, c in enumerate(g.components)}
    copies = {cp.label: (j + 1, cp) for j, cp in enumerate(g.copies)}
    for term in model.spec.f_terms:
        label = term.label
        if label in copies:
            j, cp = copies[label]
            src = comps[cp.source][1]
            index, w, unseen = _term_rows(term, cp.ids, src.extra.get("n", src.model.n), columns, n, "copy", False)
            if (index == -2).any():
                rows = np.flatnonzero(index == -2)
                raise DataError(f'f({label}, copy="{cp.source}"): values {_fmt(dict.fromkeys(unseen[rows].tolist()))} in new_data '
                                f"(rows {_fmt((rows + 1).tolist())}, 1-based) are not among the nodes of \"{cp.source}\"")
            r = np.flatnonzero(index >= 0)
            add(j, label, r, g.block(cp.source).start + index[r], w[r])
            continue
        k, comp = comps[label]
        extra = comp.extra
        n_nodes = int(extra.get("n", comp.model.n))
        ngroup, nrep = int(extra.get("ngroup", 1)), int(extra.get("nrep", 1))
        name = str(extra.get("model", comp.model.model_name))
        if extra.get("projector") is not None:  # f(cbind(s1, s2), model=spde): projector at the new coordinates
            r, c, v = _projector_rows(term, columns, n, ngroup, nrep, n_nodes)
            add(0, label, r, g.block(label).start + c, v)
            continue
        index, w, unseen = _term_rows(term, comp.ids, n_nodes, columns, n, name,
                                      bool(getattr(comp.model, "covariate_is_weight", False)))
        gi = _group_index(term, columns, n, "group", ngroup, label) if ngroup > 1 else np.zeros(n, np.int64)
        ri = _group_index(term, columns, n, "replicate", nrep, label) if nrep > 1 else np.zeros(n, np.int64)
        new = np.flatnonzero(index == -2)
        if new.size:
            if name not in EXCHANGEABLE or ngroup > 1 or nrep > 1:
                lo, hi = (np.asarray(comp.ids)[:n_nodes][[0, -1]].tolist() if n_nodes else (None, None))
                raise DataError(
                    f'f({label}, model="{name}"): new_data has values of {label!r} that the fitted model has no node for: '
                    f"{_fmt(dict.fromkeys(unseen[new].tolist()))} (rows {_fmt((new + 1).tolist())}, 1-based; the fitted "
                    f"nodes run from {_fmt([lo])} to {_fmt([hi])}). A structured term cannot be evaluated outside its "
                    "nodes: refit with values= covering them (or, as in R-INLA, rows with NA responses there)."
                )
            levels = tuple(dict.fromkeys(unseen[new].tolist()))
            pos = {v: i for i, v in enumerate(levels)}
            diag = float(getattr(comp.model, "diagonal", 0.0) or 0.0)
            new_levels.append(NewLevels(label, int(g.component_theta[k][0]), diag, new,
                                        np.array([pos[v] for v in unseen[new].tolist()], dtype=np.int64), levels, w[new]))
        r = np.flatnonzero(index >= 0)
        full = index[r] + n_nodes * gi[r] + n_nodes * ngroup * ri[r]
        add(0, label, r, g.block(label).start + full, w[r])

    latent = []
    for parts in groups:
        r = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        c = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        v = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0)
        latent.append(sp.csr_matrix((np.asarray(v, float), (r, c)), shape=(n, n_latent)))
    off = np.zeros(n) if fd.offset is None else np.asarray(fd.offset, dtype=float)
    if offset is not None:
        raw = dict(new_data) if isinstance(new_data, Mapping) else {str(c): new_data[c] for c in new_data.columns}
        off = off + _obs_vector(offset, "offset", raw, n)
    return RowsDesign(n, tuple(latent), off, tuple(new_levels), tuple(terms))


def _sample_summary(values: np.ndarray, quantiles) -> dict[str, np.ndarray]:
    """mean, sd, quantiles and mode (of a Gaussian kernel density) of draws (m, k) per column."""
    from scipy import stats

    out = {"mean": values.mean(axis=0), "sd": values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])}
    for q in quantiles:
        out[f"{q:g}quant"] = np.quantile(values, q, axis=0)
    mode = np.empty(values.shape[1])
    for j in range(values.shape[1]):
        v = values[:, j]
        if np.ptp(v) == 0 or v.size < 3:
            mode[j] = v[0]
            continue
        grid = np.linspace(v.min(), v.max(), 512)
        mode[j] = grid[np.argmax(stats.gaussian_kde(v)(grid))]
    out["mode"] = mode
    return out


class Prediction:
    """The posterior at new rows (:func:`predict`).

    Attributes:
        summary_linear_predictor: one row per new row: mean, sd, quantiles, mode, kld of η
            (R-INLA's columns; exact Gaussian mixture).
        summary_fitted_values: the same for the inverse link of η (the family's fitted values).
        samples: xarray Dataset over ``sample`` (``n_samples`` joint draws): ``Predictor`` and
            each f() term's contribution (dims ``sample``, ``row``), the fixed effects and
            hyperparameters (dims ``sample``), ``expr`` when given; coordinate ``config``.
        summary_expr: summaries of ``expr`` from the draws (one row per element), or None.
        mixture: the Gaussian mixture of η at the new rows.

    Example:
        >>> p = predict(res, new, n_samples=100)   # res, new: the module's example
        >>> p
        <Prediction: 2 rows, 100 samples>
        >>> p.samples["Predictor"].shape, p.summary_expr is None
        ((100, 2), True)
    """

    def __init__(self, summary_linear_predictor, summary_fitted_values, samples, summary_expr, mixture):
        self.summary_linear_predictor = summary_linear_predictor
        self.summary_fitted_values = summary_fitted_values
        self.samples = samples
        self.summary_expr = summary_expr
        self.mixture = mixture

    def __repr__(self) -> str:
        n = len(self.summary_linear_predictor)
        k = 0 if self.samples is None else self.samples.sizes.get("sample", 0)
        return f"<Prediction: {n} rows, {k} samples{', expr' if self.summary_expr is not None else ''}>"


def predict(result, new_data: Any, expr: Callable[[dict], Any] | None = None, n_samples: int = 1000, seed=0,
            quantiles=None, offset=None) -> Prediction:
    """Posterior predictions of a fitted model at new rows (see the module docstring).

    η_new,i = Σ_fixed β_j x_ij + Σ_terms w_i f_t(index_i) + offset_i, its posterior the mixture
    Σ_k p_k N(a_i'μ̃_k + o_i, a_i'Σ_k a_i + new-level variance) over INLA's design points θ_k
    (:mod:`adelia.inference.predict`); fitted values g⁻¹(η) with the family's link.

    Args:
        result: an :class:`adelia.results.InlaResult`.
        new_data: DataFrame or dict of arrays with the columns the formula's terms use (the
            response is not needed).
        expr: a function of the named effects of each joint draw, returning an array whose
            first axis is the draw: ``e["Predictor"]`` (n_samples, n_new) η; ``e[label]`` the
            f() term's contribution at the new rows (n_samples, n_new); ``e[fixed name]`` the
            coefficient ("(Intercept)", "x1", ...) and ``e[hyperparameter name]`` (user scale,
            "Precision for plate") (n_samples,). Its posterior summary is ``summary_expr``.
        n_samples: joint draws for ``samples`` and ``expr`` (0: none, summaries only).
        seed: int or numpy Generator for the draws.
        quantiles: the quantiles to report (default: the fit's).
        offset: an extra offset per new row (array, scalar or column name), added to the
            formula's ``offset()`` terms.

    Returns:
        A :class:`Prediction`.

    Example:
        >>> p = res.predict(new, expr=lambda e: e["x2"] - e["x1"], n_samples=500)
        >>> list(p.summary_expr.columns)
        ['mean', 'sd', '0.025quant', '0.5quant', '0.975quant', 'mode']
        >>> p.summary_linear_predictor.shape   # mean, sd, 3 quantiles, mode, kld
        (2, 7)
    """
    import jax.numpy as jnp

    from .model import check_quantiles
    from .results import _table, _transformed_summary

    model, post = result.model, result.posterior
    quantiles = result.quantiles if quantiles is None else check_quantiles(quantiles)
    n_samples = int(n_samples)
    if n_samples < 0 or (expr is not None and n_samples < 2):
        raise DataError(f"n_samples must be a non-negative integer (at least 2 with expr=), got {n_samples}")
    design = rows_design(model, new_data, offset=offset)
    index = new_data.index if isinstance(new_data, pd.DataFrame) else pd.RangeIndex(design.n_rows)

    mix = exact_mixture(model, post, design)
    kld = np.zeros(mix.n)
    if mix.loc.shape[0] > 1:
        from .inference.summaries import kld_gaussian_vs

        kld = kld_gaussian_vs(mix, Mixture(np.ones(1), mix.mean()[None, :], mix.sd()[None, :]))
    lp = _table(mix.summary(quantiles), quantiles, index, kld)
    fam = model.observations.families[0]
    theta_mode = model.layout.expand_host(post.theta_mode)
    theta_fam = jnp.asarray(fam.theta(jnp.asarray(theta_mode)))
    inv = lambda e: np.asarray(fam.likelihood.fitted(jnp.asarray(e), theta_fam, {}))
    fv = _table(_transformed_summary(mix, inv, quantiles), quantiles, index)

    samples = summary_expr = None
    if n_samples > 0:
        config, theta_full, x, effects, eta = draw_rows(model, post, design, n_samples, seed=seed)
        row = np.arange(design.n_rows)
        data: dict[str, tuple] = {"Predictor": (("sample", "row"), eta)}
        named: dict[str, np.ndarray] = {"Predictor": eta}
        for label, v in effects.items():
            data[label] = (("sample", "row"), v)
            named[label] = v
        for b in model.graph.blocks:
            if b.kind == "fixed":
                data[b.label] = (("sample",), x[:, b.start])
                named[b.label] = x[:, b.start]
        for j, h in zip(model.free, model.hyperparameters):
            val = np.asarray(h.to_user(jnp.asarray(theta_full[:, j])), dtype=float)
            data[h.name] = (("sample",), val)
            named[h.name] = val
        coords = {"sample": np.arange(n_samples), "config": ("sample", config), "row": row}
        if expr is not None:
            value = np.asarray(expr(named), dtype=float)
            if value.ndim == 0 or value.shape[0] != n_samples:
                raise DataError(f"expr must return an array whose first axis is the draw (length {n_samples}), "
                                f"got shape {value.shape}")
            flat = value.reshape(n_samples, -1)
            dims = ("sample",) + tuple(f"expr_dim_{i}" for i in range(value.ndim - 1))
            data["expr"] = (dims, value)
            summary_expr = _table(_sample_summary(flat, quantiles), quantiles, pd.RangeIndex(flat.shape[1]))
        samples = xr.Dataset(data, coords=coords, attrs={"description": "joint posterior draws at new rows (adelia predict)"})
    return Prediction(lp, fv, samples, summary_expr, mix)
