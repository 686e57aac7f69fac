"""Running one fit over several processes (hosts) with JAX's distributed runtime.

Every process runs the same Python driver — the same script, the same data — and takes the
same steps: the fit is deterministic (BFGS, the integration design, the Newton iterations),
so the processes agree on every θ they evaluate without exchanging anything but the batches.
What is shared is the batch of θ points (integration design, Hessian/skewness stencils, FD
gradients): :func:`adelia.engine.batching.points_mesh` builds its mesh over the *global*
devices (``jax.devices()``: every process's) once :func:`initialize` has run, each device
evaluates its shard of the batch, and the outputs are gathered onto every device
(``lax.all_gather`` inside the ``shard_map``) so that each process's driver reads the whole
batch (:func:`gathered`). A single θ (the objective and gradient of the mode search) runs on
each process's own first device, the same on all of them.

On the CPU the processes' collectives go through gloo (jaxlib's CPU collectives; the
default of ``jax_cpu_collectives_implementation`` in jax 0.10, set here explicitly); on GPUs
through NCCL. One machine with N processes is launched by ``benchmarks/launch_multihost.py``.

A cluster (the real multi-host use), the same script on every host::

    # on host i of N (i = 0 on the coordinator), before anything else touches jax:
    from adelia.engine import multihost
    multihost.initialize(coordinator_address="host0.example:12345", num_processes=N, process_id=i)
    res = adelia.inla(formula, data, ..., control_inla={"solver": "bta"})   # devices: every global device
    if multihost.process_index() == 0:
        res.summary_fixed.to_csv("fixed.csv")

or with the environment variables ``ADELIA_COORDINATOR_ADDRESS``, ``ADELIA_NUM_PROCESSES`` and
``ADELIA_PROCESS_ID`` set by the launcher (``initialize()`` with no arguments reads them; under
SLURM / Open MPI, JAX's own detection fills them in when none is set).
"""

from __future__ import annotations

import os
import sys

import jax

#: the environment variables :func:`initialize` reads when called without arguments
COORDINATOR_ENV = "ADELIA_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "ADELIA_NUM_PROCESSES"
PROCESS_ID_ENV = "ADELIA_PROCESS_ID"


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids=None,
    cpu_collectives: str = "gloo",
) -> None:
    """Join this process to a multi-process run: ``jax.distributed.initialize`` with CPU
    collectives through ``cpu_collectives`` (``"gloo"``; ``"mpi"`` where jaxlib has it). Must run
    before the first jax computation of the process (jax refuses otherwise).

    Args:
        coordinator_address: ``"host:port"`` of process 0 (default: ``$ADELIA_COORDINATOR_ADDRESS``).
        num_processes: N (default: ``$ADELIA_NUM_PROCESSES``).
        process_id: this process's index in 0..N−1 (default: ``$ADELIA_PROCESS_ID``).
        local_device_ids: the local devices this process uses (jax's argument; default all).
        cpu_collectives: ``jax_cpu_collectives_implementation``.

    With none of the three given nor set in the environment, jax's own cluster detection
    (SLURM, Open MPI, Kubernetes...) supplies them.

    An uncaught exception then ends the process at once (its traceback printed, status 1)
    rather than waiting in jax's shutdown barrier for processes that wait for it.

    Example:
        >>> initialize("127.0.0.1:12345", num_processes=2, process_id=0)  # doctest: +SKIP
        >>> jax.process_count()  # doctest: +SKIP
        2
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get(COORDINATOR_ENV)
    if num_processes is None and env.get(NUM_PROCESSES_ENV):
        num_processes = int(env[NUM_PROCESSES_ENV])
    if process_id is None and env.get(PROCESS_ID_ENV):
        process_id = int(env[PROCESS_ID_ENV])
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )
    _exit_on_uncaught_error()


def _exit_on_uncaught_error() -> None:
    """An uncaught exception ends the process at once (status 1, after its traceback): a
    normal exit would wait in jax.distributed's shutdown barrier for processes that in turn
    wait for this one in their next collective — the whole run would hang."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)

    sys.excepthook = hook


def is_multi_process() -> bool:
    """Whether this process is one of several of a ``jax.distributed`` run."""
    return jax.process_count() > 1


def process_index() -> int:
    """This process's index (0 on the coordinator; 0 in a single-process run)."""
    return jax.process_index()


def run_devices(backend: str | None = None) -> list:
    """The devices a batch of θ points may use: every process's (``jax.devices()``, ordered by
    process) in a multi-process run, this process's (``jax.local_devices()``) otherwise."""
    return jax.devices(backend) if is_multi_process() else jax.local_devices(backend=backend)


def gathered(mesh) -> bool:
    """Whether a batch sharded over ``mesh`` must gather its outputs onto every device: when
    the mesh spans several processes, a process can read only its own devices' shards."""
    return bool(getattr(mesh, "is_multi_process", False))


__all__ = ["gathered", "initialize", "is_multi_process", "process_index", "run_devices"]
