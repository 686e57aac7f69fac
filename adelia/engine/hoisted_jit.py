"""``jax.jit`` for functions that close over large data arrays: the arrays become arguments.

adelia's objective, design-point and strategy functions are closures over the model's data
(responses, offsets, the index arrays of A and of the precision patterns, prior means): a
model with n latent nodes closes over ~50 n numbers in ~30 arrays. Under ``jax.jit`` each
of them is a *closed-over constant*, which JAX (0.10, by default) embeds as a literal in the
lowered HLO (https://docs.jax.dev/en/latest/internals/constants.html). XLA then compiles
a program holding tens to hundreds of MB of literals, and compile time and memory grow with
n: the Laplace objective and its gradient of a Poisson iid model with 10⁵ groups compiled
in ~9 s (one numeric evaluation: 0.2 s), and the literals make every compiled program's key
in the persistent compilation cache depend on the data, so no fit reuses another's program.

:func:`hoisted_jit` traces the function once per argument signature with
``jax.make_jaxpr``, which collects the closed-over arrays as the jaxpr's ``consts``, and
compiles ``jaxpr(consts, *args)`` with the consts passed as ordinary (device-resident)
arguments. The program is the same computation, so results are identical to ``jax.jit``;
compile time no longer depends on the data (3.5 s instead of 9 s for the example above)
and the persistent cache hits for any data of the same shapes. (JAX's own
``jax_use_simplified_jaxpr_constants`` hoists constants the same way, process-wide, but
it is a transitional flag, and with jaxlib 0.10 host callbacks from concurrently running
programs deadlocked under it.)

Programs are shared in the process by what they compute, not by the Python function that
was traced: two models of the same structure and shapes (a second ``adelia.inla`` call with
the same formula, the same formula on new data) trace to the same jaxpr, and the second
reuses the first's compiled executable (:func:`program_fingerprint`), skipping the lowering
to MLIR and the compilation or persistent-cache retrieval (together ~0.2 s of a 0.5 s Seeds
fit). :meth:`HoistedJit.precompile` compiles a program ahead of its first call, e.g. on a
second thread while the first program runs.

Calls with traced arguments (inside an outer ``jit``/``vmap``/``grad``) call the function
itself, so a wrapped function composes like a plain one.

Example:
    >>> import numpy as np, jax.numpy as jnp
    >>> data = np.arange(5.0)
    >>> f = hoisted_jit(lambda a: jnp.sum(a * jnp.asarray(data)))
    >>> float(f(jnp.ones(5)))
    10.0
"""

from __future__ import annotations

import enum
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, jaxpr_as_fun

# Parameters that never reach the compiled program: the differentiation rules of
# custom_jvp/custom_vjp calls (lowering uses their primal ``call_jaxpr`` only).
_RULE_PARAMS = frozenset({"jvp_jaxpr_fun", "jvp_jaxpr_thunk", "fwd_jaxpr_thunk", "bwd", "out_trees", "symbolic_zeros"})
# Parameter types that the jaxpr's text prints completely, by value.
_PRINTED_BY_VALUE = frozenset({
    "UnspecifiedValue", "Mesh", "AbstractMesh", "GatherDimensionNumbers", "ScatterDimensionNumbers",
    "ConvDimensionNumbers", "MemorySpace", "Precision", "DotAlgorithmPreset", "PartitionSpec", "NamedSharding",
    "ShapedArray",
})
MAX_SHARED_PROGRAMS = 64
_shared_programs: OrderedDict = OrderedDict()  # fingerprint -> (jitted program, anchors)
_shared_lock = threading.Lock()
# One trace at a time: tracing runs adelia's model code, whose lazily built structures are not
# meant to be built by two threads at once (and tracing holds the GIL anyway); compilation,
# outside this lock, runs concurrently (HoistedJit.precompile on a second thread).
_trace_lock = threading.RLock()


def program_fingerprint(closed: ClosedJaxpr, out_tree) -> tuple[tuple, list]:
    """A key equal for two traced programs exactly when they compile to the same executable,
    and the objects the key refers to by identity.

    The key is the jaxpr's text (every equation with its parameters and the shapes and dtypes
    of every variable; the consts are arguments, so their values are not part of it), the
    weak types of its inputs and the output tree. Parameters the text cannot show by value —
    a host callback's Python function, a sub-jaxpr's own constants other than NumPy arrays —
    enter by identity, and the caller keeps them alive with the program, so that an identity is never reused by
    another object while the key exists: programs with host callbacks are shared only by
    the calls that trace to the very same callbacks.

    A sub-jaxpr's NumPy constants (the index maps an inner ``jax.jit`` closes over, e.g. a BTA
    solver's scatter maps) enter by value (dtype, shape, weak type and a digest of their
    bytes): the program embeds them as literals, so equal values compile to the same
    executable, and each trace wraps them in new objects — keyed by identity, a second model
    of the same structure (or a refit) recompiled every program that holds one."""
    opaque: list = []
    by_value: list = []

    def constant(value) -> None:
        if isinstance(value, np.ndarray) and value.dtype.kind != "O":
            array = np.ascontiguousarray(value)
            digest = hashlib.blake2b(array.view(np.uint8).reshape(-1), digest_size=16).hexdigest()
            by_value.append((array.dtype.str, np.shape(value), bool(getattr(value, "weak_type", False)), digest))
        else:
            opaque.append(value)

    def visit(value) -> None:
        if isinstance(value, Jaxpr):
            walk(value)
        elif isinstance(value, ClosedJaxpr):
            walk(value.jaxpr)
            for c in value.consts:
                constant(c)
        elif isinstance(value, (tuple, list, frozenset)):
            for v in value:
                visit(v)
        elif value is None or isinstance(value, (bool, int, float, complex, str, np.dtype, np.generic, enum.Enum)):
            pass
        elif type(value).__name__ not in _PRINTED_BY_VALUE:
            opaque.append(value)

    def walk(jaxpr: Jaxpr) -> None:
        for eqn in jaxpr.eqns:
            for name, value in eqn.params.items():
                if name not in _RULE_PARAMS:
                    visit(value)

    walk(closed.jaxpr)
    weak = tuple(bool(getattr(v.aval, "weak_type", False)) for v in (*closed.jaxpr.constvars, *closed.jaxpr.invars))
    key = (str(closed.jaxpr), weak, str(out_tree), tuple(id(o) for o in opaque), tuple(by_value))
    return key, opaque


