"""The Ornstein–Uhlenbeck process on irregular times (``f(t, model="ou", values=tv)``).

dx_t = −φ x_t dt + σ dW_t, observed at strictly increasing times t_1 < ... < t_n (the nodes:
``values``, default the sorted unique covariate values). With δ_i = t_i − t_{i−1} and
v_i = e^{−φ δ_i}: x_1 ~ N(0, 1/τ) (the stationary law, τ = 2φ/σ² the *marginal* precision),
x_i | x_{i−1} ~ N(v_i x_{i−1}, (1 − v_i²)/τ). The precision is tridiagonal (R-INLA's
``Qfunc_ou``), with w_i = 1/(1 − v_i²):

    Q_11 = τ (1 + w_2 v_2²),   Q_ii = τ (w_i + w_{i+1} v_{i+1}²),   Q_nn = τ w_n,
    Q_{i,i−1} = −τ w_i v_i,

and ½ log|Q| = ½ n log τ + ½ Σ_{i≥2} log w_i. Numerically w v² = 1/expm1(2φδ),
w v = 1/(2 sinh φδ), w = −1/expm1(−2φδ).

θ₁ = log τ (loggamma(1, 5e-05), initial 4), θ₂ = log φ (normal(0, 0.2), initial −1)
(``models.R``). Names: "Precision for t", "Phi for t"; internal "Log precision for t",
"Phi_intern for t". ``constr`` defaults to FALSE.

Example:
    >>> import numpy as np
    >>> m, idx, ids = OUModel.from_term("t", np.array([0.5, 2.0, 2.5]), {})
    >>> ids.tolist(), [h.name for h in m.hyperparameters]
    ([0.5, 2.0, 2.5], ['Precision for t', 'Phi for t'])
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel
from .build import resolve_index
from .constraints import model_constraints, rinla_rankdef
from .generic import check_model_args
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_precision
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = ["OUModel", "OU_SPECS"]

OU_SPECS = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 0.00005), 4.0),
    HyperSpec("theta2", "phi", "log phi", "Phi_intern for {label}", "Phi for {label}",
              "normal", (0.0, 0.2), -1.0, False, to_precision),
)


@register_model("ou")
class OUModel(LatentModel):
    """Ornstein–Uhlenbeck process at irregular times (see the module docstring)."""

    model_name = "ou"
    default_constr: ClassVar[bool] = False

    def __init__(self, label, locations, hyperparameters, *, constraints=None, rinla_rankdef_value=0.0, diagonal=0.0):
        t = np.asarray(locations, dtype=float)
        if t.ndim != 1 or t.size < 2:
            raise ModelError(f'f({label}, model="ou"): needs at least 2 time points (values), got {t.size}')
        delta = np.diff(t)
        if not np.all(np.isfinite(t)) or np.any(delta <= 0):
            bad = int(np.flatnonzero(~(delta > 0))[0]) if np.any(~(delta > 0)) else 0
            raise ModelError(
                f'f({label}, model="ou"): the time points (values) must be finite and strictly increasing; '
                f"value {bad + 2} ({t[bad + 1]:g}) does not exceed value {bad + 1} ({t[bad]:g})"
            )
        self.label, self.n = label, int(t.size)
        self.locations, self.delta = t, delta
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        n = self.n
        i = np.arange(n)
        self._pattern = SparsePattern.from_entries(n, np.concatenate([i, i[1:]]), np.concatenate([i, i[:-1]]))
        p = self._pattern
        self._diag_pos = p.diag_index
        self._off_pos = p.index_of(i[1:], i[:-1])  # entry (i, i−1), i = 1..n−1 ↔ delta[i−1]

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label)
        index, ids = resolve_index(label, covariate, args.get("values"), args.get("n"), require_sorted=True,
                                   model=cls.model_name)
        if ids.dtype == object:
            raise ModelError(f'f({label}, model="ou"): the time points must be numbers, got labels {list(ids[:3])}...')
        constr = bool(args.get("constr", False))
        cons = model_constraints(ids.size, constr, args.get("extraconstr"), label)
        n_extra = 0 if args.get("extraconstr") is None or cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters(OU_SPECS, label, args.get("hyper"), **obsolete_hyper_args(args))
        model = cls(label, ids.astype(float), hyper, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self):
        return self._pattern

    def _weights(self, theta):
        """(w, w v², w v) per gap δ_i, i = 2..n (arrays of length n − 1)."""
        phi = jnp.exp(theta[1])
        x = phi * jnp.asarray(self.delta)
        w = -1.0 / jnp.expm1(-2.0 * x)
        wv2 = 1.0 / jnp.expm1(2.0 * x)
        wv = 0.5 / jnp.sinh(x)
        return w, wv2, wv

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        tau = jnp.exp(theta[0])
        w, wv2, wv = self._weights(theta)
        # node i gets w_i from its left gap (1 for the first node) and w_{i+1} v_{i+1}² from its right gap
        left = jnp.concatenate([jnp.ones(1), w])
        right = jnp.concatenate([wv2, jnp.zeros(1)])
        vals = jnp.zeros(self._pattern.nnz)
        vals = vals.at[jnp.asarray(self._diag_pos)].set(tau * (left + right) + self.diagonal)
        return vals.at[jnp.asarray(self._off_pos)].set(-tau * wv)

    def _half_logdet_structure(self, theta):
        w, _, _ = self._weights(theta)
        return 0.5 * jnp.sum(jnp.log(w))

    def log_normaliser(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return 0.5 * self.n * theta[0] + self._half_logdet_structure(theta) + self.n * LOG_NORMC_GAUSSIAN

    def rinla_log_normaliser(self, theta):
        """(n − r')·(−½ log 2π + ½ log τ) + ½ Σ log w_i (R-INLA's rank-deficiency convention)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m = self.n - self.rinla_rankdef
        return m * (LOG_NORMC_GAUSSIAN + 0.5 * theta[0]) + self._half_logdet_structure(theta)

    def constraints(self):
        return self._constraints
