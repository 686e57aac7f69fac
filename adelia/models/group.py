"""``group=`` and ``replicate=``: Kronecker expansions of a latent model.

With ``group`` (``control_group = {"model": ...}``) R-INLA's latent vector of a term is
(x_group1, ..., x_groupG), each block one copy of the model (N nodes), and

    Q = Q_group(θ_g) ⊗ Q(θ)          (``Qfunc_group``: Q[(a,i),(b,j)] = Q_g[a,b] · Q[i,j]);

``replicate`` stacks nrep independent copies sharing θ: I_nrep ⊗ Q. Node order (R-INLA's):
node fastest, then group, then replicate. ``diagonal`` is added once to the expanded matrix;
constraints are repeated on every group block and replicate.

Group models (``control_group$model``, R-INLA's ``inla.models()$group``):

==============  ===================================================  ==============================
model           Q_group                                              θ_g (default prior, initial)
==============  ===================================================  ==============================
exchangeable    inverse of (1−ρ)I + ρ11ᵀ, ρ = (e^θ−1)/(e^θ+G−1)       normal(0, 0.2), 1
exchangeablepos the same with ρ = logistic(θ)                        pc.cor0(0.5, 0.5), 1
ar1             AR(1) correlation precision (unit variance), cyclic   normal(0, 0.15), 2
ar              AR(p) with marginal precision (``order=p``)           see :mod:`.ar` (precision fixed)
rw1, rw2        τ_g × rw structure on 1..G (scaled by default)        loggamma(1, 5e-05), 0 fixed
besag           τ_g × besag structure of ``graph`` (scaled)           loggamma(1, 5e-05), 0 fixed
iid             τ_g I                                                 loggamma(1, 5e-05), 0 fixed
==============  ===================================================  ==============================

Row names: "Group rho_intern for <label>" / "GroupRho for <label>" (exchangeable, ar1),
"Group prec_intern for <label>" / "GroupPrec for <label>" (rw1, rw2, besag, iid),
"Group Log precision for" / "Group Intern PACF<k> for" (ar).

Normalising constants: with r = rank deficiency of Q (N nodes) and r_g of Q_group (G nodes),
log|Q_g ⊗ Q|* = (N − r) log|Q_g|* + (G − r_g) log|Q|*, so
``log_normaliser`` = nrep [(N − r) ½log|Q_g|* + (G − r_g) · inner.log_normaliser], and
``rinla_log_normaliser`` is R-INLA's ``extra()`` value (``_SET_GROUP_RHO``): the same with
R-INLA's rank deficiencies and without the structure constants (for rw1/rw2/besag groups R-INLA
counts r_g = 1, 2, 1, also when cyclic).

Example:
    >>> import numpy as np
    >>> from adelia.models.iid import IIDModel
    >>> inner, _, _ = IIDModel.from_term("i", np.array([1.0, 2.0]), {})
    >>> m = GroupedModel(inner, make_group_model({"model": "ar1"}, 3, "i"), ngroup=3)
    >>> m.n, [h.name for h in m.hyperparameters]
    (6, ['Precision for i', 'GroupRho for i'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..engine.pattern import SparsePattern
from ..errors import ModelError, unknown_choice
from . import registry
from .ar import AR_SPECS, ARModel
from .base import LatentModel, LinearConstraints
from .constraints import repeat_constraints
from .generic import half_log_pseudo_determinant
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_exchangeable_rho, to_probability, to_rho
from .rw import crw_scale_factor, cyclic_rw_structure, rw_structure
from .scaling import null_space

__all__ = ["GroupedModel", "GroupModel", "make_group_model", "GROUP_MODELS"]

GROUP_MODELS = ("exchangeable", "exchangeablepos", "ar1", "ar", "rw1", "rw2", "besag", "iid")

_CONTROL_KEYS = {"model", "order", "cyclic", "graph", "scale_model", "adjust_for_con_comp", "hyper",
                 "initial", "fixed", "prior", "param"}


def _rho_spec(prior, param, initial, to_user):
    return HyperSpec("theta", "rho", "logit correlation", "Group rho_intern for {label}", "GroupRho for {label}",
                     prior, param, initial, False, to_user)


def _prec_spec():
    return HyperSpec("theta", "prec", "log precision", "Group prec_intern for {label}", "GroupPrec for {label}",
                     "loggamma", (1.0, 0.00005), 0.0, True)


def _full_entries(pattern: SparsePattern):
    """Both triangles of a lower-triangular pattern: (rows, cols, position in values)."""
    off = pattern.rows != pattern.cols
    rows = np.concatenate([pattern.rows, pattern.cols[off]])
    cols = np.concatenate([pattern.cols, pattern.rows[off]])
    pos = np.concatenate([np.arange(pattern.nnz), np.flatnonzero(off)])
    return rows, cols, pos


class GroupModel:
    """The between-group precision Q_group(θ_g) on G nodes (host pattern, jnp values).

    Attributes:
        name, ngroup, hyperparameters, rank_deficiency (mathematical), rinla_rankdef (R-INLA's
        ``grankdef``), structure_log_det_constant (θ-free part of ½ log|Q_g|*).
    """

    name: str
    structure_log_det_constant: float = 0.0

    def __init__(self, ngroup: int, hyperparameters, pattern: SparsePattern, rank_deficiency: int = 0, rinla_rankdef: float = 0.0):
        self.ngroup = int(ngroup)
        self.hyperparameters = tuple(hyperparameters)
        self._pattern = pattern
        self.rank_deficiency = int(rank_deficiency)
        self.rinla_rankdef = float(rinla_rankdef)

    @property
    def n_theta(self) -> int:
        return len(self.hyperparameters)

    def pattern(self) -> SparsePattern:
        return self._pattern

    def values(self, theta):  # pragma: no cover - abstract
        raise NotImplementedError

    def half_log_pdet(self, theta):
        """½ log|Q_g(θ)|* (full value)."""
        raise NotImplementedError  # pragma: no cover

    def rinla_half_log_pdet(self, theta):
        """What R-INLA's ``_SET_GROUP_RHO`` uses per unit of (N − r)."""
        return self.half_log_pdet(theta)

    def dense(self, theta) -> jnp.ndarray:
        return self._pattern.to_dense_jax(self.values(jnp.asarray(theta, dtype=jnp.float64)))


