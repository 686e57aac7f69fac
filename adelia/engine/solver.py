"""The one interface every kernel backend implements (DESIGN.md §4).

A :class:`Solver` is built once on the host for a static :class:`SparsePattern` (the
lower triangle of a symmetric positive definite matrix Q) and then applied, inside
``jax.jit``, to traced *values* on that pattern. Every operation is a pure function of
``values``; ``logdet`` and ``solve`` are differentiable in reverse mode with structured
VJPs (never by differentiating through a factorisation loop):

    d log|Q|           = tr(Q⁻¹ dQ)           -> needs Q⁻¹ only on the pattern of Q
    d (Q⁻¹ b)          = Q⁻¹ (db − dQ Q⁻¹ b)  -> b̄ = Q⁻¹ x̄,  Q̄ = −b̄ xᵀ on the pattern

Backends (``make_solver(pattern, backend=...)``):

* ``"dense"``  — jnp.linalg; the test oracle (O(n³)).
* ``"sparse"`` — supernodal sparse Cholesky with a fill-reducing ordering (AMD, or METIS
  nested dissection when it needs fewer flops) and a supernodal selected inversion, in
  numba with BLAS (CPU; :mod:`adelia.engine.supernodal`).
* ``"bta"``    — block-tridiagonal-with-arrowhead kernels in pure JAX (GPU, space-time).
* ``"auto"``   — dense for n ≤ 50, BTA on accelerators, the supernodal sparse backend on the CPU.

Values convention: ``values[k]`` is Q[rows[k], cols[k]] with rows >= cols (lower
triangle); the upper triangle is implied by symmetry. A cotangent for ``values`` is the
derivative with respect to that single stored number, i.e. off-diagonal cotangents count
both the (i, j) and (j, i) occurrences.

Failure convention: a matrix that is not positive definite yields ``logdet = -inf`` and
NaN solves under jit (``is_positive_definite`` reports it); callers outside jit raise
:class:`adelia.errors.NotPositiveDefiniteError`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .pattern import SparsePattern


@dataclass(frozen=True)
class BlockStructure:
    """How a pattern maps to BTA form: ``perm[i]`` = original index at BTA position i;
    positions 0..n_blocks*block_size-1 are the diagonal blocks, the last ``arrow_size``
    the arrow.

    Padding: ``len(perm) = n_blocks*block_size + arrow_size`` may exceed the pattern's n;
    the extra positions hold ``perm[i] = -1``. The BTA backend gives a padding position a
    unit diagonal and nothing else, so it changes neither log|Q| nor any solve. Every
    original index 0..n-1 appears exactly once. ``adelia.engine.ordering`` builds these.
    """

    perm: np.ndarray
    n_blocks: int
    block_size: int
    arrow_size: int

    def __post_init__(self):
        perm = np.asarray(self.perm)
        if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
            raise ValueError(f"BlockStructure.perm must be a 1-D integer array, got {perm.dtype} {perm.shape}")
        if self.n_blocks < 1 or self.block_size < 1 or self.arrow_size < 0:
            raise ValueError(
                f"BlockStructure needs n_blocks >= 1, block_size >= 1, arrow_size >= 0; got "
                f"{self.n_blocks}, {self.block_size}, {self.arrow_size}"
            )
        size = self.n_blocks * self.block_size + self.arrow_size
        if perm.size != size:
            raise ValueError(
                f"BlockStructure.perm has length {perm.size}, expected n_blocks*block_size + arrow_size = "
                f"{self.n_blocks}*{self.block_size} + {self.arrow_size} = {size}"
            )
        real = np.sort(perm[perm >= 0])
        if np.any(perm < -1) or not np.array_equal(real, np.arange(real.size)):
            raise ValueError(
                "BlockStructure.perm must hold every original index 0..n-1 exactly once and -1 at padding positions"
            )
        perm = perm.astype(np.int64)
        perm.setflags(write=False)
        object.__setattr__(self, "perm", perm)

    @property
    def n(self) -> int:
        """Number of original (non-padding) unknowns."""
        return int(np.count_nonzero(self.perm >= 0))

    @property
    def size(self) -> int:
        """BTA dimension n_blocks*block_size + arrow_size (padding included)."""
        return self.n_blocks * self.block_size + self.arrow_size

    @property
    def position(self) -> np.ndarray:
        """Inverse map: ``position[j]`` = BTA position of original index j, shape (n,)."""
        pos = np.empty(self.n, dtype=np.int64)
        real = np.flatnonzero(self.perm >= 0)
        pos[self.perm[real]] = real
        return pos


class Solver(abc.ABC):
    """Differentiable linear algebra on a fixed symmetric sparsity pattern."""

    pattern: SparsePattern

    @property
    def n(self) -> int:
        return self.pattern.n

    # --- differentiable (custom VJP) -----------------------------------------------------
    @abc.abstractmethod
    def logdet(self, values: jax.Array) -> jax.Array:
        """log|Q| (scalar). Not positive definite -> -inf (see module doc)."""

    @abc.abstractmethod
    def solve(self, values: jax.Array, rhs: jax.Array) -> jax.Array:
        """Q⁻¹ rhs, rhs of shape (n,) or (n, k); differentiable in values and rhs."""

    # --- forward only ----------------------------------------------------------------------
    @abc.abstractmethod
    def selected_inverse(self, values: jax.Array) -> jax.Array:
        """Q⁻¹ on the pattern: an array (nnz,) aligned with ``values``."""

    def diag_inverse(self, values: jax.Array) -> jax.Array:
        """diag(Q⁻¹), shape (n,): marginal variances of N(·, Q⁻¹)."""
        return self.selected_inverse(values)[jnp.asarray(self.pattern.diag_index)]

    @abc.abstractmethod
    def sample(self, values: jax.Array, key: jax.Array, n_samples: int = 1) -> jax.Array:
        """Draws from N(0, Q⁻¹), shape (n_samples, n)."""

    def logdet_and_solve(self, values: jax.Array, rhs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(log|Q|, Q⁻¹ rhs) from one factorisation where the backend can share it."""
        return self.logdet(values), self.solve(values, rhs)

    def is_positive_definite(self, values: jax.Array) -> jax.Array:
        """Boolean scalar: whether the Cholesky factorisation succeeds."""
        return jnp.isfinite(self.logdet(values))


