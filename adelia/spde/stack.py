"""Data stacks (R-INLA's ``inla.stack``): observation matrices that map model effects to data.

A stack holds

* ``data`` — observation-level columns (the response, ``E``, ``Ntrials``, ...), one row per
  row of A (length ``n_data``);
* ``effects`` — effect-level columns (SPDE index, covariates, intercept), one row per
  column of A (length ``n_effects``);
* ``A`` — sparse (n_data × n_effects): η_obs = A · η_effects, where η_effects is the
  linear predictor the formula builds row by row from the effect columns (R-INLA's
  ``Predictor``) and η_obs is what the likelihood sees (R-INLA's ``APredictor``).

``stack(data, A, effects)`` for blocks l = 1..L builds Ã = [A¹ ... A^L] and stacks the
effect blocks row-wise (columns missing from a block are NA). A block's A may be the scalar
c (c·I of the block's length). Then, as R-INLA does by default:

* ``compress``: effect rows that are identical in every column are merged into the first
  one, their A columns summed (e.g. n intercept rows ``b0 = 1`` become one column of ones);
* ``remove_unused``: effect rows whose A column is zero are dropped.

Layout for the model compiler: pass ``stack_data(stk)`` as ``data`` (observation columns
have length n_data, effect columns length n_effects) and ``stack_A(stk)`` as
``control_predictor={"A": ...}``; the formula's terms live on the n_effects rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError


@dataclass
class Stack:
    """An ``inla.stack``; build with :func:`stack` / :func:`stack_join`.

    Attributes:
        A: CSR matrix (n_data, n_effects).
        data: observation-level columns, name → array of length n_data (or (n_data, p)).
        effects: effect-level columns, name → 1-D array of length n_effects (NaN/None = NA).
        data_index: tag → 0-based data rows.
        effects_index: tag → 0-based effect rows (−1 where the row was removed as unused).

    Example:
        >>> A = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.5]]))   # 2 data rows, 2 mesh nodes
        >>> stk = stack(data={"y": [1.0, 2.0]}, A=[A, 1], effects=[{"s": [1, 2]}, {"b0": np.ones(2)}], tag="est")
        >>> stk.n_data, stk.n_effects   # the two equal rows of b0 are merged into one
        (2, 3)
        >>> stk.data_index["est"], stk.effects_index["est"]
        (array([0, 1]), array([0, 1, 2, 2]))
    """

    A: sp.csr_matrix
    data: dict
    effects: dict
    data_index: dict = field(default_factory=dict)
    effects_index: dict = field(default_factory=dict)

    @property
    def n_data(self) -> int:
        return int(self.A.shape[0])

    @property
    def n_effects(self) -> int:
        return int(self.A.shape[1])

    def __repr__(self) -> str:
        return (
            f"Stack(data=({', '.join(self.data)}), size {self.n_data}; "
            f"effects=({', '.join(self.effects)}), size {self.n_effects}; A: {self.n_data} x {self.n_effects})"
        )


class StackData(dict):
    """``stack_data(stk)``: a dict of columns with mixed lengths, as R's ``inla.stack.data``.

    Observation-level columns (``observation_names``) have length ``n_data``; effect-level
    columns (``effect_names``) have length ``n_effects``; extra entries are passed through.

    Example:
        >>> stk = stack(data={"y": [1.0, 2.0]}, A=[1], effects=[{"b0": [1.0, 1.0]}], tag="est")
        >>> d = stack_data(stk)
        >>> d.observation_names, d.effect_names, d.n_data, d.n_effects
        (('y',), ('b0',), 2, 1)
    """

    def __init__(self, *args, n_data: int, n_effects: int, observation_names, effect_names, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_data = n_data
        self.n_effects = n_effects
        self.observation_names = tuple(observation_names)
        self.effect_names = tuple(effect_names)


# -- input parsing -------------------------------------------------------------------------------
def _columns(block, what: str) -> dict:
    if isinstance(block, pd.DataFrame):
        return {str(c): block[c].to_numpy() for c in block.columns}
    if isinstance(block, Mapping):
        return {str(k): v for k, v in block.items()}
    raise DataError(
        f"{what}: expected a dict (name -> values) or a DataFrame, got {type(block).__name__}; "
        "name the effect, e.g. {'s': index} or pd.DataFrame({'b0': 1})"
    )


def _as_column(values, name: str, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if isinstance(values, pd.Categorical) or (arr.dtype == object and arr.ndim == 1):
        return arr.astype(object)
    if arr.dtype.kind in "biuf":
        arr = arr.astype(float)
    elif arr.dtype.kind not in "OUS":
        raise DataError(f"{what}: column {name!r} has unsupported dtype {arr.dtype}")
    else:
        arr = arr.astype(object)
    return arr


def _expand_block(cols: dict, n_target: int | None, what: str, allow_matrix: bool) -> tuple[dict, int]:
    """R's parse.input.list: scalars expand to n_target (when > 1); lengths must agree."""
    out = {}
    for name, v in cols.items():
        arr = _as_column(v, name, what)
        if arr.ndim > 2 or (arr.ndim == 2 and not allow_matrix):
            raise DataError(f"{what}: column {name!r} must be one-dimensional, got shape {arr.shape}")
        out[name] = arr
    if n_target is not None and n_target > 1:
        for name, arr in out.items():
            if arr.shape[0] == 1 and arr.ndim == 1:
                out[name] = np.repeat(arr, n_target)
    lengths = {name: arr.shape[0] for name, arr in out.items()}
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise DataError(f"{what}: columns have different lengths {lengths}")
    nrow = distinct.pop() if distinct else 0
    if n_target is not None and n_target > 1 and nrow != n_target:
        raise DataError(f"{what}: columns have length {nrow} but the matching A has {n_target}")
    return out, nrow


