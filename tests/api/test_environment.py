"""adelia in unfriendly environments (issue 12): threads doing their first fit at once,
read-only installs and HOMEs, damaged numba cache files, bad ADELIA_NUM_THREADS.

The first two need fresh processes (a registry is filled once per process; numba picks its
cache directory when the kernels are decorated, at import), so they run children with
``sys.executable``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import adelia
from adelia.engine import host_cores
from adelia.errors import ConfigurationError

PACKAGE = Path(adelia.__file__).resolve().parent


def _run_child(code: str, env: dict[str, str] | None = None, cwd: str | None = None, timeout: float = 600):
    full_env = {**os.environ, "ADELIA_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


# -- lazy registries under threads -----------------------------------------------------------
FIRST_FITS = """
    import threading
    import pandas as pd
    import adelia

    df = pd.DataFrame({"y": [1, 0, 2, 3, 1, 0], "g": [0, 1, 2, 0, 1, 2]})
    start = threading.Barrier(8)
    errors = []

    def first_fit():
        start.wait()  # all eight reach the (empty) registry together
        try:
            adelia.compile("y ~ 1 + f(g, model='iid')", df, family="poisson")
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=first_fit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(errors)
    raise SystemExit(1 if errors else 0)
"""


def _first_fits_in_fresh_processes(n_processes: int) -> None:
    for _ in range(n_processes):
        child = _run_child(FIRST_FITS)
        assert child.returncode == 0, child.stdout + child.stderr


def test_eight_threads_doing_their_first_fit_in_a_fresh_process():
    """Before the fix, a thread found the registry marked loaded while another was still
    importing the model modules: 'unknown latent model "iid"' (5 of 5 processes here)."""
    _first_fits_in_fresh_processes(3)


@pytest.mark.slow
def test_eight_threads_doing_their_first_fit_in_twenty_fresh_processes():
    _first_fits_in_fresh_processes(20)


# -- ADELIA_NUM_THREADS ----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_thread_count_names_the_variable_and_what_is_valid(value, monkeypatch):
    monkeypatch.setenv("ADELIA_NUM_THREADS", value)
    with pytest.raises(ConfigurationError, match=r"ADELIA_NUM_THREADS='.*' is not valid: .*positive integer"):
        host_cores.host_workers()


def test_good_thread_counts(monkeypatch):
    monkeypatch.setenv("ADELIA_NUM_THREADS", " 3 ")
    assert host_cores.host_workers() == 3
    monkeypatch.delenv("ADELIA_NUM_THREADS")
    assert host_cores.host_workers() >= 1


# -- read-only install and HOME, damaged numba cache -----------------------------------------
SPARSE_FIT = """
    import warnings
    warnings.simplefilter("error", UserWarning)  # e.g. JAX failing to write its cache
    import numpy as np, pandas as pd
    import adelia
    from adelia.engine import supernodal_symbolic
    from adelia.engine.numba_cache import fallback_cache_root

    assert adelia.__file__.startswith({package!r}), adelia.__file__
    print("cache:", supernodal_symbolic._etree._cache.cache_path)
    assert supernodal_symbolic._etree._cache.cache_path.startswith(fallback_cache_root())
    rng = np.random.default_rng(0)
    df = pd.DataFrame({{"y": rng.poisson(2.0, 60), "g": np.arange(60) % 12}})
    res = adelia.inla("y ~ 1 + f(g, model='iid')", df, family="poisson", control_inla={{"solver": "sparse"}})
    assert np.all(np.isfinite(res.summary_fixed["mean"]))
"""


def _read_only_install(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the package whose ``__pycache__`` directories cannot be written, a HOME
    where no cache can be created, and a private temporary directory.

    Tests run as root here, where a read-only mode does not stop writes; so each
    ``__pycache__`` of the copy is a *file* and HOME's ``.cache`` is a file: numba's
    in-tree and user-wide cache directories and adelia's JAX cache directory then fail
    their writability checks (``os.makedirs``) as a read-only tree does for other users,
    for whom the copy and HOME are also made read-only. What this proves: when those
    checks fail, the kernels cache under the temporary directory and the fit succeeds."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "adelia", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "adelia", *(p for p in (site / "adelia").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("not a directory")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a directory")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for root in (site, home):
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = {k: v for k, v in os.environ.items() if k not in _CACHE_SETTINGS}
    env |= {"PYTHONPATH": str(site), "HOME": str(home), "TMPDIR": str(tmp), "ADELIA_NUM_THREADS": "1"}
    return site, env


# Settings that would point a cache somewhere writable (or turn JAX's off): not in the child.
_CACHE_SETTINGS = ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "ADELIA_CACHE_DIR", "ADELIA_NO_COMPILATION_CACHE")


@pytest.mark.slow
def test_sparse_fit_from_a_read_only_install_then_with_damaged_cache_files(tmp_path):
    """Compiles every sparse kernel in a fresh process twice (minutes on 2 busy cores)."""
    site, env = _read_only_install(tmp_path)
    code = textwrap.dedent(SPARSE_FIT.format(package=str(site / "adelia")))

    def run():
        return subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=900
        )

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    cache_files = sorted((tmp_path / "tmp").rglob("*.nb[ic]"))
    assert any(f.suffix == ".nbi" for f in cache_files)  # the kernels were cached under TMPDIR
    for f in cache_files:  # what a full disk or a killed process leaves behind
        f.write_bytes(b"")
    second = run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert any(f.stat().st_size > 0 for f in (tmp_path / "tmp").rglob("*.nbi"))  # rewritten


def test_unwritable_cache_falls_back_to_tempdir_and_survives_damaged_files(tmp_path):
    """The fast version of the above for one small function: with no writable ``__pycache__``
    and HOME it is cached under TMPDIR; zero-byte index and data files there are a cache
    miss (numba alone raises EOFError on every call), and the next save replaces them."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "__pycache__").write_text("not a directory")
    (source / "kernel_mod.py").write_text(
        textwrap.dedent(
            """
            from adelia.engine.numba_cache import cached_njit

            @cached_njit(nogil=True)
            def twice(x):
                return 2 * x
            """
        )
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if k not in _CACHE_SETTINGS}
    (tmp_path / "tmp").mkdir()
    env |= {"HOME": str(home), "TMPDIR": str(tmp_path / "tmp")}
    env["PYTHONPATH"] = os.pathsep.join([str(source), str(PACKAGE.parent)])
    code = textwrap.dedent(
        """
        import kernel_mod
        from adelia.engine.numba_cache import fallback_cache_root
        assert kernel_mod.twice._cache.cache_path.startswith(fallback_cache_root())
        assert kernel_mod.twice(21) == 42
        """
    )

    def run():
        return subprocess.run([sys.executable, "-c", code], env=env, cwd=str(tmp_path), capture_output=True, text=True)

    first = run()
    assert first.returncode == 0, first.stderr
    cache_files = sorted((tmp_path / "tmp").rglob("kernel_mod.twice-*.nb[ic]"))
    assert {f.suffix for f in cache_files} == {".nbi", ".nbc"}
    for f in cache_files:
        f.write_bytes(b"")
    second = run()
    assert second.returncode == 0, second.stderr
    assert all(f.stat().st_size > 0 for f in (tmp_path / "tmp").rglob("kernel_mod.twice-*.nbi"))
