"""The latent model of R-INLA's ``spde2`` family (``inla.spde2.generic``; used by
``inla.spde2.matern`` and ``inla.spde2.pcmatern``).

With θ̃ = (1, θ) and per-node φ₀ = B₀θ̃, φ₁ = B₁θ̃, φ₂ = B₂θ̃ (identity transform),
d₀ = exp φ₀, d₁ = exp φ₁, d₂ = φ₂, R-INLA's ``inla_spde2_Qfunction`` is

    Q_ij = d₀ᵢ d₀ⱼ (d₁ᵢ d₁ⱼ M0_ij + d₂ᵢ d₁ᵢ M1_ij + d₁ⱼ d₂ⱼ M1_ji + M2_ij),

i.e. Q = D₀ (D₁ M0 D₁ + D₂D₁ M1 + M1ᵀ D₁D₂ + M2) D₀. For the α = 2 Matérn model,
M0 = c0, M1 = g1, M2 = g2, φ₀ = log τ, φ₁ = 2 log κ, φ₂ = 1, which gives
Q = τ²(κ⁴c0 + 2κ²g1 + g2) (Lindgren, Rue & Lindström 2011).

``log_normaliser`` is exact and O(n) per θ for stationary models on meshes of up to
:data:`adelia.spde._spectral.EIGEN_MAX_N` nodes (see :mod:`adelia.spde._spectral`);
otherwise None (the compiler factorises Q).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..engine.pattern import SparsePattern
from ..models.base import LatentModel, LinearConstraints
from . import _spectral


class SPDE2Model(LatentModel):
    """An ``spde2`` latent field on n mesh nodes.

    Args:
        label: the term's name.
        M0: (n, n) symmetric scipy matrix.
        M1: (n, n) scipy matrix.
        M2: (n, n) symmetric scipy matrix.
        B0: (1 or n, 1 + p) basis matrix (one row: stationary).
        B1: as ``B0``.
        B2: as ``B0``.
        hyperparameters: p :class:`Hyperparameter` in θ order.
        constraints: optional :class:`LinearConstraints`.
        diagonal: constant added to the diagonal of Q (R-INLA's f(diagonal=)).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, spde2_pcmatern
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> field = spde.latent_model("s")   # what f(s, model=spde) builds
        >>> isinstance(field, SPDE2Model), field.n == mesh.n, [h.name for h in field.hyperparameters]
        (True, True, ['Range for s', 'Stdev for s'])
    """

    model_name = "spde2"

    def __init__(self, label, M0, M1, M2, B0, B1, B2, hyperparameters, constraints=None, diagonal: float = 0.0):
        self.label = label
        M0, M1, M2 = (sp.csr_matrix(M, dtype=float) for M in (M0, M1, M2))
        self.n = int(M0.shape[0])
        self.hyperparameters = tuple(hyperparameters)
        self._constraints = constraints
        self.diagonal = float(diagonal)
        B = [np.atleast_2d(np.asarray(b, dtype=float)) for b in (B0, B1, B2)]
        p = len(self.hyperparameters)
        for k, b in enumerate(B):
            if b.shape[1] != 1 + p or b.shape[0] not in (1, self.n):
                raise ValueError(f"spde2: B{k} has shape {b.shape}, expected (1 or {self.n}, {1 + p})")
        self.stationary = all(np.all(b == b[0]) for b in B)
        self._B = [jnp.asarray(b[:1] if self.stationary else np.broadcast_to(b, (self.n, 1 + p))) for b in B]
        self._B_np = B
        coo = [sp.coo_matrix(M) for M in (M0, M1, M2)]
        pat = SparsePattern.from_entries(
            self.n,
            np.concatenate([c.row for c in coo]),
            np.concatenate([c.col for c in coo]),
        )
        self._pattern = pat
        r, c = pat.rows, pat.cols
        self._rows = jnp.asarray(r)
        self._cols = jnp.asarray(c)
        self._m0 = jnp.asarray(np.asarray(M0[r, c]).ravel())
        self._m1rc = jnp.asarray(np.asarray(M1[r, c]).ravel())
        self._m1cr = jnp.asarray(np.asarray(M1[c, r]).ravel())
        self._m2 = jnp.asarray(np.asarray(M2[r, c]).ravel())
        self._diag = jnp.asarray(pat.diag_index)
        self._M = (M0, M1, M2)
        self._spectrum = None  # lazily: (kind, c, eigenvalues, log|M0|) or False

    # -- LatentModel interface ------------------------------------------------------------------
    def pattern(self) -> SparsePattern:
        return self._pattern

    def _phis(self, theta):
        theta = jnp.atleast_1d(jnp.asarray(theta, dtype=jnp.float64))
        th = jnp.concatenate([jnp.ones(1), theta])
        return jnp.exp(self._B[0] @ th), jnp.exp(self._B[1] @ th), self._B[2] @ th

    def precision_values(self, theta):
        d0, d1, d2 = self._phis(theta)
        if self.stationary:
            d0, d1, d2 = d0[0], d1[0], d2[0]
            vals = d0 * d0 * (d1 * d1 * self._m0 + d2 * d1 * (self._m1rc + self._m1cr) + self._m2)
        else:
            r, c = self._rows, self._cols
            vals = d0[r] * d0[c] * (d1[r] * d1[c] * self._m0 + d2[r] * d1[r] * self._m1rc + d1[c] * d2[c] * self._m1cr + self._m2)
        if self.diagonal:
            vals = vals.at[self._diag].add(self.diagonal)
        return vals

    def constraints(self) -> LinearConstraints | None:
        return self._constraints

    def log_normaliser(self, theta):
        """½ log|Q(θ)| − ½ n log 2π in closed form when Q = d₀² c0^{1/2} p(S) c0^{1/2}, else None."""
        spec = self._closed_form()
        if not spec:
            return None
        kind, c, lam, logdet_m0 = spec
        d0, d1, d2 = self._phis(theta)
        d0, d1, d2 = d0[0], d1[0], d2[0]
        if kind == "quadratic":  # d1² + 2 d2 d1 λ + c λ²  (M2 = c M1 M0⁻¹ M1)
            poly = d1 * d1 + 2.0 * d2 * d1 * lam + c * lam * lam
        else:  # "linear": M1 = 0, λ are the eigenvalues of M0^{-1/2} M2 M0^{-1/2}
            poly = d1 * d1 + lam
        logdet = 2.0 * self.n * jnp.log(d0) + logdet_m0 + jnp.sum(jnp.log(poly))
        return 0.5 * logdet - 0.5 * self.n * jnp.log(2.0 * jnp.pi)

    # -- helpers -----------------------------------------------------------------------------------
    def _closed_form(self):
        if self._spectrum is None:
            self._spectrum = self._compute_spectrum() or False
        return self._spectrum

    def _compute_spectrum(self):
        if not self.stationary or self.diagonal or self.n > _spectral.EIGEN_MAX_N:
            return None
        M0, M1, M2 = self._M
        if not _spectral.is_diagonal(M0) or np.any(M0.diagonal() <= 0):
            return None
        m0 = M0.diagonal()
        logdet_m0 = float(np.sum(np.log(m0)))
        if abs(M1).sum() == 0:
            return ("linear", 0.0, jnp.asarray(_spectral.scaled_eigenvalues(m0, M2)), logdet_m0)
        if abs(M1 - M1.T).max() > 1e-12 * abs(M1).max():
            return None
        c = _spectral.proportional_factor(M2, M1 @ sp.diags(1.0 / m0) @ M1)
        if c is None:
            return None
        return ("quadratic", c, jnp.asarray(_spectral.scaled_eigenvalues(m0, M1)), logdet_m0)

    def precision(self, theta) -> sp.csc_matrix:
        """Q(θ) as a scipy matrix (host; like R-INLA's ``inla.spde.precision``)."""
        return self._pattern.to_scipy(np.asarray(self.precision_values(jnp.asarray(theta, dtype=jnp.float64))))