class _Exchangeable(GroupModel):
    name = "exchangeable"

    def __init__(self, ngroup, hyper, positive: bool):
        G = ngroup
        i, j = np.tril_indices(G)
        super().__init__(G, hyper, SparsePattern.from_entries(G, i, j))
        self.positive = positive
        self._is_diag = (self._pattern.rows == self._pattern.cols).astype(float)

    def _logs(self, theta):
        """(log(1−ρ), log(1+(G−1)ρ), ρ) stably."""
        G = self.ngroup
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        if self.positive:
            rho = 1.0 / (1.0 + jnp.exp(-t))
            log1m = -jnp.logaddexp(0.0, t)
            log1p = jnp.log1p((G - 1.0) * rho)
        else:
            lse = jnp.logaddexp(t, jnp.log(G - 1.0))  # log(e^θ + G − 1)
            rho = (jnp.exp(t) - 1.0) / jnp.exp(lse)
            log1m = np.log(G) - lse
            log1p = np.log(G) + t - lse
        return log1m, log1p, rho

    def values(self, theta):
        G = self.ngroup
        log1m, log1p, rho = self._logs(theta)
        denom = jnp.exp(log1m + log1p)  # (1−ρ)(1+(G−1)ρ)
        d = (1.0 + (G - 2.0) * rho) / denom
        o = -rho / denom
        isd = jnp.asarray(self._is_diag)
        return d * isd + o * (1.0 - isd)

    def half_log_pdet(self, theta):
        log1m, log1p, _ = self._logs(theta)
        return -0.5 * (log1p + (self.ngroup - 1.0) * log1m)


