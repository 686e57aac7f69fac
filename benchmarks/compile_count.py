"""Every XLA program a small fit compiles: where it comes from, its size, its compile time.

For three small models — a DEMF space-time SPDE fit on the BTA solver (12 time blocks, as
tests/engine/test_bta_distributed.py's ``demf_problem``), Seeds (binomial, iid) and a 2-D SPDE
(pcmatern, gaussian) — runs ``adelia.inla`` twice in one fresh process without the persistent
compilation cache: the cold fit compiles every program it needs, the warm fit (same model,
same process) should compile none. Each XLA compilation is recorded by wrapping JAX's
``compiler.compile_or_get_cached``: its module name, its size (StableHLO/CHLO operations in
the lowered module), the seconds XLA took, and the adelia function that asked for it (the
innermost frame of the ``adelia`` package on the Python stack, outside the jit wrappers),
grouped by kind (objective, gradient, θ batch, Hessian, selected inverse / marginals, small
eager jnp ops ...). Tracing and lowering seconds come from JAX's monitoring events.

usage: python benchmarks/compile_count.py [demf seeds spde] [--list] [--accelerator-path]
(each model runs in its own child process; --list prints every program of both fits;
--accelerator-path runs batches of θ as one vmapped program, as on a GPU, instead of the
single-point program on host threads: the programs an accelerator's fit compiles, on the CPU
(its batches padded to shared sizes, adelia.engine.batching.VmappedPoints))
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r'''
import collections, json, re, sys, time, traceback, warnings
import numpy as np

sys.path.insert(0, __ROOT__)
from benchmarks.compile_count import CompileRecorder, build

warnings.simplefilter("ignore")
if "--accelerator-path" in sys.argv:
    # one device's batches of θ as the vmapped program (batching's private switch), and the
    # fit's other accelerator choices (model.log_posterior_batch, run._precompile_points)
    import adelia.engine.batching, adelia.inference.run, adelia.model
    adelia.engine.batching._VMAPPED_ON_HOST = True
    for module in (adelia.inference.run, adelia.model):
        module.on_host = lambda: False
recorder = CompileRecorder().install()
name = sys.argv[1]
fit = build(name)
out = {}
for label in ("cold", "warm"):
    recorder.reset()
    t = time.perf_counter()
    res = fit()
    wall = time.perf_counter() - t
    out[label] = {"wall": wall, **recorder.totals(), "programs": recorder.programs}
print("JSON" + json.dumps(out))
'''


def build(name: str):
    """A zero-argument function that runs the named small fit."""
    import numpy as np

    import adelia

    rng = np.random.default_rng(7)
    if name == "seeds":
        data = adelia.datasets.load("Seeds")
        return lambda: adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", data, family="binomial", Ntrials="n")
    if name == "demf":
        n_times, n_per_time = 12, 10
        mesh = adelia.spde.mesh_2d(rng.random((15, 2)), max_edge=(0.35, 0.7), offset=(0.15, 0.3), cutoff=0.08)
        st = adelia.spde.spacetime_demf(mesh, n_times, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5),
                                        prior_sigma=(2.0, 0.05))
        loc = rng.random((n_per_time * n_times, 2))
        t = np.repeat(np.arange(1, n_times + 1), n_per_time)
        A = adelia.spde.make_A(mesh, loc, group=t, n_group=n_times)
        y = 1.0 + A @ (0.5 * rng.standard_normal(mesh.n * n_times)) + 0.2 * rng.standard_normal(t.size)
        stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * n_times + 1)},
                                {"b0": np.ones(y.size)}], tag="est")
        kw = dict(data=adelia.spde.stack_data(stk), control_predictor={"A": adelia.spde.stack_A(stk)},
                  context={"demf": st}, family="gaussian", control_inla={"solver": "bta"})
        return lambda: adelia.inla("y ~ 0 + b0 + f(st, model=demf)", **kw)
    if name == "spde":
        loc = rng.random((150, 2))
        mesh = adelia.spde.mesh_2d(loc, max_edge=(0.12, 0.4), offset=(0.1, 0.3), cutoff=0.03)
        spde = adelia.spde.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.01))
        A = adelia.spde.make_A(mesh, loc)
        y = 1.0 + A @ rng.standard_normal(mesh.n) * 0.3 + 0.3 * rng.standard_normal(len(loc))
        stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"s": np.arange(1, mesh.n + 1)},
                                {"b0": np.ones(y.size)}], tag="est")
        kw = dict(data=adelia.spde.stack_data(stk), control_predictor={"A": adelia.spde.stack_A(stk)},
                  context={"spde": spde}, family="gaussian")
        return lambda: adelia.inla("y ~ 0 + b0 + f(s, model=spde)", **kw)
    raise ValueError(f"model must be one of demf, seeds, spde, not {name!r}")


# Which kind of program an adelia frame asks for: (file, function) substrings -> kind.
KINDS = [
    ("optimize.py", "", "mode search (objective / value+gradient)"),
    ("model.py", "log_posterior_batch", "θ batch"),
    ("model.py", "grad_batch", "θ batch"),
    ("model.py", "value_and_grad", "objective + gradient"),
    ("model.py", "grad", "objective + gradient"),
    ("model.py", "log_posterior", "objective"),
    ("hyperpar.py", "", "Hessian / θ standardisation"),
    ("run.py", "", "θ batch (design points)"),
    
    ("latent_strategies.py", "", "latent marginals (selected inverse)"),
    ("sampling.py", "", "posterior samples"),
    ("criteria.py", "", "criteria (DIC/WAIC/CPO)"),
    ("lincomb.py", "", "lincombs"),
    ("predict.py", "", "prediction"),
]


def classify(where: str, n_ops: int) -> str:
    path, _, func = where.split(" < ")[0].partition(":")
    for file, fn, kind in KINDS:
        if path.endswith(file) and fn in func:
            return kind
    if where.startswith("thread ThreadPoolExecutor"):
        return "θ batch on host threads (objective values)"
    if n_ops <= 30:
        return "small eager jnp op (host path)"
    return "other: " + where


class CompileRecorder:
    """Records every XLA compilation (and JAX's trace/lower/compile seconds) of this process."""

    def __init__(self):
        self.programs: list[dict] = []
        self.events: dict[str, float] = {}
        self.traces = 0

    def reset(self):
        self.programs = []
        self.events = {}
        self.traces = 0

    def install(self) -> "CompileRecorder":
        import re
        import time

        from jax import monitoring
        from jax._src import compiler

        def on_event(event, duration, **kw):
            self.events[event] = self.events.get(event, 0.0) + duration
            if event.endswith("jaxpr_trace_duration"):
                self.traces += 1

        monitoring.register_event_duration_secs_listener(on_event)
        original = compiler.compile_or_get_cached

        def recording(backend, computation, *args, **kwargs):
            t = time.perf_counter()
            out = original(backend, computation, *args, **kwargs)
            seconds = time.perf_counter() - t
            text = str(computation)
            n_ops = len(re.findall(r"\b(?:stablehlo|chlo|mhlo)\.[a-z_]+", text))
            name = str(computation.operation.attributes["sym_name"]).strip('"')
            self.programs.append({"name": name, "ops": n_ops, "seconds": seconds, "where": _adelia_frame()})
            return out

        compiler.compile_or_get_cached = recording
        return self

    def totals(self) -> dict:
        ev = self.events
        return {"n_programs": len(self.programs), "compile_s": sum(p["seconds"] for p in self.programs),
                "trace_s": ev.get("/jax/core/compile/jaxpr_trace_duration", 0.0),
                "lower_s": ev.get("/jax/core/compile/jaxpr_to_mlir_module_duration", 0.0),
                "n_traces": self.traces}


def _adelia_frame() -> str:
    import threading
    import traceback

    skip = ("hoisted_jit.py", "compile_count.py", "_config.py", "batching.py", "host_cores.py")
    chain = [f"{frame.filename.split('/adelia/', 1)[1]}:{frame.name}:{frame.lineno}"
             for frame in reversed(traceback.extract_stack())
             if "/adelia/" in frame.filename and not frame.filename.endswith(skip)]
    # the innermost adelia frame outside the jit and batching wrappers, and its two callers
    # a batch's point on a host thread has no adelia caller on its own stack
    return " < ".join(chain[:3]) or f"thread {threading.current_thread().name}"


def run_child(name: str, flags: list[str]) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ADELIA_NO_COMPILATION_CACHE="1")
    out = subprocess.run([sys.executable, "-c", CHILD.replace("__ROOT__", repr(root)), name, *flags],
                         capture_output=True, text=True, env=env, cwd=root)
    lines = [line for line in out.stdout.splitlines() if line.startswith("JSON")]
    if out.returncode or not lines:
        raise RuntimeError(out.stderr[-4000:])
    return json.loads(lines[-1][4:])