def _na_column(kind_like: np.ndarray, n: int) -> np.ndarray:
    if kind_like.dtype == object:
        return np.full((n,) + kind_like.shape[1:], None, dtype=object)
    return np.full((n,) + kind_like.shape[1:], np.nan)


def _rbind(blocks: list[dict], sizes: list[int]) -> dict:
    """Row-bind column dicts; columns missing from a block are NA there (R's bind_rows)."""
    names: list[str] = []
    for b in blocks:
        for name in b:
            if name not in names:
                names.append(name)
    out = {}
    for name in names:
        like = next(b[name] for b in blocks if name in b)
        parts = []
        for b, n in zip(blocks, sizes):
            if name in b:
                col = b[name]
                if col.dtype == object or like.dtype == object:
                    col = col.astype(object)
                parts.append(col)
            else:
                parts.append(_na_column(like, n))
        if any(p.dtype == object for p in parts):
            parts = [p.astype(object) for p in parts]
        out[name] = np.concatenate(parts) if parts else like[:0]
    return out


# -- compress / remove unused (R-INLA's inla.stack.compress / inla.stack.remove.unused) ----------
def _row_groups(effects: dict, n: int) -> np.ndarray:
    """For each effect row, the index of the first row identical to it (NA equals NA)."""
    if n == 0 or not effects:
        return np.arange(n)
    frame = pd.DataFrame({k: (v if v.dtype == object else v) for k, v in effects.items()})
    group = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup().to_numpy()
    first = np.full(group.max() + 1, n)
    np.minimum.at(first, group, np.arange(n))
    return first[group]


def _remap(stk: Stack, index_new: np.ndarray, keep: np.ndarray) -> Stack:
    n_keep = int(keep.sum())
    A = stk.A.tocoo()
    j_new = index_new[A.col]
    ok = j_new >= 0
    A_new = sp.coo_matrix((A.data[ok], (A.row[ok], j_new[ok])), shape=(A.shape[0], n_keep)).tocsr()
    A_new.sum_duplicates()
    A_new.sort_indices()
    effects = {k: v[keep] for k, v in stk.effects.items()}
    eidx = {}
    for tag, rows in stk.effects_index.items():
        rows = np.asarray(rows, dtype=np.int64)
        eidx[tag] = np.where(rows >= 0, index_new[np.maximum(rows, 0)], -1)
    return Stack(A_new, stk.data, effects, dict(stk.data_index), eidx)


def _compress(stk: Stack) -> Stack:
    n = stk.n_effects
    if n < 2:
        return stk
    first = _row_groups(stk.effects, n)
    keep = first == np.arange(n)
    new_pos = np.cumsum(keep) - 1
    index_new = new_pos[first]
    return _remap(stk, index_new, keep)


def _remove_unused(stk: Stack) -> Stack:
    n = stk.n_effects
    if n < 2:
        return stk
    used = np.asarray(abs(stk.A).sum(axis=0)).ravel() != 0
    index_new = np.where(used, np.cumsum(used) - 1, -1)
    return _remap(stk, index_new, used)


def _finish(stk: Stack, compress: bool, remove_unused: bool) -> Stack:
    if compress:
        stk = _compress(stk)
    if remove_unused:
        stk = _remove_unused(stk)
    return stk


