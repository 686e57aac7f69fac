"""adelia.spde: SPDE geostatistics building blocks (R-INLA's / fmesher's mesh, FEM, projector,
stack and Matérn models).

Typical use, as in R-INLA::

    mesh = adelia.spde.mesh_2d(loc, max_edge=(0.1, 0.3), offset=(0.1, 0.4), cutoff=0.02)
    spde = adelia.spde.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
    A = adelia.spde.make_A(mesh, loc)
    stk = adelia.spde.stack(data={"y": y}, A=[A, 1],
                            effects=[{"s": np.arange(1, mesh.n + 1)}, {"b0": np.ones(n)}], tag="est")
    adelia.inla("y ~ 0 + b0 + f(s, model=spde)", data=adelia.spde.stack_data(stk),
                control_predictor={"A": adelia.spde.stack_A(stk)}, context={"spde": spde})

Space-time: :func:`spacetime_demf` (non-separable DEMF(1,2,1)), :func:`spacetime_separable`
(SPDE ⊗ AR1 on one space-time index) and :func:`coregional` (a linear model of
coregionalisation over p variates, R-INLA's copy/several-likelihood form:
``adelia.inla(**adelia.spde.coregional(mesh, n_times, ys, locs, times, ...))``).
"""

from .coregional import Coregional, coregional
from .fem import fem
from .hull import nonconvex_hull
from .matern import SPDE2, spde2_matern, spde2_pcmatern
from .mesh import Mesh
from .mesh1d import Mesh1D, mesh_1d
from .mesh2d import mesh_2d
from .priors import PCRange, PCSigma
from .projector import locate, make_A, make_index
from .result import spde_result
from .separable import SeparableSpaceTime, spacetime_separable
from .spacetime import DEMF121Model, SpaceTimeDEMF, demf_gammas, spacetime_demf
from .spde2_model import SPDE2Model
from .stack import Stack, StackData, stack, stack_A, stack_data, stack_index, stack_join

__all__ = [
    "Coregional",
    "DEMF121Model",
    "Mesh",
    "Mesh1D",
    "PCRange",
    "PCSigma",
    "SPDE2",
    "SPDE2Model",
    "SeparableSpaceTime",
    "SpaceTimeDEMF",
    "Stack",
    "StackData",
    "coregional",
    "demf_gammas",
    "fem",
    "locate",
    "make_A",
    "make_index",
    "mesh_1d",
    "mesh_2d",
    "nonconvex_hull",
    "spacetime_demf",
    "spacetime_separable",
    "spde2_matern",
    "spde2_pcmatern",
    "spde_result",
    "stack",
    "stack_A",
    "stack_data",
    "stack_index",
    "stack_join",
]
