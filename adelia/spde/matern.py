"""Matérn SPDE model objects (R-INLA's ``inla.spde2.matern`` and ``inla.spde2.pcmatern``).

The object returned is what a formula uses as ``f(s, model=spde)``: it carries the FEM
matrices, R-INLA's B-matrices and priors, and builds the latent model through
:meth:`SPDE2.from_term`.

Parametrisations (d = 2, ν = α − 1):

* ``spde2_pcmatern``: θ = (log ρ, log σ); log κ = ½ log(8ν) − θ₁,
  log τ = ½(lgamma ν − lgamma(ν + 1) − log 4π) − ν·½log(8ν) + ν θ₁ − θ₂
  (B.tau = (τ₀, ν, −1), B.kappa = (κ₀, −1, 0)); PC priors ``pc.range`` and ``pc.sigma``;
  initial values log ρ₀ + 1 and log σ₀ − 1; a tail probability of None/NaN fixes the
  parameter at ρ₀ (σ₀).
* ``spde2_matern``: θ = (log τ, log κ) by default (B.tau = (0, 1, 0), B.kappa = (0, 0, 1));
  independent normal priors N(θ_mean, 1/0.1) with θ_mean from a nominal range of 20% of
  the mesh extent and nominal variance 1 (R-INLA's ``param2.matern.orig``).

For α = 2: M0 = c0, M1 = g1, M2 = g2, B0 = B.tau, B1 = 2 B.kappa, B2 = 1, so that
Q = τ²(κ⁴c0 + 2κ²g1 + g2); the field's marginal variance is σ² = 1/(4π κ² τ²) and its
range √(8ν)/κ is where the correlation is ≈ 0.13.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..errors import DataError, ModelError
from ..models.base import Hyperparameter, LinearConstraints
from ..models.registry import make_prior
from .fem import fem
from .priors import FixedValue, PCRange, PCSigma, ThetaNormal
from .spde2_model import SPDE2Model


def _identity(x):
    return x


def _homogenise_B(B, n: int, n_theta: int, name: str) -> np.ndarray:
    """R's inla.spde.homogenise_B_matrix: to shape (1 or n, 1 + n_theta)."""
    B = np.asarray(B, dtype=float)
    if B.ndim <= 1:
        B = B.reshape(1, -1) if B.size == 1 + n_theta else B.reshape(-1, 1)
    if B.shape[1] == 1:
        B = np.hstack([B, np.zeros((B.shape[0], n_theta))])
    if B.shape[1] != 1 + n_theta or B.shape[0] not in (1, n):
        raise ModelError(f"{name} has shape {B.shape}; expected (1 or {n}) rows and {1 + n_theta} columns")
    return B


def _fractional(alpha: float, method: str):
    """R-INLA's coefficients b for non-integer α (``fractional.method``)."""
    lam = alpha - math.floor(alpha)
    if 1 < alpha < 2:
        if method == "parsimonious":
            mat = 1.0 / (np.array([4, 3, 2, 3, 2, 1, 2, 1, 0], dtype=float).reshape(3, 3, order="F") + lam)
            rhs = 1.0 / (np.array([4, 3, 2], dtype=float) + lam - alpha)
            b = np.array([[1, 1, 1], [0, 1, 2], [0, 0, 1]], dtype=float) @ np.linalg.solve(mat, rhs)
        else:
            b = np.array([1.0, alpha, alpha * (alpha - 1) / 2])
        return b
    if method == "parsimonious":
        mat = 1.0 / (np.array([2, 1, 1, 0], dtype=float).reshape(2, 2, order="F") + lam)
        rhs = 1.0 / (np.array([2, 1], dtype=float) + lam - alpha)
        b = np.array([[1, 1], [0, 1]], dtype=float) @ np.linalg.solve(mat, rhs)
    else:
        b = np.array([1.0, alpha])
    return b


def _operator(fe: dict, alpha: float, B_tau: np.ndarray, B_kappa: np.ndarray, method: str):
    """R-INLA's choice of M0, M1, M2, B0, B1 for a given α (inla.spde2.matern)."""
    c0, g1, g2 = fe["c0"], fe["g1"], fe["g2"]
    if alpha == 2:
        return c0, g1, g2, B_tau, 2 * B_kappa
    if alpha == 1:
        return c0, g1 * 0.0, g1, B_tau, B_kappa
    if 1 < alpha < 2:
        b = _fractional(alpha, method)
        return c0 * b[0], g1 * (b[1] / 2), g2 * b[2], B_tau + (alpha - 2) * B_kappa, 2 * B_kappa
    if 0 < alpha < 1:
        b = _fractional(alpha, method)
        return c0 * b[0], g1 * 0.0, g1 * b[1], B_tau + (alpha - 1) * B_kappa, B_kappa
    raise ModelError(f"spde2: unsupported alpha = {alpha}; supported: 0 < alpha <= 2")


