"""The mode of π(θ | y) and the Hessian there (DESIGN.md §5.1–5.2).

The mode is found by BFGS on −f(θ) with the exact AD gradient (one objective's cost per
gradient instead of R-INLA's 2d+1 evaluations). The line search backtracks on non-finite
values, so a θ where the inner Newton fails is stepped away from rather than propagated.
The Hessian at the mode is R-INLA's second difference of objective values, or the central
difference of AD gradients (2d gradient calls, evaluated as one vmapped batch: custom-VJP
kernels have no forward-mode rule, so forward-over-reverse is not available), taken along
the directions of the mode search as R-INLA's ``use.directions`` (default) or along the axes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import AdeliaError
from ..user_warnings import warn


class ModeSearchWarning(UserWarning):
    """The mode search stopped without meeting its tolerance."""


class KinkedModeWarning(UserWarning):
    """The mode is a maximum at a kink of log π(θ | y), where the gradient cannot vanish."""


@dataclass
class ModeResult:
    """Outcome of :func:`find_mode` (free coordinates only)."""

    theta: np.ndarray
    value: float
    gradient: np.ndarray
    converged: bool
    iterations: int
    n_evaluations: int
    message: str
    trace: list[float] = field(default_factory=list)
    #: free coordinates at which the mode is a kink maximum (see :func:`kink_coordinates`)
    kinks: tuple[int, ...] = ()
    #: R-INLA's direction matrix after the search (``use.directions``): orthonormal columns, the
    #: latest step first (see :func:`search_directions`); None when no search was run
    directions: np.ndarray | None = None


def kink_coordinates(
    value: Callable[[np.ndarray], float], theta: np.ndarray, f: float, g: np.ndarray, gtol: float, delta: float = 1e-4
) -> tuple[list[int], dict[int, tuple[float, float]]] | None:
    """Is θ a maximum at a kink of f in every coordinate whose gradient is not small?

    A PC prior at its base model (pc.cor0 at ρ = 0, pc.prec at σ = 0, ...) gives log π(θ|y) a
    kink: the one-sided derivatives differ by the prior's rate, so at a maximum there the
    gradient cannot vanish and a gradient tolerance is never met. For each coordinate k with
    |g_k| > 10·gtol the one-sided slopes D± = (f(θ ± δ e_k) − f(θ)) / δ are measured: θ is a
    kink maximum in k when f falls (or stays) on both sides, max(D+, D−) ≤ |g_k|/10; at a
    smooth point one of them is ≈ +|g_k| instead. (An iterate a distance ε ≪ δ from the kink
    shifts the slopes by O(ε/δ) of the jump only.)

    Returns (kink coordinates, {k: (slope from the left, slope to the right)}), or None when
    some coordinate with a large gradient is not a kink maximum (the search has not converged).
    """
    theta = np.asarray(theta, dtype=float)
    big = [k for k in range(theta.size) if abs(g[k]) > 10 * gtol]
    if not big:
        return None
    slopes = {}
    for k in big:
        e = np.zeros_like(theta)
        e[k] = delta
        f_plus, f_minus = float(value(theta + e)), float(value(theta - e))
        d_plus, d_minus = (f_plus - f) / delta, (f_minus - f) / delta
        if not (np.isfinite(d_plus) and np.isfinite(d_minus)) or max(d_plus, d_minus) > 0.1 * abs(g[k]):
            return None
        slopes[k] = (-d_minus, d_plus)  # left and right derivatives of f
    return big, slopes


def find_mode(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta0: np.ndarray,
    gtol: float = 1e-4,
    ftol: float = 1e-10,
    max_iter: int = 200,
    max_step: float = 2.0,
    callback: Callable[[int, np.ndarray, float], None] | None = None,
    frame_min_step: float = 0.001,
) -> ModeResult:
    """Maximise f by BFGS with a backtracking (Armijo) line search.

    The steps taken are recorded as R-INLA records them for ``control.inla$use.directions``
    (``GMRFLib_gsl_optimize``): ``ModeResult.directions`` is :func:`search_directions` of the
    accepted steps θ_k − θ_{k−1} whose root-mean-square length is at least ``frame_min_step``.
    They are this optimiser's steps, not those of R-INLA's GSL ``vector_bfgs3``: the two agree
    in where they go (the mode) but not step by step.

    Why the shortest steps are left out of the frame: R-INLA's search stops once its step in θ
    falls below ``tolerance.x`` (RMS; 0.2 × ``control.inla$tolerance`` = 0.001 by default), so
    its frame is built from steps of about that length or longer. This search goes on to
    max|∇f| ≤ ``gtol`` (a more accurate mode), and its last steps can be 10⁻⁶ long. The
    direction of such a step is set by rounding: θ carries an absolute rounding error of
    ~10⁻¹², so a step of length ℓ has its direction known to ~10⁻¹²/ℓ, and two computations of
    the same model that round differently (a BTA factorisation on one device or split over
    four, another BLAS) would put the Hessian's frame, and through it the integration design
    and every summary, ~10⁻⁶ apart. Steps of at least ``frame_min_step`` have their directions
    to ~10⁻⁹, and the frame, like R-INLA's, is made of steps of at least ``tolerance.x``.

    Args:
        value_and_grad: θ -> (f(θ), ∇f(θ)) on the free coordinates; non-finite values are
            treated as "outside the domain" by the line search.
        theta0: start (R-INLA's initial values).
        gtol: stop when max|∇f| ≤ gtol.
        ftol: or when the relative change of f over an iteration is below ftol.
        max_step: largest step length in θ per iteration (protects the inner problem).
        frame_min_step: shortest step (root-mean-square over θ) recorded in the direction
            frame (R-INLA's ``tolerance.x``; see above).

    Returns:
        A :class:`ModeResult`; ``converged`` says whether a tolerance was met.
    """
    theta = np.asarray(theta0, dtype=float).copy()
    d = theta.size
    n_eval = 1
    f, g = value_and_grad(theta)
    f = float(f)
    g = np.asarray(g, dtype=float)
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        raise AdeliaError(
            f"the log posterior of the hyperparameters is not finite at the initial values θ = {theta.tolist()}; "
            "set other initial values (hyper=list(<name>=list(initial=...)))"
        )
    if d == 0:
        return ModeResult(theta, f, g, True, 0, n_eval, "no free hyperparameters", [f])
    steps: list[np.ndarray] = []
    B = np.eye(d)  # inverse Hessian approximation of −f
    trace = [f]
    message = "maximum number of iterations reached"
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        if np.max(np.abs(g)) <= gtol:
            converged, message = True, "gradient tolerance met"
            break
        p = B @ g  # ascent direction for f
        if p @ g <= 0:  # not an ascent direction: reset to steepest ascent
            B = np.eye(d)
            p = g.copy()
        norm = np.max(np.abs(p))
        scale = min(1.0, max_step / norm) if norm > 0 else 1.0
        step = scale
        accepted = False
        for _ in range(40):
            trial = theta + step * p
            f_new, g_new = value_and_grad(trial)
            n_eval += 1
            f_new = float(f_new)
            if np.isfinite(f_new) and np.all(np.isfinite(g_new)) and f_new >= f + 1e-4 * step * (p @ g):
                accepted = True
                break
            step *= 0.5
        if not accepted:
            message = "line search failed to improve the objective"
            converged = np.max(np.abs(g)) <= 10 * gtol
            break
        g_new = np.asarray(g_new, dtype=float)
        s = trial - theta
        yk = -(g_new - g)  # gradient change of −f
        sy = s @ yk
        if sy > 1e-12:
            if it == 1:
                B = np.eye(d) * (sy / (yk @ yk))
            rho = 1.0 / sy
            I = np.eye(d)
            B = (I - rho * np.outer(s, yk)) @ B @ (I - rho * np.outer(yk, s)) + rho * np.outer(s, s)
        f_old = f
        rms = float(np.sqrt(np.mean(s**2)))
        if rms > 0 and rms >= frame_min_step:
            steps.append(s)
        theta, f, g = trial, f_new, g_new
        trace.append(f)
        if callback is not None:
            callback(it, theta, f)
        if abs(f - f_old) <= ftol * (1.0 + abs(f)):
            if np.max(np.abs(g)) <= 100 * gtol:
                converged, message = True, "objective tolerance met"
                break
            # f stalls while the gradient stays large: a maximum at a kink (a PC prior at its
            # base model) stalls exactly like this, and no gradient tolerance can be met there
            kinked = kink_coordinates(lambda t: value_and_grad(t)[0], theta, f, g, gtol)
            if kinked is not None:
                kinks, slopes = kinked
                n_eval += 2 * len(kinks)
                converged = True
                message = "objective tolerance met at a kink of the log posterior in θ" + str(kinks)
                where = "; ".join(f"θ[{k}] = {theta[k]:.3g}: slope {lo:+.3g} from the left, {hi:+.3g} to the right"
                                  for k, (lo, hi) in slopes.items())
                warn(
                    f"the mode of the hyperparameters is a maximum at a kink of log π(θ|y) ({where}; free θ's in "
                    "the order of internal_summary_hyperpar). The gradient does not vanish there. This usually "
                    "means a PC prior sits at its base model (pc.cor0 at θ = 0, i.e. a correlation or PACF of 0): "
                    "the data pull less than the prior's rate. The Gaussian approximation at such a mode is poor "
                    "(its curvature comes from the kink) and the posterior may have another mode; compare with "
                    "a prior without a kink (hyper=...) or another start (control_mode={'theta': ...}).",
                    KinkedModeWarning
                )
                return ModeResult(theta, f, g, True, it, n_eval, message, trace, tuple(kinks), search_directions(steps, d))
    if not converged:
        warn(
            f"the mode search for the hyperparameters stopped without converging ({message}; "
            f"max|gradient| = {np.max(np.abs(g)):.3g} at θ = {np.round(theta, 4).tolist()})",
            ModeSearchWarning
        )
    return ModeResult(theta, f, g, bool(converged), it, n_eval, message, trace, directions=search_directions(steps, d))


def search_directions(steps: list[np.ndarray], d: int) -> np.ndarray:
    """R-INLA's direction matrix A from the optimiser's steps (``use.directions``).

    As ``GMRFLib_gsl_optimize`` (opt-interface/domin-interface.c) builds it: start from
    Adir = ε·1 with diagonal √max(ε, 1 − (d−1)ε²), ε = GSL_ROOT3_DBL_EPSILON (≈ 6.1e-6); after
    each iteration with a nonzero step s = θ_k − θ_{k−1}, shift Adir's columns one to the right
    (dropping the last) and put s in column 0; A is Adir orthonormalised column by column
    (``GMRFLib_gsl_mgs``: modified Gram-Schmidt, each column signed so that its largest entry
    is positive). So A's first column is the last step's direction, the next the step before
    it made orthogonal to the later ones, ...; with d = 1, A = [[1]]. R-INLA evaluates
    gradients and the Hessian at the mode along A's columns (:func:`hessian_from_values`).

    adelia differs only where a step is (numerically) in the span of the later ones: R-INLA's
    Gram-Schmidt then normalises rounding noise; here that column is replaced by the unit
    vector that completes the basis best (the columns stay orthonormal).

    Example:
        >>> A = search_directions([np.array([1.0, 1.0]), np.array([0.0, 2.0])], 2)
        >>> np.round(A, 4).tolist()  # last step (0, 2) first, then (1, 1) made orthogonal to it
        [[0.0, 1.0], [1.0, 0.0]]
    """
    if d == 1:
        return np.ones((1, 1))
    eps = np.finfo(float).eps ** (1.0 / 3.0)
    adir = np.full((d, d), eps)
    adir[np.diag_indices(d)] = np.sqrt(max(eps, 1.0 - (d - 1) * eps**2))
    for s in steps:
        adir = np.concatenate([np.asarray(s, dtype=float)[:, None], adir[:, :-1]], axis=1)
    if not steps:
        return adir  # R-INLA leaves the initial matrix as it is until the first iteration
    return _modified_gram_schmidt(adir)


def _modified_gram_schmidt(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    d = a.shape[1]
    for i in range(d):
        col = a[:, i]
        norm = np.linalg.norm(col)
        if not norm > 1e-10 * max(1.0, np.max(np.abs(a))):
            # dependent on the earlier columns: complete the basis with the unit vector least
            # in their span (R-INLA would normalise rounding noise here)
            q = a[:, :i]
            resid = np.eye(a.shape[0]) - q @ q.T
            col = resid[:, int(np.argmax(np.linalg.norm(resid, axis=0)))]
            norm = np.linalg.norm(col)
        col = col / norm
        if col[np.argmax(np.abs(col))] < 0:
            col = -col
        a[:, i] = col
        for j in range(i + 1, d):
            a[:, j] -= (col @ a[:, j]) * col
    return a


@dataclass
class HessianResult:
    """−∇²f at the mode (free coordinates) and its eigen-decomposition, as measured: a
    non-positive-definite one is not repaired here — :func:`adelia.inference.design.hessian_axes`
    applies R-INLA's fallback, and :func:`adelia.inference.run.run_inla` warns."""

    hessian: np.ndarray  # of −f: positive definite at a maximum
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def covariance(self) -> np.ndarray:
        return (self.eigenvectors / self.eigenvalues) @ self.eigenvectors.T


def hessian_from_values(
    batched_f: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    f0: float,
    step: float = 0.0707,
    directions: np.ndarray | None = None,
) -> HessianResult:
    """R-INLA's Hessian: second differences of log π̃ itself (``GMRFLib_opt_estimate_hessian``).

    Along the columns a_i of ``directions`` A (R-INLA's ``use.directions``, default; None: the
    axes, A = I), with u_i = h a_i:
    diag: D_ii = (f(θ + u_i) − 2 f(θ) + f(θ − u_i)) / h², off-diagonal:
    D_ij = (f(θ + u_i + u_j) − f(θ − u_i + u_j) − f(θ + u_i − u_j) + f(θ − u_i − u_j)) / 4h²,
    2d² evaluations as one batch. D is the Hessian of u ↦ f(θ + A u), so the Hessian in θ is
    A⁻ᵀ D A⁻¹ (``GMRFLib_opt_dir_transform_hessian``). On a smooth f every non-degenerate A
    gives the same matrix to O(h²); where f has a kink (a PC prior at its base model) the
    differences depend on A, and R-INLA's A is that of its mode search. Unlike differences of
    gradients this treats a kink exactly as R-INLA does.

    Example:
        >>> f = lambda t: -0.5 * (2 * t[..., 0] ** 2 + t[..., 0] * t[..., 1] + t[..., 1] ** 2)
        >>> A = np.array([[0.6, -0.8], [0.8, 0.6]])
        >>> np.round(hessian_from_values(f, np.zeros(2), 0.0, directions=A).hessian, 6).tolist()
        [[2.0, 0.5], [0.5, 1.0]]
    """
    theta = np.asarray(theta, dtype=float)
    d = theta.size
    A = np.eye(d) if directions is None else np.asarray(directions, dtype=float)
    E = A.T * step  # row i: the step along direction i
    pts = [theta + E, theta - E]
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    for i, j in pairs:
        pts.append(np.stack([theta + E[i] + E[j], theta - E[i] + E[j], theta + E[i] - E[j], theta - E[i] - E[j]]))
    vals = np.asarray(batched_f(np.concatenate(pts, axis=0)), dtype=float)
    H = np.zeros((d, d))
    plus, minus = vals[:d], vals[d : 2 * d]
    H[np.diag_indices(d)] = -(plus - 2 * f0 + minus) / step**2
    for k, (i, j) in enumerate(pairs):
        a, b, c, e = vals[2 * d + 4 * k : 2 * d + 4 * k + 4]
        H[i, j] = H[j, i] = -(a - b - c + e) / (4 * step**2)
    if directions is not None:
        Ainv = np.linalg.inv(A)
        H = Ainv.T @ H @ Ainv
    return _finish_hessian(H)


def hessian_from_gradients(
    batched_grad: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    step: float = 1e-3,
    directions: np.ndarray | None = None,
) -> HessianResult:
    """Central differences of AD gradients along the columns a_i of ``directions`` A (None: the
    axes): (g(θ + h a_i) − g(θ − h a_i)) / 2h = ∇²f a_i, so −∇²f = −G A⁻¹ with G's columns
    those differences (symmetrised).

    ``batched_grad`` maps a (k, d) array of θ points to (k, d) gradients of f.
    """
    theta = np.asarray(theta, dtype=float)
    d = theta.size
    if d == 0:
        e = np.zeros(0)
        return HessianResult(np.zeros((0, 0)), e, np.zeros((0, 0)))
    A = np.eye(d) if directions is None else np.asarray(directions, dtype=float)
    E = A.T * step
    pts = np.concatenate([theta + E, theta - E], axis=0)
    G = np.asarray(batched_grad(pts), dtype=float)
    HA = -(G[:d] - G[d:]).T / (2 * step)  # column i: −∇²f a_i
    H = HA if directions is None else np.linalg.solve(A.T, HA.T).T
    return _finish_hessian(H)


def _finish_hessian(H: np.ndarray) -> HessianResult:
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        nan = np.full(H.shape[0], np.nan)
        return HessianResult(H, nan, np.full(H.shape, np.nan))
    lam, V = np.linalg.eigh(H)
    return HessianResult(H, lam, V)
