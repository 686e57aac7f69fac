"""Scaling intrinsic GMRFs so that their (generalised) marginal variances have geometric mean 1.

``scale.model = TRUE`` in R-INLA (Sørbye & Rue 2014, Scaling intrinsic Gaussian Markov random
field priors in spatial modelling, Spatial Statistics 8) multiplies a structure matrix R by the
geometric mean of the marginal variances of the intrinsic field, computed under the
constraints that remove its null space, so that τ keeps the same meaning whatever the graph.

The marginal variances of x ∝ exp(−½ xᵀQx) restricted to {A x = 0} are computed in two ways:

* exactly (``eps = 0``): with B an orthonormal basis of null(A), x = B z and z has precision
  BᵀQB, so Cov(x) = B (BᵀQB)⁻¹ Bᵀ; without A, the constraints are the null space of Q itself
  and Cov(x) = Q⁺ (the Moore–Penrose inverse);
* the way R-INLA's C code does it (``eps > 0``): Σ = (Q + εI)⁻¹ conditioned on A x = 0
  (Rue & Held 2005, §2.3.3), evaluated as B (Bᵀ(Q + εI)B)⁻¹ Bᵀ — the same matrix as the kriging
  formula Σ − ΣAᵀ(AΣAᵀ)⁻¹AΣ without its cancellation. The two agree to O(ε/λ_min).

Host-side dense linear algebra (numpy): the matrices scaled are model structures, built once.

Public functions:

* :func:`connected_components` — component label of every node of a symmetric sparsity graph.
* :func:`constrained_marginal_variances` — diag of Cov(x | A x = 0) for one (dense) Q.
* :func:`generalised_marginal_variances` — the same, component by component.
* :func:`scale_model` — R's ``inla.scale.model``: scaled Q and the factor of every node.
* :func:`geometric_mean` — exp of the (weighted) mean log.

Example:
    >>> import numpy as np
    >>> D = np.diff(np.eye(6), axis=0)                  # rw1 on 6 nodes: R = DᵀD
    >>> Qs, f = scale_model(D.T @ D, np.ones((1, 6)), eps=0.0)
    >>> v = constrained_marginal_variances(Qs.toarray(), np.ones((1, 6)))
    >>> round(float(geometric_mean(v)), 12)
    1.0
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from ..errors import ModelError
from .base import LinearConstraints

__all__ = [
    "SQRT_EPS",
    "connected_components",
    "constrained_marginal_variances",
    "generalised_marginal_variances",
    "scale_model",
    "geometric_mean",
    "null_space",
]

#: √(machine ε) — R's ``sqrt(.Machine$double.eps)`` and GMRFLib's ``GMRFLib_eps(0.5)``.
SQRT_EPS = float(np.sqrt(np.finfo(float).eps))


def _dense(Q) -> np.ndarray:
    return Q.toarray() if sp.issparse(Q) else np.asarray(Q, dtype=float)


def _constraint_matrix(constraints, n: int) -> np.ndarray | None:
    if constraints is None:
        return None
    A = constraints.C if isinstance(constraints, LinearConstraints) else np.atleast_2d(np.asarray(constraints, dtype=float))
    if A.shape[1] != n:
        raise ModelError(f"constraints have {A.shape[1]} columns but the matrix has {n} nodes")
    return A


def connected_components(Q) -> tuple[int, np.ndarray]:
    """Number of connected components of the graph of Q's off-diagonal nonzeros, and the
    component label (0-based, in order of first node) of every node."""
    G = sp.csr_matrix(Q) if not sp.issparse(Q) else Q.tocsr()
    G = G.copy()
    G.setdiag(0)
    G.eliminate_zeros()
    ncomp, labels = _cc(G, directed=False)
    # relabel in order of the smallest node (scipy already does, but make it explicit)
    order = {}
    for lab in labels:
        order.setdefault(int(lab), len(order))
    return ncomp, np.array([order[int(lab)] for lab in labels], dtype=np.int64)


def null_space(Q: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis (columns) of the numerical null space of a symmetric PSD matrix:
    eigenvectors with eigenvalue below ``rtol`` times the largest."""
    w, V = np.linalg.eigh(0.5 * (Q + Q.T))
    tol = rtol * max(float(np.max(np.abs(w))), 1e-300)
    return V[:, w <= tol]


