"""FEM matrices: mass/stiffness identities and equality with fmesher's on the reference mesh."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from conftest import shared_path
from spde_helpers import CASE, grid_mesh, reference_mesh

from adelia.spde import fem, mesh_1d, mesh_2d


@pytest.fixture(scope="module")
def mesh():
    return mesh_2d(np.random.default_rng(2).random((40, 2)), max_edge=(0.15, 0.4))


def test_mass_matrices_sum_to_area(mesh):
    f = fem(mesh)
    assert f["c0"].sum() == pytest.approx(mesh.area, rel=1e-12)
    assert f["c1"].sum() == pytest.approx(mesh.area, rel=1e-12)
    np.testing.assert_allclose(f["c0"].diagonal(), np.asarray(f["c1"].sum(axis=1)).ravel(), rtol=1e-13)
    np.testing.assert_allclose(f["va"], f["c0"].diagonal())
    assert f["ta"].sum() == pytest.approx(mesh.area, rel=1e-12)


def test_stiffness_annihilates_constants_symmetric_psd(mesh):
    f = fem(mesh, order=3)
    g1 = f["g1"]
    assert np.abs(g1 @ np.ones(mesh.n)).max() < 1e-12 * abs(g1).max()
    assert abs(g1 - g1.T).max() == 0.0
    ev = np.linalg.eigvalsh(g1.toarray())
    assert ev.min() > -1e-10 * ev.max()
    assert np.sum(ev < 1e-10 * ev.max()) == 1  # connected mesh: only constants in the null space
    # ∫∇(ax+by)·∇(ax+by) = (a²+b²)·area  (linear functions are in the P1 space)
    u = mesh.loc @ np.array([0.7, -1.3])
    assert u @ g1 @ u == pytest.approx((0.7**2 + 1.3**2) * mesh.area, rel=1e-10)
    inv_c0 = sp.diags(1 / f["c0"].diagonal())
    assert abs(f["g2"] - g1 @ inv_c0 @ g1).max() < 1e-12 * abs(f["g2"]).max()
    assert abs(f["g3"] - g1 @ inv_c0 @ f["g2"]).max() < 1e-12 * abs(f["g3"]).max()


def test_consistent_mass_integrates_products_exactly():
    m = grid_mesh(1.0, 0.25)
    c1 = fem(m)["c1"]
    x, y = m.loc[:, 0], m.loc[:, 1]
    # ∫ x·y over [-1,1]² is 0, ∫ x² is 4/3 (products of P1 functions are integrated exactly)
    assert x @ c1 @ x == pytest.approx(4 / 3, rel=1e-12)
    assert abs(x @ c1 @ y) < 1e-12


def test_equals_fmesher_on_reference_mesh():
    case = shared_path(*CASE)
    mesh = reference_mesh(case)
    f = fem(mesh, order=2)
    for name in ("c0", "c1", "g1", "g2"):
        ref = scipy.io.mmread(str(case / f"{name}.mtx")).tocsr()
        diff = abs(f[name] - ref).max()
        assert diff <= 1e-10 * abs(ref).max(), f"{name}: max |diff| = {diff:g}"


def test_fem_1d():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    f = fem(mesh_1d(t))
    np.testing.assert_allclose(f["c0"].diagonal(), [0.5, 1.5, 1.5, 0.5])
    assert f["c1"].sum() == pytest.approx(4.0)
    g1 = f["g1"].toarray()
    np.testing.assert_allclose(g1 @ np.ones(4), 0.0, atol=1e-14)
    assert t @ g1 @ t == pytest.approx(4.0)  # ∫ (d t/dt)² over [0, 4]
