"""Integration designs over θ, exactly as R-INLA's compact mode builds them (DESIGN.md §5.2–5.3).

After the mode θ* of log π(θ | y) and the Hessian H of −log π(θ | y) there, R-INLA works in
standardised coordinates

    θ(z) = θ* + V Λ^{-1/2} z,        H = V Λ Vᵀ   (GSL's ``gsl_eigen_symmv``, unsorted),

and corrects each axis for skewness with two scalings σ⁺_i, σ⁻_i found from log π at
z = ±√2 e_i: with Δ = log π(θ*) − log π(θ(±√2 e_i)), σ^± = sqrt(2 / (2Δ)) (1 when Δ ≤ 0).
A standard design x (a fixed grid for d = 1, 2; a central composite design otherwise) is
mapped to z_k = f · x_k · σ^{sign(x_k)} (componentwise), then to θ_k, and R-INLA adds the log
of an integration weight to log π(θ_k | y):

- ``"grid"`` (``"auto"``): d = 1: 11 points, d = 2: 45 points with tabulated weights and
  f = 1.1·√d; d ≥ 3: the CCD with f = 1.1·√d, weight w at the n−1 outer points and
  w₀ = 1 − (n−1)w at the centre, w = 1 / ((n−1)(1 + e^{−f²/2}(f²/d − 1))).
- ``"ccd"`` (asked for explicitly): the CCD with f = 1 and equal weights (R-INLA's compact
  mode sets f = w = w₀ = 1 unless the strategy is "grid").
- ``"eb"``: the mode alone.

The source of truth is R-INLA: ``gmrflib/design.c`` (``GMRFLib_design_grid``,
``GMRFLib_design_ccd``), ``gmrflib/designP.h`` (the CCD tables, Sanchez & Sanchez 2005) and
``GMRFLib_ai_INLA_experimental`` in ``gmrflib/approx-inference.c``. Every point and weight of
the reference fits in ``reference/rinla`` is reproduced to ~1e-14 (tests/inference/test_design.py).

Example:
    >>> import numpy as np
    >>> axes = hessian_axes(np.array([[4.0]]))
    >>> pos, neg = np.array([1.0]), np.array([1.0])
    >>> design = integration_design(np.array([0.0]), axes, pos, neg, strategy="grid")
    >>> design.theta.shape, round(float(design.theta[0, 0]), 4)
    ((11, 1), -1.925)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ControlError, NumericalError, unknown_choice

STRATEGIES = ("auto", "grid", "ccd", "eb")

SKEWNESS_STEP = math.sqrt(2.0)  # R-INLA evaluates log π at z = ±√2 along each axis
F0_DEFAULT = 1.1  # ai_par->f0
DZ_GRID = 0.75  # ai_par->dz, enters the "integration" marginal likelihood
_DBL_EPSILON = np.finfo(float).eps

# GMRFLib_design_grid, d = 1: points and weights (relative to the centre).
_GRID1_X = np.array([-3.5, -2.5, -1.75, -1.0, -0.5, 0.0, 0.5, 1.0, 1.75, 2.5, 3.5])
_GRID1_W = np.array([3.187537795, 1.811358205, 1.937929918, 1.431919577, 1.288639321, 1.0,
                     1.288639321, 1.431919577, 1.937929918, 1.811358205, 3.187537795])
# GMRFLib_design_grid, d = 2: the 7×7 product of these values without the 4 corners,
# first coordinate slowest; the weight of (a, b) depends on (|a|, |b|) only.
_GRID2_LEVELS = (-2.25, -1.25, -0.5, 0.0, 0.5, 1.25, 2.25)
_GRID2_W = {
    (2.25, 1.25): 2.277250821, (2.25, 0.5): 1.248862019, (2.25, 0.0): 1.93160554,
    (1.25, 1.25): 1.389904145, (1.25, 0.5): 0.762234217, (1.25, 0.0): 1.17894196,
    (0.5, 0.5): 0.4180151587, (0.5, 0.0): 0.646540918, (0.0, 0.0): 1.0,
}

# Walsh indices of the CCD's fractional-factorial columns (Sanchez & Sanchez 2005, resolution V),
# the construction behind GMRFLib's designP.h: column j of the 2^m runs is the product of the
# base columns named by the bits of index j (base column b <-> index 2^b).
_CCD_WALSH = (
    1, 2, 4, 8, 15, 16, 32, 51, 64, 85, 106, 128, 150, 171, 219, 237, 247, 256, 279, 297,
    455, 512, 537, 557, 594, 643, 803, 863, 998, 1024, 1051, 1070, 1112, 1169, 1333, 1345,
    1620, 1866, 2048, 2076, 2085, 2185, 2372, 2456, 2618, 2800, 2873, 3127, 3284, 3483,
    3557, 3763,
)
CCD_MAX_DIM = len(_CCD_WALSH)


# ---------------------------------------------------------------------------------------------
# Eigen-decomposition with GSL's conventions (gsl_eigen_symmv): the order of the eigenvalues
# and the sign of each eigenvector decide which direction is "positive" for σ⁺ and, for d ≥ 5,
# which half of the fractional factorial is used, so R-INLA's points are only reproduced with
# GSL's algorithm: Householder tridiagonalisation, then implicit symmetric QR with Wilkinson
# shifts (Golub & Van Loan §8.3), eigenvectors accumulated from the Givens rotations.
# ---------------------------------------------------------------------------------------------


def _householder(v: np.ndarray) -> tuple[float, np.ndarray]:
    # gsl_linalg_householder_transform: v -> (beta, v[1:]/(alpha - beta)), tau = (beta-alpha)/beta
    if v.size == 1:
        return 0.0, v
    xnorm = float(np.linalg.norm(v[1:]))
    if xnorm == 0.0:
        return 0.0, v
    alpha = float(v[0])
    beta = -math.copysign(1.0, alpha if alpha != 0.0 else 1.0) * math.hypot(alpha, xnorm)
    tau = (beta - alpha) / beta
    out = v.copy()
    out[1:] = v[1:] / (alpha - beta)
    out[0] = beta
    return tau, out


def _tridiagonalise(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # gsl_linalg_symmtd_decomp + gsl_linalg_symmtd_unpack: A = Q T Qᵀ (lower triangle used).
    a = a.copy()
    n = a.shape[0]
    tau = np.zeros(max(n - 1, 1))
    for i in range(n - 2):
        ti, v = _householder(a[i + 1:, i].copy())
        a[i + 1:, i] = v
        if ti != 0.0:
            sub = a[i + 1:, i + 1:]
            m = np.tril(sub) + np.tril(sub, -1).T
            w = v.copy()
            w[0] = 1.0
            x = ti * (m @ w)
            x = x - 0.5 * ti * (x @ w) * w
            m = m - np.outer(w, x) - np.outer(x, w)
            a[i + 1:, i + 1:] = np.tril(m) + np.triu(sub, 1)
        tau[i] = ti
    q = np.eye(n)
    for i in range(n - 3, -1, -1):
        h = a[i + 1:, i].copy()
        h[0] = 1.0
        block = q[i + 1:, i + 1:]
        q[i + 1:, i + 1:] = block - tau[i] * np.outer(h, h @ block)
    return q, np.diag(a).copy(), np.array([a[i + 1, i] for i in range(n - 1)])


def _chop_small(d: np.ndarray, sd: np.ndarray) -> None:
    for i in range(d.size - 1):
        if abs(sd[i]) < _DBL_EPSILON * (abs(d[i]) + abs(d[i + 1])):
            sd[i] = 0.0


def _givens(a: float, b: float) -> tuple[float, float]:
    if b == 0.0:
        return 1.0, 0.0
    if abs(b) > abs(a):
        t = -a / b
        s1 = 1.0 / math.sqrt(1.0 + t * t)
        return s1 * t, s1
    t = -b / a
    c1 = 1.0 / math.sqrt(1.0 + t * t)
    return c1, c1 * t


def _qr_step(d: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # GSL eigen/qrstep.c: one implicit QR step with the Wilkinson shift on an unreduced block.
    n = d.size
    ta, tb, tab = d[n - 2], d[n - 1], sd[n - 2]
    dt = (ta - tb) / 2.0
    if dt > 0:
        mu = tb - tab * (tab / (dt + math.hypot(dt, tab)))
    elif dt == 0:
        mu = tb - abs(tab)
    else:
        mu = tb + tab * (tab / ((-dt) + math.hypot(dt, tab)))
    x, z = d[0] - mu, sd[0]
    gc, gs = np.zeros(n - 1), np.zeros(n - 1)
    ak = bk = zk = 0.0
    ap, bp, aq = d[0], sd[0], d[1]
    if n == 2:
        c, s = _givens(x, z)
        gc[0], gs[0] = c, s
        d[0] = c * (c * ap - s * bp) + s * (s * aq - c * bp)
        sd[0] = c * (s * ap + c * bp) - s * (s * bp + c * aq)
        d[1] = s * (s * ap + c * bp) + c * (s * bp + c * aq)
        return gc, gs
    bq = sd[1]
    for k in range(n - 1):
        c, s = _givens(x, z)
        gc[k], gs[k] = c, s
        bk1 = c * bk - s * zk
        ap1 = c * (c * ap - s * bp) + s * (s * aq - c * bp)
        bp1 = c * (s * ap + c * bp) - s * (s * bp + c * aq)
        zp1 = -s * bq
        aq1 = s * (s * ap + c * bp) + c * (s * bp + c * aq)
        bq1 = c * bq
        ak, bk, zk, ap, bp = ap1, bp1, zp1, aq1, bq1
        if k < n - 2:
            aq = d[k + 2]
        if k < n - 3:
            bq = sd[k + 2]
        d[k] = ak
        if k > 0:
            sd[k - 1] = bk1
        if k < n - 2:
            sd[k + 1] = bp
        x, z = bk, zk
    d[n - 1] = ap
    sd[n - 2] = bk
    return gc, gs


def gsl_symmetric_eigen(matrix: np.ndarray, max_sweeps: int = 10000) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (columns) of a symmetric matrix, in GSL's order and signs.

    Follows ``gsl_eigen_symmv`` step by step (GSL eigen/symmv.c, qrstep.c; linalg/symmtd.c),
    so the eigenvalues come unsorted and each eigenvector with the sign GSL gives it, as
    R-INLA's design needs. The result agrees with ``numpy.linalg.eigh`` up to order and signs.

    Example:
        >>> lam, v = gsl_symmetric_eigen(np.array([[2.0, 1.0], [1.0, 3.0]]))
        >>> bool(np.allclose(np.array([[2.0, 1.0], [1.0, 3.0]]) @ v, v * lam))
        True
    """
    a = np.array(matrix, dtype=float)
    n = a.shape[0]
    if a.ndim != 2 or a.shape[1] != n or n == 0:
        raise ValueError(f"gsl_symmetric_eigen needs a non-empty square matrix, got shape {a.shape}")
    if n == 1:
        return a[0].copy(), np.ones((1, 1))
    q, d, sd = _tridiagonalise(a)
    _chop_small(d, sd)
    b = n - 1
    sweeps = 0
    while b > 0:
        if sd[b - 1] == 0.0 or math.isnan(sd[b - 1]):
            b -= 1
            continue
        a0 = b - 1
        while a0 > 0 and sd[a0 - 1] != 0.0:
            a0 -= 1
        db, sdb = d[a0:b + 1].copy(), sd[a0:b].copy()
        gc, gs = _qr_step(db, sdb)
        d[a0:b + 1], sd[a0:b] = db, sdb
        for i in range(b - a0):
            qi, qj = q[:, a0 + i].copy(), q[:, a0 + i + 1].copy()
            q[:, a0 + i] = qi * gc[i] - qj * gs[i]
            q[:, a0 + i + 1] = qi * gs[i] + qj * gc[i]
        _chop_small(d, sd)
        sweeps += 1
        if sweeps > max_sweeps:
            raise NumericalError(f"gsl_symmetric_eigen: no convergence after {max_sweeps} QR sweeps")
    return d, q


