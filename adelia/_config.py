"""Process-wide numerical configuration.

adelia computes in float64 whatever the machine's JAX default is (DESIGN.md §8): importing
``adelia`` enables ``jax_enable_x64``. A persistent compilation cache cuts the cold start of
the first fit in a fresh process; it lives in ``$ADELIA_CACHE_DIR`` (default
``~/.cache/adelia/jax``) and is skipped silently when the directory cannot be created or
written (a read-only HOME): ``os.makedirs`` succeeds on an existing read-only directory, and
JAX would then warn at every compilation that it cannot write its entry.
"""

from __future__ import annotations

import os
import tempfile

import jax

jax.config.update("jax_enable_x64", True)


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache (idempotent). Returns the directory used."""
    path = path or os.environ.get("ADELIA_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "adelia", "jax"
    )
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()  # writable? (as numba's cache checks)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


if os.environ.get("ADELIA_NO_COMPILATION_CACHE", "") == "":
    enable_compilation_cache()