# -- public API -----------------------------------------------------------------------------------
def stack(*stacks, data=None, A=None, effects=None, tag: str = "", compress: bool = True, remove_unused: bool = True) -> Stack:
    """Build a data stack (R-INLA's ``inla.stack``), or join stacks given positionally.

    Args:
        data: dict / DataFrame of observation-level columns; scalars are repeated to
            nrow(A).
        A: list of blocks, each a matrix (n_data × n_l, dense or sparse) or a scalar c
            meaning c·I of the block's effect length. A single non-list A means one block.
        effects: list of blocks (same length as A), each a dict or DataFrame of columns of
            length ncol(A_l); a scalar column is repeated to ncol(A_l) when that is > 1.
        tag: name for :func:`stack_index`.
        compress: merge identical effect rows (summing their A columns).
        remove_unused: drop effect rows whose A column is all zero.

    Returns:
        a :class:`Stack`.

    Example:
        >>> import numpy as np, scipy.sparse as sp
        >>> A = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.5]]))
        >>> stk = stack(data={"y": [1.0, 2.0]}, A=[A, 1], effects=[{"s": [1, 2]}, {"b0": np.ones(2)}], tag="est")
        >>> stack_A(stk).toarray()
        array([[1. , 0. , 1. ],
               [0.5, 0.5, 1. ]])
    """
    if stacks:
        if data is not None or A is not None or effects is not None:
            raise DataError("stack: give either stacks to join or data/A/effects, not both")
        return stack_join(*stacks, compress=compress, remove_unused=remove_unused)
    if A is None or effects is None:
        raise DataError("stack: A and effects are required (data is optional)")
    if tag is None:
        raise DataError("stack: tag must not be None")
    if not isinstance(A, (list, tuple)):
        A = [A]
        effects = [effects]
    elif not isinstance(effects, (list, tuple)):
        raise DataError("stack: when A is a list, effects must be a list of the same length")
    if len(A) != len(effects):
        raise DataError(f"stack: length(A)={len(A)} should be equal to length(effects)={len(effects)}")

    blocks, sizes, mats = [], [], []
    for k, (a_k, e_k) in enumerate(zip(A, effects)):
        what = f"stack: effect block {k + 1}"
        a_mat = None if np.isscalar(a_k) else (sp.csr_matrix(a_k) if sp.issparse(a_k) else sp.csr_matrix(np.atleast_2d(np.asarray(a_k, dtype=float))))
        ncol = 1 if a_mat is None else a_mat.shape[1]
        cols, nrow = _expand_block(_columns(e_k, what), ncol, what, allow_matrix=False)
        if a_mat is None or (ncol == 1 and nrow > 1 and a_mat.shape[0] == 1):
            scale = float(a_k) if a_mat is None else float(a_mat[0, 0])
            a_mat = sp.identity(nrow, format="csr") * scale
        elif ncol != nrow:
            raise DataError(f"stack: ncol(A) does not match nrow(effect) for block {k + 1}: {ncol} != {nrow}")
        blocks.append(cols)
        sizes.append(nrow)
        mats.append(a_mat)
    nrows = {m.shape[0] for m in mats}
    if len(nrows) > 1:
        raise DataError(f"stack: row count mismatch for A: {[m.shape[0] for m in mats]}")
    n_data = mats[0].shape[0]
    for k, b in enumerate(blocks):
        if len(b) != len(set(b)):
            raise DataError(f"stack: effect block {k + 1} has duplicated names")
    data_cols, n_dat = _expand_block(_columns(data if data is not None else {}, "stack: data"), n_data, "stack: data", allow_matrix=True)
    if data_cols and n_dat != n_data:
        raise DataError(f"stack: data columns have length {n_dat} but A has {n_data} rows")
    effects_all = _rbind(blocks, sizes)
    clash = set(data_cols) & set(effects_all)
    if clash:
        raise DataError(f"stack: names for data and effects must not coincide: {sorted(clash)}")
    A_all = sp.hstack(mats, format="csr") if mats else sp.csr_matrix((n_data, 0))
    n_eff = A_all.shape[1]
    stk = Stack(
        A_all,
        data_cols,
        effects_all,
        {tag: np.arange(n_data)},
        {tag: np.arange(n_eff)},
    )
    return _finish(stk, compress, remove_unused)


