"""adelia: R-INLA-compatible integrated nested Laplace approximations in Python.

An R-INLA formula goes in, R-INLA-named pandas/xarray summaries come out; underneath, a JAX
engine computes the INLA objective and its exact gradient by reverse-mode AD through
structured sparse kernels.

Example:
    >>> import adelia
    >>> seeds = adelia.datasets.load("Seeds")
    >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n")
    >>> print(res.summary())  # doctest: +SKIP
"""

from . import _config  # noqa: F401  (float64, compilation cache: before anything traces)
from . import errors
from . import datasets
from .api import inla
from .likelihoods.surv import inla_surv
from .likelihoods.coxph import inla_coxph
from .model import Model, compile
from .formula.rgroup import inla_group
from .lincomb import make_lincomb, make_lincombs
from .results import InlaResult

from . import marginals
from . import spde

__version__ = "0.1.0"

__all__ = ["inla", "compile", "Model", "InlaResult", "inla_surv", "inla_coxph", "inla_group", "make_lincomb", "make_lincombs", "marginals", "spde", "datasets", "errors", "__version__"]
