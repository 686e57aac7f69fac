"""Linear model of coregionalisation for p space-time variates, written as R-INLA writes it
(Krainski et al. 2018, *Advanced Spatial Modeling with SPDE using R and INLA*, §3.1 and §8.1;
Schmidt & Gelfand 2003).

For variates j = 1..p with independent space-time fields z_1..z_p (each DEMF(1,2,1) or
SPDE ⊗ AR1, with its own range(s) and σ), intercepts α_j and Gaussian noise e_j:

    y_1(s, t) = α_1 + z_1(s, t)                                  + e_1(s, t)
    y_2(s, t) = α_2 + λ_12 z_1(s, t) + z_2(s, t)                 + e_2(s, t)
    y_3(s, t) = α_3 + λ_13 z_1(s, t) + λ_23 z_2(s, t) + z_3(s, t) + e_3(s, t)

R-INLA form (one likelihood per variate, λ_ij as estimated ``copy`` scalings):

    y ~ 0 + intercept1 + intercept2 + intercept3
        + f(s1, model=field1) + f(s2, model=field2) + f(s3, model=field3)
        + f(s12, copy="s1", hyper=list(beta=list(fixed=FALSE, ...)))
        + f(s13, copy="s1", ...) + f(s23, copy="s2", ...)

with ``y`` an (n, p) matrix holding variate j's observations in column j (NA elsewhere) and
``family = ["gaussian"] * p``. θ: p noise precisions (families first, R-INLA's order),
3 per field (DEMF: log range_s, log range_t, log σ; SPDE ⊗ AR1: log range, log σ, ρ) and
p(p − 1)/2 λ's: d = 3p + p(p − 1)/2 + p, i.e. 9 for p = 2 and 15 for p = 3.

Layout: every field is indexed node + n_s·(t − 1), so the model compiler puts all p
variates of time t in BTA block t (block size p·n_s) and the intercepts in the arrow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DataError, ModelError, unknown_choice
from .matern import spde2_pcmatern
from .mesh1d import Mesh1D
from .projector import make_A
from .separable import spacetime_separable
from .spacetime import spacetime_demf
from .stack import Stack, StackData, stack, stack_data, stack_join

__all__ = ["Coregional", "coregional"]

FIELDS = ("demf", "ar1")
_INLA_KEYS = ("formula", "data", "family", "control_predictor", "control_family", "context")


class Coregional(Mapping):
    """A coregional model ready for :func:`adelia.inla`: a mapping of its keyword arguments
    (``formula``, ``data``, ``family``, ``control_predictor``, ``control_family``, ``context``),
    so ``adelia.inla(**cr)`` fits it; ``cr.fit(...)`` does the same with extra arguments.

    Attributes:
        stack: the joined data stack (tags ``"y1"``, ..., ``"yp"``).
        n_variates, n_times, n_space: p, time points, mesh nodes.
        fields: labels of the fields ("s1", ..., "sp").
        copies: labels of the copy terms, (i, j) → "s{i}{j}" (λ_ij, variate j's share of z_i).
        intercepts: labels of the intercepts ("intercept1", ...), empty without intercepts.

    Example:
        >>> import numpy as np, adelia
        >>> rng = np.random.default_rng(1)
        >>> mesh = adelia.spde.mesh_2d(rng.random((30, 2)), max_edge=(0.3, 0.6))
        >>> cr = adelia.spde.coregional(mesh, 3, [rng.normal(size=20), rng.normal(size=15)],
        ...                             [rng.random((20, 2)), rng.random((15, 2))],
        ...                             [rng.integers(1, 4, 20), rng.integers(1, 4, 15)],
        ...                             prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(1.0, 0.05))
        >>> cr.n_variates, cr.fields, cr.copies
        (2, ('s1', 's2'), {(1, 2): 's12'})
        >>> sorted(cr)   # adelia.inla(**cr) fits it
        ['context', 'control_family', 'control_predictor', 'data', 'family', 'formula']
    """

    def __init__(self, *, kwargs: dict[str, Any], stack: Stack, n_variates: int, n_times: int, n_space: int,
                 fields: tuple[str, ...], copies: dict[tuple[int, int], str], intercepts: tuple[str, ...]):
        self._kwargs = kwargs
        self.stack = stack
        self.n_variates = n_variates
        self.n_times = n_times
        self.n_space = n_space
        self.fields = fields
        self.copies = copies
        self.intercepts = intercepts

    # -- Mapping over adelia.inla's keyword arguments ------------------------------------------------
    def __getitem__(self, key: str):
        return self._kwargs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kwargs)

    def __len__(self) -> int:
        return len(self._kwargs)

    @property
    def formula(self) -> str:
        return self._kwargs["formula"]

    @property
    def data(self) -> StackData:
        return self._kwargs["data"]

    @property
    def lambda_names(self) -> list[str]:
        """Row names of the λ's in ``summary_hyperpar`` ("Beta for s12", ...), (i, j) order."""
        return [f"Beta for {label}" for label in self.copies.values()]

    def rows(self, variate: int) -> np.ndarray:
        """0-based observation rows of variate ``variate`` (1-based), e.g. for
        ``summary_fitted_values.iloc[rows]``."""
        if not 1 <= int(variate) <= self.n_variates:
            raise DataError(f"Coregional.rows: variate must be in 1..{self.n_variates}, got {variate}")
        return np.asarray(self.stack.data_index[f"y{int(variate)}"], dtype=np.int64)

    def _merged(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return {**self._kwargs, **kwargs}

    def compile(self, **kwargs):
        """:func:`adelia.compile` on this model; ``kwargs`` add to or override its arguments."""
        from ..model import compile as compile_model

        return compile_model(**self._merged(kwargs))

    def fit(self, **kwargs):
        """:func:`adelia.inla` on this model; ``kwargs`` add to or override its arguments."""
        from ..api import inla

        return inla(**self._merged(kwargs))

    def __repr__(self) -> str:
        return (f"Coregional(p={self.n_variates}, n_times={self.n_times}, n_space={self.n_space}, "
                f"n_obs={self.stack.n_data}, formula={self.formula!r})")


def _per_variate(value, p: int, name: str) -> list:
    """One (value, probability) pair for all variates, or a list of p pairs."""
    if value is None:
        return [None] * p
    seq = list(value)
    if seq and all(isinstance(v, (tuple, list, np.ndarray)) for v in seq):
        if len(seq) != p:
            raise ModelError(f"coregional: {name} has {len(seq)} entries but there are {p} variates (give one pair, or one per variate)")
        return seq
    return [value] * p


def _n_times(time) -> int:
    if isinstance(time, Mesh1D):
        return int(time.n)
    if np.ndim(time) == 0:
        return int(time)
    return int(np.asarray(time).size)


def _check_variate(j: int, y, loc, t, n_times: int):
    y = np.asarray(y, dtype=float).ravel()
    loc = np.asarray(loc, dtype=float)
    t = np.asarray(t, dtype=float).ravel()
    if loc.ndim != 2 or loc.shape[1] < 2:
        raise DataError(f"coregional: loc[{j}] must have shape (n, 2), got {loc.shape}")
    if not (y.size == loc.shape[0] == t.size):
        raise DataError(f"coregional: variate {j + 1} has {y.size} responses, {loc.shape[0]} locations and {t.size} time indices; they must agree")
    bad = (t != np.round(t)) | (t < 1) | (t > n_times) | np.isnan(t)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"coregional: time[{j}] must hold 1-based time indices in 1..{n_times}; row {k} has {t[k]!r}")
    return y, loc[:, :2], t.astype(np.int64)


def _r_number(x: float) -> str:
    return repr(float(x))


def coregional(
    mesh,
    time,
    y: Sequence,
    loc: Sequence,
    time_index: Sequence,
    field: str = "demf",
    prior_range_s=None,
    prior_range_t=None,
    prior_sigma=None,
    control_group: Mapping[str, Any] | None = None,
    prior_lambda: tuple[float, float] = (0.0, 10.0),
    initial_lambda: float | None = None,
    prior_prec: tuple[str, tuple[float, float]] | None = None,
    intercept: bool = True,
) -> Coregional:
    """A linear model of coregionalisation over p = 2..9 space-time variates (R-INLA style).

    Builds the fields' model objects, one stack per variate (tags ``"y1"``.. ``"yp"``) joined
    into one, the formula with ``copy`` terms carrying λ_ij, and one Gaussian likelihood per
    variate (see the module docstring for the model). Variates may be observed at different
    locations and times.

    Args:
        mesh: the spatial :class:`~adelia.spde.Mesh` shared by all fields.
        time: number of time points, or the temporal knots / a :class:`~adelia.spde.Mesh1D`
            (DEMF fields; ``"ar1"`` fields use only their number).
        y: p response vectors (NaN = predict there).
        loc: p location arrays, shape (n_j, 2).
        time_index: p vectors of 1-based time indices (1..n_times).
        field: ``"demf"`` (non-separable DEMF(1,2,1), :func:`spacetime_demf`) or ``"ar1"``
            (SPDE ⊗ AR1, :func:`spacetime_separable` of a :func:`spde2_pcmatern` model).
        prior_range_s: (U, p) PC prior of the spatial range, P(range < U) = p; one pair for all
            fields or a list of p pairs.
        prior_range_t: (U, p) PC prior of the temporal range (DEMF only), likewise.
        prior_sigma: (U, p) PC prior of the field's σ, P(σ > U) = p, likewise.
        control_group: R-INLA's ``control.group`` of ``"ar1"`` fields (default ``{"model": "ar1"}``).
        prior_lambda: (mean, precision) of the normal prior of every λ_ij (default (0, 10), the
            book's choice; R-INLA's copy default is (1, 10)).
        initial_lambda: initial value of the λ's (default R-INLA's copy initial, 1).
        prior_prec: prior of the noise precisions as (name, param), e.g. ``("pc.prec", (1, 0.01))``;
            default R-INLA's loggamma(1, 5e-5).
        intercept: one intercept per variate ("intercept1", ...).

    Returns:
        A :class:`Coregional`: ``adelia.inla(**cr)`` fits it.

    Example:
        >>> import numpy as np, adelia
        >>> rng = np.random.default_rng(1)
        >>> mesh = adelia.spde.mesh_2d(rng.random((30, 2)), max_edge=(0.3, 0.6))
        >>> locs = [rng.random((40, 2)), rng.random((30, 2))]
        >>> times = [rng.integers(1, 5, 40), rng.integers(1, 5, 30)]
        >>> ys = [rng.normal(size=40), rng.normal(size=30)]
        >>> cr = adelia.spde.coregional(mesh, 4, ys, locs, times, prior_range_s=(0.3, 0.5),
        ...                             prior_range_t=(2.0, 0.5), prior_sigma=(1.0, 0.05))
        >>> model = cr.compile()
        >>> len(model.theta_names), model.graph.block_structure.block_size == 2 * mesh.n
        (9, True)
        >>> res = adelia.inla(**cr)                              # doctest: +SKIP
        >>> res.summary_hyperpar.loc[cr.lambda_names]            # doctest: +SKIP
    """
    if field not in FIELDS:
        raise ModelError(unknown_choice("coregional field", field, FIELDS))
    ys, locs, times = list(y), list(loc), list(time_index)
    p = len(ys)
    if not 2 <= p <= 9:
        raise ModelError(f"coregional: needs 2..9 variates (responses), got {p}")
    if len(locs) != p or len(times) != p:
        raise DataError(f"coregional: y has {p} variates but loc has {len(locs)} and time_index {len(times)}; give one of each per variate")
    n_times = _n_times(time)
    if n_times < 2:
        raise ModelError(f"coregional: needs at least 2 time points, got {n_times}")
    rs = _per_variate(prior_range_s, p, "prior_range_s")
    rt = _per_variate(prior_range_t, p, "prior_range_t")
    sg = _per_variate(prior_sigma, p, "prior_sigma")
    if field == "ar1" and prior_range_t is not None:
        raise ModelError('coregional: prior_range_t applies to field="demf"; an "ar1" field sets ρ\'s prior through control_group')
    if field == "demf" and control_group is not None:
        raise ModelError('coregional: control_group applies to field="ar1" only')

    # --- the fields' model objects ------------------------------------------------------------------
    context: dict[str, Any] = {}
    for j in range(p):
        if field == "demf":
            obj = spacetime_demf(mesh, time, prior_range_s=rs[j], prior_range_t=rt[j], prior_sigma=sg[j])
        else:
            spde = spde2_pcmatern(mesh, prior_range=rs[j], prior_sigma=sg[j])
            obj = spacetime_separable(spde, n_times, control_group)
        context[f"field{j + 1}"] = obj
    n_space = int(mesh.n)
    n_nodes = n_space * n_times

    # --- one stack per variate --------------------------------------------------------------------------
    fields = tuple(f"s{j + 1}" for j in range(p))
    copies = {(i + 1, j + 1): f"s{i + 1}{j + 1}" for j in range(p) for i in range(j)}
    intercepts = tuple(f"intercept{j + 1}" for j in range(p)) if intercept else ()
    node = np.arange(1, n_nodes + 1)
    stacks = []
    for j in range(p):
        yj, lj, tj = _check_variate(j, ys[j], locs[j], times[j], n_times)
        Y = np.full((yj.size, p), np.nan)
        Y[:, j] = yj
        A = make_A(mesh, lj, group=tj, n_group=n_times)
        effects = {fields[j]: node}
        effects.update({copies[(i + 1, j + 1)]: node for i in range(j)})
        blocks_A, blocks_eff = [A], [effects]
        if intercept:
            blocks_A.append(1)
            blocks_eff.append({intercepts[j]: np.ones(yj.size)})
        stacks.append(stack(data={"y": Y}, A=blocks_A, effects=blocks_eff, tag=f"y{j + 1}"))
    stk = stack_join(*stacks)

    # --- formula and families ----------------------------------------------------------------------------
    beta = [f"fixed=FALSE, prior='normal', param=c({_r_number(prior_lambda[0])}, {_r_number(prior_lambda[1])})"]
    if initial_lambda is not None:
        beta.append(f"initial={_r_number(initial_lambda)}")
    hyper = f"hyper=list(beta=list({', '.join(beta)}))"
    terms = ["0", *intercepts]
    terms += [f"f({fields[j]}, model=field{j + 1})" for j in range(p)]
    terms += [f'f({label}, copy="s{i}", {hyper})' for (i, _), label in copies.items()]
    formula = "y ~ " + " + ".join(terms)
    if prior_prec is None:
        control_family = [{} for _ in range(p)]
    else:
        name, param = prior_prec
        control_family = [{"hyper": {"prec": {"prior": name, "param": tuple(param)}}} for _ in range(p)]
    kwargs = {
        "formula": formula,
        "data": stack_data(stk),
        "family": ["gaussian"] * p,
        "control_predictor": {"A": stk.A},
        "control_family": control_family,
        "context": context,
    }
    return Coregional(kwargs=kwargs, stack=stk, n_variates=p, n_times=n_times, n_space=n_space,
                      fields=fields, copies=copies, intercepts=intercepts)
