"""make_A / make_index: barycentric rows, linear reproduction, layout, reference A."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from conftest import shared_path
from spde_helpers import CASE, reference_mesh

from adelia.errors import DataError
from adelia.spde import make_A, make_index, mesh_2d


@pytest.fixture(scope="module")
def mesh():
    return mesh_2d(np.random.default_rng(5).random((30, 2)), max_edge=(0.2, 0.5))


def test_rows_sum_to_one_and_reproduce_linear_functions(mesh, rng):
    pts = rng.random((500, 2))
    A = make_A(mesh, pts)
    assert A.shape == (500, mesh.n)
    np.testing.assert_allclose(np.asarray(A.sum(axis=1)).ravel(), 1.0, rtol=0, atol=1e-13)
    assert A.min() >= 0.0
    assert np.all(np.diff(A.indptr) <= 3)
    f = lambda xy: 2.0 - 0.5 * xy[:, 0] + 3.0 * xy[:, 1]
    np.testing.assert_allclose(A @ f(mesh.loc), f(pts), rtol=0, atol=1e-12)
    # nodes map to themselves
    An = make_A(mesh, mesh.loc)
    assert abs(An - sp.identity(mesh.n)).max() < 1e-12


def test_outside_points_give_zero_rows_and_warning(mesh):
    pts = np.array([[0.5, 0.5], [50.0, 50.0], [-40.0, 0.0]])
    with pytest.warns(UserWarning, match="2 of 3 location"):
        A = make_A(mesh, pts)
    np.testing.assert_allclose(np.asarray(A.sum(axis=1)).ravel(), [1.0, 0.0, 0.0])


def test_group_and_replicate_layout(mesh, rng):
    pts = rng.random((7, 2))
    group = np.array([1, 3, 2, 3, 1, 2, 3])
    repl = np.array([1, 1, 2, 2, 1, 2, 1])
    A = make_A(mesh, pts, group=group, n_group=3, repl=repl, n_repl=2)
    A0 = make_A(mesh, pts).toarray()
    expected = np.zeros((7, mesh.n * 6))
    for i in range(7):
        off = mesh.n * (group[i] - 1) + mesh.n * 3 * (repl[i] - 1)
        expected[i, off:off + mesh.n] = A0[i]
    np.testing.assert_allclose(A.toarray(), expected)
    # make_index enumerates exactly these columns: A @ x picks x[node + n·(g−1) + n·ng·(r−1)]
    idx = make_index("s", mesh.n, n_group=3, n_repl=2)
    assert len(idx["s"]) == mesh.n * 6
    col = (idx["s"] - 1) + mesh.n * (idx["s.group"] - 1) + mesh.n * 3 * (idx["s.repl"] - 1)
    np.testing.assert_array_equal(col, np.arange(mesh.n * 6))
    with pytest.raises(DataError, match="1-based"):
        make_A(mesh, pts, group=group - 1)
    with pytest.raises(DataError, match="n_group"):
        make_A(mesh, pts, group=group, n_group=2)


def test_weights_and_identity(mesh):
    A = make_A(mesh, None, weights=2.0)
    assert abs(A - 2 * sp.identity(mesh.n)).max() == 0.0


def test_equals_reference_A():
    case = shared_path(*CASE)
    mesh = reference_mesh(case)
    df = pd.read_csv(case / "data.csv")
    A = make_A(mesh, df[["s1", "s2"]].to_numpy())
    ref = scipy.io.mmread(str(case / "A.mtx")).tocsr()
    assert A.shape == ref.shape
    assert abs(A - ref).max() < 1e-10
    assert A.nnz == ref.nnz