class SPDE2:
    """An SPDE model specification (R-INLA's ``inla.spde2`` object); use as ``f(s, model=spde)``.

    Build with :func:`spde2_pcmatern` or :func:`spde2_matern`. Attributes mirror R-INLA's
    ``spde$param.inla``: ``M0, M1, M2`` (scipy), ``B0, B1, B2`` (rows of (1, θ)
    coefficients), ``n_spde`` (= ``mesh.n``), ``model`` ("pcmatern" or "matern").

    Example:
        >>> from adelia.spde import mesh_2d, spde2_pcmatern
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.2, 0.5))
        >>> spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> spde.model, spde.M0.shape == (mesh.n, mesh.n), spde.B1.shape   # stationary: one row of (1, θ1, θ2)
        ('pcmatern', True, (1, 3))
    """

    def __init__(self, *, model, mesh, alpha, M0, M1, M2, B0, B1, B2, hyper, constr_row=None, fem_matrices=None):
        self.model = model
        self.mesh = mesh
        self.alpha = alpha
        self.M0, self.M1, self.M2 = M0, M1, M2
        self.B0, self.B1, self.B2 = B0, B1, B2
        self.hyper = hyper  # list of dicts: key, internal, user, to_user, prior, initial, fixed
        self.constr_row = constr_row
        self.fem = fem_matrices

    @property
    def n_spde(self) -> int:
        return int(self.M0.shape[0])

    @property
    def n_theta(self) -> int:
        return len(self.hyper)

    def latent_model(self, label: str = "s", args: dict[str, Any] | None = None) -> SPDE2Model:
        """The :class:`SPDE2Model` for term ``label`` with f() arguments ``args``."""
        args = dict(args or {})
        hyper = [dict(h) for h in self.hyper]
        _apply_hyper_overrides(hyper, args.pop("hyper", None), label)
        hps = tuple(
            Hyperparameter(
                key=h["key"],
                internal_name=h["internal"].format(label=label),
                name=h["user"].format(label=label),
                to_user=h["to_user"],
                prior=h["prior"],
                initial=float(h["initial"]),
                fixed=bool(h["fixed"]),
            )
            for h in hyper
        )
        n = self.n_spde
        parts = []
        if self.constr_row is not None:
            parts.append(LinearConstraints(self.constr_row[None, :], np.zeros(1)))
        if args.pop("constr", False):
            parts.append(LinearConstraints(np.ones((1, n)), np.zeros(1)))
        extra = args.pop("extraconstr", None)
        if extra is not None:
            C = np.atleast_2d(np.asarray(extra["A"], dtype=float))
            if C.shape[1] != n:
                raise ModelError(f"f({label}, model=spde): extraconstr A has {C.shape[1]} columns, the field has {n} nodes")
            parts.append(LinearConstraints(C, np.atleast_1d(np.asarray(extra["e"], dtype=float))))
        diagonal = args.pop("diagonal", None) or 0.0
        for key in ("n", "values"):
            v = args.pop(key, None)
            if v is None:
                continue
            size = int(v) if key == "n" else len(np.asarray(v))
            if size != n:
                raise ModelError(f"f({label}, model=spde): {key} gives {size} nodes but the mesh has {n}")
        leftover = {k: v for k, v in args.items() if v not in (None, False)}
        if leftover:
            raise ModelError(
                f"f({label}, model=spde): unsupported argument(s) {sorted(leftover)}; "
                "supported: hyper, constr, extraconstr, diagonal, n, values"
            )
        return SPDE2Model(
            label, self.M0, self.M1, self.M2, self.B0, self.B1, self.B2, hps,
            constraints=LinearConstraints.stack(parts), diagonal=diagonal,
        )

    def from_term(self, label: str, covariate, args: dict[str, Any]):
        """Build the model for ``f(covariate, model=spde, **args)`` (see LatentModel.from_term).

        The covariate holds 1-based mesh node numbers (R-INLA's index, e.g. from
        :func:`make_index` or 1..n), NaN where a row does not use the field.
        Returns (model, index (0-based, −1 for NA), ids = 0..n−1 as R-INLA numbers SPDE nodes).
        """
        model = self.latent_model(label, args)
        if covariate is not None and np.ndim(covariate) == 2:
            # f(cbind(s1, s2), model=spde): coordinates; the term's rows of A are the projector
            # (inlabru's convenience), carried to the graph compiler by the model
            A, used = self.projector_rows(covariate, label)
            model.row_projector = A
            return model, np.where(used, 0, -1).astype(np.int64), np.arange(self.n_spde)
        index = node_index(covariate, self.n_spde, label)
        # R-INLA reports SPDE nodes with 0-based IDs (summary.random$s$ID = 0..n-1)
        return model, index, np.arange(self.n_spde)

    def projector_rows(self, coords, label: str = "s", where: str = "the data") -> tuple[sp.csr_matrix, np.ndarray]:
        """The rows of R-INLA's ``inla.spde.make.A(mesh, loc = coords)`` for
        ``f(cbind(s1, s2), model=spde)``: row i is the barycentric weights of location i in
        its mesh triangle, so that the field at s_i is Σ_j A_ij x_j (piecewise-linear basis).

        A row whose coordinates are all NA does not use the field (a zero row; ``used`` False).

        Args:
            coords: (n, 2) coordinates (a third column is ignored).
            label: the term (for messages).
            where: what the rows are (for messages: "the data", "new_data").

        Returns:
            (A (n, n_spde) CSR, used (n,) bool).

        Raises:
            DataError: non-numeric coordinates, a row with only some coordinates NA, or
                locations outside the mesh (listing the 1-based rows) — make_A would give
                them zero rows, i.e. silently no field there.

        Example:
            >>> A, used = spde.projector_rows(np.array([[0.5, 0.5], [np.nan, np.nan]]))   # spde: the class example
            >>> A.shape == (2, spde.n_spde), round(float(A[0].sum()), 12), used
            (True, 1.0, array([ True, False]))
        """
        from .projector import locate

        head = f"f({label}, model=spde)"
        try:
            pts = np.asarray(coords, dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"{head}: the coordinates in {where} must be numbers (e.g. cbind(s1, s2) of two "
                            "numeric columns)") from None
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise DataError(f"{head}: the coordinates must be two columns, cbind(x, y); got shape {pts.shape}")
        pts = pts[:, :2]
        na = np.isnan(pts)
        used = ~na.all(axis=1)
        bad = (na.any(axis=1) & used) | (~np.isfinite(pts).all(axis=1) & ~na.any(axis=1))
        if bad.any():
            rows = np.flatnonzero(bad) + 1
            raise DataError(f"{head}: rows {_rows(rows)} (1-based) of {where} have NA or infinite coordinates in "
                            "only one column; give both coordinates, or NA in both where a row has no field")
        tri, bary = locate(self.mesh, np.where(used[:, None], pts, 0.0))
        outside = used & (tri < 0)
        if outside.any():
            rows = np.flatnonzero(outside)
            raise DataError(f"{head}: {rows.size} location(s) of {where} lie outside the mesh, rows {_rows(rows + 1)} "
                            f"(1-based), e.g. ({pts[rows[0], 0]:g}, {pts[rows[0], 1]:g}); the field is not defined "
                            "there. Extend the mesh to cover them, or drop those rows")
        inside = np.flatnonzero(used)
        A = sp.coo_matrix((bary[inside].ravel(), (np.repeat(inside, 3), self.mesh.tv[tri[inside]].ravel())),
                          shape=(pts.shape[0], self.n_spde)).tocsr()
        A.sum_duplicates()
        A.eliminate_zeros()
        return A, used

    def precision(self, theta) -> sp.csc_matrix:
        """Q(θ) as a scipy matrix (R-INLA's ``inla.spde2.precision``)."""
        return self.latent_model("s").precision(theta)

    def __repr__(self) -> str:
        return f"SPDE2(model={self.model!r}, n_spde={self.n_spde}, alpha={self.alpha}, theta={[h['key'] for h in self.hyper]})"


