"""From an f() term and its data columns to a :class:`~adelia.models.base.Component`.

:func:`build_component` is the single entry point the model compiler calls for every f() term
(except ``copy``, which the compiler resolves against the term it copies). It

1. finds the model class (``registry.model_class``; an unknown name lists the known ones);
2. checks the f() arguments against R-INLA's argument list (an unknown one lists the valid
   ones) and resolves R-INLA's defaults that depend on each other: ``constr`` (the model's
   default, also for ``cyclic=TRUE``), ``diagonal`` (1e-4 when ``constr``/``extraconstr``,
   else 0), ``scale_model`` (FALSE, R-INLA's ``scale.model.default``);
3. calls the class's ``from_term(label, covariate, args)``;
4. expands ``group=`` / ``replicate=`` (``control_group``) with :class:`~adelia.models.group.GroupedModel`:
   the latent vector is ordered as R-INLA orders it, node fastest, then group, then replicate:
   ``index = node + N·(group − 1) + N·ngroup·(replicate − 1)`` (N = size of one copy).

:func:`resolve_index` implements R-INLA's ``values``/``n`` semantics (``rinla/R/inla.R``):
without ``values`` the nodes are the sorted unique covariate values (a factor's levels, in
level order; strings sorted); ``values`` given are used in the given order (duplicates are an
error); every non-NA covariate value must be one of the nodes. Model modules call it from
``from_term``.

Example:
    >>> import numpy as np
    >>> from adelia.formula.spec import FTerm
    >>> comp = build_component(FTerm("t", "rw1"), np.array([3.0, 1.0, np.nan, 2.0]))
    >>> comp.index.tolist(), comp.ids.tolist(), comp.model.model_name
    ([2, 0, -1, 1], [1.0, 2.0, 3.0], 'rw1')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError, ModelError, unknown_choice
from . import registry
from .base import Component
from .constraints import default_diagonal

__all__ = ["build_component", "resolve_index", "F_ARGUMENTS", "DEFAULT_CONSTR"]

#: f() arguments (R-INLA's names, Python spelling) accepted by :func:`build_component`.
F_ARGUMENTS = frozenset(
    """
    model copy same_as n nrep replicate ngroup group control_group hyper initial prior param fixed
    season_length constr extraconstr values cyclic diagonal graph graph_file cdf quantiles Cmatrix
    rankdef Z nrow ncol nu bvalue spde_prefix spde2_prefix spde2_transform spde3_prefix
    spde3_transform mean_linear prec_linear compute of precision range adjust_for_con_comp order
    scale strata rgeneric cgeneric scale_model args_slm args_ar1c correct locations vb_correct
    debug weights A_local
    """.split()
)

#: R-INLA's ``constr`` default of each latent model (``inla.models()$latent$<m>$constr``).
DEFAULT_CONSTR = {
    "linear": False, "iid": False, "rw1": True, "rw2": True, "crw2": True, "seasonal": False,
    "besag": True, "besag2": True, "bym": True, "bym2": True, "besagproper": False,
    "besagproper2": False, "ar1": False, "ar1c": False, "ar": False, "ou": False, "generic": False,
    "generic0": False, "generic1": False, "generic2": False, "generic3": False, "spde": False,
    "spde2": False, "spde3": False, "rw2d": True, "rw2diid": True, "matern2d": False, "z": False,
    "fgn": False, "fgn2": False, "dmatern": False, "clinear": False,
}

#: more latent nodes than one f() term can sensibly have (2³¹ − 1; a model that size would need
#: terabytes): a larger group/replicate count is an input error, e.g. a value instead of an index
MAX_LATENT_NODES = 2**31 - 1

_MISSING = object()


def _as_covariate(x, label: str):
    """Covariate column -> (kind, array): kind 'num' (float, NaN = NA) or 'cat' (labels list,
    codes with -1 = NA)."""
    if x is None:
        return "none", None
    cats = getattr(x, "cat", None)
    if cats is not None and hasattr(x.cat, "categories"):  # pandas Series of dtype category
        x = x.values
    if hasattr(x, "categories") and hasattr(x, "codes"):  # pandas Categorical
        levels = [str(c) for c in x.categories]
        return "cat", (levels, np.asarray(x.codes, dtype=np.int64))
    arr = np.asarray(x)
    if arr.dtype.kind in "biuf":
        return "num", arr.astype(float).ravel()
    if arr.dtype.kind in "OUS":
        flat = arr.ravel()
        missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in flat])
        numeric = True
        try:
            vals = np.array([np.nan if m else float(v) for v, m in zip(flat, missing)])
            numeric = all(isinstance(v, (int, float, np.number)) for v, m in zip(flat, missing) if not m)
        except (TypeError, ValueError):
            numeric = False
        if numeric:
            return "num", vals
        strs = np.array(["" if m else str(v) for v, m in zip(flat, missing)], dtype=object)
        levels = sorted(set(strs[~missing].tolist()))
        pos = {s: i for i, s in enumerate(levels)}
        codes = np.array([-1 if m else pos[s] for s, m in zip(strs, missing)], dtype=np.int64)
        return "cat", (levels, codes)
    raise ModelError(f"f({label}, ...): the covariate {label!r} has unsupported type {arr.dtype}")


def _fmt_values(vals, limit: int = 10) -> str:
    vals = list(vals)
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals[:limit])
    return shown + (f", ... ({len(vals)} in all)" if len(vals) > limit else "")


def resolve_index(
    label: str,
    covariate,
    values=None,
    n: int | None = None,
    *,
    default_values=None,
    require_sorted: bool = False,
    min_diff: float | None = None,
    model: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """R-INLA's mapping of the covariate to nodes.

    Args:
        label: the term's name (for messages).
        covariate: the f() covariate column (numbers with NaN for NA, strings, or a pandas
            categorical), or None.
        values: the ``values=`` argument, or None.
        n: the ``n=`` argument, or None.
        default_values: the nodes when neither ``values`` nor a covariate-based rule applies
            (R-INLA's ``set.default.values`` models — generic, besag — use 1..n).
        require_sorted: numeric nodes must be strictly increasing (rw1, rw2; factor levels are
            placed at 1, 2, ...).
        min_diff: R-INLA's ``min.diff`` check for rw models (min gap / range).
        model: model name for messages.

    Returns:
        (index, ids): 0-based node of every row (-1 for NA), and the node values (R-INLA's
        ``values``; strings for a factor covariate).

    Raises:
        ModelError: covariate values that are not nodes (listing them and their rows),
            duplicated ``values``, ``n`` inconsistent with the covariate, unsorted values.
    """
    where = f'f({label}, model="{model}")' if model else f"f({label}, ...)"
    kind, cov = _as_covariate(covariate, label)
    if kind == "num" and np.any(np.isinf(cov)):
        rows = np.flatnonzero(np.isinf(cov)) + 1
        raise DataError(
            f"{where}: the covariate column {label!r} is infinite at row(s) {_fmt_values(rows.tolist())}; "
            "f() covariates must be finite (use NA for rows without this effect)"
        )
    if values is not None:
        vkind, vals = _as_covariate(values, label)
        if vkind == "num":
            ids = vals
            if np.any(np.isnan(ids)):
                raise ModelError(f"{where}: values= contains NA")
            uniq, counts = np.unique(ids, return_counts=True)
            if np.any(counts > 1):
                raise ModelError(f"{where}: values= are not unique; repeated: {_fmt_values(uniq[counts > 1])}")
        else:
            levels, codes = vals
            ids = np.array([levels[c] for c in codes], dtype=object)
            if len(set(ids.tolist())) != ids.size:
                raise ModelError(f"{where}: values= are not unique")
        if n is not None and int(n) != ids.size:
            raise ModelError(f"{where}: n={n} but values= has {ids.size} entries")
    elif default_values is not None:
        ids = np.asarray(default_values)
    elif kind == "num":
        ok = cov[~np.isnan(cov)]
        ids = np.unique(ok)
        if n is not None and int(n) != ids.size:
            n = int(n)
            if ok.size and np.all(ok == np.round(ok)) and ok.min() >= 1 and ok.max() <= n:
                ids = np.arange(1.0, n + 1.0)
            else:
                bad = ok[(ok != np.round(ok)) | (ok < 1) | (ok > n)]
                raise ModelError(
                    f"{where}: n={n} but the covariate {label!r} has {ids.size} distinct values; the values "
                    f"that are not in 1..{n}: {_fmt_values(np.unique(bad))}. Give values= (the nodes) or fix n."
                )
    elif kind == "cat":
        ids = np.array(cov[0], dtype=object)
    else:
        if n is None:
            raise ModelError(f"{where}: without a covariate, n= or values= is needed")
        ids = np.arange(1.0, int(n) + 1.0)

    if require_sorted and ids.dtype != object and not np.all(np.diff(ids.astype(float)) > 0):
        raise ModelError(f"{where}: the values (locations) must be strictly increasing")
    if min_diff is not None and ids.size > 1 and ids.dtype != object:
        span = float(ids.max() - ids.min())
        gap = float(np.min(np.diff(np.sort(ids.astype(float)))))
        if span > 0 and gap / span < min_diff:
            raise ModelError(
                f"{where}: locations are too close: min(diff(sort(x)))/diff(range(x)) = {gap / span:.4g} < {min_diff:.4g}. "
                "Bin the covariate (R-INLA's inla.group) to fix this."
            )

    if kind == "none":
        return np.zeros(0, dtype=np.int64), ids
    if kind == "num":
        if ids.dtype == object:
            raise ModelError(f"{where}: the covariate is numeric but values= are labels")
        nodes = ids.astype(float)
        order = np.argsort(nodes, kind="stable")
        pos = np.searchsorted(nodes[order], cov)
        pos = np.clip(pos, 0, nodes.size - 1)
        found = (nodes[order][pos] == cov) & ~np.isnan(cov)
        index = np.where(found, order[pos], -1).astype(np.int64)
        bad = ~found & ~np.isnan(cov)
    else:
        levels, codes = cov
        if ids.dtype != object:
            # factor covariate with numeric nodes (default_values 1..n): R-INLA matches codes
            ids_str = [f"{v:g}" for v in ids.astype(float)]
        else:
            ids_str = [str(v) for v in ids]
        pos = {s: i for i, s in enumerate(ids_str)}
        names = [levels[c] if c >= 0 else None for c in codes]
        index = np.array([pos.get(s, -1) if s is not None else -1 for s in names], dtype=np.int64)
        bad = np.array([s is not None and s not in pos for s in names])
        cov = np.array(names, dtype=object)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise ModelError(
            f"{where}: {rows.size} covariate value{'s' if rows.size != 1 else ''} of {label!r} "
            f"{'are' if rows.size != 1 else 'is'} not among the model's nodes (values): "
            f"{_fmt_values(sorted(set(cov[rows].tolist())))} (rows {_fmt_values((rows + 1).tolist())}, 1-based). "
            "Use NA for rows without this effect, or give values=/n= covering them."
        )
    return index, ids


def _numbers(x, name: str, label: str) -> np.ndarray:
    """A group/replicate/weights column as a flat float array (NaN = NA), or ModelError."""
    try:
        return np.asarray(x, dtype=float).ravel()
    except (TypeError, ValueError):
        what = "numbers" if name == "weights" else "integers 1, 2, ..."
        raise ModelError(f"f({label}, ...): {name} must be numbers, but the column holds other values "
                         f"(e.g. strings); convert it to {what} first") from None


def _column(x, name: str, label: str, n_rows: int) -> np.ndarray:
    """A group/replicate column as float (NaN = NA), checked to be positive integers."""
    arr = _numbers(x, name, label)
    if arr.size == 1 and n_rows > 1:
        arr = np.full(n_rows, arr[0])
    if arr.size != n_rows:
        raise ModelError(f"f({label}, ...): {name} has {arr.size} values but the covariate has {n_rows}")
    ok = arr[~np.isnan(arr)]
    bad = ok[(ok != np.round(ok)) | (ok < 1) | ~np.isfinite(ok)]
    if bad.size:
        raise ModelError(f"f({label}, ...): {name} must be integers 1, 2, ...; got {_fmt_values(np.unique(bad))}")
    return arr


#: f() arguments that are one logical value (R's TRUE/FALSE)
_LOGICAL_ARGUMENTS = ("constr", "cyclic", "scale_model", "adjust_for_con_comp", "compute",
                      "vb_correct")
#: f() arguments that are one finite number
_NUMBER_ARGUMENTS = ("n", "nrep", "ngroup", "rankdef", "diagonal", "season_length", "order",
                     "nrow", "ncol", "nu", "precision", "bvalue")


def _check_argument_types(label: str, args: Mapping[str, Any]) -> None:
    """ModelError for an f() argument of the wrong kind (``rankdef="a"``, ``constr=c(1, 2)``),
    naming the term, the argument, the value and what it must be."""
    for key in _LOGICAL_ARGUMENTS:
        value = args.get(key)
        logical = isinstance(value, (bool, np.bool_)) or (
            isinstance(value, (int, np.integer)) and value in (0, 1))
        if value is not None and not logical:
            raise ModelError(f"f({label}, ...): {key} = {value!r} must be TRUE or FALSE")
    for key in _NUMBER_ARGUMENTS:
        value = args.get(key)
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value):
            raise ModelError(f"f({label}, ...): {key} = {value!r} must be one finite number")


def build_component(term, covariate, group=None, replicate=None, weights=None, context: Mapping | None = None) -> Component:
    """Build the latent component of one f() term.

    Args:
        term: the :class:`~adelia.formula.spec.FTerm` (model name or model object, args).
        covariate: the covariate column (effects-level rows; NaN/None = NA), or None.
        group, replicate: the ``group=``/``replicate=`` columns (1-based integers), or None.
        weights: the f() weights column (NA -> 0), or None (all 1).
        context: unused keys are ignored (reserved for resolving names).

    Returns:
        A :class:`Component`: model, 0-based index per row (-1 = unused), weights, ids
        (``values``, tiled over groups and replicates) and ``extra`` with ``n`` (one copy),
        ``ngroup``, ``nrep`` and ``group``/``replicate`` of every node.

    Raises:
        ModelError: unknown model (listing the known ones) or argument (listing the valid
            ones), inconsistent group/replicate, and the model's own errors.
    """
    label = term.label
    model = term.model
    if isinstance(model, str):
        if model == "copy" or term.args.get("copy") is not None:
            raise ModelError(f"f({label}, copy=...): copy terms are resolved by the model compiler, not build_component")
        cls = registry.model_class(model)
        name = model
    elif hasattr(model, "from_term"):
        cls = model
        name = getattr(model, "model_name", type(model).__name__)
    else:
        raise ModelError(f"f({label}, model=...): model must be a model name or a model object, got {type(model).__name__}")

    args = dict(term.args)
    args.pop("model", None)
    for key in args:
        if key not in F_ARGUMENTS:
            raise ModelError(unknown_choice(f"argument of f({label}, ...)", key, F_ARGUMENTS))
    _check_argument_types(label, args)
    control_group = args.pop("control_group", None) or {}
    ngroup_arg = args.pop("ngroup", None)
    nrep_arg = args.pop("nrep", None)
    for key in ("group", "replicate", "weights"):
        args.pop(key, None)

    # R-INLA's inter-dependent defaults (f.R)
    if args.get("constr") is None:
        dflt = getattr(cls, "default_constr", DEFAULT_CONSTR.get(name))
        if dflt is not None:
            # current R-INLA keeps the sum-to-zero constraint of cyclic walks (the reference fit
            # tokyo_rw2_cyclic has Σ x = 0); older f.R versions turned it off for cyclic=TRUE
            args["constr"] = bool(dflt)
    if args.get("diagonal") is None and "constr" in args:
        args["diagonal"] = default_diagonal(args["constr"], args.get("extraconstr"))
    if args.get("scale_model") is None:
        # R-INLA's scale.model.default (FALSE); models that always scale (bym2) declare their own
        args["scale_model"] = getattr(cls, "default_scale_model", False)

    cov = None if covariate is None else covariate
    n_rows = len(cov) if cov is not None else (len(group) if group is not None else 0)
    g = None if group is None else _column(group, "group", label, n_rows)
    r = None if replicate is None else _column(replicate, "replicate", label, n_rows)
    ngroup = int(ngroup_arg) if ngroup_arg is not None else (int(np.nanmax(g)) if g is not None and np.any(~np.isnan(g)) else 1)
    nrep = int(nrep_arg) if nrep_arg is not None else (int(np.nanmax(r)) if r is not None and np.any(~np.isnan(r)) else 1)

    expanded = ngroup > 1 or nrep > 1
    diagonal = float(args.get("diagonal") or 0.0)
    inner_args = dict(args)
    if expanded:
        inner_args["diagonal"] = 0.0  # added once to the expanded matrix, as R-INLA does
    if cov is not None and np.ndim(cov) == 2 and not hasattr(cls, "projector_rows"):
        raise ModelError(f'f({label}, model="{name}"): the covariate has {np.shape(cov)[1]} columns (coordinates); '
                         "only an SPDE model (model=spde) maps coordinates to nodes -- give one column for this model")
    inner, index, ids = cls.from_term(label, cov, inner_args)
    if inner.n * ngroup * nrep > MAX_LATENT_NODES:  # Python ints: no overflow before the check
        raise ModelError(f"f({label}, ...): {inner.n} nodes × ngroup={ngroup} × nrep={nrep} = {inner.n * ngroup * nrep} "
                         f"latent nodes (more than {MAX_LATENT_NODES}); group= and replicate= take the indices "
                         "1..ngroup and 1..nrep of the copies")
    index = np.asarray(index, dtype=np.int64)
    ids = np.asarray(ids)

    w = np.ones(index.size) if weights is None else np.nan_to_num(_numbers(weights, "weights", label), nan=0.0)
    if not np.all(np.isfinite(w)):
        raise ModelError(f"f({label}, ...): the weights must be finite numbers")
    if w.size != index.size:
        raise ModelError(f"f({label}, ...): the weights have {w.size} values but the covariate has {index.size}")
    if getattr(inner, "covariate_is_weight", False):
        w = w * np.nan_to_num(np.asarray(cov, dtype=float).ravel(), nan=0.0)

    extra: dict[str, Any] = {"n": inner.n, "ngroup": ngroup, "nrep": nrep, "model": name}
    row_projector = getattr(inner, "row_projector", None)
    if row_projector is not None:  # f(cbind(s1, s2), model=spde): rows of A instead of an index
        extra["projector"] = _expanded_projector(row_projector, w, group, replicate, inner.n, ngroup, nrep, label)
    if not expanded:
        return Component(model=inner, index=index, weights=w, ids=ids, extra=extra)

    from .group import GroupedModel, make_group_model

    used = index >= 0
    for col, nm, top in ((g, "group", ngroup), (r, "replicate", nrep)):
        if col is None:
            continue
        if np.any(np.isnan(col[used])):
            rows = np.flatnonzero(used & np.isnan(col)) + 1
            raise ModelError(f"f({label}, ...): {nm} is NA where {label!r} is not (rows {_fmt_values(rows.tolist())})")
        if np.any(col[used] > top):
            bad = np.unique(col[used][col[used] > top])
            raise ModelError(f"f({label}, ...): {nm} values {_fmt_values(bad)} exceed n{nm[:3] if nm == 'group' else 'rep'}={top}")
    gi = np.zeros(index.size, dtype=np.int64) if g is None else np.nan_to_num(g, nan=1.0).astype(np.int64) - 1
    ri = np.zeros(index.size, dtype=np.int64) if r is None else np.nan_to_num(r, nan=1.0).astype(np.int64) - 1
    N = inner.n
    full_index = np.where(used, index + N * gi + N * ngroup * ri, -1)
    group_model = make_group_model(control_group, ngroup, label) if ngroup > 1 else None
    model_obj = GroupedModel(inner, group_model, ngroup=ngroup, nrep=nrep, diagonal=diagonal)
    extra.update(
        group=np.tile(np.repeat(np.arange(1, ngroup + 1), N), nrep),
        replicate=np.repeat(np.arange(1, nrep + 1), N * ngroup),
    )
    return Component(model=model_obj, index=full_index, weights=w, ids=np.tile(ids, ngroup * nrep), extra=extra)


def _expanded_projector(A, w, group, replicate, n: int, ngroup: int, nrep: int, label: str) -> sp.csr_matrix:
    """The term's rows of A_formula when the model maps rows to nodes by a matrix (an SPDE at
    coordinates): w_i · A_i placed at the node block of row i's group and replicate
    (column j + n(g − 1) + n·ngroup(r − 1), as ``inla.spde.make.A`` with group/repl)."""
    A = sp.coo_matrix(A)
    shift = np.zeros(A.shape[0], dtype=np.int64)
    for col, nm, top, step in ((group, "group", ngroup, n), (replicate, "replicate", nrep, n * ngroup)):
        if col is None or top <= 1:
            continue
        c = _column(col, nm, label, A.shape[0])
        used = np.asarray(A.sum(axis=1)).ravel() != 0
        if np.any(np.isnan(c) & used):
            rows = np.flatnonzero(np.isnan(c) & used) + 1
            raise ModelError(f"f({label}, ...): {nm} is NA where {label!r} is not (rows {_fmt_values(rows.tolist())})")
        if np.any(c[used] > top):
            raise ModelError(f"f({label}, ...): {nm} values {_fmt_values(np.unique(c[used][c[used] > top]))} exceed "
                             f"n{'group' if nm == 'group' else 'rep'}={top}")
        shift += step * (np.nan_to_num(c, nan=1.0).astype(np.int64) - 1)
    vals = A.data * np.asarray(w, dtype=float)[A.row]
    return sp.csr_matrix((vals, (A.row, A.col + shift[A.row])), shape=(A.shape[0], n * ngroup * nrep))
