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

How a fit's k devices are split (:func:`choose_split`, :func:`split_mesh`; the model's
choice is :func:`adelia.inference.memory.fit_split`): into p groups for θ points × t time
partitions, a 2-D mesh ``("points", "time")`` of shape (p, t) — each θ point of a batch
(integration design, Hessian stencil, FD gradients) is evaluated by one group, whose t
devices partition its BTA kernels. t is chosen by a time model — the sequential evaluations
of the mode search gain only from time partitions, a batch of K points gains from both — among
the splits whose per-device memory fits; p = 1 gives a 1-D ``"time"`` mesh (the batch is not
sharded), t = 1 no solver mesh (the batch is sharded over the k devices). A user's mesh with
a ``"time"`` axis is used as given.

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

__all__ = [
    "PartitionPlan", "partition_plan", "partition_mesh", "time_mesh", "split_mesh", "choose_split",
    "evaluation_steps", "TIME_AXIS", "POINTS_AXIS",
]


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
#: the mesh axis that a batch of θ points is sharded over (:mod:`adelia.engine.batching`)
POINTS_AXIS = "points"


def evaluation_steps(n_blocks: int, partitions: int) -> int:
    """Sequential block steps of one BTA evaluation on ``partitions`` time partitions: the
    single-device chain is n_b steps; partitioned, each device eliminates its ⌈n_b/P⌉ blocks
    concurrently and then every device factorises the reduced system of 2P blocks,
    ⌈n_b/P⌉ + 2P steps. At the block sizes of space-time models (b ≤ 1024) a step is
    latency-bound on an accelerator, so steps — not flops — measure the time."""
    if partitions <= 1:
        return int(n_blocks)
    return -(-int(n_blocks) // int(partitions)) + 2 * int(partitions)


def choose_split(devices: int, n_blocks: int, batch: int = 1, sequential: int = 0, memory_of=None,
                 memory: float | None = None) -> tuple[int, int]:
    """The split of ``devices`` = p × t devices into p groups for θ points × t time partitions.

    The candidates are the divisors t of k with n_b ≥ 2t (t = 1 always). Of those whose
    per-device memory ``memory_of(p, t)`` (bytes; e.g. :func:`adelia.inference.memory.
    estimate_device_memory`) fits ``memory`` (None: unknown, every split fits), the rule takes
    the one of least modelled time

        time(p, t) = (S + ⌈K/p⌉) · steps(t),    steps(t) = ⌈n_b/t⌉ + 2t  (n_b for t = 1)

    (:func:`evaluation_steps`; S = ``sequential``, the evaluations of the mode search, which
    run one after another on one group's t devices; K = ``batch``, the largest batch of θ
    points, ⌈K/p⌉ rounds on p groups), ties going to fewer partitions (no collectives, and
    t = 1 is the one-device arithmetic). When no split fits, the one of least memory per
    device (the memory check then names the devices that would fit).

    Why not "the fewest partitions that fit memory": points groups only help the batches,
    while a fit's mode search — tens of evaluations, one after another — is sped up only by
    time partitions; on a model with many time blocks the time partitions win overall
    (n_b = 100, k = 4, S = 40, K = 25: t = 1 costs 4700 steps, t = 4 2145), on a short chain
    the reduced system's 2t steps eat the gain and the points win.

    Example:
        >>> choose_split(4, 100, batch=25, sequential=40)
        (1, 4)
        >>> choose_split(4, 6, batch=25, sequential=40)   # n_b < 2·4: at most 2 partitions
        (4, 1)
    """
    k, n_b = int(devices), int(n_blocks)
    candidates = [(k // t, t) for t in range(1, k + 1) if k % t == 0 and (t == 1 or n_b >= 2 * t)]

    def cost(split):
        p, t = split
        return ((int(sequential) + -(-int(batch) // p)) * evaluation_steps(n_b, t), t)

    if memory_of is None or memory is None:
        return min(candidates, key=cost)
    need = {c: float(memory_of(*c)) for c in candidates}
    fitting = [c for c in candidates if need[c] <= memory]
    if not fitting:
        return min(candidates, key=lambda c: (need[c], c[1]))
    return min(fitting, key=cost)


def split_mesh(devices, n_blocks: int, split: tuple[int, int] | None = None) -> Mesh | None:
    """The mesh of a BTA solver over ``control_inla["devices"]`` (validated as by
    :func:`adelia.engine.batching.points_mesh`) for a model of ``n_blocks`` time blocks, with
    its devices split into p groups for θ points × t time partitions (``split`` = (p, t);
    default :func:`choose_split` for single evaluations, batch 1): ``None`` for t = 1 (the
    single-device kernels; the batch of θ points is sharded over the k devices as for the
    other solvers), a 1-D ``"time"`` mesh for p = 1 (the batch is not sharded: each point's
    kernels span all k devices), else a 2-D mesh ``("points", "time")`` of shape (p, t):
    device row i is points group i, whose t devices partition the time blocks of its points
    (:class:`adelia.engine.batching.ShardedPoints`).

    A user's mesh is kept: one with a ``"time"`` axis (and perhaps ``"points"``) is used as
    given, one with only a ``"points"`` axis gives None.

    Raises:
        ControlError: a user mesh with both axes whose ``"time"`` axis has more than n_b/2
            devices (partitions of fewer than 2 blocks; with a points axis the time axis
            cannot be cut to fewer devices).

    Example:
        >>> split_mesh(1, 10) is None
        True
    """
    if isinstance(devices, Mesh):
        if TIME_AXIS not in devices.axis_names:
            return None
        t = devices.shape[TIME_AXIS]
        if POINTS_AXIS in devices.axis_names and devices.shape[POINTS_AXIS] > 1:
            if t > 1 and n_blocks < 2 * t:
                from ..errors import ControlError

                raise ControlError(
                    f"control_inla: devices is a mesh of {devices.shape[POINTS_AXIS]} θ-point groups × {t} time "
                    f"partitions but the model has {n_blocks} time blocks: at most {max(1, n_blocks // 2)} time "
                    f'partitions (of at least 2 blocks each); give a mesh with a smaller "time" axis.'
                )
            return devices
        return time_mesh(devices, n_blocks)
    from .batching import points_mesh

    points = points_mesh(devices)
    if points is None:
        return None
    flat = points.devices.reshape(-1)
    p, t = choose_split(flat.size, n_blocks) if split is None else split
    if p * t != flat.size:
        raise ValueError(f"split_mesh: split {split} does not multiply to the {flat.size} devices")
    if t == 1:
        return None
    if p == 1:
        return Mesh(flat, (TIME_AXIS,))
    return Mesh(flat.reshape(p, t), (POINTS_AXIS, TIME_AXIS))


def time_mesh(devices, n_blocks: int) -> Mesh | None:
    """The 1-D mesh (axis ``"time"``) that spreads ``n_blocks`` blocks over all of
    ``control_inla["devices"]`` (validated as by :func:`adelia.engine.batching.points_mesh`);
    None for one device or when ``n_blocks`` < 2·devices (too few blocks). A mesh with an
    axis ``"time"`` is used as given. (A fit chooses its split of the devices with
    :func:`split_mesh`; this is its p = 1 case.)

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
