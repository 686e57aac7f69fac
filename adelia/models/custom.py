"""Your own latent model in a few lines of JAX: :func:`custom`.

R-INLA's way to add a latent model is ``rgeneric`` (R code called from C for every θ, no
gradients) or ``cgeneric`` (a compiled C library). In adelia a latent model is a pure function
θ ↦ values of Q(θ) on a fixed sparsity pattern, so a user model is just that function written
with ``jax.numpy``; the reverse-mode gradient of the Laplace objective (DESIGN.md §3) flows
through it like through the built-in models, with no extra code.

The model: x | θ ~ N(0, Q(θ)⁻¹) on n nodes, Q(θ) symmetric positive definite, or positive
semi-definite with a null space of dimension ``rankdef`` that does not depend on θ (intrinsic
models), optionally under hard constraints A x = e. What the user gives:

* ``precision(theta)`` → the values of Q(θ) on ``pattern``, a 1-D array of length nnz;
* ``pattern``: the (row, col) positions of those values, 0-based: ``(rows, cols)`` arrays
  (either triangle or both; every diagonal entry present; a pair (i, j), (j, i) given twice
  must carry equal values), or a :class:`~adelia.engine.pattern.SparsePattern` (lower
  triangle, in its own (col, row) order);
* ``log_prior(theta)`` → log π(θ), the joint prior density of the internal θ (Jacobians
  included, the user's responsibility);
* ``theta0``: the initial value of θ (the mode search starts here; Q(θ₀) is checked);
* ``log_normaliser(theta)`` (optional) → ½ log|Q(θ)|* − ½ (n − r) log 2π. When omitted,
  adelia computes it: for a proper model (``rankdef=0``) from the sparse Cholesky factor of
  Q(θ) (the same log-determinant kernel and VJP as every other model), for an intrinsic model
  as ½ log det(Q(θ) + N Nᵀ) − ½ (n − r) log 2π with N an orthonormal basis of the null space
  of Q(θ₀) (dense; up to :data:`DENSE_MAX_NODES` nodes), which equals ½ log|Q(θ)|* because
  Q(θ) N = 0 for every θ (checked at a second θ).

The marginal likelihood includes the full normalising constant ½ log|Q|* (R-INLA's intrinsic
built-in models drop the θ-free part ½ log|R|* of Q = τR; a custom model has no such split).

Hyperparameter names: ``names`` gives one name per θ_j (internal scale), or a pair
``(internal name, user-scale name)``; ``{label}`` is replaced by the f() term's name. The
user-scale value is ``to_user(θ_j)`` (identity unless ``to_user`` is given), and it is what
``summary_hyperpar`` reports; ``internal_summary_hyperpar`` reports θ_j itself. Without
``names`` the rows are "Theta1 for <label>", "Theta2 for <label>", ... as R-INLA names the
hyperparameters of rgeneric/cgeneric models.

Checks made once, on the host, when the model is built (each a :class:`ModelError` naming the
argument): ``names``/``to_user``/``theta0`` lengths agree; the pattern's entries lie inside
n × n, are unique and include the diagonal; ``precision(theta0)`` runs under ``jax.jit`` and
``jax.grad``, returns nnz finite values, symmetric where both triangles are given;
Q(θ₀) is positive definite (``rankdef=0``) or positive semi-definite with exactly ``rankdef``
zero eigenvalues; ``log_prior(theta0)`` and ``log_normaliser(theta0)`` are finite scalars.

Use it like any model: ``f(idx, model=my_model)`` with ``my_model`` a variable of the caller
(or ``context={"my_model": my_model}``); the index holds node numbers 1..n (or ``values=``);
``constr=``, ``extraconstr=``, ``diagonal=``, ``group=``/``replicate=`` work as for generic0.

Example (a Leroux CAR model, Q = τ((1 − λ)I + λR), R the Laplacian of a 4-node path graph):
    >>> import numpy as np, jax, jax.numpy as jnp
    >>> import adelia
    >>> R = np.array([[1., -1, 0, 0], [-1, 2, -1, 0], [0, -1, 2, -1], [0, 0, -1, 1]])
    >>> rows, cols = np.nonzero(np.tril(R))
    >>> r_vals, diag = jnp.asarray(R[rows, cols]), jnp.asarray((rows == cols) * 1.0)
    >>> def precision(theta):            # θ = (log τ, logit λ)
    ...     tau, lam = jnp.exp(theta[0]), jax.nn.sigmoid(theta[1])
    ...     return tau * ((1 - lam) * diag + lam * r_vals)
    >>> def log_prior(theta):            # τ ~ Gamma(1, 5e-5), logit λ ~ N(0, 1/0.45)
    ...     return (np.log(5e-5) + theta[0] - 5e-5 * jnp.exp(theta[0])
    ...             + 0.5 * np.log(0.45 / (2 * np.pi)) - 0.225 * theta[1] ** 2)
    >>> leroux = adelia.models.custom(
    ...     precision=precision, pattern=(rows, cols), log_prior=log_prior,
    ...     theta0=[2.0, 0.0],
    ...     names=[("Log precision for {label}", "Precision for {label}"),
    ...            ("Logit lambda for {label}", "Lambda for {label}")],
    ...     to_user=[jnp.exp, jax.nn.sigmoid])
    >>> leroux.n, leroux.n_theta
    (4, 2)
    >>> np.round(np.asarray(leroux.precision_dense([0.0, 0.0])), 2).tolist()[1]
    [-0.5, 1.5, -0.5, 0.0]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import Hyperparameter, LatentModel, LinearConstraints, Prior
from .build import resolve_index
from .constraints import model_constraints, parse_extraconstr
from .generic import check_model_args
from .priors import LOG_NORMC_GAUSSIAN, NonePrior

__all__ = ["custom", "CustomModel", "CustomJointPrior", "DENSE_MAX_NODES"]

#: Largest model whose Q(θ₀) is checked with dense eigenvalues (rank and definiteness) and whose
#: intrinsic normalising constant adelia computes densely; above it a proper model is checked by
#: a sparse LDLᵀ and an intrinsic model needs ``log_normaliser``.
DENSE_MAX_NODES = 2000

#: f() arguments a custom model refuses: its hyperparameters, priors and rank deficiency are set
#: in :func:`custom`, not in the formula.
_REFUSED = ("hyper", "initial", "prior", "param", "fixed", "rankdef", "graph", "order",
            "season_length", "Z", "precision", "range", "strata")

_WHERE = "adelia.models.custom"


class CustomJointPrior(Prior):
    """The user's joint log π(θ) of a custom model, carried by its first hyperparameter as a
    ``dimension``-d prior (the others carry prior ``none``), as R-INLA's multivariate priors are.

    Example:
        >>> prior = CustomJointPrior(lambda t: -0.5 * jnp.sum(t ** 2), dimension=2)
        >>> prior, float(prior.log_density([1.0, 1.0]))
        (custom(log_prior=<lambda>, dimension=2), -1.0)
    """

    name = "custom"

    def __init__(self, fn: Callable, dimension: int):
        self.fn = fn
        self.dimension = int(dimension)
        self.param = ()

    def log_density(self, theta):
        theta = jnp.atleast_1d(jnp.asarray(theta, dtype=jnp.float64))
        return jnp.reshape(jnp.asarray(self.fn(theta), dtype=jnp.float64), ())

    def __repr__(self) -> str:
        return f"custom(log_prior={getattr(self.fn, '__name__', 'fn')}, dimension={self.dimension})"


def _identity(theta):
    return theta


def _as_theta0(theta0) -> np.ndarray:
    try:
        t = np.asarray(theta0, dtype=float)
    except (TypeError, ValueError):
        raise ModelError(f"{_WHERE}: theta0 must be a vector of numbers, got {theta0!r}") from None
    if t.ndim > 1:
        raise ModelError(f"{_WHERE}: theta0 must be a 1-D vector, got shape {t.shape}")
    t = np.atleast_1d(t)
    if not np.all(np.isfinite(t)):
        raise ModelError(f"{_WHERE}: theta0 must be finite, got {t.tolist()}")
    return t


def _hyper_names(names, d: int) -> list[tuple[str, str]]:
    if names is None:
        return [(f"Theta{j + 1} for {{label}}",) * 2 for j in range(d)]
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if len(names) != d:
        raise ModelError(f"{_WHERE}: {len(names)} names for {d} hyperparameters (theta0 has {d} values)")
    out = []
    for j, nm in enumerate(names):
        if isinstance(nm, str):
            out.append((nm, nm))
        elif isinstance(nm, (tuple, list)) and len(nm) == 2 and all(isinstance(s, str) for s in nm):
            out.append((nm[0], nm[1]))
        else:
            raise ModelError(f"{_WHERE}: names[{j}] must be a string or an (internal name, user-scale name) pair, got {nm!r}")
    for kind, k in (("internal", 0), ("user-scale", 1)):
        seen = [p[k] for p in out]
        dup = sorted({s for s in seen if seen.count(s) > 1})
        if dup:
            raise ModelError(f"{_WHERE}: the {kind} names must be distinct; repeated: {dup}")
    return out


def _to_user_maps(to_user, d: int) -> list[Callable]:
    if to_user is None:
        return [_identity] * d
    if callable(to_user):
        return [to_user] * d
    maps = list(to_user)
    if len(maps) != d:
        raise ModelError(f"{_WHERE}: to_user has {len(maps)} maps for {d} hyperparameters")
    for j, f in enumerate(maps):
        if f is not None and not callable(f):
            raise ModelError(f"{_WHERE}: to_user[{j}] must be a function of θ_{j + 1} (or None), got {f!r}")
    return [_identity if f is None else f for f in maps]


def _parse_pattern(pattern, n: int | None) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, rows, cols) of the user's value order, validated (0-based, inside n x n)."""
    if isinstance(pattern, SparsePattern):
        if n is not None and int(n) != pattern.n:
            raise ModelError(f"{_WHERE}: n={n} but the SparsePattern is {pattern.n} x {pattern.n}")
        return pattern.n, np.asarray(pattern.rows), np.asarray(pattern.cols)
    if not (isinstance(pattern, (tuple, list)) and len(pattern) == 2):
        raise ModelError(f"{_WHERE}: pattern must be (rows, cols) index arrays or a SparsePattern, got {type(pattern).__name__}")
    arrs = []
    for what, a in zip(("rows", "cols"), pattern):
        a = np.asarray(a)
        if a.ndim != 1:
            raise ModelError(f"{_WHERE}: pattern {what} must be a 1-D array, got shape {a.shape}")
        if a.size and not (np.issubdtype(a.dtype, np.integer) or (np.issubdtype(a.dtype, np.floating)
                                                                 and np.all(np.isfinite(a)) and np.all(a == np.round(a)))):
            raise ModelError(f"{_WHERE}: pattern {what} must hold 0-based integer indices")
        arrs.append(a.astype(np.int64))
    rows, cols = arrs
    if rows.size != cols.size:
        raise ModelError(f"{_WHERE}: pattern rows and cols have different lengths ({rows.size} and {cols.size})")
    if rows.size == 0:
        raise ModelError(f"{_WHERE}: the pattern is empty")
    nn = int(max(rows.max(), cols.max())) + 1 if n is None else int(n)
    if n is not None and (int(n) != n or n < 1):
        raise ModelError(f"{_WHERE}: n must be a positive integer, got {n!r}")
    bad = (rows < 0) | (cols < 0) | (rows >= nn) | (cols >= nn)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ModelError(
            f"{_WHERE}: pattern entry {k} = ({rows[k]}, {cols[k]}) lies outside the {nn} x {nn} matrix "
            f"(indices are 0-based, 0..{nn - 1}); {int(bad.sum())} such entr{'y' if bad.sum() == 1 else 'ies'}")
    return nn, rows, cols


