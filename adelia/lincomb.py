"""Linear combinations of the latent field: R-INLA's ``inla.make.lincomb(s)`` and ``lincomb=``.

A linear combination is a'x over named effects of the model, written as R-INLA writes it:

* a fixed effect by its name in ``summary_fixed`` ("(Intercept)", "x1", "x2:g2", ...) with one
  weight;
* an f() term by its label with a vector over the term's nodes (in the order of
  ``summary_random[label]``), ``NaN``/``None`` (R's ``NA``) where the term does not enter; a
  single number is a weight on the term's first node (R-INLA's reading of a length-1 value);
* "Predictor" (and, with ``control_predictor={"A": ...}``, "APredictor") by a vector over the
  rows of the linear predictor, its offset included.

``make_lincomb`` builds one combination, ``make_lincombs`` one per row of its arguments;
``adelia.inla(..., lincomb=...)`` takes one, a list, or a dict name -> combination and
reports ``summary_lincomb_derived`` / ``marginals_lincomb_derived`` (R-INLA's derived
linear combinations; see :mod:`adelia.inference.lincomb` for how they are computed).

Example:
    >>> import adelia
    >>> seeds = adelia.datasets.load("Seeds")
    >>> lc = {"x1_minus_x2": adelia.make_lincomb(x1=1, x2=-1),
    ...       "plate3": adelia.make_lincomb(**{"(Intercept)": 1}, plate=[None, None, 1])}
    >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
    ...                   Ntrials="n", lincomb=lc)
    >>> res.summary_lincomb_derived[["mean", "sd"]].round(3)
                  mean     sd
    x1_minus_x2 -1.342  0.221
    plate3      -0.447  0.131
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import ModelError, unknown_choice

#: R-INLA's name of a combination that was not given one (``inla.make.lincomb``'s default)
DEFAULT_NAME = None


@dataclass(frozen=True)
class LinComb:
    """One linear combination: per effect, 0-based node positions and their weights.

    ``terms[effect] = (positions, weights)``; ``positions`` is None for a single weight
    given as a number (a fixed effect's coefficient, or the first node of an f() term).
    Build it with :func:`make_lincomb` / :func:`make_lincombs`.

    Example:
        >>> diff = make_lincomb(x1=1, x2=-1)
        >>> [(effect, positions, weights.tolist()) for effect, positions, weights in diff.terms]
        [('x1', None, [1.0]), ('x2', None, [-1.0])]
    """

    terms: tuple[tuple[str, np.ndarray | None, np.ndarray], ...]
    name: str | None = DEFAULT_NAME

    def __repr__(self) -> str:
        parts = []
        for effect, pos, w in self.terms:
            if pos is None:
                parts.append(f"{effect}={w[0]:g}")
            else:
                parts.append(f"{effect}=[" + ", ".join(f"{i + 1}:{v:g}" for i, v in zip(pos, w)) + "]")
        head = f"LinComb {self.name!r}" if self.name else "LinComb"
        return f"<{head}: " + ", ".join(parts) + ">"


def _is_na(v) -> bool:
    if v is None:
        return True
    try:
        return bool(np.isnan(float(v)))
    except (TypeError, ValueError):
        return False


def _weights_of(effect: str, value) -> tuple[np.ndarray | None, np.ndarray]:
    """R-INLA's reading of one argument: a number -> (None, [w]); a vector -> the positions
    and values of its non-NA entries."""
    if np.ndim(value) == 0 and not isinstance(value, (list, tuple)):
        if _is_na(value):
            raise ModelError(f"make_lincomb: the weight of {effect!r} is NA; give a number, or leave {effect!r} out")
        w = _finite(effect, [value])
        return None, w
    flat = list(np.asarray(value, dtype=object).ravel()) if not isinstance(value, (list, tuple)) else list(value)
    if np.ndim(value) > 1:
        raise ModelError(f"make_lincomb: {effect!r} must be a number or a vector (one weight per node), got an array of shape "
                         f"{np.shape(value)}; for one combination per row use make_lincombs")
    keep = [i for i, v in enumerate(flat) if not _is_na(v)]
    return np.asarray(keep, dtype=np.int64), _finite(effect, [flat[i] for i in keep])


def _finite(effect: str, values) -> np.ndarray:
    try:
        w = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"make_lincomb: the weights of {effect!r} must be numbers (NaN/None for unused nodes), got {values!r}") from None
    if not np.all(np.isfinite(w)):
        raise ModelError(f"make_lincomb: the weights of {effect!r} must be finite (NaN/None marks an unused node)")
    return w


def make_lincomb(weights: Mapping[str, Any] | None = None, /, **named) -> LinComb:
    """One linear combination a'x (R-INLA's ``inla.make.lincomb``).

    Args:
        weights: effect name -> weight(s), for names that are not Python identifiers
            ("(Intercept)"); merged with the keyword arguments.
        **named: effect name -> a number (a fixed effect's coefficient; the first node of an
            f() term) or a vector over an f() term's nodes with NaN/None at the unused ones.

    Returns:
        A :class:`LinComb`; the effect names are checked against the model when it is fitted
        (``adelia.inla(..., lincomb=...)``).

    Example:
        >>> lc = make_lincomb({"(Intercept)": 1}, plate=[None, None, 1])   # β0 + u_3
        >>> lc
        <LinComb: (Intercept)=1, plate=[3:1]>
    """
    args = dict(weights or {})
    clash = set(args) & set(named)
    if clash:
        raise ModelError(f"make_lincomb: {sorted(clash)} given twice (in the dict and as keywords)")
    args.update(named)
    if not args:
        raise ModelError("make_lincomb needs at least one effect, e.g. make_lincomb(x1=1, x2=-1)")
    terms = []
    for effect, value in args.items():
        pos, w = _weights_of(str(effect), value)
        terms.append((str(effect), pos, w))
    return LinComb(tuple(terms))


def _num_names(n: int, prefix: str = "lc") -> list[str]:
    """R-INLA's ``paste("lc", inla.num(1:n))``: zero-padded to the width of n (lc01..lc10)."""
    width = len(str(n))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def make_lincombs(weights: Mapping[str, Any] | None = None, /, **named) -> dict[str, LinComb]:
    """One linear combination per row (R-INLA's ``inla.make.lincombs``).

    Each argument is a vector (one weight per combination: a fixed effect's coefficient or an
    f() term's first node) or a matrix with one row per combination over an f() term's nodes
    (NaN/None where unused). All must have the same number of rows n.

    Returns:
        dict "lc1".."lcn" (zero-padded as R-INLA: "lc01".."lc10") -> :class:`LinComb`.

    Example:
        >>> import numpy as np
        >>> lcs = make_lincombs(**{"(Intercept)": np.ones(3)}, plate=np.eye(3))  # β0 + u_i, i = 1..3
        >>> list(lcs)
        ['lc1', 'lc2', 'lc3']
    """
    args = dict(weights or {})
    args.update(named)
    if not args:
        raise ModelError("make_lincombs needs at least one effect, e.g. make_lincombs(plate=np.eye(21))")
    values = {}
    n = None
    for effect, value in args.items():
        arr = np.asarray(value, dtype=object)
        if arr.ndim not in (1, 2):
            raise ModelError(f"make_lincombs: {effect!r} must be a vector (one weight per combination) or a matrix "
                             f"(one row per combination), got shape {arr.shape}")
        if n is not None and arr.shape[0] != n:
            raise ModelError(f"make_lincombs: {effect!r} has {arr.shape[0]} rows but the earlier arguments have {n}; "
                             "every argument needs one row per combination")
        n = arr.shape[0]
        values[str(effect)] = arr
    out = {}
    for i, name in enumerate(_num_names(n)):
        terms = []
        for effect, arr in values.items():
            if arr.ndim == 1:
                if _is_na(arr[i]):
                    continue
                terms.append((effect, None, _finite(effect, [arr[i]])))
            else:
                pos, w = _weights_of(effect, list(arr[i]))
                if pos.size:
                    terms.append((effect, pos, w))
        if not terms:
            raise ModelError(f"make_lincombs: combination {i + 1} has no entries (every argument is NA in row {i + 1})")
        out[name] = LinComb(tuple(terms), name)
    return out


