"""Evaluating a per-θ computation at many θ: one vmapped program on accelerators (sharded
over several devices when there are several), the compiled single-point program on a pool
of host threads on the CPU.

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

Several devices (``control_inla={"devices": k}``, :func:`points_mesh`): the batch of K points
is padded to a multiple of k with copies of its last point, split into k equal contiguous
shards over the mesh axis ``"points"`` (``jax.shard_map``), each device evaluates its shard,
and the padding is dropped from the gathered outputs. On accelerators a device evaluates its
shard as one vmapped program; on the CPU (host devices: ``XLA_FLAGS=
--xla_force_host_platform_device_count=k``; taken only when ``devices`` > 1 is asked for)
it evaluates its points one after another (``lax.map`` of the single-point computation), for
the reason above: four host devices each running a vmapped BTA fit's batched LAPACK calls
on a 2-thread intra-op pool deadlocked (jaxlib 0.10.2), where the devices running
single-point programs side by side — like the host threads — do not. Either way every point
is computed by the same program whatever k, so the results do not depend on k (to
rounding). The arrays the single-point program closes over are hoisted to arguments, as in
:mod:`adelia.engine.hoisted_jit`, and placed once on every device of the mesh (replicated).

Several processes (``jax.distributed``, :mod:`adelia.engine.multihost`): the mesh spans the
devices of every process, each process's driver submits the same batch, and the outputs are
gathered onto every device (``lax.all_gather`` over ``"points"``) so that each process reads
the whole batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr, jaxpr_as_fun
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import ControlError
from .host_cores import host_workers, points_in_parallel
from .multihost import gathered, is_multi_process, run_devices

#: the mesh axis that a batch of θ points is sharded over
POINTS_AXIS = "points"


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


# ------------------------------------------------------------------------------------------
# the devices of a batch: control_inla["devices"]
# ------------------------------------------------------------------------------------------


def _listing(devices: Sequence) -> str:
    return ", ".join(str(d) for d in devices)


def _invalid(devices, available: Sequence) -> ControlError:
    return ControlError(
        f"control_inla: devices = {devices!r} is not valid; it must be a number of devices from 1 to "
        f"{len(available)}, a list of jax.Device or a jax.sharding.Mesh. Available devices: {_listing(available)}."
    )


def points_mesh(devices=None) -> Mesh | None:
    """The 1-D mesh (axis ``"points"``) that batches of θ points are sharded over, from
    ``control_inla["devices"]``; None for one device (the batch runs as today: host threads on
    the CPU, one vmapped program on an accelerator).

    Args:
        devices: None — one device on the CPU, every local device on an accelerator; an int
            k — the first k local devices of the default backend; a list of ``jax.Device``;
            in a multi-process run (:mod:`adelia.engine.multihost`) "local" reads "global":
            None is every process's devices (CPU too), k the first k of ``jax.devices()``;
            or a ``jax.sharding.Mesh`` — its axis ``"points"`` (the batch is replicated over
            any other axes), or its only axis for a 1-D mesh.

    Raises:
        ControlError: for 0, a negative number, more devices than there are (the message lists
            the available ones), devices that are not local devices, duplicates, or a mesh
            of several axes without a ``"points"`` axis.

    Example:
        >>> points_mesh(1) is None
        True
    """
    # several processes (jax.distributed, adelia.engine.multihost): the devices of every
    # process, and by default all of them — the user started the processes to use them
    available = run_devices()
    if devices is None:
        chosen = [available[0]] if on_host() and not is_multi_process() else available
    elif isinstance(devices, Mesh):
        if POINTS_AXIS in devices.axis_names:
            axis = POINTS_AXIS
        elif len(devices.axis_names) == 1:
            axis = devices.axis_names[0]
        else:
            raise ControlError(
                f"control_inla: devices is a mesh with axes {tuple(devices.axis_names)}; it needs an axis "
                f'named "{POINTS_AXIS}" to shard the batches of θ points over (or give a 1-D mesh).'
            )
        if devices.shape[axis] == 1:
            return None
        return devices if axis == POINTS_AXIS else Mesh(devices.devices, (POINTS_AXIS,))
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, (bool, np.bool_)):
        if not 1 <= devices <= len(available):
            raise _invalid(devices, available)
        chosen = available[: int(devices)]
    elif isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 0:
        chosen = list(devices)
        everywhere = jax.devices() if not all(isinstance(d, jax.Device) for d in chosen) else [
            d for platform in {d.platform for d in chosen} for d in run_devices(platform)
        ]
        unknown = [d for d in chosen if not isinstance(d, jax.Device) or d not in everywhere]
        if unknown or len(set(chosen)) != len(chosen):
            what = f"{_listing(unknown)} are not local devices" if unknown else "a device is listed twice"
            raise ControlError(
                f"control_inla: devices = [{_listing(chosen)}] is not valid: {what}. Available devices: {_listing(available)}."
            )
    else:
        raise _invalid(devices, available)
    if len(chosen) == 1:
        return None
    return Mesh(np.array(chosen, dtype=object), (POINTS_AXIS,))


class ShardedPoints:
    """``single(theta, *shared)`` over a batch of θ sharded over the ``"points"`` axis of
    ``mesh`` (module docstring): one program per batch shape, traced at its first use.
    ``vectorised``: a device evaluates its shard vmapped (default on accelerators) or point
    by point (``lax.map``; default on the CPU).

    The batch (K, d) is padded to K' = k⌈K/k⌉ rows by repeating its last row; device j gets
    rows [jK'/k, (j+1)K'/k); ``shared`` and the hoisted constants are replicated."""

    def __init__(self, single: Callable, mesh: Mesh, pool: dict | None = None, vectorised: bool | None = None):
        self.single = single
        self.vectorised = not on_host() if vectorised is None else vectorised
        self.mesh = mesh
        self.size = mesh.shape[POINTS_AXIS]
        self._pool = {} if pool is None else pool
        self._programs: dict = {}
        self._lock = threading.Lock()

    def _replicated(self, c):
        """One copy of a closed-over array on every device of the mesh, shared through the pool
        by the programs of one model (keyed by the host buffer, as in hoisted_jit)."""
        replicated = NamedSharding(self.mesh, PartitionSpec())
        if not isinstance(c, np.ndarray):
            return jax.device_put(c, replicated)
        key = ("replicated", self.mesh, c.__array_interface__["data"][0], c.shape, c.strides, c.dtype.str)
        hit = self._pool.get(key)
        if hit is None:
            hit = self._pool[key] = (c, jax.device_put(c, replicated))  # the host array keeps its address
        return hit[1]

    def _program(self, local_thetas, shared_leaves, shared_tree):
        key = (local_thetas.shape, shared_tree, tuple((np.shape(x), np.result_type(x).str) for x in shared_leaves))
        with self._lock:
            hit = self._programs.get(key)
            if hit is not None:
                return hit

            def local(thetas, *leaves):
                shared = jax.tree.unflatten(shared_tree, leaves)
                one = lambda t: self.single(t, *shared)  # noqa: E731
                return jax.vmap(one)(thetas) if self.vectorised else jax.lax.map(one, thetas)

            closed, out_shape = jax.make_jaxpr(local, return_shape=True)(local_thetas, *shared_leaves)
            jaxpr = closed.jaxpr

            everywhere = gathered(self.mesh)

            def body(consts, thetas, leaves):
                out = jaxpr_as_fun(ClosedJaxpr(jaxpr, consts))(thetas, *leaves)
                # a mesh over several processes: every device gets the whole batch's outputs,
                # so that each process's driver can read them
                return [jax.lax.all_gather(o, POINTS_AXIS, tiled=True) for o in out] if everywhere else out

            spec = PartitionSpec(POINTS_AXIS)
            program = jax.jit(
                # check_vma=False: the jaxpr was traced outside shard_map, without the pvary marks
                # that shard_map's type check expects where replicated and sharded values meet
                jax.shard_map(
                    body,
                    mesh=self.mesh,
                    in_specs=(PartitionSpec(), spec, PartitionSpec()),
                    out_specs=PartitionSpec() if everywhere else spec,
                    check_vma=False,
                )
            )
            consts = [self._replicated(c) for c in closed.consts]
            hit = self._programs[key] = (program, consts, jax.tree.structure(out_shape))
            return hit

    def __call__(self, thetas, *shared):
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        n = len(thetas)
        padded = np.concatenate([thetas, np.repeat(thetas[-1:], -n % self.size, axis=0)])
        leaves, shared_tree = jax.tree.flatten(shared)
        program, consts, out_tree = self._program(
            jax.ShapeDtypeStruct((len(padded) // self.size, thetas.shape[1]), thetas.dtype), leaves, shared_tree
        )
        replicated = NamedSharding(self.mesh, PartitionSpec())
        leaves = [jax.device_put(x, replicated) for x in leaves]
        batch = jax.device_put(padded, NamedSharding(self.mesh, PartitionSpec(POINTS_AXIS)))
        out = program(consts, batch, leaves)
        return jax.tree.unflatten(out_tree, [np.asarray(x)[:n] for x in out])


def map_points(single: Callable, devices=None, pool: dict | None = None) -> Callable:
    """A compiled single-point function ``single(theta, *shared)`` -> a function of
    (thetas (k, d), *shared) returning its outputs stacked along a new first axis as NumPy
    arrays: on one device, :func:`threaded_points` on the CPU and one vmapped program on
    accelerators (traced and compiled at its first use only); on several devices
    (``devices``, see :func:`points_mesh`), the batch sharded over them
    (:class:`ShardedPoints`). ``pool``: the model's dict of device copies of its data
    (:func:`adelia.engine.hoisted_jit.hoisted_jit`), shared by its sharded programs.

    The returned function's ``threaded`` attribute says whether it runs ``single`` itself on
    host threads (so that compiling ``single`` ahead of the batch pays off).

    Example:
        >>> f = map_points(jax.jit(lambda t, s: jnp.sum(t) * s))
        >>> f(np.ones((3, 2)), 2.0)
        array([4., 4., 4.])
    """
    mesh = points_mesh(devices)
    if mesh is not None:
        run = ShardedPoints(single, mesh, pool)
        run.threaded = False
        return run
    batched = jax.jit(lambda thetas, *shared: jax.vmap(lambda t: single(t, *shared))(thetas))

    def run(thetas, *shared):
        if on_host():
            return threaded_points(single, thetas, *shared)
        return jax.tree.map(np.asarray, batched(jnp.atleast_2d(jnp.asarray(thetas, dtype=jnp.float64)), *shared))

    run.threaded = on_host()
    return run
