"""The exact posterior of Seeds' plate effects by quadrature over log τ, written in NumPy/SciPy
independently of adelia (and of NumPyro, so that its check runs where NumPyro is not
installed): the second oracle of ``test_nuts_theta.py``'s Seeds comparison."""

from __future__ import annotations

import numpy as np

#: R-INLA's default prior on a precision: loggamma(1, 5e-5) on log τ = Gamma(1, 5e-5) on τ.
PREC_SHAPE, PREC_RATE = 1.0, 5.0e-5
#: control.fixed prec (slopes) and the stand-in for the flat intercept (nuts_models' doc).
SLOPE_SD = 1.0 / np.sqrt(0.001)
INTERCEPT_SD = 1000.0


def seeds_quadrature(x1, x2, plate, n_trials, r, log_tau=None, n_draws=4000, seed=5):
    """The exact posterior of Seeds' plate effects (the model of :func:`seeds_model`, flat
    intercept) by quadrature over θ = log τ, written independently of adelia in NumPy/SciPy.

    At each θ on the grid: the Laplace approximation of π(y | θ) (Newton on the 24 latent
    coordinates, dense algebra) and its importance-sampling correction
    π(y | θ) = E_{x ~ N(x*, H⁻¹)}[π(y, x | θ) / N(x; x*, H⁻¹)] with ``n_draws`` draws, whose
    weighted draws also give the exact conditional moments of the plate effects. Then
    π(θ | y) ∝ π(θ) π(y | θ) on the grid (spacing 0.2 over [−1, 16]: the mass outside is
    < 1e-8) and the plate marginals are the θ-mixture of the conditional moments.

    Returns:
        dict: ``theta`` (grid), ``log_post_laplace`` and ``log_post`` (unnormalised, Laplace and
        corrected), ``mean``/``sd`` (21,) of the plate effects, ``min_ess`` of the weights.
    """
    from scipy import special, stats

    plate = np.asarray(plate)
    r, n_trials = np.asarray(r, float), np.asarray(n_trials, float)
    n_obs, n_plates = r.size, int(plate.max()) + 1
    A = np.zeros((n_obs, 3 + n_plates))
    A[:, 0], A[:, 1], A[:, 2] = 1.0, x1, x2
    A[np.arange(n_obs), 3 + plate] = 1.0
    thetas = np.linspace(-1.0, 16.0, 86) if log_tau is None else np.asarray(log_tau, float)
    rng = np.random.default_rng(seed)

    def log_joint(x, q):  # log π(y | x) + log π(x | θ) up to θ-free constants (flat intercept)
        eta = x @ A.T
        return (np.sum(r * eta - n_trials * np.logaddexp(0.0, eta), axis=-1) - 0.5 * np.sum(q * x**2, axis=-1)
                + 0.5 * np.sum(np.log(q[1:])))

    lap, cor, means, variances, ess = [], [], [], [], []
    for th in thetas:
        q = np.r_[0.0, 1.0 / SLOPE_SD**2, 1.0 / SLOPE_SD**2, np.full(n_plates, np.exp(th))]
        x = np.zeros(3 + n_plates)
        for _ in range(100):
            p = special.expit(A @ x)
            H = A.T @ (A * (n_trials * p * (1 - p))[:, None]) + np.diag(q)
            step = np.linalg.solve(H, A.T @ (r - n_trials * p) - q * x)
            x = x + step
            if np.max(np.abs(step)) < 1e-11:
                break
        p = special.expit(A @ x)
        H = A.T @ (A * (n_trials * p * (1 - p))[:, None]) + np.diag(q)
        L = np.linalg.cholesky(H)
        log_g_mode = float(np.sum(np.log(np.diag(L))))  # log N(x*; x*, H⁻¹) + ½ dim log 2π
        e = rng.standard_normal((n_draws, x.size))
        X = x + np.linalg.solve(L.T, e.T).T
        lw = log_joint(X, q) - (log_g_mode - 0.5 * np.sum(e**2, axis=1))
        top = lw.max()
        w = np.exp(lw - top)
        log_prior = stats.gamma(PREC_SHAPE, scale=1.0 / PREC_RATE).logpdf(np.exp(th)) + th
        lap.append(log_joint(x, q) - log_g_mode + log_prior)
        cor.append(top + np.log(w.mean()) + log_prior)
        w /= w.sum()
        ess.append(1.0 / np.sum(w**2))
        m = w @ X
        means.append(m[3:])
        variances.append((w @ (X - m) ** 2)[3:])
    cor = np.asarray(cor)
    pw = np.exp(cor - cor.max())
    pw /= pw.sum()
    means, variances = np.asarray(means), np.asarray(variances)
    mean = pw @ means
    return {"theta": thetas, "log_post_laplace": np.asarray(lap), "log_post": cor, "mean": mean,
            "sd": np.sqrt(pw @ (variances + means**2) - mean**2), "min_ess": float(np.min(ess))}
