"""Observation families with R-INLA's parametrisations, links, priors and normalising constants.

``make_likelihood(family, control_family)`` builds one family by R-INLA's name; ``FAMILIES``
maps every name to its class. Each family documents its θ (internal scale, default prior,
initial value) and the observation data it reads (``E``, ``Ntrials``, ``scale``,
``weights``, ``event``, ``time2``, ``truncation``).

Example:
    >>> from adelia.likelihoods import make_likelihood
    >>> lik = make_likelihood("binomial", {"link": "probit"})
    >>> lik.link.name
    'probit'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ControlError, ModelError, unknown_choice
from ._family import COMMON_DATA, Family, HyperSpec
from .base import Likelihood, Link, ObservationData
from .beta import BetaLikelihood
from .betabinomial import BetaBinomialLikelihood
from .binomial import BinomialLikelihood
from .cenpoisson import CenPoissonLikelihood
from .exponential import ExponentialLikelihood, ExponentialSurvLikelihood
from .gamma import GammaLikelihood, GammaSurvLikelihood
from .gaussian import GaussianLikelihood
from .links import LINKS, make_link
from .loglogistic import LogLogisticLikelihood, LogLogisticSurvLikelihood
from .lognormal import LogNormalLikelihood, LogNormalSurvLikelihood
from .nbinomial import NBinomial2Likelihood, NBinomialLikelihood
from .poisson import PoissonLikelihood
from .pom import DirichletPrior, PomLikelihood
from .priors import PCAlphaWPrior, PCDofPrior, PCGammaPrior, PCMGammaPrior
from .student_t import StudentTLikelihood
from .surv import InlaSurv, inla_surv
from .weibull import WeibullLikelihood, WeibullSurvLikelihood
from .zeroinflated import (
    ZeroInflatedBinomial0Likelihood,
    ZeroInflatedBinomial1Likelihood,
    ZeroInflatedNBinomial0Likelihood,
    ZeroInflatedNBinomial1Likelihood,
    ZeroInflatedPoisson0Likelihood,
    ZeroInflatedPoisson1Likelihood,
)

FAMILIES: dict[str, type[Family]] = {
    cls.family: cls
    for cls in (
        GaussianLikelihood,
        PoissonLikelihood,
        BinomialLikelihood,
        NBinomialLikelihood,
        GammaLikelihood,
        BetaLikelihood,
        BetaBinomialLikelihood,
        ZeroInflatedPoisson0Likelihood,
        ZeroInflatedPoisson1Likelihood,
        ZeroInflatedNBinomial0Likelihood,
        ZeroInflatedNBinomial1Likelihood,
        StudentTLikelihood,
        LogNormalLikelihood,
        LogNormalSurvLikelihood,
        ExponentialLikelihood,
        ExponentialSurvLikelihood,
        WeibullLikelihood,
        WeibullSurvLikelihood,
        ZeroInflatedBinomial0Likelihood,
        ZeroInflatedBinomial1Likelihood,
        LogLogisticLikelihood,
        LogLogisticSurvLikelihood,
        GammaSurvLikelihood,
        NBinomial2Likelihood,
        CenPoissonLikelihood,
        PomLikelihood,
    )
}
#: R-INLA's other spellings of the same families.
FAMILY_ALIASES: dict[str, str] = {
    "normal": "gaussian",
    "student-t": "t",
    "studentt": "t",
    # R-INLA accepts dots in the survival families' names ("loglogistic.surv")
    "loglogistic.surv": "loglogisticsurv",
    "gamma.surv": "gammasurv",
}

#: Families whose response is an :class:`InlaSurv` (R-INLA's ``survival = TRUE``).
SURVIVAL_FAMILIES = frozenset(name for name, cls in FAMILIES.items() if "event" in cls.data_names)


def family_class(family: str) -> type[Family]:
    """The class of R-INLA family ``family`` (case-insensitive); ModelError lists the valid names."""
    key = str(family).lower()
    key = FAMILY_ALIASES.get(key, key)
    if key not in FAMILIES:
        raise ModelError(unknown_choice("family", family, list(FAMILIES) + list(FAMILY_ALIASES)))
    return FAMILIES[key]


def make_likelihood(family: str, control_family: Mapping[str, Any] | None = None, **obs: Any) -> Family:
    """Build the likelihood of R-INLA family ``family``.

    Args:
        family: R-INLA's family name ("gaussian", "poisson", "nbinomial", "weibullsurv", ...).
        control_family: R-INLA's ``control.family`` (``hyper``, ``link``, ``variant``,
            ``control_link``), R's dotted keys accepted.
        **obs: optional observation data to check at once: ``y`` and the family's data
            (``E``, ``Ntrials``, ``scale``, ``weights``, ``event``, ``time2``,
            ``truncation``). Names the family does not read are an error listing the
            valid ones; with ``y`` given, :meth:`~Family.validate` runs on it.

    Raises:
        ModelError: unknown family; ControlError: bad ``control_family`` or data names;
        PriorError: unknown prior; DataError: values outside the support.

    Example:
        >>> lik = make_likelihood("nbinomial", {"hyper": {"size": {"prior": "loggamma", "param": (1, 1)}}})
        >>> lik.hyperparameters[0].prior
        loggamma(1, 1)
    """
    cls = family_class(family)
    lik = cls(control_family)
    if obs:
        valid = ("y",) + cls.data_names + COMMON_DATA
        for name in obs:
            if name not in valid:
                raise ControlError(unknown_choice(f'observation data for family "{cls.family}"', name, valid))
        if obs.get("y") is not None:
            data = {k: v for k, v in obs.items() if k != "y" and v is not None}
            lik.validate(obs["y"], data)
    return lik


__all__ = [
    "FAMILIES",
    "FAMILY_ALIASES",
    "LINKS",
    "SURVIVAL_FAMILIES",
    "BetaBinomialLikelihood",
    "BetaLikelihood",
    "BinomialLikelihood",
    "CenPoissonLikelihood",
    "DirichletPrior",
    "ExponentialLikelihood",
    "ExponentialSurvLikelihood",
    "Family",
    "GammaLikelihood",
    "GammaSurvLikelihood",
    "GaussianLikelihood",
    "HyperSpec",
    "InlaSurv",
    "Likelihood",
    "Link",
    "LogLogisticLikelihood",
    "LogLogisticSurvLikelihood",
    "LogNormalLikelihood",
    "LogNormalSurvLikelihood",
    "NBinomial2Likelihood",
    "NBinomialLikelihood",
    "ObservationData",
    "PCAlphaWPrior",
    "PCDofPrior",
    "PCGammaPrior",
    "PCMGammaPrior",
    "PoissonLikelihood",
    "PomLikelihood",
    "StudentTLikelihood",
    "WeibullLikelihood",
    "WeibullSurvLikelihood",
    "ZeroInflatedBinomial0Likelihood",
    "ZeroInflatedBinomial1Likelihood",
    "ZeroInflatedNBinomial0Likelihood",
    "ZeroInflatedNBinomial1Likelihood",
    "ZeroInflatedPoisson0Likelihood",
    "ZeroInflatedPoisson1Likelihood",
    "family_class",
    "inla_surv",
    "make_likelihood",
    "make_link",
]