def main(argv: list[str]) -> None:
    names = [a for a in argv if not a.startswith("--")] or ["demf", "seeds", "spde"]
    results = {name: run_child(name, [a for a in argv if a == "--accelerator-path"]) for name in names}
    print(f"{'model':6s} {'fit':4s} {'wall s':>7s} {'programs':>8s} {'compile s':>9s} {'trace s':>7s} "
          f"{'lower s':>7s} {'traces':>6s}")
    for name, r in results.items():
        for label in ("cold", "warm"):
            s = r[label]
            print(f"{name:6s} {label:4s} {s['wall']:7.2f} {s['n_programs']:8d} {s['compile_s']:9.2f} "
                  f"{s['trace_s']:7.2f} {s['lower_s']:7.2f} {s['n_traces']:6d}")
    print("\ncold fits by kind: programs / StableHLO ops / compile s")
    for name, r in results.items():
        groups: dict[str, list] = {}
        for p in r["cold"]["programs"]:
            groups.setdefault(classify(p["where"], p["ops"]), []).append(p)
        for kind, ps in sorted(groups.items(), key=lambda kv: -sum(p["seconds"] for p in kv[1])):
            print(f"{name:6s} {kind:45s} {len(ps):4d} {sum(p['ops'] for p in ps):7d} "
                  f"{sum(p['seconds'] for p in ps):7.2f}")
    if "--list" in argv:
        for name, r in results.items():
            for label in ("cold", "warm"):
                print(f"\n{name} {label}: every program (name, ops, compile s, asked for by)")
                for p in r[label]["programs"]:
                    print(f"  {p['name'][:40]:40s} {p['ops']:6d} {p['seconds']:6.2f}  {p['where']}")


if __name__ == "__main__":
    main(sys.argv[1:])