def _rows(rows, limit: int = 10) -> str:
    rows = [int(r) for r in rows]
    return ", ".join(map(str, rows[:limit])) + (f", ... ({len(rows)} in all)" if len(rows) > limit else "")


def node_index(covariate, n: int, label: str) -> np.ndarray:
    """1-based node numbers (NaN = not used) → 0-based index (−1 = not used), validated."""
    if covariate is None:
        raise ModelError(f"f({label}, model=spde) needs an index covariate with 1-based mesh node numbers")
    v = np.asarray(covariate, dtype=float).ravel()
    na = np.isnan(v)
    bad = ~na & ((v != np.round(v)) | (v < 1) | (v > n))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"f({label}, model=spde): the index must hold 1-based node numbers in 1..{n}; "
            f"row {rows[0]} has {v[rows[0]]!r} ({bad.sum()} bad row(s))"
        )
    out = np.full(v.size, -1, dtype=np.int64)
    out[~na] = v[~na].astype(np.int64) - 1
    return out


def _apply_hyper_overrides(hyper: list[dict], overrides, label: str) -> None:
    """f(..., hyper={"theta1": {"initial":, "fixed":, "prior":, "param":}}) as R-INLA."""
    if not overrides:
        return
    keys = {h["key"]: h for h in hyper}
    for key, spec in overrides.items():
        if key not in keys:
            raise ModelError(f"f({label}, model=spde): unknown hyperparameter {key!r}; valid: {sorted(keys)}")
        h = keys[key]
        spec = dict(spec)
        if "initial" in spec and spec["initial"] is not None:
            h["initial"] = float(spec["initial"])
        if "fixed" in spec and spec["fixed"] is not None:
            h["fixed"] = bool(spec["fixed"])
        prior = spec.get("prior")
        if prior is not None:
            param = spec.get("param")
            if prior in ("pcmatern", "pc.matern"):
                lam1, lam2, d = (list(np.atleast_1d(param)) + [2.0])[:3]
                keys["theta1"]["prior"] = PCRange.from_lambda(lam1, d)
                keys["theta2"]["prior"] = PCSigma.from_lambda(lam2)
            elif prior == "pc.range":
                h["prior"] = PCRange(*np.atleast_1d(param)[:2], d=2.0)
            else:
                h["prior"] = make_prior(prior, param)


