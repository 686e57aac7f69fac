"""Host kernels called from compiled programs by name, so that the programs can be cached.

The sparse backend's kernels (supernodal factorisation, solves, selected inversion) run on
the host in numba/NumPy. ``jax.pure_callback`` would call them, but it bakes a pointer to the
Python function into the compiled program: JAX then never writes such a program to the
persistent compilation cache, and two models of the same structure never share one, so every
``adelia.inla`` call of a model on the sparse backend compiled its programs from scratch
(1.5–5 s for a Germany-sized model, where running the fit takes 0.5 s).

Here every host kernel is one XLA FFI call to a single target, ``adelia_host_kernel``,
registered once per process: a C-callable handler (ctypes) that reads XLA's call frame
(``xla/ffi/api/c_api.h``: buffers with their shapes, attributes by name). The call's string
attribute ``spec`` names *what* to run — a kernel set registered under the fingerprint of its
structure (:func:`register_kernels`), the kernel's name and the core ranks of its inputs and
outputs — never *where* it lives in this process' memory. A program is then a pure function of
its text: it is written to and loaded from the persistent cache, and shared in the process by
every model whose kernels have the same structure (:mod:`adelia.engine.hoisted_jit`).

Batching (``vmap_method="expand_dims"``): each vmap level adds one leading axis to every
argument (size 1 where unbatched); the handler loops over the broadcast batch, one kernel call
per element (a kernel set caches factors by their values, so shared values factorise once).

A kernel that raises (it should not: failures are NaN / -inf by design) fills its outputs
with NaN and the exception is reported as a warning with its traceback; the program goes on.

Example:
    >>> import numpy as np, jax.numpy as jnp
    >>> class Doubler:
    ...     def twice(self, x):
    ...         return (2.0 * x,)
    >>> doubler = Doubler()
    >>> key = register_kernels("doctest-doubler", doubler)
    >>> host_call(key, "twice", [(3,)], jnp.arange(3.0))[0]
    Array([0., 2., 4.], dtype=float64)
"""

from __future__ import annotations

import ctypes
import json
import threading
import traceback
import weakref
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

TARGET = "adelia_host_kernel"

# fingerprint -> kernel set; entries live as long as some solver holds the kernel set
_kernel_sets: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()
_kernel_sets_lock = threading.Lock()
_parsed_specs: dict[bytes, tuple] = {}  # spec -> (key, kernel name, input core ranks, output core ranks)


def register_kernels(fingerprint: str, kernels: object) -> str:
    """Register ``kernels`` (an object whose methods take and return NumPy float64 arrays)
    under ``fingerprint``, the digest of everything that determines what its methods compute.
    If a kernel set with this fingerprint is alive already, it is kept (the caller should use
    :func:`registered_kernels` to share it). Returns the fingerprint."""
    with _kernel_sets_lock:
        if _kernel_sets.get(fingerprint) is None:
            _kernel_sets[fingerprint] = kernels
    return fingerprint


def registered_kernels(fingerprint: str) -> object | None:
    """The live kernel set registered under ``fingerprint``, or None."""
    with _kernel_sets_lock:
        return _kernel_sets.get(fingerprint)


class _ByteSpan(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Buffer(ctypes.Structure):  # XLA_FFI_Buffer
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("data", ctypes.c_void_p), ("rank", ctypes.c_int64), ("dims", ctypes.POINTER(ctypes.c_int64))]


class _List(ctypes.Structure):  # XLA_FFI_Args / XLA_FFI_Rets
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p), ("size", ctypes.c_int64),
                ("types", ctypes.POINTER(ctypes.c_int)), ("items", ctypes.POINTER(ctypes.c_void_p))]


class _Attrs(ctypes.Structure):  # XLA_FFI_Attrs
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p), ("size", ctypes.c_int64),
                ("types", ctypes.POINTER(ctypes.c_int)), ("names", ctypes.POINTER(ctypes.POINTER(_ByteSpan))),
                ("attrs", ctypes.POINTER(ctypes.c_void_p))]


class _CallFrame(ctypes.Structure):  # XLA_FFI_CallFrame
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p), ("api", ctypes.c_void_p),
                ("ctx", ctypes.c_void_p), ("stage", ctypes.c_int), ("args", _List), ("rets", _List),
                ("attrs", _Attrs), ("future", ctypes.c_void_p)]


class _ExtensionBase(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("type", ctypes.c_int), ("next", ctypes.c_void_p)]


class _ApiVersion(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.c_void_p),
                ("major_version", ctypes.c_int), ("minor_version", ctypes.c_int)]


class _Metadata(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("api_version", _ApiVersion), ("traits", ctypes.c_uint32),
                ("state_type_id", ctypes.c_int64)]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", ctypes.POINTER(_Metadata))]


_EXTENSION_METADATA = 1  # XLA_FFI_Extension_Metadata
_STAGE_EXECUTE = 3  # XLA_FFI_ExecutionStage_EXECUTE
_FFI_API_VERSION = (0, 1)  # XLA_FFI_API_MAJOR / a minor every XLA that has the typed FFI accepts
_F64 = 12  # XLA_FFI_DataType_F64
_ATTR_STRING = 4  # XLA_FFI_AttrType_STRING


