"""A separable space-time SPDE field on one space-time index (R-INLA's
``f(s, model=spde, group=s.group, control.group=list(model="ar1"))`` with the group folded
into the index).

    Q = Q_group(θ_g) ⊗ Q_spde(θ_s)          (Cameletti, Lindgren, Simpson & Rue 2013)

The latent vector is R-INLA's group layout, x[node + n_s·(t − 1)] (1-based, node fastest),
so the field is addressed by a single covariate ``st = node + n_s·(t − 1)`` — the same
convention as :func:`~adelia.spde.spacetime_demf` and the columns of
``make_A(mesh, loc, group=time, n_group=n_times)``. That one index is what ``copy`` terms
need (``f(st2, copy="st1")``: the copy's values are looked up among the source's values).
The hyperparameters, their names and priors are exactly those of the ``group=`` form
("Range for st", "Stdev for st", "GroupRho for st"); with an ar1/rw1/iid group the model
declares ``n_blocks = n_times``, ``block_size = mesh.n`` (time blocks for the BTA layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models.group import GroupedModel, make_group_model
from .matern import SPDE2, node_index


class SeparableSpaceTime:
    """``Q_group ⊗ Q_spde`` addressed by one space-time index; build with
    :func:`spacetime_separable` and use as ``f(st, model=obj)``.

    Example:
        >>> from adelia.spde import mesh_2d, spde2_pcmatern, spacetime_separable
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> st = spacetime_separable(spde, 4)   # SPDE ⊗ AR1 over 4 time points
        >>> isinstance(st, SeparableSpaceTime), st.n_spde == 4 * mesh.n
        (True, True)
    """

    model_name = "spde2"

    def __init__(self, spde: SPDE2, n_times: int, control_group: Mapping[str, Any]):
        self.spde = spde
        self.n_times = int(n_times)
        self.control_group = dict(control_group)

    @property
    def n_spde(self) -> int:
        """Number of latent nodes, n_s · n_times."""
        return self.spde.n_spde * self.n_times

    def latent_model(self, label: str = "st", args: Mapping[str, Any] | None = None) -> GroupedModel:
        inner = self.spde.latent_model(label, dict(args or {}))
        group = make_group_model(self.control_group, self.n_times, label)
        return GroupedModel(inner, group, ngroup=self.n_times)

    def from_term(self, label: str, covariate, args: dict[str, Any]):
        """``f(covariate, model=obj, **args)``: covariate = 1-based node + n_s·(t − 1) (NaN = not
        used). Returns (model, 0-based index, ids = 1..n_s·n_times)."""
        args = dict(args)
        for key in ("n", "values"):
            v = args.pop(key, None)
            if v is not None:
                size = int(v) if key == "n" else len(np.asarray(v))
                if size != self.n_spde:
                    raise ModelError(f"f({label}, model=spacetime_separable): {key} gives {size} nodes, the model has {self.n_spde}")
        model = self.latent_model(label, args)
        return model, node_index(covariate, self.n_spde, label), np.arange(1, self.n_spde + 1)

    def __repr__(self) -> str:
        return f"SeparableSpaceTime(n_space={self.spde.n_spde}, n_times={self.n_times}, group={self.control_group.get('model')!r})"


def spacetime_separable(spde: SPDE2, n_times: int, control_group: Mapping[str, Any] | None = None) -> SeparableSpaceTime:
    """Separable space-time field ``Q_group ⊗ Q_spde`` on one index node + n_s·(t − 1).

    Args:
        spde: the spatial model (:func:`spde2_pcmatern` or :func:`spde2_matern`).
        n_times: number of time points (groups), at least 2.
        control_group: R-INLA's ``control.group`` (default ``{"model": "ar1"}``: ρ with its
            default prior normal(0, 0.15) on log((1 + ρ)/(1 − ρ))).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, spde2_pcmatern, spacetime_separable
        >>> mesh = mesh_2d(np.random.default_rng(0).random((30, 2)), max_edge=(0.3, 0.6))
        >>> spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
        >>> m = spacetime_separable(spde, 4).latent_model("st")
        >>> (m.n_blocks, m.block_size == mesh.n, [h.name for h in m.hyperparameters])
        (4, True, ['Range for st', 'Stdev for st', 'GroupRho for st'])
    """
    if not isinstance(spde, SPDE2):
        raise ModelError(f"spacetime_separable: spde must be an SPDE model (spde2_pcmatern / spde2_matern), got {type(spde).__name__}")
    if int(n_times) < 2:
        raise ModelError(f"spacetime_separable: need at least 2 time points, got n_times={n_times}")
    return SeparableSpaceTime(spde, int(n_times), control_group or {"model": "ar1"})