class _AR1Group(GroupModel):
    name = "ar1"

    def __init__(self, ngroup, hyper, cyclic: bool):
        G = ngroup
        if G < 2 or (cyclic and G < 3):
            raise ModelError(f"control_group model 'ar1' needs at least {3 if cyclic else 2} groups, got {G}")
        i = np.arange(G)
        rows = np.concatenate([i, i[1:]] + ([np.array([G - 1])] if cyclic else []))
        cols = np.concatenate([i, i[:-1]] + ([np.array([0])] if cyclic else []))
        super().__init__(G, hyper, SparsePattern.from_entries(G, rows, cols))
        p = self._pattern
        isd = p.rows == p.cols
        end = isd & ((p.rows == 0) | (p.rows == G - 1)) & (not cyclic)
        self._inner, self._end, self._off = (isd & ~end).astype(float), end.astype(float), (~isd).astype(float)
        self.cyclic = cyclic

    def values(self, theta):
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        rho = jnp.tanh(0.5 * t)
        c = 1.0 / (1.0 - rho**2)
        return c * ((1.0 + rho**2) * jnp.asarray(self._inner) + jnp.asarray(self._end) - rho * jnp.asarray(self._off))

    def half_log_pdet(self, theta):
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        rho = jnp.tanh(0.5 * t)
        G = self.ngroup
        if self.cyclic:
            j = np.arange(G)
            return -0.5 * G * jnp.log1p(-(rho**2)) + 0.5 * jnp.sum(
                jnp.log1p(rho**2 - 2.0 * rho * jnp.asarray(np.cos(2.0 * np.pi * j / G))))
        return -0.5 * (G - 1.0) * jnp.log1p(-(rho**2))


class _StructureGroup(GroupModel):
    """τ_g R_g for a fixed structure (rw1, rw2, besag, iid)."""

    def __init__(self, name, ngroup, hyper, R, rank_deficiency, rinla_rankdef, null_basis=None):
        R = sp.csc_matrix(R)
        pat = SparsePattern.from_scipy(R)
        super().__init__(ngroup, hyper, pat, rank_deficiency, rinla_rankdef)
        self.name = name
        self._R_values = pat.values_from_scipy(R)
        self.structure_log_det_constant = half_log_pseudo_determinant(R, null_basis if rank_deficiency else None)

    def values(self, theta):
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        return jnp.exp(t) * jnp.asarray(self._R_values)

    def half_log_pdet(self, theta):
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        return 0.5 * (self.ngroup - self.rank_deficiency) * t + self.structure_log_det_constant

    def rinla_half_log_pdet(self, theta):
        t = jnp.asarray(theta, dtype=jnp.float64)[0]
        return 0.5 * (self.ngroup - self.rinla_rankdef) * t


class _ARGroup(GroupModel):
    name = "ar"

    def __init__(self, ngroup, hyper, order):
        self.ar = ARModel("group", ngroup, order, hyper)
        super().__init__(ngroup, hyper, self.ar.pattern())

    def values(self, theta):
        return self.ar.precision_values(theta)

    def half_log_pdet(self, theta):
        return self.ar._half_logdet(theta, self.ngroup - self.ar.order)


