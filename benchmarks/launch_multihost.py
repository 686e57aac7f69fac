"""Launch one adelia fit script as N ``jax.distributed`` processes on this machine.

    python benchmarks/launch_multihost.py -n 2 [--devices-per-process 2] [--cpu] fit.py [args...]

Each process runs ``fit.py args...`` with ``ADELIA_COORDINATOR_ADDRESS`` (127.0.0.1 and a free
port), ``ADELIA_NUM_PROCESSES`` and ``ADELIA_PROCESS_ID`` set; the script's first lines call
:func:`adelia.engine.multihost.initialize` (which reads them), then fit as usual — the same
script, the same data in every process. Batches of θ points are sharded over the devices of
all processes; every process ends with the same result (write it from process 0 only, or
from each to compare). On the CPU, ``--devices-per-process k`` gives each process k host
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=k``) and the processes' collectives
go through gloo.

A minimal fit script::

    from adelia.engine import multihost
    multihost.initialize()                      # before anything else touches jax
    import adelia
    res = adelia.inla(formula, data, family="gaussian", control_inla={"solver": "bta"})
    if multihost.process_index() == 0:
        res.summary_hyperpar.to_csv("hyper.csv")

On a cluster (the real multi-host use) there is no launcher to run: start the same script on
every host with the three variables set by hand or by the scheduler (host 0's address and a
port open between the hosts, N, and the host's index), or call
``multihost.initialize(coordinator_address="host0:12345", num_processes=N, process_id=i)``;
under SLURM or Open MPI, ``multihost.initialize()`` with nothing set lets JAX read the
scheduler's own variables.

The launcher returns the first non-zero exit status of the processes (0 when all succeed);
when one process fails the others are stopped (they would wait forever in a collective; an
uncaught exception ends its process at once, see :func:`adelia.engine.multihost.initialize`).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port nobody listens on now (the coordinator binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    argv: list[str],
    num_processes: int = 2,
    devices_per_process: int | None = None,
    cpu: bool = False,
    timeout: float | None = None,
    python: str = sys.executable,
) -> int:
    """Run ``python argv...`` as ``num_processes`` processes of one ``jax.distributed`` run;
    their exit status (module docstring). ``timeout``: seconds before every process is stopped
    (status 124)."""
    address = f"127.0.0.1:{free_port()}"
    procs = []
    for i in range(num_processes):
        env = dict(
            os.environ,
            ADELIA_COORDINATOR_ADDRESS=address,
            ADELIA_NUM_PROCESSES=str(num_processes),
            ADELIA_PROCESS_ID=str(i),
        )
        if cpu:
            env["JAX_PLATFORMS"] = "cpu"
        if devices_per_process:
            flags = [f for f in env.get("XLA_FLAGS", "").split() if "host_platform_device_count" not in f]
            env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices_per_process}"])
        procs.append(subprocess.Popen([python, *argv], env=env))
    deadline = None if timeout is None else time.monotonic() + timeout
    status = 0
    try:
        while [p.poll() for p in procs].count(None):  # poll every process (any() would stop at the first)
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed or (deadline is not None and time.monotonic() > deadline):
                status = failed[0] if failed else 124
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return status or next((p.returncode for p in procs if p.returncode), 0)


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--num-processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=None, help="host devices per process (CPU)")
    parser.add_argument("--cpu", action="store_true", help="JAX_PLATFORMS=cpu in every process")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before the processes are stopped")
    parser.add_argument("script", help="the fit script every process runs")
    parser.add_argument("script_args", nargs=argparse.REMAINDER)
    a = parser.parse_args(args)
    return launch([a.script, *a.script_args], a.num_processes, a.devices_per_process, a.cpu, a.timeout)


if __name__ == "__main__":
    sys.exit(main())
