"""Posterior marginals of the hyperparameters, as R-INLA's compact mode builds them.

R-INLA (``GMRFLib_ai_marginal_one_hyperparamter``, interpolator "auto"):

* d = 1: a spline-corrected Gaussian through the design points: with u = (θ − θ*)/sd,
  log π(θ | y) ≈ −½u² + c(u), c a cubic spline through log π̃(θ_k | y) − max + ½u_k²
  on the range of the design points (R-INLA's GRIDSUM support).
* d ≥ 2: an analytic two-sided Gaussian along the line where the other coordinates sit at
  their conditional means: θ_j(t) = θ*_j + Σ_{ij}/Σ_ii · t for θ_i = θ*_i + t; with
  z = z(θ(t)), log π ≈ −½ Σ_j (z_j / σ_j^{sign z_j})² (σ± the skewness scalings).

Summaries on the internal scale come from the density on a fine grid; on the user scale
the density is pushed through the hyperparameter's ``to_user`` map (monotone), with the mean
E[to_user(θ)] integrated on the internal grid.

Where the internal density is still rising at the edge of the design (Seeds' plate precision
under the default loggamma(1, 5e-05) prior), R-INLA's user-scale moments come from a
computation of its own and are not moments of the marginal it returns: on seeds_iid R-INLA reports
a mean of 14730 for the precision, above its own 0.975 quantile (7607), while its stored
marginals integrate to a mean of about 5740–5900 (and its stored internal points to a mass of
1.51). The C code of that computation is not in the published sources this was traced in
(R's ``collect.results`` reads the program's ``summary.dat``), so it is not offered as an
option; adelia keeps moments of the density it reports (mean 3153 on seeds_iid, with the
internal mean 7.337 against R-INLA's 7.346) and warns that the design misses mass away from
the mode (:func:`adelia.inference.run.run_inla`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy.interpolate import CubicSpline

from .design import HessianAxes
from .summaries import grid_summary


@dataclass
class HyperMarginal:
    """One hyperparameter's marginal on the internal scale: grid x and density (normalised)."""

    x: np.ndarray
    density: np.ndarray

    def summary(self, quantiles) -> dict[str, float]:
        return grid_summary(self.x, self.density, quantiles)

    def transformed(self, to_user) -> tuple[np.ndarray, np.ndarray]:
        """(x_user, density_user) through a monotone map, sorted increasingly."""
        xu = np.asarray(to_user(jnp.asarray(self.x)), dtype=float)
        jac = np.gradient(xu, self.x)
        dens = self.density / np.maximum(np.abs(jac), 1e-300)
        order = np.argsort(xu)
        return xu[order], dens[order]

    def user_summary(self, to_user, quantiles) -> dict[str, float]:
        """Summaries of to_user(θ): mean/sd by integration on the internal grid, quantiles
        mapped through the (monotone) transform, mode of the transformed density."""
        internal = grid_summary(self.x, self.density, quantiles)
        w = _trapezoid_weights(self.x) * self.density
        w = w / w.sum()
        xu = np.asarray(to_user(jnp.asarray(self.x)), dtype=float)
        mean = float(np.sum(w * xu))
        sd = float(np.sqrt(max(np.sum(w * xu**2) - mean**2, 0.0)))
        increasing = xu[-1] >= xu[0]
        out = {"mean": mean, "sd": sd}
        for q in quantiles:
            qq = q if increasing else 1.0 - q
            qi = internal[f"{q:g}quant"] if increasing else grid_summary(self.x, self.density, (qq,))[f"{qq:g}quant"]
            out[f"{q:g}quant"] = float(np.asarray(to_user(jnp.asarray(qi))))
        xs, ds = self.transformed(to_user)
        out["mode"] = grid_summary(xs, ds, ())["mode"]
        return out


def _trapezoid_weights(x: np.ndarray) -> np.ndarray:
    w = np.zeros_like(x)
    dx = np.diff(x)
    w[:-1] += 0.5 * dx
    w[1:] += 0.5 * dx
    return w


def hyperparameter_marginals(
    mode: np.ndarray,
    axes: HessianAxes,
    stdev_corr_pos: np.ndarray,
    stdev_corr_neg: np.ndarray,
    design_theta: np.ndarray,
    design_log_post: np.ndarray,
    n_grid: int = 401,
    width: float = 8.0,
    strategy: str = "grid",
) -> list[HyperMarginal]:
    """Marginals π(θ_i | y) of every free hyperparameter (internal scale).

    ``strategy`` is the integration strategy: R-INLA's "auto" interpolator is the spline
    through the design points (GRIDSUM) only for the d = 1 grid; a CCD design (and d ≥ 2)
    uses the analytic two-sided Gaussian."""
    mode = np.asarray(mode, dtype=float)
    d = mode.size
    cov = axes.covariance()
    sd = np.sqrt(np.diag(cov))
    out = []
    if d == 1 and strategy in ("grid", "grid.classic"):
        u_k = (np.asarray(design_theta)[:, 0] - mode[0]) / sd[0]
        lp = np.asarray(design_log_post, dtype=float)
        ok = np.isfinite(lp)
        u_k, lp = u_k[ok], lp[ok] - np.max(lp[ok])
        order = np.argsort(u_k)
        u_k, lp = u_k[order], lp[order]
        corr = lp + 0.5 * u_k**2
        lo, hi = u_k[0], u_k[-1]
        spline = CubicSpline(u_k, corr, bc_type="natural") if u_k.size >= 3 else None
        # R-INLA's GRIDSUM density lives on the range of the design points
        u = np.linspace(lo, hi, n_grid)
        if spline is None:
            c = np.zeros_like(u)
        else:
            c = spline(np.clip(u, lo, hi))
        logd = -0.5 * u**2 + c
        dens = np.exp(logd - logd.max())
        x = mode[0] + sd[0] * u
        out.append(_normalised(x, dens))
        return out
    pos = np.asarray(stdev_corr_pos, dtype=float)
    neg = np.asarray(stdev_corr_neg, dtype=float)
    t = np.linspace(-width, width, n_grid)
    for i in range(d):
        direction = cov[:, i] / cov[i, i]
        theta = mode[None, :] + (t * sd[i])[:, None] * direction[None, :]
        z = axes.theta_to_z(mode, theta)
        scale = np.where(z > 0, pos, neg)
        logd = -0.5 * np.sum((z / scale) ** 2, axis=1)
        dens = np.exp(logd - logd.max())
        out.append(_normalised(mode[i] + sd[i] * t, dens))
    return out


def _normalised(x: np.ndarray, dens: np.ndarray) -> HyperMarginal:
    total = np.sum(_trapezoid_weights(x) * dens)
    return HyperMarginal(x, dens / total)
