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

A fit evaluates batches of many sizes (the Hessian's stencil, the 2d skewness points, the
integration design), and a vmapped program is compiled for one batch shape (a DEMF model's
costs seconds). So an accelerator's batch is padded, by repeating its last row, to the rows
of a program compiled already (if it has at most 4 times the batch's rows) or else to a
power of two ≥ 8 (:func:`bucket_size`), and the padding is dropped from the outputs; the
program takes the model's data as arguments (:mod:`adelia.engine.hoisted_jit`) and is shared
by fingerprint with every model of the same structure, so a second fit compiles no batch
program (:class:`VmappedPoints`). Every row is the single-point computation: the padding
changes no result.

Several devices (``control_inla={"devices": k}``, :func:`points_mesh`): the batch of K points
is padded to a multiple of k with copies of its last point (vmapped shards: to k times a
shared per-device size, as above), split into k equal contiguous shards over the mesh axis
``"points"`` (``jax.shard_map``), each device evaluates its shard, and the padding is dropped
from the gathered outputs; the programs are shared by fingerprint, as one device's are. On accelerators a device evaluates its
shard as one vmapped program; on the CPU (host devices: ``XLA_FLAGS=
--xla_force_host_platform_device_count=k``; taken only when ``devices`` > 1 is asked for)
it evaluates its points one after another (``lax.map`` of the single-point computation), for
the reason above: four host devices each running a vmapped BTA fit's batched LAPACK calls
on a 2-thread intra-op pool deadlocked (jaxlib 0.10.2), where the devices running
single-point programs side by side — like the host threads — do not. Either way every point
is computed by the same program whatever k, so the results do not depend on k (to
rounding). The arrays the single-point program closes over are hoisted to arguments, as in
:mod:`adelia.engine.hoisted_jit`, and placed once on every device of the mesh (replicated).

A 2-D mesh ``("points", "time")`` (a fit with the BTA solver on k = p·t devices,
:func:`adelia.inference.memory.fit_split`, or a user's mesh with both axes): the batch is
sharded over the p groups of the ``"points"`` axis only — the ``jax.shard_map`` is manual over
``"points"`` (``axis_names={"points"}``) and leaves ``"time"`` to the solver, whose kernels
nest their own ``jax.shard_map`` over the t ``"time"`` devices of the group
(:class:`adelia.engine.bta_solver.BTASolver`). For that the whole sharded program is traced
at once (the single-point computation inside the region manual over ``"points"``, where the
solver finds its nested mesh), and the arrays it closes over come out as the jaxpr's consts.

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
import jax.numpy as jnp  # noqa: F401 (the examples)
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import ControlError
from .hoisted_jit import hoisted_jit, shared_program
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


# ------------------------------------------------------------------------------------------
# padded batch sizes: a few programs serve every batch
# ------------------------------------------------------------------------------------------

#: the smallest padded batch of one device's vmapped program
MIN_BUCKET = 8
#: a batch runs on a program already compiled for at most this many times its rows
REUSE_FACTOR = 4


def bucket_size(n: int, minimum: int = MIN_BUCKET) -> int:
    """The rows a batch of ``n`` θ points is padded to when no compiled program fits it: the
    smallest power of two ≥ max(n, ``minimum``).

    A vmapped program is compiled for one batch shape; a fit evaluates batches of many sizes
    (the Hessian's stencil, 2d skewness points, the integration design, a finite-difference
    gradient), and compiling a DEMF batch program costs seconds. Powers of two bound the
    programs of batches up to K by log₂ K; the largest padded batch is < 2K (what
    :func:`adelia.inference.memory.estimate_device_memory` must allow for on an accelerator).

    Example:
        >>> [bucket_size(n) for n in (1, 8, 9, 25)]
        [8, 8, 16, 32]
    """
    n = max(int(n), 1)
    return max(int(minimum), 1 << (n - 1).bit_length())


class _Buckets:
    """The padded sizes used so far, per signature of a batch's other arguments: a batch of n
    rows reuses the smallest of them in [n, REUSE_FACTOR·n] (its program is compiled already),
    else pads to :func:`bucket_size`. The Hessian's stencil (e.g. 32 points for d = 4) and
    the 2d skewness points then share one program."""

    def __init__(self, minimum: int):
        self.minimum = minimum
        self._sizes: dict = {}
        self._lock = threading.Lock()

    def size(self, n: int, signature) -> int:
        with self._lock:
            used = self._sizes.setdefault(signature, set())
            fits = [s for s in used if n <= s <= REUSE_FACTOR * n]
            size = min(fits) if fits else bucket_size(n, self.minimum)
            used.add(size)
            return size


def _signature(leaves) -> tuple:
    # a jax/NumPy array's own dtype (np.result_type of a jax array warns), a Python scalar's
    return tuple((np.shape(x), np.dtype(x.dtype if hasattr(x, "dtype") else np.result_type(x)).str,
                  bool(getattr(x, "weak_type", False))) for x in leaves)


def _padded(thetas: np.ndarray, rows: int) -> np.ndarray:
    """``thetas`` with its last row repeated up to ``rows`` rows (a valid point: the padding
    evaluates like a real one and is dropped from the outputs)."""
    return np.concatenate([thetas, np.repeat(thetas[-1:], rows - len(thetas), axis=0)])


# ------------------------------------------------------------------------------------------
# one device: one vmapped program
# ------------------------------------------------------------------------------------------

#: Private switch: run one device's batches as the vmapped program even on the CPU (the
#: accelerators' path), for tests and benchmarks/compile_count.py --accelerator-path. Read
#: when :func:`map_points` builds its function. Beware the deadlock of batched LAPACK calls
#: on the CPU described in the module docstring: one such batch at a time.
_VMAPPED_ON_HOST = False


class VmappedPoints:
    """``single(theta, *shared)`` at a batch of θ as one vmapped program on one device (the
    accelerators' path of :func:`map_points`).

    The program is a :func:`adelia.engine.hoisted_jit.hoisted_jit` of ``vmap(single)``: the
    model's data are its arguments, not literals, and its compiled executable is shared by
    fingerprint with every model of the same structure and shapes (a second fit compiles
    nothing). The batch (n, d) is padded by repeating its last row to the rows of a program
    compiled already (at most REUSE_FACTOR·n) or to :func:`bucket_size` (n); the padding is
    dropped from the outputs. Each row of the vmapped program is the single-point
    computation, so the rows do not depend on the padding.

    ``max_rows``: the most points the device holds at once (None: no limit). A larger batch
    runs as consecutive chunks of ``max_rows`` rows through one program of that many rows:
    a model whose factor fills most of a GPU (a 10⁶-latent space-time model) still fits its
    integration design, one or a few points at a time. The model sets it from its memory
    estimate (:func:`adelia.inference.memory.points_at_once`)."""

    def __init__(self, single: Callable, pool: dict | None = None, max_rows: int | None = None):
        fun = getattr(single, "fun", single)  # a HoistedJit: its traced function
        self.single = single
        self.batched = hoisted_jit(lambda thetas, *shared: jax.vmap(lambda t: fun(t, *shared))(thetas), pool)
        self._buckets = _Buckets(MIN_BUCKET)
        self.max_rows = max_rows

    def __call__(self, thetas, *shared):
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        n = len(thetas)
        limit = None if self.max_rows is None else max(1, int(self.max_rows))
        rows = self._buckets.size(n, (thetas.shape[1], _signature(jax.tree.leaves(shared))))
        if limit is None or rows <= limit:
            out = self.batched(_padded(thetas, rows), *shared)
            return jax.tree.map(lambda x: np.asarray(x)[:n], out)
        # chunks of `limit` rows, each copied to the host before the next is dispatched
        parts = []
        for start in range(0, n, limit):
            out = self.batched(_padded(thetas[start : start + limit], limit), *shared)
            parts.append(jax.tree.map(lambda x: np.asarray(x)[: min(limit, n - start)], out))
        return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts)


# ------------------------------------------------------------------------------------------
# several devices: the batch sharded over the "points" axis
# ------------------------------------------------------------------------------------------

class ShardedPoints:
    """``single(theta, *shared)`` over a batch of θ sharded over the ``"points"`` axis of
    ``mesh`` (module docstring; any other axis, e.g. a BTA solver's ``"time"``, is left to
    ``single``'s own ``shard_map``). ``vectorised``: a device evaluates its shard vmapped
    (default on accelerators) or point by point (``lax.map``; default on the CPU).

    The batch (K, d) is padded to K' = k·m rows by repeating its last row; device j gets rows
    [jm, (j+1)m); ``shared`` and the hoisted constants are replicated. Vectorised, the m rows
    of a device are those of a program compiled already (m ≤ REUSE_FACTOR·⌈K/k⌉) or the
    power of two ≥ ⌈K/k⌉ (:func:`bucket_size`; the devices run their rows side by side, so
    no minimum); point by point, m = ⌈K/k⌉ (a padded row would cost a whole evaluation).
    The programs, traced at a batch shape's first use, are shared by fingerprint with every
    model of the same structure on the same devices."""

    def __init__(self, single: Callable, mesh: Mesh, pool: dict | None = None, vectorised: bool | None = None):
        self.single = single
        self.vectorised = not on_host() if vectorised is None else vectorised
        self.mesh = mesh
        self.size = mesh.shape[POINTS_AXIS]
        self._pool = {} if pool is None else pool
        self._programs: dict = {}
        self._buckets = _Buckets(1)
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

    def _program(self, thetas, shared_leaves, shared_tree):
        key = (thetas.shape, shared_tree, _signature(shared_leaves))
        with self._lock:
            hit = self._programs.get(key)
            if hit is not None:
                return hit
            everywhere = gathered(self.mesh)
            out_tree = []

            def local(thetas, leaves):
                shared = jax.tree.unflatten(shared_tree, leaves)
                one = lambda t: self.single(t, *shared)  # noqa: E731
                out = jax.vmap(one)(thetas) if self.vectorised else jax.lax.map(one, thetas)
                flat, tree = jax.tree.flatten(out)
                out_tree.append(tree)
                # a mesh over several processes: every device gets the whole batch's outputs,
                # so that each process's driver can read them
                return [jax.lax.all_gather(o, POINTS_AXIS, tiled=True) for o in flat] if everywhere else flat

            spec = PartitionSpec(POINTS_AXIS)
            sharded = jax.shard_map(
                local,
                mesh=self.mesh,
                in_specs=(spec, PartitionSpec()),
                out_specs=PartitionSpec() if everywhere else spec,
                # manual over "points" only: a BTA solver's kernels nest their own shard_map
                # over "time" (bta_solver._Kernels); check_vma=False: the single-point
                # computation is written without pvary marks
                axis_names=frozenset({POINTS_AXIS}),
                check_vma=False,
            )
            # traced as a whole (the single-point computation inside the region manual over
            # "points", where the kernels find their nested mesh); the arrays it closes over
            # come out as the jaxpr's consts and are passed as replicated arguments
            closed = jax.make_jaxpr(sharded)(thetas, list(shared_leaves))
            consts = [self._replicated(c) for c in closed.consts]
            # shared by fingerprint; the jaxpr's text names the mesh's shape, not its devices
            program = shared_program(closed, out_tree[0], (tuple(self.mesh.axis_names),
                                                          tuple(d.id for d in self.mesh.devices.flat)))
            hit = self._programs[key] = (program, consts, out_tree[0])
            return hit

    def __call__(self, thetas, *shared):
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        n = len(thetas)
        leaves, shared_tree = jax.tree.flatten(shared)
        per_device = -(-n // self.size)
        if self.vectorised:
            per_device = self._buckets.size(per_device, (thetas.shape[1], shared_tree, _signature(leaves)))
        padded = _padded(thetas, per_device * self.size)
        program, consts, out_tree = self._program(jax.ShapeDtypeStruct(padded.shape, thetas.dtype), leaves, shared_tree)
        replicated = NamedSharding(self.mesh, PartitionSpec())
        leaves = [jax.device_put(x, replicated) for x in leaves]
        batch = jax.device_put(padded, NamedSharding(self.mesh, PartitionSpec(POINTS_AXIS)))
        out = program(consts, [batch, *leaves])
        return jax.tree.unflatten(out_tree, [np.asarray(x)[:n] for x in out])


def map_points(single: Callable, devices=None, pool: dict | None = None) -> Callable:
    """A compiled single-point function ``single(theta, *shared)`` -> a function of
    (thetas (k, d), *shared) returning its outputs stacked along a new first axis as NumPy
    arrays: on one device, :func:`threaded_points` on the CPU and one vmapped program on
    accelerators (:class:`VmappedPoints`: padded batch sizes, programs shared by the models
    of one structure); on several devices (``devices``, see :func:`points_mesh`), the batch
    sharded over them (:class:`ShardedPoints`). ``pool``: the model's dict of device copies
    of its data (:func:`adelia.engine.hoisted_jit.hoisted_jit`), shared by its programs.

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
    if on_host() and not _VMAPPED_ON_HOST:
        run = lambda thetas, *shared: threaded_points(single, thetas, *shared)  # noqa: E731
        run.threaded = True
        return run
    run = VmappedPoints(single, pool)
    run.threaded = False
    return run