def make_group_model(control_group: Mapping[str, Any] | None, ngroup: int, label: str) -> GroupModel:
    """The group model of ``control_group`` (R-INLA's ``control.group``, Python spelling) for
    ``ngroup`` groups. ModelError for an unknown model (listing the valid ones) or key."""
    cg = {str(k).replace(".", "_"): v for k, v in dict(control_group or {}).items()}
    for key in cg:
        if key not in _CONTROL_KEYS:
            raise ModelError(unknown_choice(f"key of control_group in f({label}, ...)", key, _CONTROL_KEYS))
    name = str(cg.get("model") or "exchangeable").lower()
    if name not in GROUP_MODELS:
        raise ModelError(unknown_choice(f"control_group model in f({label}, ...)", name, GROUP_MODELS))
    G = int(ngroup)
    if G < 2:
        raise ModelError(f"f({label}, ...): group models need ngroup >= 2, got {G}")
    cyclic = bool(cg.get("cyclic") or False)
    if cyclic and name not in ("ar1", "rw1", "rw2"):
        raise ModelError(f"f({label}, ...): control_group cyclic=TRUE applies only to models ar1, rw1 and rw2")
    scale = True if cg.get("scale_model") is None else bool(cg["scale_model"])  # R-INLA default TRUE
    hyper_args = dict(obsolete_hyper_args(cg))
    where = f"control_group of f({label}, ...)"

    def hyp(specs):
        return build_hyperparameters(specs, label, cg.get("hyper"), where=where, **hyper_args)

    if name in ("exchangeable", "exchangeablepos"):
        pos = name == "exchangeablepos"
        spec = _rho_spec("pc.cor0", (0.5, 0.5), 1.0, to_probability) if pos else _rho_spec(
            "normal", (0.0, 0.2), 1.0, to_exchangeable_rho(G))
        gm = _Exchangeable(G, hyp([spec]), positive=pos)
        gm.name = name
        return gm
    if name == "ar1":
        return _AR1Group(G, hyp([_rho_spec("normal", (0.0, 0.15), 2.0, to_rho)]), cyclic)
    if name == "ar":
        order = cg.get("order")
        if order is None or int(order) < 1:
            raise ModelError(f"f({label}, ...): control_group model 'ar' needs order= (an integer >= 1)")
        specs = [HyperSpec(s.key, s.short_name, s.long_name, "Group " + s.internal_name, "Group " + s.name,
                           s.prior, s.param, s.initial, s.fixed, s.to_user) for s in AR_SPECS]
        specs[0] = HyperSpec("theta1", "prec", "log precision", "Group Log precision for {label}",
                             "Group Precision for {label}", "pc.prec", (3.0, 0.01), 0.0, True)
        specs[1] = HyperSpec("theta2", "pacf1", "pacf1", "Group Intern PACF1 for {label}", "Group PACF1 for {label}",
                             "pc.cor0", (0.5, 0.5), 2.0, False, to_rho)
        return _ARGroup(G, hyp(specs)[: int(order) + 1], int(order))
    if name == "iid":
        return _StructureGroup("iid", G, hyp([_prec_spec()]), sp.identity(G, format="csc"), 0, 0.0)
    if name in ("rw1", "rw2"):
        order = 1 if name == "rw1" else 2
        if cyclic:
            if scale and cg.get("scale_model") is not None:
                raise ModelError(f"f({label}, ...): Group: cannot scale.model with option cyclic=TRUE")
            if scale:
                raise ModelError(
                    f"f({label}, ...): Group: cannot scale.model with option cyclic=TRUE "
                    "(R-INLA's control.group default is scale_model=TRUE; set scale_model=False)"
                )
            R = cyclic_rw_structure(G, order)
            null = np.full((G, 1), 1.0 / np.sqrt(G))
            rank = 1
        else:
            pos = np.arange(G, dtype=float)
            R = rw_structure(pos, order)
            if scale:
                R = crw_scale_factor(pos, order) * R
            cols = [np.ones(G)] + ([pos - pos.mean()] if order == 2 else [])
            null, _ = np.linalg.qr(np.column_stack(cols))
            rank = order
        return _StructureGroup(name, G, hyp([_prec_spec()]), R, rank, float(order), null)
    # besag: the structure of the graph model at log precision 0, from its own module
    graph = cg.get("graph")
    if graph is None:
        raise ModelError(f"f({label}, ...): control_group model 'besag' needs graph=")
    besag = registry.model_class("besag")
    bm, _, _ = besag.from_term(
        label, np.arange(1.0, G + 1.0),
        {"graph": graph, "scale_model": scale, "adjust_for_con_comp": bool(cg.get("adjust_for_con_comp", True)),
         "constr": False, "diagonal": 0.0},
    )
    if bm.n != G:
        raise ModelError(f"f({label}, ...): the control_group graph has {bm.n} nodes but ngroup={G}")
    R = np.asarray(bm.precision_dense(np.zeros(bm.n_theta)))
    null = null_space(R)
    return _StructureGroup("besag", G, hyp([_prec_spec()]), sp.csc_matrix(R), null.shape[1], 1.0, null)


