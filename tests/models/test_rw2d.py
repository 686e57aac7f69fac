"""rw2d and matern2d on a regular lattice, against dense constructions from their definitions.

rw2d: the thin-plate energy built from dense difference operators, and R-INLA's element-wise
rule (GMRFLib ``GMRFLib_rw2d``, re-expressed here from its case analysis) on the boundary; null
space, scale.model, node ordering (``inla.lattice2node``), bad input.
matern2d: the stencil against (K^{ν+1}) on a padded lattice restricted to the inner nodes (x = 0
outside), the torus, bad input, and recovery of a simulated truth.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from adelia.errors import ModelError
from adelia.models.matern2d import Matern2DModel
from adelia.models.registry import model_class
from adelia.models.rw2d import RW2DModel


def rw2d(nrow, ncol, **args):
    m, idx, ids = RW2DModel.from_term("node", np.arange(1.0, nrow * ncol + 1), {"nrow": nrow, "ncol": ncol, **args})
    return m, idx, ids


def diff_matrix(m, order, cyclic=False):
    """Dense (m−order) x m difference operator of ``order`` (cyclic: m x m, wrapping)."""
    if cyclic:
        D = np.roll(np.eye(m), 1, axis=1) - np.eye(m)
        return D if order == 1 else D @ D
    D = np.diff(np.eye(m), n=order, axis=0)
    return D


def thin_plate_dense(nrow, ncol, cyclic=False):
    """Σ (Δ_rr x)² + 2 (Δ_rc x)² + (Δ_cc x)² on vec(X) (column-major), from difference operators."""
    Ir, Ic = np.eye(nrow), np.eye(ncol)
    Drr = np.kron(Ic, diff_matrix(nrow, 2, cyclic))
    Dcc = np.kron(diff_matrix(ncol, 2, cyclic), Ir)
    Drc = np.kron(diff_matrix(ncol, 1, cyclic), diff_matrix(nrow, 1, cyclic))
    return Drr.T @ Drr + Dcc.T @ Dcc + 2.0 * Drc.T @ Drc


def gmrflib_rw2d_element(node, nnode, nrow, ncol):
    """R-INLA's element rule for the non-cyclic rw2d (GMRFLib_rw2d, free boundary), τ = 1:
    nodes are column-major (icol = node // nrow)."""
    i, j = node % nrow, node // nrow
    ii, jj = nnode % nrow, nnode // nrow
    dx, dy = abs(i - ii), abs(j - jj)
    if max(dx, dy) > 2 or (max(dx, dy) == 2 and min(dx, dy) >= 1):
        return 0.0
    if max(dx, dy) == 2:
        return 1.0
    if dx == 1 and dy == 1:
        return 2.0
    inner = lambda a, b: 1 < a < nrow - 2 and 1 < b < ncol - 2  # noqa: E731
    if inner(i, j) or inner(ii, jj):
        return 20.0 if (dx == 0 and dy == 0) else -8.0
    if dx == 0 and dy == 0:
        edge = [0, 1, 2, 1, 0]
        it = i if i <= 1 else edge[max(2, i - nrow + 5)]
        jt = j if j <= 1 else edge[max(2, j - ncol + 5)]
        hi, lo = max(it, jt), min(it, jt)
        return {1: 18.0 if lo == 1 else 10.0, 2: 19.0 if lo == 1 else 11.0}.get(hi, 4.0)
    imin, imax, jmin, jmax = min(i, ii), max(i, ii), min(j, jj), max(j, jj)
    on_row_edge = imin == 0 or imax == nrow - 1
    on_col_edge = jmin == 0 or jmax == ncol - 1
    if on_row_edge and on_col_edge:
        return -4.0
    if on_row_edge or on_col_edge:
        return -6.0
    return -8.0


def test_registered():
    assert model_class("rw2d") is RW2DModel
    assert model_class("matern2d") is Matern2DModel


@pytest.mark.parametrize("nrow, ncol", [(4, 4), (5, 7), (8, 6), (10, 10)])
def test_rw2d_is_the_thin_plate_energy_and_rinla_element_rule(nrow, ncol):
    m, _, _ = rw2d(nrow, ncol)
    Q = np.asarray(m.precision_dense([0.0]))
    np.testing.assert_allclose(Q, thin_plate_dense(nrow, ncol), atol=1e-12)
    n = nrow * ncol
    rule = np.array([[gmrflib_rw2d_element(a, b, nrow, ncol) for b in range(n)] for a in range(n)])
    np.testing.assert_array_equal(Q, rule)
    # τ scales it
    np.testing.assert_allclose(np.asarray(m.precision_dense([1.5])), np.exp(1.5) * Q, rtol=1e-14)


def test_rw2d_null_space_rank_and_defaults():
    nrow, ncol = 6, 9
    m, _, _ = rw2d(nrow, ncol)
    Q = np.asarray(m.precision_dense([0.0]))
    ir, ic = np.meshgrid(np.arange(nrow), np.arange(ncol), indexing="ij")
    for v in (np.ones(nrow * ncol), ir.ravel(order="F"), ic.ravel(order="F")):
        np.testing.assert_allclose(Q @ v, 0.0, atol=1e-10)
    assert np.linalg.matrix_rank(Q, tol=1e-8) == nrow * ncol - 3
    assert m.rank_deficiency == 3
    (h,) = m.hyperparameters
    assert (h.internal_name, h.name, h.initial, repr(h.prior)) == \
        ("Log precision for node", "Precision for node", 4.0, "loggamma(1, 5e-05)")
    # ½ log|R|*: the product of the non-zero eigenvalues
    w = np.linalg.eigvalsh(Q)
    assert m.structure_log_det_constant == pytest.approx(0.5 * np.sum(np.log(w[3:])), rel=1e-9)


def test_rw2d_constr_default_via_build_component():
    from adelia.formula.spec import FTerm
    from adelia.models.build import build_component

    comp = build_component(FTerm("node", "rw2d", args={"nrow": 5, "ncol": 4}), np.array([1.0, 20.0, np.nan]))
    np.testing.assert_array_equal(comp.model.constraints().C, np.ones((1, 20)))
    assert comp.model.diagonal == 1e-4
    assert comp.model.rinla_rankdef == 3.0
    assert comp.index.tolist() == [0, 19, -1]


def test_rw2d_node_ordering_is_inla_lattice2node():
    """node = irow + (icol − 1) nrow: on a 4 x 6 lattice the diagonal at (irow=3, icol=1) is 10
    (next to the row edge) and at (irow=1, icol=3) 11 (two columns in)."""
    m, _, _ = rw2d(4, 6)
    Q = np.asarray(m.precision_dense([0.0]))
    node = lambda irow, icol: irow + (icol - 1) * 4 - 1  # noqa: E731  (0-based)
    assert Q[node(3, 1), node(3, 1)] == 10.0
    assert Q[node(1, 3), node(1, 3)] == 11.0


def test_rw2d_cyclic_and_bvalue():
    nrow, ncol = 5, 7
    m, _, _ = rw2d(nrow, ncol, cyclic=True)
    Q = np.asarray(m.precision_dense([0.0]))
    np.testing.assert_allclose(Q, thin_plate_dense(nrow, ncol, cyclic=True), atol=1e-12)
    assert m.rank_deficiency == 1 and np.linalg.matrix_rank(Q, tol=1e-8) == nrow * ncol - 1
    # every row is the 13-point stencil (wrapped)
    assert np.all(np.diag(Q) == 20.0) and np.allclose(Q.sum(1), 0.0)
    m0, _, _ = rw2d(nrow, ncol, bvalue=0)
    Q0 = np.asarray(m0.precision_dense([0.0]))
    # x = 0 outside: the free-boundary energy on a lattice padded by two, restricted to the inside
    big = thin_plate_dense(nrow + 4, ncol + 4)
    inner = [r + 2 + (nrow + 4) * (c + 2) for c in range(ncol) for r in range(nrow)]
    np.testing.assert_allclose(Q0, big[np.ix_(inner, inner)], atol=1e-12)
    assert m0.rank_deficiency == 0 and np.linalg.eigvalsh(Q0).min() > 0


def test_rw2d_scale_model():
    """scale.model: the generalised-inverse marginal variances of the scaled structure have
    geometric mean 1 (up to R-INLA's ε ridge)."""
    nrow, ncol = 6, 5
    m, _, _ = rw2d(nrow, ncol, scale_model=True)
    R = np.asarray(m.precision_dense([0.0]))
    v = np.diag(np.linalg.pinv(R, hermitian=True, rcond=1e-10))
    assert np.exp(np.mean(np.log(v))) == pytest.approx(1.0, rel=1e-6)
    raw, _, _ = rw2d(nrow, ncol)
    np.testing.assert_allclose(R, m.scale_factor * np.asarray(raw.precision_dense([0.0])), rtol=1e-13)


def test_rw2d_bad_input():
    with pytest.raises(ModelError, match="'nrow' and 'ncol' must be specified"):
        RW2DModel.from_term("node", np.arange(1.0, 5.0), {"nrow": 2})
    with pytest.raises(ModelError, match="nrow = 4.5 must be a positive integer"):
        RW2DModel.from_term("node", np.arange(1.0, 5.0), {"nrow": 4.5, "ncol": 5})
    with pytest.raises(ModelError, match=r"node numbers 1\.\.20 .*found 0, 21"):
        RW2DModel.from_term("node", np.array([0.0, 3.0, 21.0]), {"nrow": 4, "ncol": 5})
    with pytest.raises(ModelError, match="n = 30 does not match nrow \\* ncol"):
        RW2DModel.from_term("node", np.arange(1.0, 5.0), {"nrow": 4, "ncol": 5, "n": 30})
    with pytest.raises(ModelError, match="at least 4 x 4"):
        RW2DModel.from_term("node", np.arange(1.0, 5.0), {"nrow": 3, "ncol": 5})
    with pytest.raises(ModelError, match="values= has 7 entries"):
        RW2DModel.from_term("node", np.arange(1.0, 5.0), {"nrow": 4, "ncol": 5, "values": np.arange(7.0)})


# ---------------------------------------------------------------------------------------------
# matern2d
# ---------------------------------------------------------------------------------------------
def matern2d_oracle(nrow, ncol, nu, theta, cyclic=False):
    """τ σ²(κ) (K^{ν+1}) with K = aI − (4 nearest neighbours): on the torus directly, otherwise
    on a lattice padded by ν + 1 and restricted to the inner nodes (x = 0 outside)."""
    kappa = math.sqrt(8 * nu) / math.exp(theta[1])
    a = 4 + kappa**2
    pad = 0 if cyclic else nu + 1
    R, C = nrow + 2 * pad, ncol + 2 * pad
    idx = lambda r, c: r + R * c  # noqa: E731
    K = np.zeros((R * C, R * C))
    for r in range(R):
        for c in range(C):
            K[idx(r, c), idx(r, c)] += a
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                rr, cc = r + dr, c + dc
                if cyclic:
                    K[idx(r, c), idx(rr % R, cc % C)] -= 1
                elif 0 <= rr < R and 0 <= cc < C:
                    K[idx(r, c), idx(rr, cc)] -= 1
    S = np.linalg.matrix_power(K, nu + 1)
    inner = [idx(r + pad, c + pad) for c in range(ncol) for r in range(nrow)]
    return math.exp(theta[0]) * kappa ** (-2 * nu) / (4 * math.pi * nu) * S[np.ix_(inner, inner)]


@pytest.mark.parametrize("nu", [1, 2, 3])
@pytest.mark.parametrize("cyclic", [False, True])
def test_matern2d_precision_is_the_stencil(nu, cyclic):
    nrow, ncol = (9, 10) if cyclic else (6, 8)
    m, _, _ = Matern2DModel.from_term("s", None, {"nrow": nrow, "ncol": ncol, "nu": nu, "cyclic": cyclic})
    for theta in ([0.0, 1.0], [0.7, 2.3], [-1.2, 0.4]):
        Q = np.asarray(m.precision_dense(theta))
        O = matern2d_oracle(nrow, ncol, nu, theta, cyclic)
        np.testing.assert_allclose(Q, O, rtol=1e-12, atol=1e-12 * np.abs(O).max())
    assert m.log_normaliser(np.array([0.0, 1.0])) is None and m.rank_deficiency == 0


def test_matern2d_defaults_and_bad_input():
    m, idx, ids = Matern2DModel.from_term("s", np.array([1.0, 12.0]), {"nrow": 3, "ncol": 4})
    h1, h2 = m.hyperparameters
    assert (h1.internal_name, h1.name, h1.initial, repr(h1.prior)) == \
        ("Log precision for s", "Precision for s", 4.0, "loggamma(1, 5e-05)")
    assert (h2.internal_name, h2.name, h2.initial, repr(h2.prior)) == \
        ("Log range for s", "Range for s", 2.0, "loggamma(1, 0.01)")
    assert m.nu == 1 and m.constraints() is None and idx.tolist() == [0, 11]
    with pytest.raises(ModelError, match="nu = 4"):
        Matern2DModel.from_term("s", None, {"nrow": 5, "ncol": 5, "nu": 4})
    with pytest.raises(ModelError, match="at least 2 \\* nu \\+ 3 = 5"):
        Matern2DModel.from_term("s", None, {"nrow": 4, "ncol": 6, "cyclic": True})
    with pytest.raises(ModelError, match="must be specified"):
        Matern2DModel.from_term("s", None, {"ncol": 6})
    with pytest.raises(ModelError, match=r"node numbers 1\.\.12"):
        Matern2DModel.from_term("s", np.array([13.0]), {"nrow": 3, "ncol": 4})
    with pytest.raises(ModelError, match="scale_model"):
        Matern2DModel.from_term("s", None, {"nrow": 3, "ncol": 4, "scale_model": True})


def test_matern2d_recovers_a_simulated_truth():
    """Four replicates of a matern2d field (τ = 1, range 4, ν = 1) on a 10 x 10 lattice observed
    with Gaussian noise of known precision: the truth lies inside the 95 % intervals."""
    import adelia

    nrow = ncol = 10
    nrep, theta = 4, np.array([0.0, np.log(4.0)])
    m, _, _ = Matern2DModel.from_term("s", None, {"nrow": nrow, "ncol": ncol})
    L = np.linalg.cholesky(np.asarray(m.precision_dense(theta)))
    n = nrow * ncol
    rng = np.random.default_rng(5)
    x = np.concatenate([np.linalg.solve(L.T, rng.standard_normal(n)) for _ in range(nrep)])
    y = 0.5 + x + rng.standard_normal(n * nrep) / np.sqrt(20.0)
    df = pd.DataFrame({"y": y, "node": np.tile(np.arange(1, n + 1), nrep), "rep": np.repeat(np.arange(1, nrep + 1), n)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(f'y ~ 1 + f(node, model="matern2d", nrow={nrow}, ncol={ncol}, replicate=rep)', data=df,
                          family="gaussian", control_family={"hyper": {"prec": {"initial": np.log(20.0), "fixed": True}}})
    hp = res.summary_hyperpar
    for name, truth in (("Precision for node", 1.0), ("Range for node", 4.0)):
        lo, hi = hp.loc[name, "0.025quant"], hp.loc[name, "0.975quant"]
        assert lo < truth < hi, (name, lo, truth, hi)
