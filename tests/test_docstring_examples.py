"""Every public function has an example in its docstring, and the examples run.

Two checks (issue 17: "every public function's docstring has an example that runs"):

* ``test_public_api_has_examples``: each public object a user calls -- ``adelia.__all__``, the
  public methods and properties of :class:`adelia.InlaResult` and :class:`adelia.Model`, and
  what ``adelia.marginals``, ``adelia.spde``, ``adelia.datasets``, ``adelia.plotting``,
  ``adelia.lincomb``, ``adelia.predict`` and ``adelia.models.custom`` export -- has a Google-style
  ``Example:``/``Examples:`` section holding at least one ``>>>`` line. The failure lists every
  offender at once.
* ``test_module_doctests``: the docstring examples of every ``adelia.*`` module, run by the
  standard library's doctest (one pytest parameter per module, so a failure names it). The
  oracle is the output written in each example, compared with ELLIPSIS and
  NORMALIZE_WHITESPACE. Examples marked ``# doctest: +SKIP`` are not run (doctest's own
  rule): keep the mark for what a test run cannot or should not do (an optional dependency,
  a file written, a cluster of processes, a large model) and say why next to it.

How the examples are run, as a reader of the API pages reads them:

* the reader has done ``import adelia``, ``import numpy as np`` and ``import pandas as pd``
  (those names are given to every example, on top of the module's own globals);
* the docstrings of one module share one namespace and run in DocTestFinder's order (the
  module first, then each class before its members, by name), so the fit that a class's example
  makes (``res = adelia.inla(...)`` in ``InlaResult``) is the ``res`` its methods' examples use
  -- one fit per module instead of one per method;
* figures are drawn with matplotlib's Agg backend and closed after the module.

Modules whose examples take long are listed in ``SLOW`` (with the reason) and run only under
``-m slow``; the rest should stay well under a minute in all on two CPU cores.
"""

from __future__ import annotations

import doctest
import functools
import importlib
import inspect
import io
import pkgutil
import re

import pytest

import adelia

# module -> why its examples are not in the fast run (they still run under -m slow)
SLOW: dict[str, str] = {
    # a Seeds fit with DIC and CPO: compiling the criteria takes ~7 s on two cores, and the
    # examples of InlaResult.dic/.waic/.cpo/.po (adelia.results, in the fast run) compute them too
    "adelia.inference.criteria": "a fit with control_compute dic/cpo (~7 s)",
}

# the reader's imports, given to every example
READER_GLOBALS = {"adelia": adelia, "np": pytest.importorskip("numpy"), "pd": pytest.importorskip("pandas")}

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# ------------------------------------------------------------------------------------------
# (a) every public object has an example
# ------------------------------------------------------------------------------------------
# modules whose exports are checked besides adelia.__all__ (their __all__, or else the public
# functions and classes defined in them)
EXPORTING_MODULES = (
    "adelia.marginals",
    "adelia.spde",
    "adelia.datasets",
    "adelia.plotting",
    "adelia.lincomb",
    "adelia.predict",
    "adelia.models.custom",
)

_EXAMPLE_HEADING = re.compile(r"^\s*Examples?:\s*$", re.MULTILINE)


def _has_example(doc: str | None) -> bool:
    """A Google-style "Example:"/"Examples:" section with a ``>>>`` line after it."""
    if not doc:
        return False
    heading = _EXAMPLE_HEADING.search(doc)
    return heading is not None and ">>>" in doc[heading.end():]


def _public_members(cls):
    """The public methods and properties that ``cls`` itself defines: name -> function."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, property):
            yield name, attr.fget
        elif isinstance(attr, functools.cached_property):
            yield name, attr.func
        elif isinstance(attr, (staticmethod, classmethod)):
            yield name, attr.__func__
        elif inspect.isfunction(attr):
            yield name, attr


def _module_exports(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and obj.__module__ == module.__name__]
    return [(n, getattr(module, n)) for n in names]


def public_objects() -> dict[str, object]:
    """Qualified name -> public function, class or member function (each object once)."""
    found: dict[str, object] = {}
    for name, obj in _module_exports(adelia):
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found[f"adelia.{name}"] = obj
    for cls in (adelia.InlaResult, adelia.Model):
        for name, fn in _public_members(cls):
            found[f"adelia.{cls.__name__}.{name}"] = fn
    for modname in EXPORTING_MODULES:
        for name, obj in _module_exports(importlib.import_module(modname)):
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found.setdefault(f"{modname}.{name}", obj)
    seen: set[int] = set()
    unique = {}
    for qualname, obj in found.items():
        if id(obj) not in seen:
            seen.add(id(obj))
            unique[qualname] = obj
    return unique


def test_public_api_has_examples():
    objects = public_objects()
    assert len(objects) > 80  # the walk found the API (a broken walk must not pass vacuously)
    missing = sorted(q for q, obj in objects.items() if not _has_example(inspect.getdoc(obj)))
    assert not missing, (f"{len(missing)} public objects have no 'Example:' section with a '>>>' line:\n  "
                         + "\n  ".join(missing))


# ------------------------------------------------------------------------------------------
# (b) the examples run
# ------------------------------------------------------------------------------------------
def _module_names() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(adelia.__path__, "adelia."))


def _params():
    for name in _module_names():
        marks = [pytest.mark.slow] if name in SLOW else []
        yield pytest.param(name, id=name, marks=marks)


def run_module_doctests(module_name: str) -> doctest.TestResults:
    """Run one module's docstring examples in one namespace; return doctest's counts and fail
    with doctest's report of the failed examples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:  # an optional dependency (e.g. an accelerator backend)
        if err.name and not err.name.startswith("adelia"):
            pytest.skip(f"{module_name} needs {err.name}, which is not installed")
        raise
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    namespace = dict(vars(module))
    namespace.update(READER_GLOBALS)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    try:
        for test in tests:  # sorted by name: the module, then each class before its members
            test.globs = namespace
            runner.run(test, out=report.write, clear_globs=False)
    finally:
        plt.close("all")
        namespace.clear()
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {module_name}:\n{report.getvalue()}"
    return results


@pytest.mark.parametrize("module_name", list(_params()))
def test_module_doctests(module_name):
    run_module_doctests(module_name)


def test_slow_set_names_modules():
    """A stale entry in SLOW (a renamed module) would silently drop nothing but mislead."""
    assert set(SLOW) <= set(_module_names())
