"""The iid model: x_i ~ N(0, 1/(τ s_i)) independently (``f(idx, model="iid")``).

Q = τ diag(s), s the optional ``scale=`` vector (default 1), θ = log τ with R-INLA's default
prior loggamma(1, 5e-05) and initial value 4; ``constr`` defaults to FALSE. R-INLA's
normalising constant adds ½(n − r')·mean(log s) for the scale (``extra()``, F_IID).

Example:
    >>> import numpy as np
    >>> m, idx, ids = IIDModel.from_term("plate", np.array([2.0, 1.0, 2.0]), {})
    >>> idx.tolist(), ids.tolist(), m.hyperparameters[0].name
    ([1, 0, 1], [1.0, 2.0], 'Precision for plate')
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from .build import resolve_index
from .generic import StructureModel, check_model_args
from .registry import register_model

__all__ = ["IIDModel"]


@register_model("iid")
class IIDModel(StructureModel):
    """Independent Gaussian effects with a common precision τ (times optional ``scale``)."""

    model_name = "iid"
    default_constr: ClassVar[bool] = False

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label)
        index, ids = resolve_index(label, covariate, args.get("values"), args.get("n"), model=cls.model_name)
        n = ids.size
        if n < 1:
            raise ModelError(f'f({label}, model="iid"): the model has no nodes (no covariate values, n or values)')
        scale = args.get("scale")
        if scale is None:
            s = np.ones(n)
        else:
            s = np.asarray(scale, dtype=float).ravel()
            if s.size != n or np.any(~np.isfinite(s)) or np.any(s <= 0):
                raise ModelError(f'f({label}, model="iid"): scale must be {n} positive numbers (one per node), got {s.size}')
        cons, rd, hyper = cls._common(cls.model_name, label, args, n, 0)
        model = cls(
            label, sp.diags(s).tocsc(), hyper, rank_deficiency=0, constraints=cons, rinla_rankdef_value=rd,
            diagonal=float(args.get("diagonal") or 0.0), rinla_log_scale=float(np.mean(np.log(s))),
        )
        return model, index, ids