def _array(buffer: _Buffer) -> np.ndarray:
    """A NumPy view of an XLA buffer (float64, row-major)."""
    shape = tuple(buffer.dims[i] for i in range(buffer.rank))
    size = int(np.prod(shape, dtype=np.int64))
    if size == 0:
        return np.empty(shape)
    return np.frombuffer((ctypes.c_double * size).from_address(buffer.data), dtype=np.float64).reshape(shape)


def _spec(frame: _CallFrame) -> tuple:
    attrs = frame.attrs
    for i in range(attrs.size):
        name = attrs.names[i].contents
        if ctypes.string_at(name.ptr, name.len) == b"spec" and attrs.types[i] == _ATTR_STRING:
            value = ctypes.cast(attrs.attrs[i], ctypes.POINTER(_ByteSpan)).contents
            text = ctypes.string_at(value.ptr, value.len)
            parsed = _parsed_specs.get(text)
            if parsed is None:
                spec = json.loads(text.decode())
                parsed = _parsed_specs[text] = (spec["key"], spec["kernel"], spec["in"], [tuple(s) for s in spec["out"]])
            return parsed
    raise RuntimeError("host kernel call without its 'spec' attribute")


def _run_batched(kernel, args: list[np.ndarray], core_ranks: list[int], outputs: list[np.ndarray], out_cores) -> None:
    """Run a one-matrix kernel over the leading (broadcast) batch axes of its arguments."""
    batch = np.broadcast_shapes(*(a.shape[: a.ndim - k] for a, k in zip(args, core_ranks)))
    args = [np.broadcast_to(a, batch + a.shape[a.ndim - k:]) for a, k in zip(args, core_ranks)]
    for idx in np.ndindex(*batch):
        results = kernel(*(np.array(a[idx]) for a in args))
        for out, res, core in zip(outputs, results, out_cores):
            np.copyto(out[idx + (Ellipsis,)], np.broadcast_to(np.asarray(res, dtype=np.float64), core))


def _handle(frame_address: int) -> None:
    """The FFI handler (XLA_FFI_Error* f(XLA_FFI_CallFrame*)); returns NULL: success."""
    frame = _CallFrame.from_address(frame_address)
    if frame.extension_start:
        extension = _ExtensionBase.from_address(frame.extension_start)
        if extension.type == _EXTENSION_METADATA:  # XLA asks which FFI version the handler speaks
            metadata = _MetadataExtension.from_address(frame.extension_start).metadata.contents
            metadata.api_version = _ApiVersion(ctypes.sizeof(_ApiVersion), None, *_FFI_API_VERSION)
            metadata.traits = 0
            return None
    if frame.stage != _STAGE_EXECUTE:
        return None
    outputs = [_array(ctypes.cast(frame.rets.items[i], ctypes.POINTER(_Buffer)).contents) for i in range(frame.rets.size)]
    kernel_name = "?"
    try:
        key, kernel_name, in_ranks, out_cores = _spec(frame)
        kernels = registered_kernels(key)
        if kernels is None:
            raise RuntimeError(f"no host kernels registered under {key} in this process")
        buffers = [ctypes.cast(frame.args.items[i], ctypes.POINTER(_Buffer)).contents for i in range(frame.args.size)]
        if any(b.dtype != _F64 for b in buffers):
            raise TypeError("host kernels take float64 arrays")
        _run_batched(getattr(kernels, kernel_name), [_array(b) for b in buffers], in_ranks, outputs, out_cores)
    except BaseException:  # noqa: BLE001 — an exception must not cross into XLA's C frames
        for buf in outputs:
            buf.fill(np.nan)
        from ..user_warnings import warn

        warn(f"host kernel {kernel_name!r} failed; its outputs are NaN:\n{traceback.format_exc()}", RuntimeWarning)
    return None


_HANDLER_TYPE = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_handler = _HANDLER_TYPE(_handle)  # kept alive for the life of the process


def _register_target() -> None:
    capsule_new = ctypes.pythonapi.PyCapsule_New
    capsule_new.restype = ctypes.py_object
    capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    capsule = capsule_new(ctypes.cast(_handler, ctypes.c_void_p), b"xla._CUSTOM_CALL_TARGET", None)
    jax.ffi.register_ffi_target(TARGET, capsule, platform="cpu", api_version=1)


_register_target()


def host_call(key: str, kernel: str, out_shapes: Sequence[tuple], *args) -> tuple:
    """``kernels.<kernel>(*args)`` of the kernel set registered under ``key``, from inside a
    compiled program; float64 arrays in, a tuple of float64 arrays of ``out_shapes`` out
    (one matrix's; under ``jax.vmap`` with the batch axes in front)."""
    args = [jnp.asarray(a, dtype=jnp.float64) for a in args]
    out_shapes = [tuple(int(d) for d in s) for s in out_shapes]
    spec = json.dumps({"key": key, "kernel": kernel, "in": [a.ndim for a in args], "out": [list(s) for s in out_shapes]},
                      separators=(",", ":"))
    results = [jax.ShapeDtypeStruct(s, jnp.float64) for s in out_shapes]
    return tuple(jax.ffi.ffi_call(TARGET, results, vmap_method="expand_dims")(*args, spec=spec))
