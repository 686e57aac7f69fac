"""Evaluating a per-θ computation at many θ: vmap on accelerators, a loop on the CPU.

On a GPU, ``jax.vmap`` turns a batch of design points into batched kernels — what the
device does best. On the CPU there is little to gain, and jaxlib's batched LAPACK calls
(a vmapped SVD, triangular solve, ...) schedule their batch on the intra-op thread pool:
two of them running at once on a 2-thread pool can wait on each other forever (seen with
jaxlib 0.10). ``jax.lax.map`` evaluates the points one after the other inside one compiled
program, with unbatched kernels, and keeps memory at one point's worth.
"""

from __future__ import annotations

from collections.abc import Callable

import jax


def map_points(fn: Callable, n_mapped: int = 1) -> Callable:
    """``fn(theta, *rest)`` -> a function of (thetas (k, d), *rest) mapped over the first axis
    of its first ``n_mapped`` arguments (the rest are shared)."""

    def batched(*args):
        mapped, shared = args[:n_mapped], args[n_mapped:]
        if jax.default_backend() == "cpu":
            return jax.lax.map(lambda xs: fn(*xs, *shared), tuple(mapped))
        return jax.vmap(fn, in_axes=(0,) * n_mapped + (None,) * len(shared))(*args)

    return batched