def stack_join(*stacks: Stack, compress: bool = True, remove_unused: bool = True) -> Stack:
    """Join stacks (R-INLA's ``inla.stack.join``): data and effects row-bound, A block-diagonal.

    Example:
        >>> s1 = stack(data={"y": [1.0]}, A=[1], effects=[{"b0": [1.0]}], tag="a")
        >>> s2 = stack(data={"y": [np.nan]}, A=[1], effects=[{"b0": [1.0]}], tag="b")
        >>> stack_A(stack_join(s1, s2)).toarray()
        array([[1.],
               [1.]])
    """
    if not stacks:
        raise DataError("stack_join: no stacks given")
    for k, s in enumerate(stacks):
        if not isinstance(s, Stack):
            raise DataError(f"stack_join: argument {k + 1} is a {type(s).__name__}, not a Stack")
    data = _rbind([s.data for s in stacks], [s.n_data for s in stacks])
    effects = _rbind([s.effects for s in stacks], [s.n_effects for s in stacks])
    clash = set(data) & set(effects)
    if clash:
        raise DataError(f"stack_join: names for data and effects must not coincide: {sorted(clash)}")
    A = sp.block_diag([s.A for s in stacks], format="csr")
    d_idx: dict = {}
    e_idx: dict = {}
    d_off = e_off = 0
    for s in stacks:
        for tag, rows in s.data_index.items():
            d_idx[tag] = np.concatenate([d_idx.get(tag, np.zeros(0, np.int64)), np.asarray(rows) + d_off])
        for tag, rows in s.effects_index.items():
            rows = np.asarray(rows)
            shifted = np.where(rows >= 0, rows + e_off, -1)
            e_idx[tag] = np.concatenate([e_idx.get(tag, np.zeros(0, np.int64)), shifted])
        d_off += s.n_data
        e_off += s.n_effects
    return _finish(Stack(A, data, effects, d_idx, e_idx), compress, remove_unused)


def stack_data(stk: Stack, **extra) -> StackData:
    """Columns for the model call (R-INLA's ``inla.stack.data``): observation-level columns
    (length n_data) then effect-level columns (length n_effects), then ``extra``.

    Example:
        >>> stk = stack(data={"y": [1.0, 2.0]}, A=[1], effects=[{"b0": [1.0, 1.0]}], tag="est")
        >>> d = stack_data(stk)
        >>> d["y"], d["b0"], d.n_data, d.n_effects
        (array([1., 2.]), array([1.]), 2, 1)
    """
    if not isinstance(stk, Stack):
        raise DataError(f"stack_data: expected a Stack, got {type(stk).__name__}")
    out = StackData(
        n_data=stk.n_data,
        n_effects=stk.n_effects,
        observation_names=list(stk.data),
        effect_names=list(stk.effects),
    )
    out.update(stk.data)
    out.update(stk.effects)
    out.update(extra)
    return out


def stack_A(stk: Stack) -> sp.csr_matrix:
    """The stack's observation matrix (R-INLA's ``inla.stack.A``), CSR (n_data × n_effects).

    Example:
        >>> stk = stack(data={"y": [1.0, 2.0, 3.0]}, A=[1], effects=[{"b0": [1.0, 1.0, 1.0]}], tag="est")
        >>> stack_A(stk).toarray()   # three observations of one merged intercept row
        array([[1.],
               [1.],
               [1.]])
    """
    if not isinstance(stk, Stack):
        raise DataError(f"stack_A: expected a Stack, got {type(stk).__name__}")
    return stk.A


def stack_index(stk: Stack, tag: str | None = None) -> dict:
    """Positions of a tag's rows in the linear predictor (R-INLA's ``inla.stack.index``).

    Returns:
        ``{"data": rows, "effects": rows}`` as 0-based positions in the full linear
        predictor, observation rows first (0..n_data−1, R-INLA's APredictor) then effect
        rows (n_data..n_data+n_effects−1, R-INLA's Predictor): use them with ``.iloc`` on
        ``summary_fitted_values``/``summary_linear_predictor``. Effect rows removed as
        unused are left out; merged rows repeat, as in R-INLA. ``tag=None``: all tags.

    Example:
        >>> est = stack(data={"y": [1.0, 2.0]}, A=[1], effects=[{"b0": [1.0, 1.0]}], tag="est")
        >>> pred = stack(data={"y": [np.nan]}, A=[1], effects=[{"b0": [1.0]}], tag="pred")
        >>> joint = stack_join(est, pred)
        >>> stack_index(joint, "pred")   # rows of summary_fitted_values for the prediction
        {'data': array([2]), 'effects': array([3])}
    """
    if not isinstance(stk, Stack):
        raise DataError(f"stack_index: expected a Stack, got {type(stk).__name__}")
    tags = list(stk.data_index) if tag is None else [tag]
    unknown = [t for t in tags if t not in stk.data_index]
    if unknown:
        raise DataError(f"stack_index: unknown tag {unknown[0]!r}; tags in this stack: {list(stk.data_index)}")
    data = np.concatenate([np.asarray(stk.data_index[t], dtype=np.int64) for t in tags])
    eff = np.concatenate([np.asarray(stk.effects_index[t], dtype=np.int64) for t in tags])
    eff = eff[eff >= 0] + stk.n_data
    return {"data": data, "effects": eff}
