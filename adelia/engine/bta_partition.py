"""How the time blocks of a BTA matrix are split into contiguous partitions, one per device
of a mesh axis (the bookkeeping of :mod:`adelia.engine.bta_distributed`).

Every partition holds the same number m ≥ 2 of blocks, so that the per-device arrays have
one shape (``jax.shard_map`` splits an array into equal pieces). When P does not divide
n_b, the chain is padded at both ends with decoupled identity blocks (diag = I, lower = 0,
arrow = 0): such a block adds log|I| = 0 to the log-determinant, its solve is its
(zero) right-hand side, and it is cut away again from every output, so its gradient is
dropped. Padding can only sit at the ends of the chain (an identity block inside it would
cut the coupling B_i), hence ``pad_front`` blocks before block 0 and ``pad_back`` after the
last one, split evenly.

With fewer than 2 blocks per partition (n_b < 2P) the reduced system would be the whole
matrix: the plan then uses P' = max(1, n_b // 2) partitions (a warning says so), and the
kernels run on the first P' devices of the mesh axis.

Example:
    >>> plan = partition_plan(10, 4)
    >>> plan.per_partition, plan.pad_front, plan.pad_back, plan.interior
    (3, 1, 1, 1)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from jax.sharding import Mesh

__all__ = ["PartitionPlan", "partition_plan", "partition_mesh", "time_mesh", "TIME_AXIS"]


@dataclass(frozen=True)
class PartitionPlan:
    """Static layout: ``partitions`` partitions of ``per_partition`` blocks each, covering
    ``pad_front`` identity blocks, the ``n_blocks`` blocks of the matrix and ``pad_back``
    identity blocks, in this order."""

    n_blocks: int
    partitions: int
    per_partition: int
    pad_front: int

    @property
    def padded_blocks(self) -> int:
        return self.partitions * self.per_partition

    @property
    def pad_back(self) -> int:
        return self.padded_blocks - self.n_blocks - self.pad_front

    @property
    def interior(self) -> int:
        """Blocks each partition eliminates on its own (all but its first and last)."""
        return self.per_partition - 2

    @property
    def reduced_blocks(self) -> int:
        """Blocks of the reduced system: the first and last block of every partition."""
        return 2 * self.partitions


def partition_plan(n_blocks: int, partitions: int) -> PartitionPlan:
    """The partition layout of ``n_blocks`` blocks over (at most) ``partitions`` devices.

    Raises:
        ValueError: ``partitions`` < 1 or ``n_blocks`` < 1.
    """
    if partitions < 1 or n_blocks < 1:
        raise ValueError(f"partition_plan: need n_blocks >= 1 and partitions >= 1, got {n_blocks} and {partitions}")
    used = partitions
    if n_blocks < 2 * partitions:
        used = max(1, n_blocks // 2)
    if used < partitions:
        warnings.warn(
            f"distributed BTA: {n_blocks} time blocks cannot give {partitions} partitions of at least 2 blocks; "
            f"using {used} partition(s) on the first {used} device(s) of the mesh axis",
            stacklevel=3,
        )
    per = max(2, math.ceil(n_blocks / used))
    pad = used * per - n_blocks
    return PartitionPlan(n_blocks, used, per, pad // 2)


def partition_mesh(mesh: Mesh, axis: str, partitions: int) -> Mesh:
    """``mesh`` cut to its first ``partitions`` devices along ``axis`` (other axes kept).

    Raises:
        ValueError: ``axis`` is not an axis of ``mesh`` (the message lists its axes).
    """
    if axis not in mesh.axis_names:
        raise ValueError(f"distributed BTA: axis {axis!r} is not an axis of the mesh; its axes are {tuple(mesh.axis_names)}")
    k = mesh.axis_names.index(axis)
    if mesh.devices.shape[k] == partitions:
        return mesh
    devices = np.take(mesh.devices, np.arange(partitions), axis=k)
    return Mesh(devices, mesh.axis_names)


#: the mesh axis that a BTA matrix's time blocks are partitioned over
TIME_AXIS = "time"


def time_mesh(devices, n_blocks: int) -> Mesh | None:
    """The 1-D mesh (axis ``"time"``) that the BTA solver partitions ``n_blocks`` blocks over,
    from ``control_inla["devices"]`` (validated as by :func:`adelia.engine.batching.points_mesh`);
    None for one device or when ``n_blocks`` < 2·devices (too few blocks: the devices are
    better spent on the batch of θ points).

    The rule (``control_inla={"solver": "bta", "devices": k}``): all k devices go to the
    time partitions when the model has n_b ≥ 2k blocks, and the batch of θ points is then
    not sharded (it runs as on one device: host threads on the CPU, vmapped on an
    accelerator), each point's kernels spanning all k devices; otherwise the batch is sharded over the k
    devices as for the other solvers. A mesh with an axis ``"time"`` is used as given.

    Example:
        >>> time_mesh(1, 10) is None
        True
    """
    if isinstance(devices, Mesh) and TIME_AXIS in devices.axis_names:
        mesh = devices
    else:
        from .batching import points_mesh

        points = points_mesh(devices)
        if points is None:
            return None
        mesh = Mesh(points.devices.reshape(-1), (TIME_AXIS,))
    if mesh.shape[TIME_AXIS] <= 1 or n_blocks < 2 * mesh.shape[TIME_AXIS]:
        return None
    return mesh
