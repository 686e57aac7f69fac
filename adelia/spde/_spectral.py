"""Host-side spectral helpers for closed-form log-determinants of FEM-based precisions.

With a diagonal (lumped) mass c0 and a symmetric stiffness g1, S = c0^{-1/2} g1 c0^{-1/2}
has eigenvalues λ_i ≥ 0; every matrix polynomial of the form c0^{1/2} p(S) c0^{1/2} (such as
κ⁴c0 + 2κ²g1 + g2 with g2 = g1 c0⁻¹ g1) then has log-determinant log|c0| + Σ log p(λ_i).
One dense eigen-decomposition (O(n³), done once) makes log|Q(θ)| an O(n) function of θ.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

#: largest n for which the dense eigen-decomposition is done (≈ 3 s at n = 2000 on 2 cores)
EIGEN_MAX_N = 2000


def is_diagonal(M) -> bool:
    coo = sp.coo_matrix(M)
    off = coo.row != coo.col
    return not np.any(coo.data[off] != 0.0)


def scaled_eigenvalues(mass_diag: np.ndarray, M) -> np.ndarray:
    """Eigenvalues of D^{-1/2} M D^{-1/2} for D = diag(mass_diag) and symmetric M (ascending)."""
    s = 1.0 / np.sqrt(np.asarray(mass_diag, dtype=float))
    dense = np.asarray((sp.diags(s) @ sp.csr_matrix(M) @ sp.diags(s)).todense())
    dense = 0.5 * (dense + dense.T)
    return scipy.linalg.eigh(dense, eigvals_only=True)


def proportional_factor(A, B, rtol: float = 1e-9) -> float | None:
    """c with A = c·B (sparse, compared on both patterns), or None when not proportional."""
    A = sp.csr_matrix(A)
    B = sp.csr_matrix(B)
    bb = B.multiply(B).sum()
    if bb == 0:
        return None
    c = float(A.multiply(B).sum() / bb)
    resid = A - c * B
    norm_a = np.sqrt(A.multiply(A).sum())
    if np.sqrt(abs(resid.multiply(resid).sum())) <= rtol * max(norm_a, 1e-300):
        return c
    return None
