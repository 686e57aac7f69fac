"""The host's cores, shared by batches of θ points and the parallel sparse kernels.

A fit on the CPU has two sources of parallelism: independent θ points (an integration
design, a finite-difference stencil; :mod:`adelia.engine.batching` runs them on host
threads) and, within one factorisation or selected inversion, independent subtrees of the
elimination tree (:mod:`adelia.engine.supernodal`). The two are not combined: while a batch
of points runs on threads (:func:`points_in_parallel`) every kernel runs on one thread, since
the points already keep the cores busy and splitting each kernel as well only adds waiting
(measured on P3: four value-and-gradients on two cores, 3.6 s one after another with split
kernels, 4.2 s as a batch with split kernels, 3.3 s as a batch with whole kernels). Alone —
each step of the sequential mode search — a kernel large enough to split asks for
``kernel_threads()`` cores; :func:`claim_cores` takes one token of ``host_workers()`` for the
calling thread (waiting while other kernels hold them all) and as many more as are free at
once, so splitting kernels started from the user's own threads never run more compute
threads than cores between them. Kernels too small to split claim nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from ..errors import ConfigurationError


def host_workers() -> int:
    """Threads used on the CPU (``ADELIA_NUM_THREADS``, default: the number of cores this
    process may use). A value that is not a positive integer raises ConfigurationError
    rather than being replaced silently: the user asked for something definite."""
    env = os.environ.get("ADELIA_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigurationError(
                f"ADELIA_NUM_THREADS={os.environ['ADELIA_NUM_THREADS']!r} is not valid: it must be a "
                "positive integer (the number of CPU threads adelia uses, e.g. ADELIA_NUM_THREADS=4); "
                "unset it to use every core this process may use."
            )
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_lock = threading.Lock()
_tokens: threading.Semaphore | None = None
_pool: ThreadPoolExecutor | None = None
_size = 0
_batches = 0  # batches of points now running on threads


def _state() -> tuple[threading.Semaphore, ThreadPoolExecutor]:
    global _tokens, _pool, _size
    with _lock:
        n = host_workers()
        if _tokens is None or n != _size:  # ADELIA_NUM_THREADS changed: a fresh pool
            _tokens, _size = threading.Semaphore(n), n
            _pool = ThreadPoolExecutor(max_workers=max(n - 1, 1), thread_name_prefix="adelia-kernel")
        return _tokens, _pool


@contextlib.contextmanager
def points_in_parallel() -> Iterator[None]:
    """Mark a batch of points running on host threads: kernels stay on one thread meanwhile."""
    global _batches
    with _lock:
        _batches += 1
    try:
        yield
    finally:
        with _lock:
            _batches -= 1


def kernel_threads() -> int:
    """Threads one kernel call may ask for now: 1 while a batch of points runs, else all."""
    return 1 if _batches else host_workers()


@contextlib.contextmanager
def claim_cores(wanted: int) -> Iterator[int]:
    """Hold between 1 and ``wanted`` cores for one kernel call; yields how many."""
    tokens, _ = _state()
    tokens.acquire()
    held = 1
    while held < wanted and tokens.acquire(blocking=False):
        held += 1
    try:
        yield held
    finally:
        for _ in range(held):
            tokens.release()


def run_concurrently(tasks: Sequence[Callable[[], object]]) -> list:
    """Run the callables at once (the first in this thread, the others on the kernel pool)
    and return their results in order; the callers have claimed the cores."""
    if len(tasks) <= 1:
        return [t() for t in tasks]
    _, pool = _state()
    futures = [pool.submit(t) for t in tasks[1:]]
    first = tasks[0]()
    return [first, *(f.result() for f in futures)]
