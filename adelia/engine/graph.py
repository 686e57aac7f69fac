"""The precision-block graph compiler (DESIGN.md §1, §2).

Turns the latent components, the fixed effects and the observation matrix into the one
static structure the engine differentiates through:

    x   = (x_1, ..., x_K, β)                       latent vector: f() components, then fixed effects
    η   = A(θ) x + offset                          A = A_pred · A_formula (copy terms scale columns by β(θ))
    Q   = blockdiag(Q_1(θ_1), ..., Q_K(θ_K), diag(prec_β))
    Q_c = Q + Aᵀ D A                               D = diag(−∂² log π(y | η)), the Laplace precision

Everything structural is computed here, once, on the host: the block-diagonal pattern of Q,
the joint pattern of Q_c (pattern(Q) ∪ pattern(AᵀA)), the map of Q's entries into Q_c's, and
the list of products that form AᵀDA (one entry per pair of nonzeros in a row of A). At run
time only values move: ``prior_values(θ)`` and ``posterior_values(θ, D)`` are pure jit-able
functions on these static patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..models.base import Component, Hyperparameter, LatentModel, LinearConstraints
from .pattern import SparsePattern
from .solver import BlockStructure, Solver, make_solver


@dataclass(frozen=True)
class FixedEffects:
    """Fixed effects as latent nodes with Gaussian priors (R-INLA's convention).

    Attributes:
        names: R-INLA names ("(Intercept)", "x1", ...).
        X: design matrix, shape (n_rows, p), rows = effect-level data rows.
        prior_mean, prior_prec: shape (p,); precision 0 means a flat (improper) prior.
    """

    names: tuple[str, ...]
    X: np.ndarray
    prior_mean: np.ndarray
    prior_prec: np.ndarray

    @property
    def p(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class CopyTerm:
    """``f(idx, copy="source")``: row i adds β·w_i·x_source[index[i]] to the predictor.

    β is fixed at ``beta`` or, when ``theta_index`` is not None, the hyperparameter
    θ[theta_index] (R-INLA's "Beta for <label>", identity internal scale)."""

    label: str
    source: str
    index: np.ndarray
    weights: np.ndarray
    ids: np.ndarray
    beta: float = 1.0
    theta_index: int | None = None


@dataclass(frozen=True)
class LatentBlock:
    """Where a named part of x lives: x[start : start + size]."""

    label: str
    start: int
    size: int
    kind: str  # "random" or "fixed"


@dataclass(frozen=True)
class ThetaLayout:
    """The full hyperparameter vector and its free (not fixed) coordinates."""

    hyperparameters: tuple[Hyperparameter, ...]
    owners: tuple[str, ...]  # "likelihood:<i>" or the component label, per entry

    @property
    def n(self) -> int:
        return len(self.hyperparameters)

    @property
    def free(self) -> np.ndarray:
        return np.array([i for i, h in enumerate(self.hyperparameters) if not h.fixed], dtype=np.int64)

    @property
    def initial(self) -> np.ndarray:
        return np.array([h.initial for h in self.hyperparameters], dtype=float)

    def expand(self, theta_free: jax.Array) -> jax.Array:
        """Full θ from the free coordinates (fixed ones at their initial values)."""
        full = jnp.asarray(self.initial, dtype=jnp.float64)
        return full.at[jnp.asarray(self.free)].set(theta_free)

    def expand_host(self, theta_free) -> np.ndarray:
        """:meth:`expand` in NumPy for host-side bookkeeping, on one θ (d_free,) or a batch
        (k, d_free): no eager JAX dispatch (each eager op costs a compilation on first use)."""
        theta_free = np.asarray(theta_free, dtype=float)
        full = np.broadcast_to(self.initial, theta_free.shape[:-1] + (self.n,)).copy()
        full[..., self.free] = theta_free
        return full


@dataclass(eq=False)
class LinearMap:
    """A sparse map x -> M(θ) x from the latent field to rows (observations, or the formula's
    effect rows), with everything the engine needs precomputed on the host.

    M's COO entries have values ``values × scale`` where the scale is 1 (group 0) or a copy
    term's β (group j ≥ 1). ``pair_*`` list, for each row, every unordered pair of its entries
    (i ≥ j) and where their product lands in the posterior pattern: Σ_pairs d_row·m_i·m_j forms
    MᵀDM on the lower triangle, and the same pairs give diag(M Σ Mᵀ) from a selected inverse.
    """

    n_rows: int
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    scale: np.ndarray
    pair_target: np.ndarray
    pair_row: np.ndarray
    pair_left: np.ndarray
    pair_right: np.ndarray

    @classmethod
    def from_groups(cls, groups: list[sp.spmatrix]) -> tuple["LinearMap", np.ndarray, np.ndarray]:
        """Entries of the scale groups, sorted by (row, col), and the list of row pairs.
        Returns (map without targets, pair columns left, pair columns right) — the targets are
        filled in by :meth:`with_targets` once the posterior pattern is known."""
        r_, c_, v_, s_ = [], [], [], []
        for s, g in enumerate(groups):
            g = g.tocoo()
            keep = g.data != 0
            r_.append(g.row[keep])
            c_.append(g.col[keep])
            v_.append(g.data[keep])
            s_.append(np.full(int(keep.sum()), s))
        rows = np.concatenate(r_).astype(np.int64)
        cols = np.concatenate(c_).astype(np.int64)
        vals = np.concatenate(v_).astype(float)
        scale = np.concatenate(s_).astype(np.int64)
        order = np.lexsort((cols, rows))
        rows, cols, vals, scale = rows[order], cols[order], vals[order], scale[order]
        n_rows = groups[0].shape[0]
        row_start = np.searchsorted(rows, np.arange(n_rows + 1))
        counts = np.diff(row_start)
        left, right = [], []
        for m in np.unique(counts):
            if m == 0:
                continue
            which = np.flatnonzero(counts == m)
            base = row_start[which][:, None]
            ii, jj = np.tril_indices(m)
            left.append((base + ii[None, :]).ravel())
            right.append((base + jj[None, :]).ravel())
        pl = np.concatenate(left) if left else np.zeros(0, np.int64)
        pr = np.concatenate(right) if right else np.zeros(0, np.int64)
        # Two entries of one row in the same column (different scale groups) form a diagonal
        # term that the symmetric square counts twice: keep the product twice.
        dbl = (cols[pl] == cols[pr]) & (pl != pr)
        if np.any(dbl):
            pl = np.concatenate([pl, pl[dbl]])
            pr = np.concatenate([pr, pr[dbl]])
        empty = np.zeros(0, np.int64)
        return cls(n_rows, rows, cols, vals, scale, empty, rows[pl], pl, pr), cols[pl], cols[pr]

    def with_targets(self, pattern: SparsePattern) -> "LinearMap":
        self.pair_target = pattern.index_of(self.cols[self.pair_left], self.cols[self.pair_right]) if self.pair_left.size else np.zeros(0, np.int64)
        self._both = np.where(pattern.rows[self.pair_target] != pattern.cols[self.pair_target], 2.0, 1.0)
        return self

    def entry_values(self, betas: jax.Array) -> jax.Array:
        """Values of the entries; ``betas`` = (1, β_1, β_2, ...) per scale group."""
        vals = jnp.asarray(self.values)
        if betas.shape[0] == 1:
            return vals
        return vals * betas[jnp.asarray(self.scale)]

    def apply(self, values: jax.Array, x: jax.Array) -> jax.Array:
        """M x, shape (n_rows,) (or (n_rows, k) for x of shape (n_latent, k))."""
        contrib = values.reshape((-1,) + (1,) * (x.ndim - 1)) * x[jnp.asarray(self.cols)]
        return jax.ops.segment_sum(contrib, jnp.asarray(self.rows), num_segments=self.n_rows)

    def apply_transpose(self, values: jax.Array, v: jax.Array, n_latent: int) -> jax.Array:
        """Mᵀ v, shape (n_latent,) (or (n_latent, k))."""
        contrib = values.reshape((-1,) + (1,) * (v.ndim - 1)) * v[jnp.asarray(self.rows)]
        return jax.ops.segment_sum(contrib, jnp.asarray(self.cols), num_segments=n_latent)

    def gram_values(self, values: jax.Array, D: jax.Array, nnz: int) -> jax.Array:
        """MᵀDM on the posterior pattern (lower triangle values)."""
        out = jnp.zeros(nnz, dtype=jnp.float64)
        if not self.pair_target.size:
            return out
        prod = values[jnp.asarray(self.pair_left)] * values[jnp.asarray(self.pair_right)] * D[jnp.asarray(self.pair_row)]
        return out.at[jnp.asarray(self.pair_target)].add(prod)

    def variance(self, values: jax.Array, selected_inverse: jax.Array) -> jax.Array:
        """diag(M Σ Mᵀ) from Σ on the posterior pattern: each stored pair is one unordered pair of
        a row's entries; off-diagonal targets stand for both orders."""
        if not self.pair_target.size:
            return jnp.zeros(self.n_rows)
        prod = (
            values[jnp.asarray(self.pair_left)]
            * values[jnp.asarray(self.pair_right)]
            * jnp.asarray(self._both)
            * selected_inverse[jnp.asarray(self.pair_target)]
        )
        return jax.ops.segment_sum(prod, jnp.asarray(self.pair_row), num_segments=self.n_rows)


@dataclass(eq=False)
class LatentGraph:
    """The compiled static structure of a latent Gaussian model (see module docstring).

    Build it with :func:`compile_graph`. Attributes of interest:

    * ``n_latent``, ``blocks`` (the layout of x), ``components``, ``fixed``, ``copies``;
    * ``prior_pattern`` / ``posterior_pattern`` and the value functions below;
    * ``obs_map`` — A (n_obs rows), ``effect_map`` — the formula's own rows when a
      ``control_predictor`` A is given (R-INLA's "Predictor" next to its "APredictor");
    * ``constraints`` — the stacked hard constraints C x = e, or None;
    * ``solver`` — the kernel backend on ``posterior_pattern``.
    """

    n_latent: int
    n_obs: int
    blocks: tuple[LatentBlock, ...]
    components: tuple[Component, ...]
    component_theta: tuple[np.ndarray, ...]  # indices into full θ per component
    fixed: FixedEffects
    copies: tuple[CopyTerm, ...]
    prior_pattern: SparsePattern
    posterior_pattern: SparsePattern
    prior_in_posterior: np.ndarray  # positions of Q's entries in Q_c's values
    obs_map: LinearMap  # A: latent -> observations (η = A x + offset)
    effect_map: LinearMap | None  # the formula's rows (R-INLA's "Predictor") when A_pred is given
    constraints: LinearConstraints | None
    prior_mean: np.ndarray
    solver: Solver
    component_solvers: dict[int, Solver] = field(default_factory=dict)
    block_structure: BlockStructure | None = None

    # --- values ------------------------------------------------------------------------------
    def component_thetas(self, theta: jax.Array) -> list[jax.Array]:
        return [theta[jnp.asarray(ix)] if ix.size else jnp.zeros((0,)) for ix in self.component_theta]

    def prior_values(self, theta: jax.Array) -> jax.Array:
        """Values of Q(θ) on ``prior_pattern``."""
        parts = [c.model.precision_values(t) for c, t in zip(self.components, self.component_thetas(theta))]
        parts.append(jnp.asarray(self.fixed.prior_prec, dtype=jnp.float64))
        return jnp.concatenate([jnp.atleast_1d(jnp.asarray(p, dtype=jnp.float64)) for p in parts])

    def copy_betas(self, theta: jax.Array) -> jax.Array:
        """(1, β_1, β_2, ...): the scale of each group of A's entries."""
        betas = [jnp.asarray(1.0)]
        for cp in self.copies:
            betas.append(theta[cp.theta_index] if cp.theta_index is not None else jnp.asarray(cp.beta))
        return jnp.stack(betas)

    def a_values(self, theta: jax.Array) -> jax.Array:
        """Values of the COO entries of A(θ)."""
        return self.obs_map.entry_values(self.copy_betas(theta))

    def posterior_values(self, prior_values: jax.Array, a_values: jax.Array, D: jax.Array) -> jax.Array:
        """Values of Q_c = Q + AᵀDA on ``posterior_pattern``."""
        out = self.obs_map.gram_values(a_values, D, self.posterior_pattern.nnz)
        return out.at[jnp.asarray(self.prior_in_posterior)].add(prior_values)

    def predictor(self, a_values: jax.Array, x: jax.Array) -> jax.Array:
        """A x (without offset), shape (n_obs,) (or (n_obs, k) for x of shape (n_latent, k))."""
        return self.obs_map.apply(a_values, x)

    def predictor_transpose(self, a_values: jax.Array, v: jax.Array) -> jax.Array:
        """Aᵀ v, shape (n_latent,) (or (n_latent, k))."""
        return self.obs_map.apply_transpose(a_values, v, self.n_latent)

    def predictor_variance(self, a_values: jax.Array, selected_inverse: jax.Array) -> jax.Array:
        """diag(A Σ Aᵀ) from Σ on the posterior pattern (which contains pattern(AᵀA))."""
        return self.obs_map.variance(a_values, selected_inverse)

    def prior_matvec(self, prior_values: jax.Array, x: jax.Array) -> jax.Array:
        """Q x from values on the (lower-triangular) prior pattern."""
        return _sym_matvec(self.prior_pattern, prior_values, x)

    def posterior_matvec(self, values: jax.Array, x: jax.Array) -> jax.Array:
        return _sym_matvec(self.posterior_pattern, values, x)

    def a_matrix(self, theta=None) -> sp.csr_matrix:
        """A(θ) as a scipy matrix (host; θ needed only with estimated copy β)."""
        m = self.obs_map
        vals = np.asarray(self.a_values(jnp.asarray(theta)) if theta is not None else m.values)
        return sp.csr_matrix((vals, (m.rows, m.cols)), shape=(self.n_obs, self.n_latent))

    def block(self, label: str) -> LatentBlock:
        for b in self.blocks:
            if b.label == label:
                return b
        raise KeyError(label)


def _sym_matvec(pattern: SparsePattern, values: jax.Array, x: jax.Array) -> jax.Array:
    rows = jnp.asarray(pattern.rows)
    cols = jnp.asarray(pattern.cols)
    shape = (-1,) + (1,) * (x.ndim - 1)
    v = values.reshape(shape)
    out = jax.ops.segment_sum(v * x[cols], rows, num_segments=pattern.n)
    off = jnp.asarray((pattern.rows != pattern.cols).astype(np.float64)).reshape(shape)
    return out + jax.ops.segment_sum(off * v * x[rows], cols, num_segments=pattern.n)


# ------------------------------------------------------------------------------------------
# compilation
# ------------------------------------------------------------------------------------------


def _formula_matrix(components, fixed: FixedEffects, copies, offsets_of: dict[str, int], n_rows: int, n_latent: int):
    """A_formula split by scale group: list of scipy CSR (n_rows × n_latent), group 0 unscaled,
    group j the copy term j-1 (to be multiplied by its β)."""
    rows, cols, vals = [], [], []
    for comp in components:
        projector = comp.extra.get("projector")
        if projector is not None:  # rows mapped to nodes by a matrix (SPDE at coordinates)
            P = sp.coo_matrix(projector)
            rows.append(P.row)
            cols.append(offsets_of[comp.label] + P.col)
            vals.append(P.data.astype(float))
            continue
        use = comp.index >= 0
        r = np.flatnonzero(use)
        rows.append(r)
        cols.append(offsets_of[comp.label] + comp.index[use])
        vals.append(comp.weights[use].astype(float))
    start = offsets_of["__fixed__"]
    if fixed.p:
        Xc = sp.coo_matrix(fixed.X)
        rows.append(Xc.row)
        cols.append(start + Xc.col)
        vals.append(Xc.data.astype(float))
    groups = [
        sp.csr_matrix(
            (np.concatenate(vals) if vals else np.zeros(0), (np.concatenate(rows) if rows else np.zeros(0, int), np.concatenate(cols) if cols else np.zeros(0, int))),
            shape=(n_rows, n_latent),
        )
    ]
    for cp in copies:
        use = cp.index >= 0
        r = np.flatnonzero(use)
        groups.append(
            sp.csr_matrix((cp.weights[use].astype(float), (r, offsets_of[cp.source] + cp.index[use])), shape=(n_rows, n_latent))
        )
    return groups


def _has_no_log_normaliser(model: LatentModel) -> bool:
    """Whether ``model.log_normaliser`` is None (its ½ log|Q| then comes from a factorisation).

    Evaluated abstractly: eagerly, each jnp op on θ would compile a small XLA program of its
    own (30 for a DEMF model). Values a model computes from its own constants and caches on
    first use (e.g. a spatial spectrum) are still computed concretely, not as tracers."""

    def normaliser(theta):
        with jax.ensure_compile_time_eval():
            return model.log_normaliser(theta)

    return jax.eval_shape(normaliser, np.asarray(model.initial_theta(), dtype=float)) is None


def compile_graph(
    components: list[Component],
    fixed: FixedEffects,
    n_rows: int,
    A_pred: sp.spmatrix | None = None,
    copies: list[CopyTerm] | None = None,
    component_theta: list[np.ndarray] | None = None,
    extra_constraints: LinearConstraints | None = None,
    backend: str = "auto",
    block_structure: BlockStructure | None = None,
    devices=None,
) -> LatentGraph:
    """Compile latent components, fixed effects and the predictor matrix into a LatentGraph.

    Args:
        components: the f() components (effects-level rows ``n_rows``).
        fixed: the fixed effects (``fixed.X`` has ``n_rows`` rows).
        n_rows: number of effects-level rows (the formula's data rows).
        A_pred: R-INLA's ``control.predictor$A`` (n_obs × n_rows); identity when None.
        copies: copy terms.
        component_theta: per component, the indices of its hyperparameters in the full θ.
        extra_constraints: constraints on the whole latent vector (R-INLA's global extraconstr).
        backend: kernel backend for Q_c (see :func:`adelia.engine.solver.make_solver`).
        block_structure: BTA layout for Q_c (space-time models), if known.
        devices: ``control_inla["devices"]`` for the BTA backend (time blocks partitioned over them).

    Example:
        >>> graph = compile_graph([comp], fixed, n_rows=len(y))  # doctest: +SKIP
    """
    copies = list(copies or [])
    labels = [c.label for c in components]
    if len(set(labels)) != len(labels):
        dup = sorted({l for l in labels if labels.count(l) > 1})
        raise ValueError(f"two f() terms share the name(s) {dup}; R-INLA needs distinct covariate names per f() term")
    blocks, offsets_of, start = [], {}, 0
    for c in components:
        blocks.append(LatentBlock(c.label, start, c.model.n, "random"))
        offsets_of[c.label] = start
        start += c.model.n
    offsets_of["__fixed__"] = start
    for j, name in enumerate(fixed.names):
        blocks.append(LatentBlock(name, start + j, 1, "fixed"))
    n_latent = start + fixed.p
    for cp in copies:
        if cp.source not in offsets_of:
            raise ValueError(f'f({cp.label}, copy="{cp.source}"): no f() term named "{cp.source}"; terms are {labels}')

    # Q: block diagonal of the component patterns and the fixed-effect diagonal.
    pr, pc = [], []
    for c in components:
        p = c.model.pattern()
        if p.n != c.model.n:
            raise ValueError(f"component {c.label!r}: pattern size {p.n} != model size {c.model.n}")
        pr.append(p.rows + offsets_of[c.label])
        pc.append(p.cols + offsets_of[c.label])
    fix_idx = np.arange(fixed.p) + start
    pr.append(fix_idx)
    pc.append(fix_idx)
    prior_rows = np.concatenate(pr) if pr else np.zeros(0, int)
    prior_cols = np.concatenate(pc) if pc else np.zeros(0, int)
    # the concatenation is already sorted by (col, row): blocks are disjoint and increasing
    prior_pattern = SparsePattern(n_latent, prior_rows, prior_cols)

    # A = A_pred · A_formula, per scale group; the formula's own rows are kept too when A_pred
    # is given (R-INLA reports both: "APredictor" = A η, "Predictor" = η on the effect rows)
    groups = _formula_matrix(components, fixed, copies, offsets_of, n_rows, n_latent)
    effect_map = None
    if A_pred is not None:
        A_pred = sp.csr_matrix(A_pred)
        if A_pred.shape[1] != n_rows:
            raise ValueError(
                f"control_predictor A has {A_pred.shape[1]} columns but the formula's data have {n_rows} rows "
                "(the A matrix maps the effects rows to the observations: ncol(A) must equal the effects length)"
            )
        effect_map, el, er = LinearMap.from_groups(groups)
        groups = [sp.csr_matrix(A_pred @ g) for g in groups]
    obs_map, left_cols, right_cols = LinearMap.from_groups(groups)
    n_obs = obs_map.n_rows
    extra_r, extra_c = [left_cols], [right_cols]
    if effect_map is not None:
        extra_r.append(el)
        extra_c.append(er)
    post_pattern = prior_pattern.union(SparsePattern.from_entries(n_latent, np.concatenate(extra_r), np.concatenate(extra_c)))
    prior_in_post = post_pattern.index_of(prior_pattern.rows, prior_pattern.cols)
    obs_map.with_targets(post_pattern)
    if effect_map is not None:
        effect_map.with_targets(post_pattern)

    # constraints
    cons = []
    for c in components:
        k = c.model.constraints()
        if k is not None and k.k:
            C = np.zeros((k.k, n_latent))
            C[:, offsets_of[c.label] : offsets_of[c.label] + c.model.n] = k.C
            cons.append(LinearConstraints(C, k.e))
    if extra_constraints is not None:
        if extra_constraints.C.shape[1] != n_latent:
            raise ValueError(f"extraconstr has {extra_constraints.C.shape[1]} columns, the latent field has {n_latent}")
        cons.append(extra_constraints)
    constraints = LinearConstraints.stack(cons)

    prior_mean = np.zeros(n_latent)
    prior_mean[start:] = fixed.prior_mean
    if component_theta is None:
        component_theta = []
        pos = 0
        for c in components:
            component_theta.append(np.arange(pos, pos + c.model.n_theta))
            pos += c.model.n_theta
    solver = make_solver(post_pattern, backend, block_structure, devices)
    comp_solvers = {}
    for i, c in enumerate(components):
        if _has_no_log_normaliser(c.model):
            comp_solvers[i] = make_solver(c.model.pattern(), "dense" if backend == "dense" else "auto")
    return LatentGraph(
        n_latent=n_latent,
        n_obs=n_obs,
        blocks=tuple(blocks),
        components=tuple(components),
        component_theta=tuple(np.asarray(t, dtype=np.int64) for t in component_theta),
        fixed=fixed,
        copies=tuple(copies),
        prior_pattern=prior_pattern,
        posterior_pattern=post_pattern,
        prior_in_posterior=prior_in_post,
        obs_map=obs_map,
        effect_map=effect_map,
        constraints=constraints,
        prior_mean=prior_mean,
        solver=solver,
        component_solvers=comp_solvers,
        block_structure=block_structure,
    )
