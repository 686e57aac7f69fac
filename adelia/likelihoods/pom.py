"""The proportional odds model for ordinal responses (R-INLA ``pom``) and its Dirichlet prior.

y_i ∈ {1, …, K}; with cut points α_1 < … < α_{K−1} (α_0 = −∞, α_K = +∞) and a cdf F
(logistic by default, standard normal with ``control_family={"control.pom": {"cdf":
"probit"}}``):

    P(y ≤ k | η) = F(α_k − η),   P(y = k | η) = F(α_k − η) − F(α_{k−1} − η)

(``loglikelihood_pom``; the differences are evaluated in log space so that no class
probability underflows). K is the largest observed response; empty classes are an error,
as in R-INLA. The linear predictor has no intercept of its own: the cut points carry it.

Hyperparameters (R-INLA's internal scale, identity map to the user scale, rows named
"theta1 for POM", …): θ_1 = α_1 and θ_k = log(α_k − α_{k−1}), k = 2, …, K − 1. Their
default initial values (R-INLA's NA) are computed from K as ``inla-parse.c`` does:
θ_1 = logit(1/(K + 1)), θ_k = log(logit(k/(K + 1)) − logit((k − 1)/(K + 1))). R-INLA has
ten slots (theta1..theta10, so K ≤ 11); the family builds all ten and keeps the first
K − 1 once it has seen the data (:meth:`PomLikelihood.validate`).

Prior (``priorfunc_dirichlet``): the class probabilities at η = 0,
v_k = F(α_k) − F(α_{k−1}), are Dirichlet(a, …, a) with a = ``param`` (default 3), carried
by theta1 as a joint density of all K − 1 θ's (theta2.. have prior "none"):

    log π(θ) = log Γ(K a) − K log Γ(a) + (a − 1) Σ_k log v_k + log F′(α_1)
               + Σ_{k≥2} [log F′(α_k) + θ_k].

As R-INLA's comment says, this "Jacobian" maps K − 1 free θ's to K constrained v's and is
only approximately the density of θ; adelia reproduces R-INLA's value. The θ's are either
all fixed or all free (R-INLA's rule).

Observation data: ``weights``.

Example:
    >>> import numpy as np
    >>> lik = PomLikelihood()
    >>> lik.validate(np.array([1.0, 2.0, 3.0, 3.0]), {})
    >>> lik.n_classes, [h.name for h in lik.hyperparameters]
    (3, ['theta1 for POM', 'theta2 for POM'])
"""

from __future__ import annotations

import math
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, log_ndtr, ndtr

from ..errors import ControlError, DataError, PriorError, unknown_choice
from ..models.base import Prior
from ..models.registry import register_prior
from ._family import Family, HyperSpec, _as_dict
from .links import log1mexp

#: R-INLA's ``POM_MAXTHETA``: at most 10 cut points, K ≤ 11 classes.
POM_MAXTHETA = 10
POM_CDFS = ("logit", "probit")
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# cut points and class probabilities
# --------------------------------------------------------------------------------------------
def cutpoints(theta: jax.Array) -> jax.Array:
    """α from θ: α_1 = θ_1, α_k = α_{k−1} + exp(θ_k); shape (K − 1,)."""
    theta = jnp.asarray(theta, dtype=jnp.float64)
    steps = jnp.concatenate([theta[:1], jnp.exp(theta[1:])])
    return jnp.cumsum(steps)


def log_cdf(x, cdf: str):
    """log F(x) for the logistic or standard normal cdf."""
    return -jax.nn.softplus(-x) if cdf == "logit" else log_ndtr(x)


def log_pdf(x, cdf: str):
    """log F′(x)."""
    if cdf == "logit":
        return -jax.nn.softplus(-x) - jax.nn.softplus(x)
    return -0.5 * x * x - _LOG_SQRT_2PI


def log_cdf_diff(a, b, cdf: str):
    """log(F(b) − F(a)) for a < b, accurate in both tails (F symmetric, F(−x) = 1 − F(x))."""
    if cdf == "logit":
        # σ(b) − σ(a) = σ(b) σ(−a) (1 − e^{a−b})
        return log_cdf(b, cdf) + log_cdf(-a, cdf) + log1mexp(b - a)
    left = b <= 0.0  # both in the lower tail: log Φ(b) + log(1 − Φ(a)/Φ(b))
    right = a >= 0.0  # both in the upper tail: Φ(−a) − Φ(−b)
    lb, la = log_ndtr(b), log_ndtr(a)
    lma, lmb = log_ndtr(-a), log_ndtr(-b)
    gap_left = jnp.where(left, lb - la, 1.0)
    gap_right = jnp.where(right, lma - lmb, 1.0)
    middle = jnp.log1p(-ndtr(jnp.where(left | right, -1.0, a)) - ndtr(jnp.where(left | right, -1.0, -b)))
    return jnp.where(left, lb + log1mexp(gap_left), jnp.where(right, lma + log1mexp(gap_right), middle))


