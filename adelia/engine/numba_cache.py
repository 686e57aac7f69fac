"""numba's on-disk cache for adelia's compiled kernels, robust to where adelia is installed.

The sparse kernels (:mod:`adelia.engine.supernodal`, :mod:`adelia.engine.supernodal_symbolic`,
:mod:`adelia.engine.numba_lapack`) are compiled by numba and cached on disk, so that a fresh
process loads them in milliseconds instead of compiling them for seconds. ``@njit(cache=True)``
alone fails in two situations users meet:

* **Nowhere to write.** numba looks for a cache directory in ``$NUMBA_CACHE_DIR``, the
  package's ``__pycache__`` and ``~/.cache/numba``; when none is writable (a read-only
  site-packages and a read-only or absent HOME: containers, cluster nodes) the *decoration*
  raises ``RuntimeError: cannot cache function '_etree'`` and ``import adelia`` is broken.
  Here a fourth place is tried last: ``<tempdir>/adelia-numba-<uid>`` (per user, since a
  shared /tmp entry of another user is not writable); with no writable place at all the
  kernels are compiled in every process, never an error.
* **A damaged cache file.** An index (``*.nbi``) or data file (``*.nbc``) left empty or
  truncated (a full disk, a killed process, a copied tree) makes numba's loader raise
  ``EOFError`` or an unpickling error on every later call, until someone deletes the file.
  Here a cache entry that cannot be read is treated as absent: the damaged index is removed
  (best effort), the function is compiled, and the fresh result is saved over it. Saving
  is best effort too: a failed write leaves a working, uncached function.

Both are done by :func:`cached_njit`, which is ``numba.njit`` with numba's own
``FunctionCache`` replaced by the subclass below for adelia's functions only (the process's
other numba users keep numba's behaviour and ``$NUMBA_CACHE_DIR`` still comes first). It
relies on two numba internals, stable since numba 0.49: ``Dispatcher._cache`` (what
``enable_caching`` sets) and ``CacheImpl._locator_classes``.
"""

from __future__ import annotations

import os
import tempfile

from numba import njit
from numba.core import caching


def fallback_cache_root() -> str:
    """The last-resort cache directory: per user under the system's temporary directory."""
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return os.path.join(tempfile.gettempdir(), f"adelia-numba-{uid}")


class _TempDirCacheLocator(caching.UserProvidedCacheLocator):
    """numba's user-provided-directory locator pointed at :func:`fallback_cache_root`
    (consulted only when numba's own locations are not writable)."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = os.path.join(fallback_cache_root(), self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        # Skip UserProvidedCacheLocator's "only when $NUMBA_CACHE_DIR is set" test.
        return caching._SourceFileBackedLocatorMixin.from_function.__func__(cls, py_func, py_file)


class _CacheImpl(caching.CompileResultCacheImpl):
    _locator_classes = [*caching.CompileResultCacheImpl._locator_classes, _TempDirCacheLocator]


class _RobustFunctionCache(caching.FunctionCache):
    """numba's per-function cache, treating an unreadable entry as a miss and a failed
    write as "not cached" (see the module docstring)."""

    _impl_class = _CacheImpl

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:  # EOFError, UnpicklingError, ... from a damaged index or data file
            self._discard_index()
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception:  # an unwritable directory, a full disk, an index still unreadable
            pass

    def _discard_index(self) -> None:
        """Remove this function's damaged index, so that the next save starts a fresh one
        (data files are then unreferenced and overwritten in turn)."""
        try:
            os.remove(self._cache_file._index_path)
        except OSError:
            pass


def cached_njit(**options):
    """``numba.njit(**options)`` with the on-disk cache of this module: a decorator.

    Example:
        >>> @cached_njit(nogil=True)
        ... def twice(x):
        ...     return 2 * x
        >>> twice(21)
        42
    """

    def decorate(py_func):
        dispatcher = njit(**options)(py_func)
        try:
            dispatcher._cache = _RobustFunctionCache(dispatcher.py_func)
        except RuntimeError:  # no writable place at all: compile in every process
            pass
        return dispatcher

    return decorate