def _mesh_fem(mesh):
    fe = fem(mesh, order=2)
    return fe


def spde2_pcmatern(mesh, alpha: float = 2, prior_range=None, prior_sigma=None, constr: bool = False,
                   fractional_method: str = "parsimonious") -> SPDE2:
    """Matérn SPDE model with PC priors (R-INLA's ``inla.spde2.pcmatern``).

    Args:
        mesh: a :class:`Mesh`.
        alpha: operator order, 1 < α ≤ 2 (ν = α − 1 > 0 in 2-D).
        prior_range: (ρ₀, p) with P(range < ρ₀) = p; p None/NaN fixes the range at ρ₀.
        prior_sigma: (σ₀, p) with P(σ > σ₀) = p; p None/NaN fixes σ at σ₀.
        constr: integrate-to-zero constraint ∫x = Σ_j (c1 column sums)_j x_j = 0.

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, spde2_pcmatern
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.2, 0.5))
        >>> spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> spde.n_spde == mesh.n
        True
    """
    d = 2
    nu = alpha - d / 2
    if nu <= 0:
        raise ModelError(f"spde2_pcmatern: smoothness nu = alpha - d/2 = {nu} must be > 0")
    r0, pr = _tail_pair(prior_range, "prior_range")
    s0, ps = _tail_pair(prior_sigma, "prior_sigma")
    kappa0 = math.log(8 * nu) / 2
    tau0 = 0.5 * (math.lgamma(nu) - math.lgamma(nu + d / 2) - d / 2 * math.log(4 * math.pi)) - nu * kappa0
    B_tau = np.array([[tau0, nu, -1.0]])
    B_kappa = np.array([[kappa0, -1.0, 0.0]])
    fe = _mesh_fem(mesh)
    M0, M1, M2, B0, B1 = _operator(fe, alpha, B_tau, B_kappa, fractional_method)
    fixed_r = pr is None
    fixed_s = ps is None
    hyper = [
        dict(key="theta1", internal="log(Range) for {label}", user="Range for {label}", to_user=jnp.exp,
             prior=FixedValue(math.log(r0)) if fixed_r else PCRange(r0, pr, d=d),
             initial=math.log(r0) if fixed_r else math.log(r0) + 1.0, fixed=fixed_r),
        dict(key="theta2", internal="log(Stdev) for {label}", user="Stdev for {label}", to_user=jnp.exp,
             prior=FixedValue(math.log(s0)) if fixed_s else PCSigma(s0, ps),
             initial=math.log(s0) if fixed_s else math.log(s0) - 1.0, fixed=fixed_s),
    ]
    return SPDE2(
        model="pcmatern", mesh=mesh, alpha=alpha, M0=M0, M1=M1, M2=M2, B0=B0, B1=B1,
        B2=np.array([[1.0, 0.0, 0.0]]), hyper=hyper,
        constr_row=np.asarray(fe["c1"].sum(axis=0)).ravel() if constr else None, fem_matrices=fe,
    )