def log_class_probabilities(theta, eta, y, cdf: str = "logit"):
    """log P(y_i | η_i) for classes y_i ∈ 1..K (K − 1 = len(θ)), elementwise."""
    alpha = cutpoints(theta)
    K = alpha.shape[0] + 1
    k = jnp.asarray(y).astype(jnp.int32)
    b = alpha[jnp.clip(k - 1, 0, K - 2)] - eta  # upper cut α_y − η
    a = alpha[jnp.clip(k - 2, 0, K - 2)] - eta  # lower cut α_{y−1} − η
    first, last = k <= 1, k >= K
    middle = ~(first | last)
    # the branches not taken see harmless finite arguments, so values and gradients stay finite
    a_mid = jnp.where(middle, a, -1.0)
    b_mid = jnp.where(middle, b, 1.0)
    mid = log_cdf_diff(a_mid, b_mid, cdf)
    return jnp.where(first, log_cdf(b, cdf), jnp.where(last, log_cdf(-a, cdf), mid))


# --------------------------------------------------------------------------------------------
# the Dirichlet prior on the implied class probabilities
# --------------------------------------------------------------------------------------------
@register_prior("dirichlet")
class DirichletPrior(Prior):
    """R-INLA's ``priorfunc_dirichlet`` for the cut points of ``pom`` (module docstring).

    ``param`` = (a,), the Dirichlet concentration (R-INLA's default without a param: 0.5;
    ``pom``'s default: 3). The number of classes and the cdf come from the data and the
    family (:meth:`bind`); an unbound prior cannot be evaluated.
    """

    name = "dirichlet"

    def __init__(self, a: float = 0.5, n_classes: int | None = None, cdf: str = "logit"):
        a = float(a)
        if not (np.isfinite(a) and a > 0):
            raise PriorError(f'prior "dirichlet": the concentration a must be positive, got {a}')
        if cdf not in POM_CDFS:
            raise PriorError(unknown_choice('cdf of prior "dirichlet"', cdf, POM_CDFS))
        self.param = (a,)
        self.n_classes = None if n_classes is None else int(n_classes)
        self.cdf = cdf

    @classmethod
    def from_param(cls, param, **context) -> "DirichletPrior":
        vals = [] if param is None else [float(v) for v in np.atleast_1d(np.asarray(param, dtype=float))]
        if len(vals) > 1:
            raise PriorError(f'prior "dirichlet" needs 1 parameter (the concentration a), got {len(vals)}: {vals}')
        return cls(*(vals or [0.5]), **context)

    def bind(self, n_classes: int, cdf: str) -> "DirichletPrior":
        """This prior for ``n_classes`` classes and the family's ``cdf``."""
        return DirichletPrior(self.param[0], n_classes=n_classes, cdf=cdf)

    @property
    def dimension(self) -> int:
        if self.n_classes is None:
            raise PriorError('prior "dirichlet" is the prior of the pom cut points and needs the number of classes; '
                             'use it as theta1 of family "pom"')
        return self.n_classes - 1

    def log_density(self, theta):
        d = self.dimension
        theta = jnp.asarray(theta, dtype=jnp.float64).reshape(d)
        a, K, cdf = self.param[0], d + 1, self.cdf
        alpha = cutpoints(theta)
        # log v_k: v_1 = F(α_1), v_k = F(α_k) − F(α_{k−1}), v_K = 1 − F(α_{K−1})
        log_v = jnp.concatenate(
            [log_cdf(alpha[:1], cdf), log_cdf_diff(alpha[:-1], alpha[1:], cdf), log_cdf(-alpha[-1:], cdf)]
        )
        ld = math.lgamma(K * a) - K * math.lgamma(a) + (a - 1.0) * jnp.sum(log_v)
        return ld + jnp.sum(log_pdf(alpha, cdf)) + jnp.sum(theta[1:])

    def __repr__(self) -> str:
        return f"dirichlet({self.param[0]:g})"


# --------------------------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------------------------
def _spec(k: int) -> HyperSpec:
    return HyperSpec(
        key=f"theta{k}",
        theta_key=f"theta{k}",
        internal_name=f"theta{k} for POM",
        name=f"theta{k} for POM",
        to_user=lambda x: x,
        prior="dirichlet" if k == 1 else "none",
        param=(3.0,) if k == 1 else (),
        initial=math.nan,  # R-INLA's NA: computed from the number of classes
    )