def _align(n: int, rows: np.ndarray, cols: np.ndarray):
    """The lower-triangular SparsePattern of the user's entries, ``take`` (internal position ->
    user position of the value used) and the mirrored pairs (user positions of (i, j) and (j, i))."""
    lo, hi = np.maximum(rows, cols), np.minimum(rows, cols)
    key = rows * n + cols
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    if np.any(counts > 1):
        k = int(uniq[counts > 1][0])
        raise ModelError(f"{_WHERE}: pattern entry ({k // n}, {k % n}) is given {int(counts[counts > 1][0])} times; "
                         "each (row, col) may appear once")
    missing = np.setdiff1d(np.arange(n), rows[rows == cols])
    if missing.size:
        show = ", ".join(f"({i}, {i})" for i in missing[:5]) + (", ..." if missing.size > 5 else "")
        raise ModelError(f"{_WHERE}: the pattern lacks {missing.size} diagonal entr{'y' if missing.size == 1 else 'ies'} "
                         f"{show}; a precision matrix needs every diagonal entry")
    pat = SparsePattern.from_entries(n, rows, cols)
    pos = pat.index_of(lo, hi)
    take = np.full(pat.nnz, -1, dtype=np.int64)
    lower = rows >= cols
    take[pos[lower]] = np.flatnonzero(lower)
    upper_only = ~lower & (take[pos] < 0)
    take[pos[upper_only]] = np.flatnonzero(upper_only)
    both = ~lower & ~upper_only  # (i, j) with i < j whose mirror (j, i) is also given
    mirrors = np.stack([take[pos[both]], np.flatnonzero(both)], axis=1) if both.any() else np.zeros((0, 2), np.int64)
    return pat, take, mirrors