class GroupedModel(LatentModel):
    """``Q = I_nrep ⊗ (Q_group ⊗ Q_inner) + d·I`` for a model expanded by group and/or
    replicate (see module doc). θ = (θ_inner, θ_group)."""

    def __init__(self, inner: LatentModel, group: GroupModel | None = None, *, ngroup: int = 1, nrep: int = 1, diagonal: float = 0.0):
        if group is None and ngroup != 1:
            raise ValueError("ngroup > 1 needs a group model")
        if group is not None and group.ngroup != ngroup:
            raise ValueError("group model size does not match ngroup")
        self.inner, self.group = inner, group
        self.ngroup, self.nrep = int(ngroup), int(nrep)
        self.model_name = inner.model_name
        self.label = inner.label
        N = inner.n
        self.n = N * self.ngroup * self.nrep
        self.hyperparameters = tuple(inner.hyperparameters) + (tuple(group.hyperparameters) if group else ())
        self.diagonal = float(diagonal)
        # Time blocks for the BTA backend: with a group model that couples only neighbouring
        # groups (ar1, rw1, iid) and no replicates, group g is block g (R-INLA's layout is
        # node + N·(g − 1)), so Q is block tridiagonal by construction.
        if self.nrep == 1 and self.ngroup > 1 and group is not None and group.name in ("ar1", "rw1", "iid"):
            self.n_blocks, self.block_size = self.ngroup, N
        r, rg = inner.rank_deficiency, (group.rank_deficiency if group else 0)
        self.rank_deficiency = self.n - self.nrep * (self.ngroup - rg) * (N - r)
        self.rinla_rankdef = float(getattr(inner, "rinla_rankdef", r)) * self.ngroup * self.nrep
        self._build_pattern()
        const_g = group.structure_log_det_constant if group else 0.0
        self.structure_log_det_constant = self.nrep * (
            (N - r) * const_g + (self.ngroup - rg) * float(getattr(inner, "structure_log_det_constant", 0.0)))

    # -- pattern ------------------------------------------------------------------------------------
    def _build_pattern(self):
        N, G = self.inner.n, self.ngroup
        pin = self.inner.pattern()
        if self.group is None:
            rows1, cols1 = pin.rows, pin.cols
            self._gsel = None
            self._isel = None
        else:
            gr, gc, gp = _full_entries(self.group.pattern())
            ir, ic, ip = _full_entries(pin)
            R = (gr[:, None] * N + ir[None, :]).ravel()
            C = (gc[:, None] * N + ic[None, :]).ravel()
            gsel = np.repeat(gp, ir.size)
            isel = np.tile(ip, gr.size)
            keep = R >= C
            R, C, gsel, isel = R[keep], C[keep], gsel[keep], isel[keep]
            order = np.argsort(C * (N * G) + R, kind="stable")
            rows1, cols1 = R[order], C[order]
            self._gsel, self._isel = gsel[order], isel[order]
        NG = N * G
        rows = np.concatenate([rows1 + k * NG for k in range(self.nrep)])
        cols = np.concatenate([cols1 + k * NG for k in range(self.nrep)])
        self._pattern = SparsePattern(self.n, rows, cols)
        self._nnz_block = rows1.size
        self._diag_add = np.zeros(self._pattern.nnz)
        self._diag_add[self._pattern.diag_index] = self.diagonal

    def pattern(self) -> SparsePattern:
        return self._pattern

    def _split(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        k = self.inner.n_theta
        return theta[:k], theta[k:]

    def precision_values(self, theta):
        ti, tg = self._split(theta)
        vi = self.inner.precision_values(ti)
        if self.group is not None:
            vg = self.group.values(tg)
            block = vg[jnp.asarray(self._gsel)] * vi[jnp.asarray(self._isel)]
        else:
            block = vi
        vals = jnp.tile(block, self.nrep) if self.nrep > 1 else block
        return vals + jnp.asarray(self._diag_add)

    # -- normalising constants ------------------------------------------------------------------------
    def log_normaliser(self, theta):
        ti, tg = self._split(theta)
        inner = self.inner.log_normaliser(ti)
        if inner is None:
            return None
        if self.group is None:
            return self.nrep * inner
        N, r = self.inner.n, self.inner.rank_deficiency
        return self.nrep * ((N - r) * self.group.half_log_pdet(tg) + (self.ngroup - self.group.rank_deficiency) * inner)

    def rinla_log_normaliser(self, theta):
        """R-INLA's ``extra()`` value for the expanded term (priors excluded)."""
        ti, tg = self._split(theta)
        f = getattr(self.inner, "rinla_log_normaliser", None)
        if f is not None:
            inner = f(ti)
        else:
            ln = self.inner.log_normaliser(ti)
            if ln is None:
                return None
            inner = ln - float(getattr(self.inner, "structure_log_det_constant", 0.0))
        if self.group is None:
            return self.nrep * inner
        N = self.inner.n
        rd = float(getattr(self.inner, "rinla_rankdef", self.inner.rank_deficiency))
        return self.nrep * ((N - rd) * self.group.rinla_half_log_pdet(tg) + (self.ngroup - self.group.rinla_rankdef) * inner)

    def constraints(self) -> LinearConstraints | None:
        return repeat_constraints(self.inner.constraints(), self.inner.n, self.ngroup * self.nrep)