def make_solver(
    pattern: SparsePattern,
    backend: str = "auto",
    block_structure: BlockStructure | None = None,
    devices=None,
) -> Solver:
    """A solver for ``pattern`` with the requested backend.

    Args:
        pattern: static lower-triangular pattern.
        backend: "auto", "dense", "sparse" or "bta".
        block_structure: the BTA layout, when the caller knows it (space-time models);
            otherwise the BTA backend derives one by reverse Cuthill-McKee.
        devices: ``control_inla["devices"]`` for the BTA backend, which partitions its time
            blocks over them (:class:`~adelia.engine.bta_solver.BTASolver`); ignored by the others.
    """
    from ..errors import unknown_choice

    valid = ("auto", "dense", "sparse", "bta")
    if backend not in valid:
        raise ValueError(unknown_choice("solver backend", backend, valid))
    if backend == "auto":
        on_accelerator = jax.default_backend() != "cpu"
        if pattern.n <= 50:
            backend = "dense"
        elif on_accelerator:
            # dense blocks and batched kernels: what a GPU does fastest (RCM layout if no
            # space-time block structure is known)
            backend = "bta"
        else:
            # on a CPU, a fill-reducing supernodal factorisation wins even for space-time
            # structure (BTA's dense blocks are O(b³) flops per step)
            backend = "sparse"
    if backend == "dense":
        from .dense import DenseSolver

        return DenseSolver(pattern)
    if backend == "sparse":
        from .sparse import SparseSolver

        return SparseSolver(pattern)
    from .bta_solver import BTASolver

    return BTASolver(pattern, block_structure, devices)