def _jit_call(fn, theta, what: str):
    try:
        return np.asarray(jax.jit(fn)(jnp.asarray(theta, dtype=jnp.float64)), dtype=float)
    except ModelError:
        raise
    except Exception as exc:  # the user's code: say which function failed and why
        raise ModelError(
            f"{_WHERE}: calling {what}(theta0) under jax.jit failed ({type(exc).__name__}: {exc}). {what} must be a "
            "pure function of the θ vector written with jax.numpy (not numpy), returning arrays"
        ) from exc


class CustomModel(LatentModel):
    """A latent model defined by user functions (see the module docstring and :func:`custom`).

    Attributes (besides :class:`LatentModel`'s): ``rows``, ``cols`` (the user's pattern, in the
    order ``precision`` returns values), ``diagonal`` (R-INLA's f() ``diagonal``, added to Q).

    Example:
        >>> import numpy as np, jax.numpy as jnp
        >>> path = custom(lambda t: jnp.exp(t[0]) * jnp.array([2.0, -1, 2, -1, 2]),
        ...               ([0, 1, 1, 2, 2], [0, 0, 1, 1, 2]), log_prior=lambda t: -jnp.exp(t[0]), theta0=[0.0])
        >>> isinstance(path, CustomModel), path.rows.tolist(), path.cols.tolist()
        (True, [0, 1, 1, 2, 2], [0, 0, 1, 1, 2])
    """

    model_name = "custom"
    default_constr: ClassVar[bool] = False

    def __init__(self, precision: Callable, pattern, *, log_prior: Callable, theta0, names=None,
                 log_normaliser: Callable | None = None, constraints=None, rankdef: int = 0,
                 to_user=None, n: int | None = None):
        if not callable(precision):
            raise ModelError(f"{_WHERE}: precision must be a function theta -> values of Q(theta), got {type(precision).__name__}")
        if not callable(log_prior):
            raise ModelError(f"{_WHERE}: log_prior must be a function theta -> log density (return 0.0 for a flat prior), "
                             f"got {type(log_prior).__name__}")
        if log_normaliser is not None and not callable(log_normaliser):
            raise ModelError(f"{_WHERE}: log_normaliser must be None or a function theta -> ½log|Q|* − ½(n−r)log 2π")
        if isinstance(rankdef, (bool, np.bool_)) or not isinstance(rankdef, (int, np.integer, float)) \
                or rankdef != int(rankdef) or rankdef < 0:
            raise ModelError(f"{_WHERE}: rankdef must be a non-negative integer, got {rankdef!r}")
        theta0 = _as_theta0(theta0)
        d = theta0.size
        self._names = _hyper_names(names, d)
        self._to_user = _to_user_maps(to_user, d)
        self.n, self.rows, self.cols = _parse_pattern(pattern, n)
        if rankdef >= self.n:
            raise ModelError(f"{_WHERE}: rankdef={int(rankdef)} must be smaller than n={self.n}")
        self._fn = precision
        self._log_prior = log_prior
        self._log_normaliser_fn = log_normaliser
        self.rank_deficiency = int(rankdef)
        self.theta0 = theta0
        self.label = "custom"
        self.diagonal = 0.0
        self._pattern, self._take, self._mirrors = _align(self.n, self.rows, self.cols)
        self._diag_ind = np.zeros(self._pattern.nnz)
        self._diag_ind[self._pattern.diag_index] = 1.0
        self._own_constraints = None if constraints is None else parse_extraconstr(constraints, self.n, "custom")
        self._constraints = self._own_constraints
        self.null_basis = None
        self._check(theta0)
        self.hyperparameters = self._make_hyperparameters("custom")

    # -- validation at θ₀ -----------------------------------------------------------------------
    def _check(self, theta0: np.ndarray) -> None:
        nnz = self.rows.size
        vals = _jit_call(self._fn, theta0, "precision")
        if vals.shape != (nnz,):
            raise ModelError(f"{_WHERE}: precision(theta0) returned shape {vals.shape}, but the pattern has {nnz} "
                             f"entries: return a 1-D array of {nnz} values, in the pattern's order")
        bad = ~np.isfinite(vals)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ModelError(f"{_WHERE}: precision(theta0) has {int(bad.sum())} non-finite value(s); the first is "
                             f"{vals[k]} at entry {k} = ({self.rows[k]}, {self.cols[k]})")
        try:
            g = jax.grad(lambda t: jnp.sum(jnp.asarray(self._fn(t), dtype=jnp.float64)))(jnp.asarray(theta0))
        except Exception as exc:
            raise ModelError(f"{_WHERE}: precision cannot be differentiated by jax.grad ({type(exc).__name__}: {exc}); "
                             "write it with jax.numpy operations") from exc
        if not np.all(np.isfinite(np.asarray(g))):
            raise ModelError(f"{_WHERE}: the gradient of precision at theta0 is not finite")
        for a, b in self._mirrors:
            if not np.isclose(vals[a], vals[b], rtol=1e-10, atol=1e-12 * max(1.0, np.max(np.abs(vals)))):
                raise ModelError(f"{_WHERE}: Q(theta0) is not symmetric: Q[{self.rows[a]}, {self.cols[a]}] = {vals[a]:.6g} "
                                 f"but Q[{self.rows[b]}, {self.cols[b]}] = {vals[b]:.6g}")
        Q = self._pattern.to_scipy(vals[self._take])
        self._check_definite(Q, theta0)
        lp = _jit_call(self._log_prior, theta0, "log_prior")
        if lp.size != 1 or not np.isfinite(lp).all():
            raise ModelError(f"{_WHERE}: log_prior(theta0) must be one finite number, got {lp.ravel()[:5].tolist()}")
        if self._log_normaliser_fn is not None:
            ln = _jit_call(self._log_normaliser_fn, theta0, "log_normaliser")
            if ln.size != 1 or not np.isfinite(ln).all():
                raise ModelError(f"{_WHERE}: log_normaliser(theta0) must be one finite number, got {ln.ravel()[:5].tolist()}")
        elif self.rank_deficiency > 0 and self.null_basis is None:
            raise ModelError(f"{_WHERE}: an intrinsic model (rankdef={self.rank_deficiency}) with more than "
                             f"{DENSE_MAX_NODES} nodes needs log_normaliser = ½log|Q(θ)|* − ½(n−r)log 2π")

    def _check_definite(self, Q: sp.csc_matrix, theta0: np.ndarray) -> None:
        r = self.rank_deficiency
        if self.n <= DENSE_MAX_NODES:
            w, V = np.linalg.eigh(Q.toarray())
            scale = max(float(np.max(np.abs(w))), 1e-300)
            tol = 1e-9 * scale
            if w[0] < -tol:
                raise ModelError(f"{_WHERE}: Q(theta0) is not positive {'semi-' if r else ''}definite: its smallest "
                                 f"eigenvalue is {w[0]:.3g} (largest {w[-1]:.3g})")
            zeros = int(np.sum(w <= tol))
            if zeros != r:
                hint = (f"declare rankdef={zeros} for an intrinsic model" if r == 0 else
                        f"rankdef={r} declares {r}")
                raise ModelError(f"{_WHERE}: Q(theta0) has {zeros} (numerically) zero eigenvalue(s) but rankdef={r}; {hint} "
                                 f"(eigenvalues {', '.join(f'{x:.3g}' for x in w[: max(r, zeros) + 1])}, ...)")
            if r:
                N = V[:, :r]
                # the closed form ½ log det(Q + NNᵀ) needs Q(θ) N = 0 for every θ: check a second θ
                t1 = theta0 + 0.05 * (1.0 + np.abs(theta0))
                v1 = np.asarray(jax.jit(self._fn)(jnp.asarray(t1)), dtype=float)
                if np.all(np.isfinite(v1)) and self._log_normaliser_fn is None:
                    Q1 = self._pattern.to_scipy(v1[self._take])
                    resid = np.abs(Q1 @ N).max()
                    if resid > 1e-7 * max(abs(Q1).max(), 1e-300):
                        raise ModelError(f"{_WHERE}: the null space of Q(θ) changes with θ (|Q(θ₁) N| = {resid:.2g} at "
                                         "θ₁ ≠ θ₀), so adelia cannot compute ½log|Q(θ)|*; give log_normaliser")
                self.null_basis = N
            return
        if r == 0:
            # LDLᵀ without pivoting (symmetric permutation only): Q is SPD iff every pivot is positive
            try:
                lu = spla.splu(Q.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                               options={"SymmetricMode": True})
                pivots = lu.U.diagonal()
            except RuntimeError:
                pivots = np.array([0.0])
            if not np.all(pivots > 0):
                raise ModelError(f"{_WHERE}: Q(theta0) is not positive definite (a non-positive pivot in its LDLᵀ "
                                 "factorisation)")

    # -- hyperparameters ------------------------------------------------------------------------------
    def _make_hyperparameters(self, label: str) -> tuple[Hyperparameter, ...]:
        d = self.theta0.size
        out = []
        for j in range(d):
            internal, user = (s.replace("{label}", label) for s in self._names[j])
            prior = CustomJointPrior(self._log_prior, d) if j == 0 else NonePrior()
            out.append(Hyperparameter(key=f"theta{j + 1}", internal_name=internal, name=user,
                                      to_user=self._to_user[j], prior=prior, initial=float(self.theta0[j])))
        return tuple(out)

    # -- f(idx, model=<this>) -----------------------------------------------------------------------
    def from_term(self, label: str, covariate, args: dict[str, Any]):
        """Bind the model to the f() term ``label``: node numbers 1..n (or ``values``), the
        model's own constraints plus ``constr``/``extraconstr``, ``diagonal``."""
        where = f"f({label}, model=<custom model>)"
        for key in _REFUSED:
            if args.get(key) is not None:
                raise ModelError(f"{where}: argument {key!r} is not used by a custom model; hyperparameters, priors and "
                                 "the rank deficiency are set in adelia.models.custom(theta0=, log_prior=, rankdef=)")
        check_model_args(args, "custom", label)
        if args.get("n") is not None and int(args["n"]) != self.n:
            raise ModelError(f"{where}: n={args['n']} but the custom model has {self.n} nodes")
        values = args.get("values")
        index, ids = resolve_index(label, covariate, values, None,
                                   default_values=None if values is not None else np.arange(1.0, self.n + 1.0),
                                   model="custom")
        if ids.size != self.n:
            raise ModelError(f"{where}: {ids.size} values for a custom model of {self.n} nodes")
        bound = copy.copy(self)
        bound.label = label
        bound._constraints = LinearConstraints.stack(
            [self._own_constraints, model_constraints(self.n, bool(args.get("constr", False)), args.get("extraconstr"), label)])
        bound.diagonal = float(args.get("diagonal") or 0.0)
        bound.hyperparameters = self._make_hyperparameters(label)
        return bound, index, ids

    # -- LatentModel interface ------------------------------------------------------------------------
    def pattern(self) -> SparsePattern:
        return self._pattern

    def _raw_values(self, theta):
        vals = jnp.reshape(jnp.asarray(self._fn(jnp.asarray(theta, dtype=jnp.float64)), dtype=jnp.float64), (-1,))
        return vals[jnp.asarray(self._take)]

    def precision_values(self, theta):
        vals = self._raw_values(theta)
        if self.diagonal:
            vals = vals + self.diagonal * jnp.asarray(self._diag_ind)
        return vals

    def log_normaliser(self, theta):
        """½ log|Q(θ)|* − ½ (n − r) log 2π: the user's function, the dense closed form of an
        intrinsic model (see the module docstring), or None (proper model: the compiler takes
        ½ log|Q(θ)| from its sparse Cholesky factor)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        if self._log_normaliser_fn is not None:
            return jnp.reshape(jnp.asarray(self._log_normaliser_fn(theta), dtype=jnp.float64), ())
        if self.rank_deficiency == 0:
            return None
        N = jnp.asarray(self.null_basis)
        Qd = self._pattern.to_dense_jax(self._raw_values(theta)) + N @ N.T
        L = jnp.linalg.cholesky(Qd)
        # ½ log|Q|* = ½ log det(Q + N Nᵀ) = Σ log diag L, since Q N = 0 and NᵀN = I
        return jnp.sum(jnp.log(jnp.diagonal(L))) + (self.n - self.rank_deficiency) * LOG_NORMC_GAUSSIAN

    def constraints(self) -> LinearConstraints | None:
        return self._constraints

    def __repr__(self) -> str:
        return (f"CustomModel(label={self.label!r}, n={self.n}, nnz={self.rows.size}, "
                f"theta={[h.internal_name for h in self.hyperparameters]}, rankdef={self.rank_deficiency})")


def custom(precision: Callable, pattern, *, log_prior: Callable, theta0: Sequence[float], names=None,
           log_normaliser: Callable | None = None, constraints=None, rankdef: int = 0, to_user=None,
           n: int | None = None) -> CustomModel:
    """A latent model from your own JAX functions, for ``f(idx, model=<it>)``.

    x | θ ~ N(0, Q(θ)⁻¹) (under ``constraints`` A x = e if given), with Q(θ)'s values on a fixed
    pattern computed by ``precision(theta)``. R-INLA's counterparts are ``rgeneric`` and
    ``cgeneric`` (``inla.rgeneric.define``); here the AD gradient of the Laplace objective flows
    through ``precision``, ``log_prior`` and ``log_normaliser`` with no extra code.

    Args:
        precision: θ (1-D jnp array) ↦ the nnz values of Q(θ) on ``pattern``, in its order.
        pattern: ``(rows, cols)`` 0-based index arrays (either triangle or both; every diagonal
            entry present) or a :class:`~adelia.engine.pattern.SparsePattern`.
        log_prior: θ ↦ log π(θ), the joint prior density of the internal θ (Jacobians included).
        theta0: initial θ (R-INLA's ``initial``); Q(θ₀) is checked.
        names: one name per θ_j, or ``(internal name, user-scale name)`` pairs; ``{label}`` is
            replaced by the term's name. Default "Theta<j> for <label>" (R-INLA's rgeneric names).
        log_normaliser: θ ↦ ½ log|Q(θ)|* − ½ (n − r) log 2π, or None to let adelia compute it
            (sparse Cholesky for proper models; dense for intrinsic ones up to
            :data:`DENSE_MAX_NODES` nodes, with a θ-independent null space).
        constraints: hard constraints A x = e of the model itself, ``{"A": (k, n), "e": (k,)}``
            or ``(A, e)``; f()'s ``constr``/``extraconstr`` add to them.
        rankdef: dimension of the null space of Q(θ) (0 for a proper model).
        to_user: the map from θ_j to the reported user scale (one function for all, or one per
            θ_j, None meaning identity); default identity.
        n: the matrix size (default: largest index in ``pattern`` + 1).

    Returns:
        A :class:`CustomModel`, usable as ``f(idx, model=it)`` (idx = node numbers 1..n).

    Raises:
        ModelError: inconsistent lengths, pattern entries outside n × n or duplicated or missing
            diagonal entries, a function that fails under jax.jit/grad or returns the wrong
            number of or non-finite values, Q(θ₀) not symmetric, not positive (semi-)definite or
            of another rank deficiency than ``rankdef``.

    Example:
        >>> import numpy as np, jax.numpy as jnp
        >>> iid = custom(lambda t: jnp.exp(t[0]) * jnp.ones(3), (np.arange(3), np.arange(3)),
        ...              log_prior=lambda t: t[0] - jnp.exp(t[0]), theta0=[0.0],
        ...              names=[("Log precision for {label}", "Precision for {label}")], to_user=jnp.exp)
        >>> np.asarray(iid.precision_dense([np.log(2.0)])).diagonal().tolist(), iid.hyperparameters[0].name
        ([2.0, 2.0, 2.0], 'Precision for custom')
    """
    return CustomModel(precision, pattern, log_prior=log_prior, theta0=theta0, names=names,
                       log_normaliser=log_normaliser, constraints=constraints, rankdef=rankdef,
                       to_user=to_user, n=n)
