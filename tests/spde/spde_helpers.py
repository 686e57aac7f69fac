"""Shared helpers for the SPDE tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adelia.spde import Mesh

CASE = ("reference", "rinla", "spdetoy_pcmatern")


def grid_mesh(half_width: float, h: float) -> Mesh:
    """Regular triangulation of [−L, L]² with spacing h, diagonals alternating (less anisotropy)."""
    x = np.arange(-half_width, half_width + h / 2, h)
    n = len(x)
    X, Y = np.meshgrid(x, x, indexing="ij")
    loc = np.c_[X.ravel(), Y.ravel()]
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    I, J = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    alt = ((I + J) % 2 == 0).ravel()[:, None]
    t1 = np.where(alt, np.c_[a, b, c], np.c_[a, b, d])
    t2 = np.where(alt, np.c_[a, c, d], np.c_[b, c, d])
    return Mesh(loc, np.r_[t1, t2])


def reference_mesh(case_dir) -> Mesh:
    loc = pd.read_csv(case_dir / "loc.csv").to_numpy()
    tv = pd.read_csv(case_dir / "tv.csv").to_numpy() - 1
    return Mesh(loc, tv)