def constrained_marginal_variances(Q, A=None, eps: float = 0.0) -> np.ndarray:
    """diag Cov(x | A x = 0) for the (possibly intrinsic) Gaussian with precision Q.

    Args:
        Q: symmetric positive semi-definite (n, n), dense or scipy sparse.
        A: (k, n) constraint matrix, or None (then, if Q is singular, its own null space is
            constrained away: the Moore–Penrose inverse).
        eps: 0 for the exact variances; > 0 for R-INLA's way, (Q + eps I)⁻¹ conditioned on
            A x = 0.

    Returns:
        (n,) marginal variances.
    """
    Q = _dense(Q)
    n = Q.shape[0]
    if A is not None:
        A = np.atleast_2d(np.asarray(A, dtype=float))
        A = A[np.any(A != 0.0, axis=1)]
        if A.shape[0] == 0:
            A = None
    if A is None:
        if eps > 0.0:
            return np.diag(np.linalg.inv(Q + eps * np.eye(n))).copy()
        if null_space(Q).shape[1] == 0:
            return np.diag(np.linalg.inv(Q)).copy()
        return np.diag(np.linalg.pinv(Q, hermitian=True, rcond=1e-10)).copy()
    # Conditioning N(0, (Q + eps I)^-1) on A x = 0 (kriging) is the Gaussian on {A x = 0} with
    # precision Bᵀ(Q + eps I)B, B an orthonormal basis of null(A): computed that way there is no
    # cancellation between the 1/eps-sized variances along null(Q) and their correction.
    B = scipy.linalg.null_space(A)
    M = B.T @ Q @ B + eps * np.eye(B.shape[1])
    try:
        L = np.linalg.cholesky(0.5 * (M + M.T))
    except np.linalg.LinAlgError:
        raise ModelError(
            "the constraints do not remove the null space of the precision matrix "
            "(the constrained model is still improper)"
        ) from None
    W = scipy.linalg.solve_triangular(L, B.T, lower=True)  # Cov = Wᵀ W
    return np.einsum("ij,ij->j", W, W)


def geometric_mean(x, weights=None) -> float:
    """exp(Σ wᵢ log xᵢ / Σ wᵢ) (plain geometric mean when ``weights`` is None)."""
    x = np.asarray(x, dtype=float)
    if weights is None:
        return float(np.exp(np.mean(np.log(x))))
    w = np.asarray(weights, dtype=float)
    return float(np.exp(np.sum(w * np.log(x)) / np.sum(w)))


def generalised_marginal_variances(Q, constraints=None, eps: float = 0.0) -> np.ndarray:
    """Marginal variances of every node, computed separately on each connected component
    (with the constraint rows restricted to the component; rows vanishing on it dropped).
    Singletons get 1/Q_ii (NaN when Q_ii = 0)."""
    Qd = _dense(Q)
    n = Qd.shape[0]
    A = _constraint_matrix(constraints, n)
    _, labels = connected_components(Qd)
    out = np.empty(n)
    for comp in range(labels.max() + 1 if n else 0):
        idx = np.flatnonzero(labels == comp)
        QQ = Qd[np.ix_(idx, idx)]
        if idx.size == 1:
            out[idx] = 1.0 / QQ[0, 0] if QQ[0, 0] > 0 else np.nan
            continue
        AA = None if A is None else A[:, idx]
        e = eps * float(np.max(np.diag(QQ))) if (eps > 0.0 and AA is not None) else 0.0
        out[idx] = constrained_marginal_variances(QQ, AA, e)
    return out


def scale_model(Q, constraints=None, eps: float = SQRT_EPS) -> tuple[sp.csc_matrix, np.ndarray]:
    """R-INLA's ``inla.scale.model``: scale each connected component of Q by the geometric
    mean of its marginal variances, so the scaled component has geometric mean variance 1.

    As R: on a component of size ≥ 2 the variances are those of Q_c + max(diag Q_c)·eps·I
    conditioned on the component's constraint rows (eps is used only when constraints are
    given; ``eps=0`` gives the exact generalised-inverse variances); a singleton component's
    entry is set to 1.

    Args:
        Q: (n, n) symmetric PSD, dense or scipy sparse.
        constraints: :class:`LinearConstraints` or a (k, n) matrix spanning Q's null space
            (e.g. a row of ones for a connected intrinsic CAR), or None.
        eps: see above.

    Returns:
        (Q_scaled as scipy CSC, factor of every node — NaN for singletons).
    """
    Qs = sp.csc_matrix(Q, dtype=float) if sp.issparse(Q) else sp.csc_matrix(np.asarray(Q, dtype=float))
    n = Qs.shape[0]
    A = _constraint_matrix(constraints, n)
    _, labels = connected_components(Qs)
    Qd = Qs.toarray()
    factors = np.full(n, np.nan)
    for comp in range(labels.max() + 1 if n else 0):
        idx = np.flatnonzero(labels == comp)
        if idx.size == 1:
            Qd[idx[0], idx[0]] = 1.0
            continue
        QQ = Qd[np.ix_(idx, idx)]
        AA = None if A is None else A[:, idx]
        e = eps * float(np.max(np.diag(QQ))) if (eps > 0.0 and AA is not None and np.any(AA != 0)) else 0.0
        fac = geometric_mean(constrained_marginal_variances(QQ, AA, e))
        factors[idx] = fac
        Qd[np.ix_(idx, idx)] = fac * QQ
    return sp.csc_matrix(Qd), factors