def shared_program(closed: ClosedJaxpr, out_tree, extra_key: tuple = ()):
    """The process-wide compiled program for ``closed`` (made on first request), called as
    ``program(consts, flat_args)``; keyed by :func:`program_fingerprint` and ``extra_key``
    (e.g. the devices of a mesh, which the jaxpr's text names only by shape). The least
    recently used of more than :data:`MAX_SHARED_PROGRAMS` are dropped."""
    key, anchors = program_fingerprint(closed, out_tree)
    key = (key, extra_key)
    with _shared_lock:
        hit = _shared_programs.get(key)
        if hit is not None:
            _shared_programs.move_to_end(key)
            return hit[0]
        jaxpr = closed.jaxpr

        def run(consts, flat_args):
            return jaxpr_as_fun(ClosedJaxpr(jaxpr, consts))(*flat_args)

        program = jax.jit(run)
        _shared_programs[key] = (program, anchors)
        if len(_shared_programs) > MAX_SHARED_PROGRAMS:
            _shared_programs.popitem(last=False)
        return program


def _dtype(leaf) -> str:
    dtype = getattr(leaf, "dtype", None)
    return np.dtype(dtype).str if dtype is not None else np.result_type(leaf).str


class HoistedJit:
    """A function compiled with its closed-over constants passed as arguments (see module)."""

    def __init__(self, fun: Callable, pool: dict | None = None):
        self.fun = fun
        self._programs: dict = {}
        self._lock = threading.Lock()
        self._pool = {} if pool is None else pool

    def _device_const(self, c):
        """The device copy of a closed-over array, shared through the pool by every program
        that closes over the same host buffer (each copy of a 10⁶-node model's data is ~0.4 GB)."""
        if not isinstance(c, np.ndarray):
            return c
        host = np.asarray(c)
        key = (host.__array_interface__["data"][0], host.shape, host.strides, host.dtype.str)
        hit = self._pool.get(key)
        if hit is None:
            # the host array is kept with its copy, so that its address is not reused meanwhile
            hit = self._pool[key] = (host, jax.device_put(host))
        return hit[1]

    def _program(self, key, args):
        with self._lock:
            prog = self._programs.get(key)
            if prog is None:
                with _trace_lock:
                    closed, out_shape = jax.make_jaxpr(self.fun, return_shape=True)(*args)
                out_tree = jax.tree.structure(out_shape)
                consts = [self._device_const(c) for c in closed.consts]
                prog = (shared_program(closed, out_tree), consts, out_tree)
                self._programs[key] = prog
            return prog

    @staticmethod
    def _signature(leaves, treedef) -> tuple:
        return (treedef, tuple((np.shape(leaf), _dtype(leaf), getattr(leaf, "weak_type", False)) for leaf in leaves))

    def __call__(self, *args):
        leaves, treedef = jax.tree.flatten(args)
        if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
            return self.fun(*args)
        compiled, consts, out_tree = self._program(self._signature(leaves, treedef), args)
        return jax.tree.unflatten(out_tree, compiled(consts, leaves))

    def precompile(self, *args) -> None:
        """Trace and compile the program for arguments like ``args`` without running it (a
        later call with arguments of the same shapes runs the compiled executable at once)."""
        leaves, treedef = jax.tree.flatten(args)
        compiled, consts, _ = self._program(self._signature(leaves, treedef), args)
        compiled.lower(consts, leaves).compile()

    def _cache_size(self) -> int:
        """Compiled programs so far, as ``jax.jit``'s ``_cache_size`` (a recompilation per θ
        would show here)."""
        with self._lock:
            return sum(compiled._cache_size() for compiled, _, _ in self._programs.values())


def hoisted_jit(fun: Callable, pool: dict | None = None) -> HoistedJit:
    """``jax.jit(fun)`` with ``fun``'s closed-over arrays hoisted to arguments (module docstring).

    Positional arguments only (arrays or pytrees of arrays); no static arguments. ``pool``: a
    dict shared by the functions of one model, so that their programs share one device copy
    of each data array (it lives as long as the dict)."""
    return HoistedJit(fun, pool)