# ---------------------------------------------------------------------------------------------
# The axes of the standardisation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HessianAxes:
    """The eigen-axes of the Hessian H of −log π(θ | y) at the mode, as R-INLA uses them.

    Attributes:
        eigenvalues: (d,) λ_i of the Hessian actually used (GSL order).
        eigenvectors: (d, d) V, eigenvectors in the columns (GSL signs).
        hessian: (d, d) the Hessian actually used (after R-INLA's repair, if any).
        repaired: whether H had a negative eigenvalue and was replaced (see :func:`hessian_axes`).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    hessian: np.ndarray
    repaired: bool = False

    @property
    def dim(self) -> int:
        return int(self.eigenvalues.size)

    def covariance(self) -> np.ndarray:
        """H⁻¹: R-INLA's ``misc$cov.intern``."""
        return np.linalg.inv(self.hessian)

    def z_to_theta(self, mode: np.ndarray, z: np.ndarray) -> np.ndarray:
        """θ = θ* + V Λ^{-1/2} z for one z (d,) or a batch (k, d) (GMRFLib_ai_z2theta)."""
        z = np.asarray(z, dtype=float)
        return np.asarray(mode, dtype=float) + (z / np.sqrt(self.eigenvalues)) @ self.eigenvectors.T

    def theta_to_z(self, mode: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """z = Λ^{1/2} Vᵀ (θ − θ*) (GMRFLib_ai_theta2z)."""
        u = np.asarray(theta, dtype=float) - np.asarray(mode, dtype=float)
        return (u @ self.eigenvectors) * np.sqrt(self.eigenvalues)


def hessian_axes(hessian: np.ndarray) -> HessianAxes:
    """Eigen-axes of the Hessian of −log π(θ | y), with R-INLA's repair of a non-PD Hessian.

    R-INLA (``GMRFLib_ai_INLA_experimental``) decomposes H with ``gsl_eigen_symmv``. If some
    eigenvalue is negative (a warning, ``mode.status`` += 1000 each) it continues with
      - all eigenvalues ≤ 0: H = I, the negative eigenvalues replaced by 1 and the
        eigenvectors kept;
      - otherwise: the diagonal Hessian diag(max(ε, H_ii)) and its eigen-decomposition.

    Args:
        hessian: (d, d) symmetric Hessian of −log π(θ | y) at the mode (internal θ scale).

    Returns:
        the :class:`HessianAxes`.

    Example:
        >>> ax = hessian_axes(np.array([[2.0, 0.5], [0.5, 1.0]]))
        >>> bool(np.allclose(ax.covariance(), np.linalg.inv([[2.0, 0.5], [0.5, 1.0]])))
        True
    """
    h = np.array(hessian, dtype=float)
    if h.ndim != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"hessian must be a square matrix, got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise NumericalError("hessian of -log pi(theta | y) at the mode has non-finite entries")
    h = 0.5 * (h + h.T)
    lam, vec = gsl_symmetric_eigen(h)
    if not np.any(lam < 0.0):
        return HessianAxes(lam, vec, h, repaired=False)
    positive = lam[lam > 0.0]
    min_positive = float(positive.min()) if positive.size else 1.0
    all_nonpositive = bool(np.all(lam <= 0.0))
    if all_nonpositive:
        lam = np.where(lam < 0.0, min_positive, lam)
        return HessianAxes(lam, vec, np.eye(h.shape[0]), repaired=True)
    diag = np.diag(np.maximum(_DBL_EPSILON, np.diag(h)))
    lam, vec = gsl_symmetric_eigen(diag)
    return HessianAxes(lam, vec, diag, repaired=True)


# ---------------------------------------------------------------------------------------------
# The skewness scalings σ±
# ---------------------------------------------------------------------------------------------


def skewness_points(mode: np.ndarray, axes: HessianAxes, step: float = SKEWNESS_STEP) -> np.ndarray:
    """The 2d points θ(±step·e_i) at which log π(θ | y) is needed for the σ± scalings.

    Order: [+e_0, −e_0, +e_1, −e_1, ...] (R-INLA evaluates + then − for each axis), so the
    result can be evaluated as one batch (e.g. ``jax.vmap``) and passed to
    :func:`skewness_scalings` in the same order.

    Returns:
        (2d, d) θ points.
    """
    d = axes.dim
    z = np.zeros((2 * d, d))
    for i in range(d):
        z[2 * i, i] = step
        z[2 * i + 1, i] = -step
    return axes.z_to_theta(mode, z)


def skewness_scalings(
    log_post_points: np.ndarray,
    log_post_mode: float,
    step: float = SKEWNESS_STEP,
    correct_skewness_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """σ⁺, σ⁻ per axis from log π at the points of :func:`skewness_points`.

    With Δ = log π(θ*) − log π(θ(±step·e_i)), σ = sqrt(step² / (2Δ)) if Δ > 0, else 1
    (R-INLA, ``GMRFLib_ai_INLA_experimental``). With ``correct_skewness_only`` (R-INLA's
    ``hessian.correct.skewness.only``) both are divided by their geometric mean.

    Args:
        log_post_points: (2d,) log π(θ | y) at [+e_0, −e_0, +e_1, ...].
        log_post_mode: log π(θ* | y).

    Returns:
        (stdev_corr_pos, stdev_corr_neg), each (d,): R-INLA's ``misc$stdev.corr.positive``
        and ``misc$stdev.corr.negative``.

    Example:
        >>> skewness_scalings(np.array([-1.0, -1.0]), 0.0)  # exactly Gaussian: σ = 1
        (array([1.]), array([1.]))
    """
    values = np.asarray(log_post_points, dtype=float)
    if values.ndim != 1 or values.size % 2:
        raise ValueError(f"log_post_points must hold 2d values (+/- per axis), got shape {values.shape}")
    drop = log_post_mode - values
    safe = np.where(drop > 0.0, drop, 1.0)
    sigma = np.where(drop > 0.0, np.sqrt(step**2 / (2.0 * safe)), 1.0)
    pos, neg = sigma[0::2].copy(), sigma[1::2].copy()
    if correct_skewness_only:
        gmean = np.sqrt(pos * neg)
        pos, neg = pos / gmean, neg / gmean
    return pos, neg


# ---------------------------------------------------------------------------------------------
# Standard designs
# ---------------------------------------------------------------------------------------------


def _grid_design(d: int) -> tuple[np.ndarray, np.ndarray]:
    if d == 1:
        return _GRID1_X[:, None].copy(), _GRID1_W.copy()
    pts = [(a, b) for a in _GRID2_LEVELS for b in _GRID2_LEVELS if not (abs(a) == 2.25 and abs(b) == 2.25)]
    x = np.array(pts, dtype=float)
    w = np.array([_GRID2_W[(max(abs(a), abs(b)), min(abs(a), abs(b)))] for a, b in pts])
    return x, w


def ccd_points(d: int) -> np.ndarray:
    """The CCD of GMRFLib_design_ccd, before scaling: centre, ±axes, fractional factorial.

    Rows: the centre, then +e_0, −e_0, +e_1, −e_1, ..., then the 2^m runs of the resolution-V
    fractional factorial (±1), runs in binary order of the base columns (first base column
    slowest). R-INLA scales every non-centre row to unit length (see :func:`standard_design`).

    Returns:
        (1 + 2d + 2^m, d) array of 0/±1.
    """
    if not 1 <= d <= CCD_MAX_DIM:
        raise ControlError(f"the CCD design is tabulated for 1 <= dim(theta) <= {CCD_MAX_DIM}, got {d}")
    idx = _CCD_WALSH[:d]
    base = [j for j, w in enumerate(idx) if w & (w - 1) == 0]  # powers of two: base columns
    m = len(base)
    runs = np.array([[1.0 if (r >> (m - 1 - b)) & 1 else -1.0 for b in range(m)] for r in range(2**m)])
    bit_to_col = {idx[j].bit_length() - 1: b for b, j in enumerate(base)}
    fact = np.empty((2**m, d))
    for j, w in enumerate(idx):
        cols = [bit_to_col[bit] for bit in range(w.bit_length()) if (w >> bit) & 1]
        fact[:, j] = np.prod(runs[:, cols], axis=1)
    axial = np.zeros((2 * d, d))
    for i in range(d):
        axial[2 * i, i] = 1.0
        axial[2 * i + 1, i] = -1.0
    if d == 1:  # GMRFLib's d = 1 "CCD" is just {0, -1, 1}
        return np.array([[0.0], [-1.0], [1.0]])
    return np.vstack([np.zeros((1, d)), axial, fact])


@dataclass(frozen=True)
class StandardDesign:
    """A design on the standardised scale before the σ± and f scalings.

    Attributes:
        x: (k, d) design points.
        weights: (k,) integration weights given by the design, or NaN where R-INLA computes
            them (the CCD).
        f: the radial scale applied to x.
        strategy: "grid", "ccd" or "eb".
    """

    x: np.ndarray
    weights: np.ndarray
    f: float
    strategy: str


def _resolve_strategy(strategy: str, d: int) -> str:
    s = str(strategy).lower()
    if s not in STRATEGIES:
        raise ControlError(unknown_choice("int_strategy", strategy, STRATEGIES))
    if s == "auto":
        s = "grid"
    if d == 0:
        s = "eb"
    return s


def standard_design(strategy: str, d: int, f0: float = F0_DEFAULT) -> StandardDesign:
    """R-INLA's standard design for ``int.strategy`` in compact mode.

    - "grid"/"auto": d = 1, 2: the fixed 11/45-point designs, weights tabulated; d ≥ 3: the CCD
      with unit-length non-centre points. f = max(f0, 1)·√d.
    - "ccd": the CCD with unit-length non-centre points and f = 1.
    - "eb": the single point 0 with weight 1, f = 1.

    Example:
        >>> sd = standard_design("grid", 2)
        >>> sd.x.shape, round(sd.f, 6)
        ((45, 2), 1.555635)
    """
    s = _resolve_strategy(strategy, d)
    if s == "eb":
        return StandardDesign(np.zeros((1, d)), np.ones(1), 1.0, "eb")
    if s == "grid" and d in (1, 2):
        x, w = _grid_design(d)
        return StandardDesign(x, w, max(f0, 1.0) * math.sqrt(d), "grid")
    x = ccd_points(d)
    norms = np.linalg.norm(x, axis=1)
    x = np.where(norms[:, None] > 0.0, x / np.where(norms > 0.0, norms, 1.0)[:, None], x)
    weights = np.full(x.shape[0], np.nan)
    f = max(f0, 1.0) * math.sqrt(d) if s == "grid" else 1.0
    return StandardDesign(x, weights, f, s)


# ---------------------------------------------------------------------------------------------
# The design on the θ scale
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrationDesign:
    """Integration points over θ and the log weights R-INLA adds to log π(θ_k | y).

    Attributes:
        strategy: the resolved strategy ("grid", "ccd", "eb").
        x: (k, d) standard design points.
        z: (k, d) standardised points z_k = f · x_k · σ^{sign(x_k)}.
        theta: (k, d) θ_k = θ* + V Λ^{-1/2} z_k (internal scale).
        log_weights: (k,) log integration weight (0 where none is added).
        dz: the step R-INLA multiplies into the "integration" marginal likelihood.
    """

    strategy: str
    x: np.ndarray
    z: np.ndarray
    theta: np.ndarray
    log_weights: np.ndarray
    dz: float

    @property
    def size(self) -> int:
        return int(self.theta.shape[0])


def ccd_weights(n_points: int, d: int, f: float) -> tuple[float, float]:
    """(w, w₀): CCD weights of the outer points and of the centre (GMRFLib, Rue et al. 2009 §6.5).

    w = 1 / ((n−1)(1 + e^{−f²/2}(f²/d − 1))), w₀ = 1 − (n−1)w; they integrate a standard
    Gaussian exactly when the outer points sit at radius f.
    """
    w = 1.0 / ((n_points - 1.0) * (1.0 + math.exp(-0.5 * f * f) * (f * f / d - 1.0)))
    return w, 1.0 - (n_points - 1.0) * w


def integration_design(
    mode: np.ndarray,
    axes: HessianAxes,
    stdev_corr_pos: np.ndarray,
    stdev_corr_neg: np.ndarray,
    strategy: str = "auto",
    f0: float = F0_DEFAULT,
) -> IntegrationDesign:
    """The integration points θ_k and log weights of R-INLA's compact mode.

    Args:
        mode: (d,) θ*, the design centre (the optimiser's mode; R-INLA's ``mode$theta`` is
            the best θ seen, which can be a design point, see the notes).
        axes: from :func:`hessian_axes`.
        stdev_corr_pos, stdev_corr_neg: (d,) from :func:`skewness_scalings`.
        strategy: "auto" (= "grid"), "grid", "ccd" or "eb".
        f0: R-INLA's f0 (1.1).

    Returns:
        the :class:`IntegrationDesign`; the points come in R-INLA's order (that of the configs).

    Example:
        >>> ax = hessian_axes(np.eye(2))
        >>> des = integration_design(np.zeros(2), ax, np.ones(2), np.ones(2))
        >>> des.size, float(np.exp(des.log_weights).max().round(6))
        (45, 2.277251)
    """
    mode = np.asarray(mode, dtype=float).reshape(-1)
    d = mode.size
    if axes.dim != d:
        raise ValueError(f"mode has {d} coordinates but the Hessian axes have {axes.dim}")
    pos = np.asarray(stdev_corr_pos, dtype=float).reshape(-1)
    neg = np.asarray(stdev_corr_neg, dtype=float).reshape(-1)
    if pos.size != d or neg.size != d:
        raise ValueError(f"stdev_corr_pos/neg need {d} values, got {pos.size} and {neg.size}")
    std = standard_design(strategy, d, f0)
    z = std.f * std.x * np.where(std.x > 0.0, pos, neg)
    theta = axes.z_to_theta(mode, z) if d else np.zeros((1, 0))
    k = std.x.shape[0]
    if std.strategy == "eb":
        log_w = np.zeros(k)
    elif np.all(np.isnan(std.weights)):
        log_w = np.zeros(k)
        if d > 1:
            w, w0 = (ccd_weights(k, d, std.f) if std.strategy == "grid" else (1.0, 1.0))
            centre = np.all(z == 0.0, axis=1)
            log_w = np.where(centre, math.log(w0) if w0 > 0.0 else -np.inf, math.log(w))
    else:
        log_w = np.log(std.weights)
    dz = 1.0 if std.strategy == "ccd" else DZ_GRID
    return IntegrationDesign(std.strategy, std.x, z, theta, log_w, dz)


# ---------------------------------------------------------------------------------------------
# Marginal likelihood and mixture weights
# ---------------------------------------------------------------------------------------------


def log_mlik_gaussian(log_post_mode: float, axes: HessianAxes) -> float:
    """R-INLA's "Gaussian" log marginal likelihood: ½ d log 2π + log π̃(θ*|y) − ½ Σ log λ_i."""
    d = axes.dim
    return 0.5 * d * math.log(2.0 * math.pi) + log_post_mode - 0.5 * float(np.sum(np.log(axes.eigenvalues)))


def log_mlik_integration(
    design: IntegrationDesign,
    log_post_points: np.ndarray,
    log_post_mode: float,
    axes: HessianAxes,
    stdev_corr_pos: np.ndarray | None = None,
    stdev_corr_neg: np.ndarray | None = None,
) -> float:
    """R-INLA's "integration" log marginal likelihood, quirks included.

    Non-CCD strategies: with l_k = log π̃(θ_k | y) + log w_k,
        log mlik = log(dz · Σ_k exp(l_k − max_j l_j)) − ½ Σ log λ_i + log π̃(θ* | y)
    (the sum is shifted by max_j l_j, not by log π̃(θ*): R-INLA's own normalisation; dz = 0.75).
    CCD: the Gaussian with the σ± corrections,
        ½ d log 2π + log π̃(θ*) − Σ_i ½(log λ_i + ½(log σ⁺_i² + log σ⁻_i²)).
    """
    if design.strategy == "ccd":
        if stdev_corr_pos is None or stdev_corr_neg is None:
            raise ValueError("the CCD marginal likelihood needs stdev_corr_pos and stdev_corr_neg")
        corr = 0.5 * (np.log(np.square(stdev_corr_pos)) + np.log(np.square(stdev_corr_neg)))
        return (0.5 * axes.dim * math.log(2.0 * math.pi) + log_post_mode
                - float(np.sum(0.5 * (np.log(axes.eigenvalues) + corr))))
    lw = np.asarray(log_post_points, dtype=float) + design.log_weights
    top = float(np.max(lw))
    integral = design.dz * float(np.sum(np.exp(lw - top)))
    return math.log(integral) - 0.5 * float(np.sum(np.log(axes.eigenvalues))) + log_post_mode


def mixture_probabilities(design: IntegrationDesign, log_post_points: np.ndarray) -> np.ndarray:
    """Normalised mixture weights p_k ∝ π̃(θ_k | y) w_k (R-INLA's configs ``prob``)."""
    lw = np.asarray(log_post_points, dtype=float) + design.log_weights
    p = np.exp(lw - np.max(lw))
    return p / p.sum()


def prune_probabilities(probs: np.ndarray, keep: float = 0.999) -> np.ndarray:
    """Drop the smallest weights whose total is below 1 − keep and renormalise.

    ``GMRFLib_density_prune_weights``: sort decreasingly, keep adding weights while their sum
    is < keep. R-INLA mixes the latent marginals, CPO/PIT and DIC with keep = 0.999
    (``GMRFLib_weight_prob_one``) and the linear-predictor marginals with keep = 0.975
    (``GMRFLib_weight_prob``).
    """
    p = np.asarray(probs, dtype=float)
    p = p / p.sum()
    order = np.argsort(p, kind="stable")[::-1]
    kept = np.zeros(p.size, dtype=bool)
    total = 0.0
    for j in order:
        if total < keep:
            total += p[j]
            kept[j] = True
    out = np.where(kept, p, 0.0)
    return out / out.sum()


# ---------------------------------------------------------------------------------------------
# R-INLA's classic adaptive grid (inla.mode = "classic", int.strategy = "grid")
# ---------------------------------------------------------------------------------------------


def adaptive_grid_design(
    mode: np.ndarray,
    axes: HessianAxes,
    stdev_corr_pos: np.ndarray,
    stdev_corr_neg: np.ndarray,
    evaluate,
    log_post_mode: float,
    dz: float = 0.75,
    diff_logdens: float = 6.0,
    max_steps: int = 40,
) -> tuple[IntegrationDesign, np.ndarray]:
    """The classic INLA grid (Rue, Martino & Chopin 2009, §3.1): points z = dz·k (k integer,
    scaled by σ± on each side of each axis) explored outwards from the mode until log π̃ has
    dropped by more than ``diff_logdens`` below the highest value seen, then every grid point
    of the box whose log π̃ is within ``diff_logdens`` of the maximum.

    Unlike the compact-mode designs this follows the posterior wherever it goes, so a
    hyperparameter posterior with mass far from the mode (or a second mode) is covered.

    Args:
        evaluate: θ points (k, d) -> log π̃(θ | y) (k,).

    Returns:
        (design, log π̃ at the design points) — the values are returned so they need not be
        recomputed; the design's log weights carry the σ± Jacobian and dz^d.
    """
    mode = np.asarray(mode, dtype=float)
    d = mode.size
    pos = np.asarray(stdev_corr_pos, dtype=float)
    neg = np.asarray(stdev_corr_neg, dtype=float)
    if d > 2:
        raise ValueError("the classic grid is used for d <= 2 (CCD above), as in R-INLA")
    cache: dict[tuple[int, ...], float] = {(0,) * d: float(log_post_mode)}

    def z_of(k):
        k = np.asarray(k, dtype=float)
        return dz * k * np.where(k > 0, pos, neg)

    def values(keys):
        todo = [k for k in keys if k not in cache]
        if todo:
            thetas = axes.z_to_theta(mode, np.array([z_of(k) for k in todo]))
            for k, v in zip(todo, np.asarray(evaluate(thetas), dtype=float)):
                cache[k] = float(v) if np.isfinite(v) else -np.inf
        return np.array([cache[k] for k in keys])

    bounds = []
    for i in range(d):
        ext = []
        for sign in (1, -1):
            k = 0
            while k < max_steps:
                chunk = [tuple(sign * (k + j) if a == i else 0 for a in range(d)) for j in range(1, 5)]
                vals = values(chunk)
                top = max(cache.values())
                below = np.flatnonzero(vals < top - diff_logdens)
                if below.size:
                    k = k + below[0] + 1
                    break
                k += 4
            ext.append(k)
        bounds.append((-ext[1], ext[0]))
    grids = [np.arange(lo, hi + 1) for lo, hi in bounds]
    keys = [tuple(int(v) for v in p) for p in np.array(np.meshgrid(*grids, indexing="ij")).reshape(d, -1).T]
    vals = values(keys)
    keep = vals >= max(cache.values()) - diff_logdens
    keys = [k for k, ok in zip(keys, keep) if ok]
    vals = vals[keep]
    x = np.array(keys, dtype=float).reshape(-1, d)
    z = np.array([z_of(k) for k in keys]).reshape(-1, d)
    theta = axes.z_to_theta(mode, z)
    # every point carries dz^d times the σ± of its side (the Jacobian of the scaled grid)
    log_w = d * math.log(dz) + np.sum(np.log(np.where(x > 0, pos, np.where(x < 0, neg, 0.5 * (pos + neg)))), axis=1)
    return IntegrationDesign("grid.classic", x, z, theta, log_w, 1.0), vals
