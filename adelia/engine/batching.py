"""Evaluating a per-θ computation at many θ: one vmapped program on accelerators, the
compiled single-point program on a pool of host threads on the CPU.

On a GPU, ``jax.vmap`` turns a batch of design points into batched kernels — what the
device does best. On the CPU a vmapped batch gains nothing (the sparse kernels loop over
the batch on the host) and jaxlib's batched LAPACK calls (a vmapped SVD, triangular solve,
...) schedule their batch on the intra-op thread pool, where two of them running at once on
a 2-thread pool can wait on each other forever (seen with jaxlib 0.10). So on the CPU the
points are evaluated by the already-compiled single-point function, one thread per core:
compiled XLA programs run without the GIL and the sparse kernels release it, so the points
of an integration design or a finite-difference stencil proceed in parallel, and no second
program is traced or compiled. The kernels of the points share the cores with the kernels'
own subtree parallelism through :mod:`adelia.engine.host_cores`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from .host_cores import host_workers, points_in_parallel


def threaded_points(single: Callable, thetas, *shared, workers: int | None = None):
    """``single(theta_i, *shared)`` at every row of ``thetas`` on a pool of host threads; the
    outputs (any pytree of arrays) stacked along a new first axis as NumPy arrays.

    Each point's outputs are written into the stacked arrays as soon as they arrive (slot i
    for point i, so the result does not depend on which thread finishes first), instead of
    being collected and stacked at the end: a second copy of every output (for a model with
    10⁶ latent nodes, ~100 MB per point) never exists."""
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    workers = min(host_workers() if workers is None else workers, len(thetas))
    stacked: dict = {}
    allocate = threading.Lock()

    def one(i: int) -> None:
        leaves, treedef = jax.tree.flatten(single(thetas[i], *shared))
        leaves = [np.asarray(leaf) for leaf in leaves]
        with allocate:
            if not stacked:
                stacked["tree"] = treedef
                stacked["leaves"] = [np.empty((len(thetas), *leaf.shape), leaf.dtype) for leaf in leaves]
        for out, leaf in zip(stacked["leaves"], leaves):
            out[i] = leaf

    if workers <= 1:
        for i in range(len(thetas)):
            one(i)
    else:
        with points_in_parallel(), ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(len(thetas))))
    return jax.tree.unflatten(stacked["tree"], stacked["leaves"])


def on_host() -> bool:
    """Whether batches of points run as threads (CPU) rather than as one vmapped program."""
    return jax.default_backend() == "cpu"


def map_points(single: Callable) -> Callable:
    """A compiled single-point function ``single(theta, *shared)`` -> a function of
    (thetas (k, d), *shared) returning its outputs stacked along a new first axis as NumPy
    arrays: :func:`threaded_points` on the CPU, one vmapped program on accelerators (traced
    and compiled at its first use only)."""
    batched = jax.jit(lambda thetas, *shared: jax.vmap(lambda t: single(t, *shared))(thetas))

    def run(thetas, *shared):
        if on_host():
            return threaded_points(single, thetas, *shared)
        return jax.tree.map(np.asarray, batched(jnp.atleast_2d(jnp.asarray(thetas, dtype=jnp.float64)), *shared))

    return run
