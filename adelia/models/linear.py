"""``f(x, model="linear")``: a fixed effect β·x written as an f() term.

One latent node β ~ N(mean.linear, 1/prec.linear) (defaults 0 and 0.001, R-INLA's
``control.fixed`` defaults, which ``inla.linear.section`` uses when the term gives none); every
row adds x_i·β to the linear predictor, an NA covariate counting as 0. No hyperparameters; the
result appears in ``summary_fixed`` under the term's label (``Component.extra["fixed"]``).

The prior mean enters the latent Gaussian as the linear term b = Q·mean (:attr:`LinearModel.mean`);
R-INLA's normalising constant (``extra()``, linear section) is −½ log 2π + ½ log κ − ½ κ μ²
(:meth:`LinearModel.rinla_log_normaliser`), and nothing when κ = 0 (flat prior).

Example:
    >>> import numpy as np
    >>> m, idx, ids = LinearModel.from_term("x", np.array([0.5, np.nan, 2.0]), {"prec_linear": 0.01})
    >>> m.n, idx.tolist(), float(np.asarray(m.precision_dense([]))[0, 0])
    (1, [0, 0, 0], 0.01)
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = ["LinearModel", "DEFAULT_PREC_LINEAR", "DEFAULT_MEAN_LINEAR"]

DEFAULT_PREC_LINEAR = 0.001
DEFAULT_MEAN_LINEAR = 0.0

_ALLOWED = {"mean_linear", "prec_linear", "compute", "cdf", "quantiles"}


@register_model("linear")
class LinearModel(LatentModel):
    """A single coefficient β with prior N(mean, 1/precision); rows use it with weight x_i."""

    model_name = "linear"
    default_constr: ClassVar[bool] = False
    #: build_component multiplies the f() weights by the covariate for this model.
    covariate_is_weight: ClassVar[bool] = True

    def __init__(self, label: str, mean: float = DEFAULT_MEAN_LINEAR, precision: float = DEFAULT_PREC_LINEAR):
        if not (np.isfinite(mean) and np.isfinite(precision)) or precision < 0:
            raise ModelError(f'f({label}, model="linear"): need a finite mean and a precision >= 0, got {mean}, {precision}')
        self.label = label
        self.n = 1
        self.hyperparameters = ()
        self.prior_precision = float(precision)
        self.mean = np.array([float(mean)])
        self.rank_deficiency = 0 if precision > 0 else 1
        self._pattern = SparsePattern(1, np.array([0]), np.array([0]))

    @classmethod
    def from_term(cls, label, covariate, args):
        # build_component fills constr/diagonal/scale_model with their (inactive) defaults
        bad = [k for k, v in args.items() if k not in _ALLOWED and v is not None and v is not False and not (k == "diagonal" and v == 0)]
        bad += [k for k in ("constr", "scale_model") if args.get(k)]
        if bad:
            raise ModelError(f'f({label}, model="linear"): argument(s) {", ".join(sorted(set(bad)))} are not used by this model')
        if covariate is None:
            raise ModelError(f'f({label}, model="linear"): needs a covariate')
        x = np.asarray(covariate, dtype=float).ravel()
        mean = args.get("mean_linear")
        prec = args.get("prec_linear")
        model = cls(
            label,
            DEFAULT_MEAN_LINEAR if mean is None else float(mean),
            DEFAULT_PREC_LINEAR if prec is None else float(prec),
        )
        return model, np.zeros(x.size, dtype=np.int64), np.array([label], dtype=object)

    def pattern(self):
        return self._pattern

    def precision_values(self, theta):
        return jnp.full((1,), self.prior_precision, dtype=jnp.float64)

    def log_normaliser(self, theta):
        if self.prior_precision <= 0:
            return None
        return jnp.asarray(0.5 * np.log(self.prior_precision) + LOG_NORMC_GAUSSIAN)

    def rinla_log_normaliser(self, theta):
        """−½ log 2π + ½ log κ − ½ κ μ² (0 for κ = 0), as R-INLA's ``extra()``."""
        k = self.prior_precision
        if k <= 0:
            return jnp.asarray(0.0)
        return jnp.asarray(LOG_NORMC_GAUSSIAN + 0.5 * np.log(k) - 0.5 * k * float(self.mean[0]) ** 2)