def lincomb_list(lincomb) -> list[tuple[str, LinComb]]:
    """``lincomb=`` as given (one LinComb, a list of them, or a dict name -> LinComb, as R's
    ``c(lc1, lc2)`` or ``inla.make.lincombs``) -> [(name, LinComb)]; unnamed ones are
    "lc1", "lc2", ... by position (zero-padded to the count, as R-INLA).

    Example:
        >>> [name for name, _ in lincomb_list([make_lincomb(x1=1), make_lincomb(x2=1)])]
        ['lc1', 'lc2']
    """
    if isinstance(lincomb, LinComb):
        items = [(lincomb.name, lincomb)]
    elif isinstance(lincomb, Mapping):
        items = list(lincomb.items())
    elif isinstance(lincomb, Sequence) and not isinstance(lincomb, str):
        items = []
        for lc in lincomb:
            if isinstance(lc, Mapping) and not isinstance(lc, LinComb):
                items.extend(lc.items())  # a list of make_lincombs() dicts
            else:
                items.append((getattr(lc, "name", None), lc))
    else:
        raise ModelError(f"lincomb must be adelia.make_lincomb(...), a list of them or a dict name -> lincomb, "
                         f"not {type(lincomb).__name__}")
    if not items:
        raise ModelError("lincomb is empty; give at least one adelia.make_lincomb(...)")
    defaults = _num_names(len(items))
    out = []
    for k, (name, lc) in enumerate(items):
        if not isinstance(lc, LinComb):
            raise ModelError(f"lincomb entry {name or k + 1!r} is a {type(lc).__name__}, not adelia.make_lincomb(...)")
        out.append((str(name) if name is not None else defaults[k], lc))
    names = [nm for nm, _ in out]
    dup = sorted({nm for nm in names if names.count(nm) > 1})
    if dup:
        raise ModelError(f"lincomb names must be unique; {dup} appear more than once")
    return out