def default_initial(n_classes: int) -> np.ndarray:
    """R-INLA's initial θ for K classes (``inla-parse.c``, case L_POM)."""
    K = int(n_classes)
    q = lambda p: math.log(p / (1.0 - p))  # noqa: E731
    out = [q(1.0 / (K + 1.0))]
    out += [math.log(q(k / (K + 1.0)) - q((k - 1.0) / (K + 1.0))) for k in range(2, K)]
    return np.asarray(out)


class PomLikelihood(Family):
    family = "pom"
    links = ("identity",)
    hyper_specs = tuple(_spec(k) for k in range(1, POM_MAXTHETA + 1))
    extra_control_keys = ("control_pom",)

    def __init__(self, control_family=None):
        super().__init__(control_family)
        pom = _as_dict(self.family_control.get("control_pom"), "control_family['control.pom']")
        for key in pom:
            if key not in ("cdf", "fast"):
                raise ControlError(unknown_choice("control_family['control.pom'] key", key, ("cdf", "fast")))
        self.cdf = str(pom.get("cdf", "logit")).lower()
        if self.cdf not in POM_CDFS:
            raise ControlError(unknown_choice("control_family['control.pom']['cdf']", pom.get("cdf"), POM_CDFS))
        self.n_classes: int | None = None
        self._all_hyperparameters = self.hyperparameters
        first = self.hyperparameters[0].prior
        if not isinstance(first, DirichletPrior):
            raise ControlError(f'family "pom": theta1 must have prior "dirichlet" (R-INLA\'s only prior for the cut points), got "{first.name}"')
        for h in self.hyperparameters[1:]:
            if h.prior.name != "none":
                raise ControlError(f'family "pom": {h.key} must have prior "none" (the Dirichlet prior of theta1 covers all cut points), got "{h.prior.name}"')

    def validate(self, y, data, rows=None):
        """Check the responses (integers 1..K) and bind the family to K = max(y): the first
        K − 1 hyperparameters, their default initial values, the Dirichlet prior's K.

        Raises:
            DataError: a response that is not a positive integer, fewer than 2 classes, more
                than 11, or an empty class.
        """
        super().validate(y, data, rows)
        yo = np.asarray(y, dtype=float).reshape(-1)
        yo = yo[~np.isnan(yo)]
        if yo.size == 0:
            raise DataError('family "pom": there are no observed responses, so the number of classes is unknown')
        K = int(yo.max())
        if K < 2:
            raise DataError(f'family "pom": the responses are all 1; pom needs K >= 2 classes (y in 1..K, K = max(y))')
        if K - 1 > POM_MAXTHETA:
            raise DataError(f'family "pom": max(y) = {K} classes, but R-INLA\'s pom supports at most {POM_MAXTHETA + 1}')
        counts = np.bincount(yo.astype(np.int64), minlength=K + 1)[1:]
        empty = np.flatnonzero(counts == 0) + 1
        if empty.size:
            raise DataError(
                f'family "pom": class(es) {empty.tolist()} of 1..{K} have no observations; '
                "R-INLA does not allow empty classes (K is max(y)); recode the responses to 1..K without gaps"
            )
        self._bind(K)

    def _bind(self, K: int) -> None:
        init = default_initial(K)
        hypers = []
        for j, h in enumerate(self._all_hyperparameters[: K - 1]):
            initial = init[j] if math.isnan(h.initial) else h.initial
            prior = h.prior.bind(K, self.cdf) if j == 0 else h.prior
            hypers.append(replace(h, initial=float(initial), prior=prior))
        fixed = {h.fixed for h in hypers}
        if len(fixed) > 1:
            raise ControlError('family "pom": the hyperparameters must either be all fixed or all free (R-INLA\'s rule)')
        self.n_classes = K
        self.hyperparameters = tuple(hypers)

    def _log_density(self, y, eta, theta, data):
        if self.n_classes is None:
            raise RuntimeError('family "pom" is not bound to data yet: call validate(y, data) first (it sets K = max(y))')
        return log_class_probabilities(theta[: self.n_classes - 1], eta, y, self.cdf)

    def _check_rows(self, y, data, observed):
        self._require(
            observed & ((y < 1) | (y != np.round(y)) | ~np.isfinite(y)),
            y,
            "y",
            "is not an ordinal class: pom responses are integers 1, 2, ..., K",
        )
