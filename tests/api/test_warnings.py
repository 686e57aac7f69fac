"""Warnings name the user's line and come once per kind within a fit (issue 14)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import adelia
from adelia import user_warnings
from adelia.inference.sanity import SuspiciousFitWarning

HERE = os.path.abspath(__file__)


def _adelia_function(name: str, body: str):
    """A function whose frames look like adelia's own (its code lives in the package dir)."""
    path = os.path.join(os.path.dirname(user_warnings.__file__), f"_test_{name}.py")
    namespace = {"warn": user_warnings.warn}
    exec(compile(body, path, "exec"), namespace)  # noqa: S102 — test scaffolding, fixed text
    return namespace[name]


def _recorded(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    return seen, out


def test_a_warning_three_adelia_frames_deep_names_the_callers_line():
    inner = _adelia_function("inner", "def inner(k):\n    warn(f'deep {k}')\n")
    outer = _adelia_function("outer", "def outer(f, k):\n    return f(k)\n")
    seen, _ = _recorded(lambda: outer(inner, 1))
    (w,) = seen
    assert w.filename == HERE and str(w.message) == "deep 1"


def test_each_kind_once_per_fit_scope_and_again_in_the_next_fit():
    loop = _adelia_function(
        "loop",
        "def loop(n):\n"
        "    for k in range(n):\n"
        "        warn(f'point {k} failed')\n"
        "        warn(f'other kind {k}', RuntimeWarning)\n",
    )

    def two_fits():
        for _ in range(2):
            with user_warnings.fit_scope():
                loop(5)
                with user_warnings.fit_scope():  # nested (compile inside inla) belongs to the outer one
                    loop(5)

    seen, _ = _recorded(two_fits)
    assert [str(w.message) for w in seen] == ["point 0 failed", "other kind 0"] * 2
    # outside any fit, nothing is dropped
    seen, _ = _recorded(lambda: loop(3))
    assert len(seen) == 6


def test_named_kinds_are_distinct():
    def three():
        with user_warnings.fit_scope():
            for kind in ("a", "b", "a"):
                user_warnings.warn(f"kind {kind}", SuspiciousFitWarning, kind=kind)

    seen, _ = _recorded(three)
    assert [str(w.message) for w in seen] == ["kind a", "kind b"]


def test_a_real_fit_warns_at_the_users_inla_line():
    seeds = adelia.datasets.load("Seeds")
    # Seeds' hyperposterior under the default loggamma prior has mass far from the mode
    seen, res = _recorded(lambda: adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n"))
    mine = [w for w in seen if "exceeds its value at the mode" in str(w.message)]
    assert len(mine) == 1
    assert mine[0].filename == HERE
    assert any("exceeds its value at the mode" in m for m in res.diagnostics["warnings"])


def test_data_helper_warnings_name_the_users_line():
    seen, _ = _recorded(lambda: adelia.inla_surv(np.array([1.0, 2.0, 3.0])))
    (w,) = seen
    assert "event" in str(w.message) and w.filename == HERE
    pts = np.random.default_rng(0).random((20, 2))
    seen, _ = _recorded(lambda: adelia.spde.mesh_2d(pts, max_edge=(0.3, 0.6, 0.9)))
    assert any("only the first two" in str(w.message) and w.filename == HERE for w in seen)


@pytest.mark.parametrize("threaded", [False, True])
def test_warnings_from_threads_do_not_crash(threaded):
    inner = _adelia_function("inner2", "def inner2():\n    warn('from a thread')\n")
    if not threaded:
        seen, _ = _recorded(inner)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            seen, _ = _recorded(lambda: pool.submit(inner).result())
    assert [str(w.message) for w in seen] == ["from a thread"]


def test_the_readmes_first_command_fits_without_warnings(capsys):
    """The README's first command (what a new user runs first) prints a clean summary."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = re.search(r'python3 -c "(.*?)"\n', readme).group(1).replace('\\"', '"')
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exec(command, {})  # noqa: S102 — the README's own fixed text
    assert [str(w.message) for w in seen] == []
    out = capsys.readouterr().out
    assert "Precision for plate" in out and "Warning" not in out