def _tail_pair(value, name):
    if value is None:
        raise ModelError(f"spde2_pcmatern: {name} is required, as (value, tail probability) or (value, None) to fix it")
    vals = list(value)
    if len(vals) != 2:
        raise ModelError(f"spde2_pcmatern: {name} must have length 2, got {value!r}")
    q = float(vals[0])
    p = vals[1]
    if not q > 0:
        raise ModelError(f"spde2_pcmatern: {name}[0] must be positive, got {q}")
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return q, None
    p = float(p)
    if not 0 < p < 1:
        raise ModelError(f"spde2_pcmatern: {name}[1] must be a probability strictly between 0 and 1 (or None to fix), got {p}")
    return q, p


def spde2_matern(mesh, alpha: float = 2, B_tau=((0.0, 1.0, 0.0),), B_kappa=((0.0, 0.0, 1.0),),
                 prior_variance_nominal: float = 1.0, prior_range_nominal: float | None = None,
                 prior_tau: float | None = None, prior_kappa: float | None = None,
                 theta_prior_mean=None, theta_prior_prec=0.1, constr: bool = False,
                 fractional_method: str = "parsimonious") -> SPDE2:
    """Matérn SPDE model with R-INLA's classic parametrisation (``inla.spde2.matern``).

    log τ = B_tau·(1, θ), log κ = B_kappa·(1, θ) (defaults: θ₁ = log τ, θ₂ = log κ), with
    independent normal priors on θ (mean from the nominal prior range/variance, precision
    ``theta_prior_prec``), reported as "Theta1 for s", "Theta2 for s".

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, spde2_matern
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.2, 0.5))
        >>> spde2_matern(mesh).n_theta
        2
    """
    d = 2
    nu = alpha - d / 2
    nu_nom = max(0.5, nu)
    alpha_nom = max(nu_nom + d / 2, alpha)
    n = mesh.n
    B_kappa = np.asarray(B_kappa, dtype=float)
    n_theta = (B_kappa.shape[-1] if B_kappa.ndim else 1) - 1
    B_tau = _homogenise_B(B_tau, n, n_theta, "B_tau")
    B_kappa = _homogenise_B(B_kappa, n, n_theta, "B_kappa")
    if theta_prior_mean is None:
        if prior_range_nominal is None:
            span = np.ptp(mesh.loc, axis=0)
            prior_range_nominal = 0.2 * float(max(span.max(), 0.0))
        if prior_kappa is None:
            prior_kappa = math.sqrt(8 * nu_nom) / prior_range_nominal
        if prior_tau is None:
            prior_tau = math.sqrt(
                math.gamma(nu_nom) / math.gamma(alpha_nom)
                / (4 * math.pi * prior_kappa ** (2 * nu_nom) * prior_variance_nominal)
            )
        if n_theta > 0:
            lhs = np.vstack([B_tau[:, 1:], B_kappa[:, 1:]])
            rhs = np.concatenate([math.log(prior_tau) - B_tau[:, 0], math.log(prior_kappa) - B_kappa[:, 0]])
            theta_prior_mean = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        else:
            theta_prior_mean = np.zeros(0)
    theta_prior_mean = np.atleast_1d(np.asarray(theta_prior_mean, dtype=float))
    prec = np.asarray(theta_prior_prec, dtype=float)
    if prec.ndim == 2:
        if np.any(prec - np.diag(np.diag(prec))):
            raise ModelError("spde2_matern: a non-diagonal theta_prior_prec (joint mvnorm prior) is not supported")
        prec = np.diag(prec)
    prec = np.broadcast_to(np.atleast_1d(prec), (n_theta,)).astype(float)
    fe = _mesh_fem(mesh)
    M0, M1, M2, B0, B1 = _operator(fe, alpha, B_tau, B_kappa, fractional_method)
    hyper = [
        dict(key=f"theta{k + 1}", internal=f"Theta{k + 1} for {{label}}", user=f"Theta{k + 1} for {{label}}",
             to_user=_identity, prior=ThetaNormal(theta_prior_mean[k], prec[k]),
             initial=float(theta_prior_mean[k]), fixed=False)
        for k in range(n_theta)
    ]
    B2 = np.zeros((1, 1 + n_theta))
    B2[0, 0] = 1.0
    return SPDE2(
        model="matern", mesh=mesh, alpha=alpha, M0=M0, M1=M1, M2=M2, B0=B0, B1=B1, B2=B2, hyper=hyper,
        constr_row=np.asarray(fe["c1"].sum(axis=0)).ravel() if constr else None, fem_matrices=fe,
    )
