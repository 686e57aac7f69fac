"""Non-separable space-time Matérn field DEMF(1,2,1) (Lindgren, Bakka, Bolin, Krainski & Rue
2024, "A diffusion-based spatio-temporal extension of Gaussian Matérn fields", SORT 48(1);
R implementation: INLAspacetime's ``stModel.define(smesh, tmesh, "121", ...)``).

With spatial FEM matrices c0, g1, g2, g3 and temporal ones J0 = c0ₜ (lumped mass),
J1 = diag(½, 0, ..., 0, ½) (boundary term), J2 = g1ₜ (stiffness):

    q1 = γs² c0 + g1,   q2 = γs⁴ c0 + 2γs² g1 + g2,   q3 = γs⁶ c0 + 3γs⁴ g1 + 3γs² g2 + g3,
    Q  = γe² (J0 ⊗ q3 + γt J1 ⊗ q2 + γt² J2 ⊗ q1).

θ = (log ρs, log ρt, log σ) (INLAspacetime's cgeneric ``sstspde``; d = 2, α = 2,
νs = 1, νt = ½):

    log γs = ½ log(8νs) − θ₁,
    log γt = −½ log(8νt) + 2 log γs + θ₂,
    log γe = ½(log Cₜ + log C_R²) + (d/2 − α) log γs − ½ log γt − θ₃,

with log Cₜ = lgamma(½) − lgamma(1) − ½ log 4π and log C_R² = lgamma(α − 1) − lgamma(α) − log 4π.
Priors (PC, as INLAspacetime): ``pc.range`` with d = 2 on θ₁, ``pc.range`` with d = 1 on θ₂,
``pc.sigma`` on θ₃; initial values (1, 1, 0); a prior probability of 0/None fixes the
parameter at its value.

Latent layout: time-major, x[node + n_s·(t − 1)] (1-based), i.e. blocks of ``mesh.n``
nodes per time point; ``n_blocks = n_times`` and ``block_size = mesh.n`` tell the
compiler its block-tridiagonal structure.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from ..models.base import Hyperparameter, LatentModel, LinearConstraints
from . import _spectral
from .fem import fem
from .matern import node_index
from .mesh1d import Mesh1D
from .priors import FixedValue, PCRange, PCSigma

_D = 2
_ALPHA_T, _ALPHA_S, _ALPHA_E = 1, 2, 1
_ALPHA = _ALPHA_E + _ALPHA_S * (_ALPHA_T - 0.5)  # 2
_NU_S = _ALPHA - _D / 2  # 1
_NU_T = min(_ALPHA_T - 0.5, _NU_S / _ALPHA_S)  # 1/2
_C1 = 0.5 * math.log(8 * _NU_S)
_C2 = -0.5 * math.log(8 * _NU_T)
_LOG_CT = math.lgamma(_ALPHA_T - 0.5) - math.lgamma(_ALPHA_T) - 0.5 * math.log(4 * math.pi)
_LOG_CR = math.lgamma(_ALPHA - _D / 2) - math.lgamma(_ALPHA) - (_D / 2) * math.log(4 * math.pi)
_C3 = 0.5 * (_LOG_CT + _LOG_CR)


def demf_gammas(theta):
    """(log γs, log γt, log γe) from θ = (log ρs, log ρt, log σ) (jnp; INLAspacetime's mapping).

    Example:
        >>> log_gs, log_gt, log_ge = demf_gammas(np.log([0.5, 2.0, 1.0]))   # ρs = 0.5, ρt = 2, σ = 1
        >>> round(float(log_gs), 4), round(float(log_gt), 4), round(float(log_ge), 4)
        (1.7329, 3.4657, -5.0778)
    """
    theta = jnp.asarray(theta, dtype=jnp.float64)
    lgs = _C1 - theta[0]
    lgt = _C2 + _ALPHA_S * lgs + theta[1]
    lge = _C3 + (_D / 2 - _ALPHA) * lgs - 0.5 * lgt - theta[2]
    return lgs, lgt, lge


class DEMF121Model(LatentModel):
    """The DEMF(1,2,1) latent field on n_s·n_t nodes (time-major); see the module docstring.

    Example:
        >>> from adelia.spde import mesh_2d, spacetime_demf
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> field = spacetime_demf(mesh, 5, (0.5, 0.5), (2.0, 0.5), (1.0, 0.05)).latent_model("st")
        >>> isinstance(field, DEMF121Model), field.n == 5 * mesh.n
        (True, True)
        >>> [h.name for h in field.hyperparameters]   # log range in space, in time, log sigma
        ['Theta1 for st', 'Theta2 for st', 'Theta3 for st']
    """

    model_name = "spacetime.demf121"

    def __init__(self, label, sfem: dict, tmesh: Mesh1D, hyperparameters, constraints=None):
        self.label = label
        self.hyperparameters = tuple(hyperparameters)
        self._constraints = constraints
        ns = sfem["c0"].shape[0]
        nt = tmesh.n
        self.n = ns * nt
        self.n_blocks = nt
        self.block_size = ns
        tf = fem(tmesh, order=1)
        J0 = tf["c0"].diagonal()
        J1 = np.zeros(nt)
        J1[0] = J1[-1] = 0.5
        g1t = tf["g1"].tocsr()
        J2d = g1t.diagonal()
        J2off = np.asarray(g1t[np.arange(1, nt), np.arange(nt - 1)]).ravel()
        # spatial lower pattern of the diagonal blocks (g3 ⊇ g2 ⊇ g1 ⊇ c0), full pattern of q1
        mats = [sp.csr_matrix(sfem[k]) for k in ("c0", "g1", "g2", "g3")]
        low = SparsePattern.from_scipy(sum(abs(m) for m in mats))
        lr, lc = low.rows, low.cols
        self._s_low = [jnp.asarray(np.asarray(m[lr, lc]).ravel()) for m in mats]
        q1_full = sp.coo_matrix(abs(mats[0]) + abs(mats[1]))
        fr, fc = q1_full.row, q1_full.col
        self._s_full = [jnp.asarray(np.asarray(m[fr, fc]).ravel()) for m in mats[:2]]
        # global entries: diagonal blocks (t, t) then sub-diagonal blocks (t + 1, t)
        t_d = np.repeat(np.arange(nt), low.nnz)
        rows_d = t_d * ns + np.tile(lr, nt)
        cols_d = t_d * ns + np.tile(lc, nt)
        t_o = np.repeat(np.arange(nt - 1), len(fr))
        rows_o = (t_o + 1) * ns + np.tile(fr, nt - 1)
        cols_o = t_o * ns + np.tile(fc, nt - 1)
        rows = np.concatenate([rows_d, rows_o])
        cols = np.concatenate([cols_d, cols_o])
        key = cols.astype(np.int64) * self.n + rows
        order = np.argsort(key, kind="stable")
        self._pattern = SparsePattern(self.n, rows[order], cols[order])
        self._order = jnp.asarray(order)
        self._J0, self._J1, self._J2d, self._J2off = (jnp.asarray(v) for v in (J0, J1, J2d, J2off))
        self._sfem = sfem
        self._spectrum = None

    def pattern(self) -> SparsePattern:
        return self._pattern

    def gammas(self, theta):
        lgs, lgt, lge = demf_gammas(theta)
        return jnp.exp(lgs), jnp.exp(lgt), jnp.exp(lge)

    def precision_values(self, theta):
        gs, gt, ge = self.gammas(theta)
        c0, g1, g2, g3 = self._s_low
        gs2 = gs * gs
        q1 = gs2 * c0 + g1
        q2 = gs2 * gs2 * c0 + 2.0 * gs2 * g1 + g2
        q3 = gs2 * gs2 * gs2 * c0 + 3.0 * gs2 * gs2 * g1 + 3.0 * gs2 * g2 + g3
        ge2 = ge * ge
        diag_blocks = ge2 * (jnp.outer(self._J0, q3) + gt * jnp.outer(self._J1, q2) + gt * gt * jnp.outer(self._J2d, q1))
        q1_full = gs2 * self._s_full[0] + self._s_full[1]
        off_blocks = ge2 * gt * gt * jnp.outer(self._J2off, q1_full)
        vals = jnp.concatenate([diag_blocks.ravel(), off_blocks.ravel()])
        return vals[self._order]

    def constraints(self):
        return self._constraints

    def log_normaliser(self, theta):
        """Exact ½ log|Q| − ½ n log 2π via the spatial spectrum (n_s ≤ EIGEN_MAX_N), else None.

        With S = c0^{-1/2} g1 c0^{-1/2} = U diag(λ) Uᵀ and k_i = γs² + λ_i (valid when
        g2 = g1c0⁻¹g1, g3 = g1c0⁻¹g2), Q is congruent to ⊕_i γe² k_i (k_i² J0 + γt k_i J1 + γt² J2),
        so log|Q| = n log γe² + n_t log|c0| + Σ_i [n_t log k_i + log|T_i|] with T_i tridiagonal
        (n_t × n_t), whose log-determinants a vectorised LDLᵀ recursion gives.
        """
        spec = self._closed_form()
        if not spec:
            return None
        lam, logdet_c0 = spec
        gs, gt, ge = self.gammas(theta)
        k = gs * gs + lam  # (n_s,)
        nt = self.n_blocks
        a = k[None, :] ** 2 * self._J0[:, None] + gt * k[None, :] * self._J1[:, None] + gt * gt * self._J2d[:, None]
        b = gt * gt * self._J2off  # (n_t − 1,) off-diagonal, same for every i

        def step(d_prev, inputs):
            a_t, b_t = inputs
            d = a_t - b_t * b_t / d_prev
            return d, jnp.log(d)

        d0 = a[0]
        _, logs = jax.lax.scan(step, d0, (a[1:], b))
        logdet_T = jnp.sum(jnp.log(d0)) + jnp.sum(logs)
        logdet = self.n * jnp.log(ge * ge) + nt * logdet_c0 + nt * jnp.sum(jnp.log(k)) + logdet_T
        return 0.5 * logdet - 0.5 * self.n * jnp.log(2.0 * jnp.pi)

    def _closed_form(self):
        if self._spectrum is None:
            self._spectrum = self._compute_spectrum() or False
        return self._spectrum

    def _compute_spectrum(self):
        c0, g1, g2, g3 = (sp.csr_matrix(self._sfem[k]) for k in ("c0", "g1", "g2", "g3"))
        ns = c0.shape[0]
        if ns > _spectral.EIGEN_MAX_N or not _spectral.is_diagonal(c0):
            return None
        inv = sp.diags(1.0 / c0.diagonal())
        if _spectral.proportional_factor(g2, g1 @ inv @ g1) is None:
            return None
        if _spectral.proportional_factor(g3, g1 @ inv @ g2) is None:
            return None
        lam = _spectral.scaled_eigenvalues(c0.diagonal(), g1)
        return jnp.asarray(lam), float(np.sum(np.log(c0.diagonal())))

    def precision(self, theta) -> sp.csc_matrix:
        """Q(θ) as a scipy matrix (host)."""
        return self._pattern.to_scipy(np.asarray(self.precision_values(jnp.asarray(theta, dtype=jnp.float64))))


class SpaceTimeDEMF:
    """A DEMF(1,2,1) model specification; use as ``f(st, model=demf)`` with ``st`` the 1-based
    space-time node number node + n_s·(t − 1) (e.g. ``make_index("st", mesh.n * n_times)``
    or the columns of ``make_A(mesh, loc, group=time, n_group=n_times)``).

    Example:
        >>> from adelia.spde import mesh_2d, spacetime_demf
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> demf = spacetime_demf(mesh, 5, (0.5, 0.5), (2.0, 0.5), (1.0, 0.05))
        >>> demf.n_times, demf.n_spde == 5 * mesh.n
        (5, True)
    """

    def __init__(self, mesh, tmesh: Mesh1D, hyper, constr: bool):
        self.mesh = mesh
        self.tmesh = tmesh
        self.hyper = hyper
        self.constr = constr
        self.sfem = fem(mesh, order=3)

    @property
    def n_spde(self) -> int:
        return self.mesh.n * self.tmesh.n

    @property
    def n_times(self) -> int:
        return self.tmesh.n

    def latent_model(self, label: str = "st", args: dict[str, Any] | None = None) -> DEMF121Model:
        args = dict(args or {})
        hyper = [dict(h) for h in self.hyper]
        overrides = args.pop("hyper", None) or {}
        by_key = {h["key"]: h for h in hyper}
        for key, spec in overrides.items():
            if key not in by_key:
                raise ModelError(f"f({label}, model=spacetime_demf): unknown hyperparameter {key!r}; valid: {sorted(by_key)}")
            if spec.get("initial") is not None:
                by_key[key]["initial"] = float(spec["initial"])
            if spec.get("fixed") is not None:
                by_key[key]["fixed"] = bool(spec["fixed"])
        for key in ("n", "values"):
            v = args.pop(key, None)
            if v is not None:
                size = int(v) if key == "n" else len(np.asarray(v))
                if size != self.n_spde:
                    raise ModelError(f"f({label}, model=spacetime_demf): {key} gives {size} nodes, the model has {self.n_spde}")
        leftover = {k: v for k, v in args.items() if v not in (None, False)}
        if leftover:
            raise ModelError(f"f({label}, model=spacetime_demf): unsupported argument(s) {sorted(leftover)}")
        free = [h for h in hyper if not h["fixed"]]
        hps = []
        for h in hyper:
            if h["fixed"]:
                internal = f"{h['what']} for {label} (fixed)"
            else:
                internal = f"Theta{free.index(h) + 1} for {label}"
            hps.append(Hyperparameter(key=h["key"], internal_name=internal, name=internal,
                                      to_user=lambda x: x, prior=h["prior"], initial=float(h["initial"]),
                                      fixed=bool(h["fixed"])))
        constraints = None
        if self.constr:
            w = np.kron(fem(self.tmesh, order=1)["c0"].diagonal(), self.sfem["va"])
            constraints = LinearConstraints((w / w.sum())[None, :], np.zeros(1))
        return DEMF121Model(label, self.sfem, self.tmesh, hps, constraints)

    def from_term(self, label: str, covariate, args: dict[str, Any]):
        """Build the model for ``f(covariate, model=demf, **args)``; covariate = 1-based node
        numbers node + n_s·(t − 1) (NaN = not used). Returns (model, index, ids = 1..n)."""
        model = self.latent_model(label, args)
        return model, node_index(covariate, self.n_spde, label), np.arange(1, self.n_spde + 1)

    def precision(self, theta) -> sp.csc_matrix:
        return self.latent_model().precision(theta)

    def __repr__(self) -> str:
        return f"SpaceTimeDEMF(n_space={self.mesh.n}, n_times={self.n_times})"


def _prior_triplet(value, name):
    if value is None:
        raise ModelError(f"spacetime_demf: {name} is required as (value, tail probability)")
    vals = list(value)
    if len(vals) != 2:
        raise ModelError(f"spacetime_demf: {name} must have length 2, got {value!r}")
    q = float(vals[0])
    if not q > 0:
        raise ModelError(f"spacetime_demf: {name}[0] must be positive, got {q}")
    p = vals[1]
    if p is None or (isinstance(p, float) and math.isnan(p)) or float(p) == 0.0:
        return q, None
    p = float(p)
    if not 0 < p < 1:
        raise ModelError(f"spacetime_demf: {name}[1] must be in (0, 1) (0 or None fixes the parameter), got {p}")
    return q, p


def spacetime_demf(mesh, time, prior_range_s=None, prior_range_t=None, prior_sigma=None, constr: bool = False) -> SpaceTimeDEMF:
    """Non-separable space-time Matérn model DEMF(1,2,1) (INLAspacetime's ``stModel.define(..., "121")``).

    Args:
        mesh: spatial :class:`Mesh`.
        time: number of time points (knots 1..n_t) or the temporal knots / a :class:`Mesh1D`.
        prior_range_s: (U, p): P(spatial range < U) = p (p = 0 or None: fixed at U).
        prior_range_t: (U, p): P(temporal range < U) = p.
        prior_sigma: (U, p): P(σ > U) = p.
        constr: integral-zero constraint over space and time (INLAspacetime's ``constr``).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, spacetime_demf
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> m = spacetime_demf(mesh, 5, (0.5, 0.5), (2.0, 0.5), (1.0, 0.05)).latent_model("st")
        >>> (m.n_blocks, m.block_size) == (5, mesh.n)
        True
    """
    if isinstance(time, Mesh1D):
        tmesh = time
    elif np.ndim(time) == 0:
        nt = int(time)
        if nt < 2:
            raise ModelError(f"spacetime_demf: need at least 2 time points, got {nt}")
        tmesh = Mesh1D(np.arange(1, nt + 1, dtype=float))
    else:
        tmesh = Mesh1D(time)
    rs = _prior_triplet(prior_range_s, "prior_range_s")
    rt = _prior_triplet(prior_range_t, "prior_range_t")
    sg = _prior_triplet(prior_sigma, "prior_sigma")
    hyper = [
        dict(key="theta1", what="log(range_s)", prior=FixedValue(math.log(rs[0])) if rs[1] is None else PCRange(rs[0], rs[1], d=2.0),
             initial=math.log(rs[0]) if rs[1] is None else 1.0, fixed=rs[1] is None),
        dict(key="theta2", what="log(range_t)", prior=FixedValue(math.log(rt[0])) if rt[1] is None else PCRange(rt[0], rt[1], d=1.0),
             initial=math.log(rt[0]) if rt[1] is None else 1.0, fixed=rt[1] is None),
        dict(key="theta3", what="log(sigma)", prior=FixedValue(math.log(sg[0])) if sg[1] is None else PCSigma(sg[0], sg[1]),
             initial=math.log(sg[0]) if sg[1] is None else 0.0, fixed=sg[1] is None),
    ]
    return SpaceTimeDEMF(mesh, tmesh, hyper, constr)