@dataclass(frozen=True)
class LincombDesign:
    """The combinations of a compiled model: ``a_k(θ)'x + c_k`` with

        a(θ) = L_0 + Σ_j β_j(θ) L_j + P_obs Aᵀ(θ) + P_rows A_formulaᵀ(θ),   c = P_obs·offset + P_rows·offset_rows

    ``latent`` holds L_0, L_1, ... (one per scale group of the model's A: group 0 unscaled,
    group j the j-th copy term, scaled by its β); ``obs`` the weights on the rows of A x
    (R-INLA's "Predictor", or "APredictor" with a stack A), ``rows`` those on the formula's
    own rows ("Predictor" with a stack A). All scipy CSR, host side, static.

    Example:
        >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds,
        ...                        family="binomial", Ntrials="n")
        >>> design = resolve_lincombs(lc, model.graph, has_stack_A=False)   # lc: the module's example
        >>> design.names, design.n, design.latent[0].shape   # 3 fixed effects + 21 plates
        (('x1_minus_x2', 'plate3'), 2, (2, 24))
        >>> sorted(design.latent[0].getrow(1).indices.tolist())   # plate3: u_3 and (Intercept)
        [2, 21]
    """

    names: tuple[str, ...]
    latent: tuple[sp.csr_matrix, ...]
    obs: sp.csr_matrix | None
    rows: sp.csr_matrix | None

    @property
    def n(self) -> int:
        return len(self.names)


def resolve_lincombs(lincomb, graph, has_stack_A: bool) -> LincombDesign:
    """Map the effect names of ``lincomb`` to latent nodes of ``graph`` (raises ModelError
    naming the combination and effect for an unknown name, or positions beyond the term).

    Example:
        >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds,
        ...                        family="binomial", Ntrials="n")
        >>> resolve_lincombs(make_lincomb(x3=1), model.graph, has_stack_A=False)
        Traceback (most recent call last):
        ...
        adelia.errors.ModelError: lincomb 'lc1': unknown effect "x3". Effects of this model: (Intercept), Predictor, plate, x1, x2.
    """
    items = lincomb_list(lincomb)
    n = graph.n_latent
    fixed = {b.label: b for b in graph.blocks if b.kind == "fixed"}
    random = {c.label: graph.block(c.label) for c in graph.components}
    copies = {cp.label: (j + 1, cp) for j, cp in enumerate(graph.copies)}
    obs_name, rows_name = ("APredictor", "Predictor") if has_stack_A else ("Predictor", None)
    n_obs = graph.n_obs
    n_rows = graph.effect_map.n_rows if graph.effect_map is not None else 0
    valid = [*fixed, *random, *copies, obs_name] + ([rows_name] if rows_name else [])
    groups = [([], [], []) for _ in range(1 + len(graph.copies))]
    obs_t = ([], [], [])
    rows_t = ([], [], [])

    def positions(name, effect, pos, w, size, what):
        p = np.zeros(1, np.int64) if pos is None else pos
        if p.size and p.max() >= size:
            raise ModelError(
                f"lincomb {name!r}: {effect!r} has {size} {what} but the combination gives a weight at position "
                f"{int(p.max()) + 1}" + ("" if pos is None else f" (a vector of length ≥ {int(p.max()) + 1})")
                + f"; the vector runs over {effect}'s {size} {what} in the order of "
                + ("summary_linear_predictor" if effect in (obs_name, rows_name) else f"summary_random[{effect!r}]")
            )
        return p, w

    for k, (name, lc) in enumerate(items):
        for effect, pos, w in lc.terms:
            if effect in fixed:
                if pos is not None and (pos.size != 1 or pos[0] != 0):
                    raise ModelError(f"lincomb {name!r}: the fixed effect {effect!r} has one coefficient; give a single "
                                     f"weight ({effect}=w), not a vector with positions {(pos + 1).tolist()}")
                t = groups[0]
                t[0].append(np.full(w.size, k)), t[1].append(np.full(w.size, fixed[effect].start)), t[2].append(w)
            elif effect in random:
                b = random[effect]
                p, w = positions(name, effect, pos, w, b.size, "nodes")
                t = groups[0]
                t[0].append(np.full(p.size, k)), t[1].append(b.start + p), t[2].append(w)
            elif effect in copies:
                j, cp = copies[effect]
                b = graph.block(cp.source)  # a copy is β × its source's nodes (no nodes of its own)
                p, w = positions(name, effect, pos, w, b.size, "nodes")
                t = groups[j]
                t[0].append(np.full(p.size, k)), t[1].append(b.start + p), t[2].append(w)
            elif effect == obs_name:
                p, w = positions(name, effect, pos, w, n_obs, "rows")
                obs_t[0].append(np.full(p.size, k)), obs_t[1].append(p), obs_t[2].append(w)
            elif rows_name is not None and effect == rows_name:
                p, w = positions(name, effect, pos, w, n_rows, "rows")
                rows_t[0].append(np.full(p.size, k)), rows_t[1].append(p), rows_t[2].append(w)
            else:
                raise ModelError(f"lincomb {name!r}: " + unknown_choice("effect", effect, valid).replace("Valid choices", "Effects of this model"))

    def csr(t, ncol):
        if not t[0]:
            return sp.csr_matrix((len(items), ncol))
        m = sp.coo_matrix((np.concatenate(t[2]), (np.concatenate(t[0]), np.concatenate(t[1]))), shape=(len(items), ncol))
        return m.tocsr()  # duplicates (the same node named twice) are summed, as a'x does

    obs = csr(obs_t, n_obs) if obs_t[0] else None
    rows = csr(rows_t, n_rows) if rows_t[0] else None
    return LincombDesign(tuple(nm for nm, _ in items), tuple(csr(t, n) for t in groups), obs, rows)
