"""How many XLA programs a small fit compiles (issue 13, compile time).

A fit needs a few large programs (the objective's value and gradient, one design point) and
nothing else: a small eager jnp op on the host path compiles a program of its own (tens of
them once cost a DEMF fit ~1 s), and a program keyed by something other than what it
computes is compiled again for every model (a second fit of a BTA model recompiled all its
programs, 18 s of a 23 s refit). Counted in a fresh interpreter without the persistent
compilation cache, from JAX's own monitoring events (one per XLA compilation). Oracle: the
count itself; benchmarks/compile_count.py lists and times every program.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, warnings
import jax, adelia

warnings.simplefilter("ignore")
compiled = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, duration, fun_name=None, **kw: compiled.append(fun_name)
    if event == "/jax/core/compile/backend_compile_duration" else None)

def count(fit):
    compiled.clear()
    fit()
    return list(compiled)

if VMAPPED:  # one device's batches of θ as the accelerators' vmapped program, on the CPU
    import adelia.engine.batching
    adelia.engine.batching._VMAPPED_ON_HOST = True
seeds = adelia.datasets.load("Seeds")
# the BTA solver: its kernels are jax.jit functions closing over the solver's index maps
fit = lambda: adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n",
                          control_inla={"solver": "bta"})
print(json.dumps({"cold": count(fit), "warm": count(fit)}))
"""

# Measured (2026-12-06, CPU, solver "bta"): a cold Seeds fit compiles 3 programs — the
# objective's value and gradient, the design-point program and one tiny array-staging program
# (7 before: 3 more were eager jnp ops of the iid model's log-normaliser, compile_graph's).
MAX_COLD_SEEDS = 5


def _counts(vmapped: bool = False) -> dict:
    env = dict(os.environ, ADELIA_NO_COMPILATION_CACHE="1", JAX_PLATFORMS="cpu")
    script = f"VMAPPED = {vmapped}\n" + SCRIPT
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_small_fit_compiles_few_programs_and_a_second_fit_none():
    counts = _counts()
    assert len(counts["cold"]) <= MAX_COLD_SEEDS, (
        f"a cold Seeds fit compiled {len(counts['cold'])} XLA programs (at most {MAX_COLD_SEEDS} "
        f"expected): {counts['cold']}"
    )
    # a second fit of the same model in the same process reuses every program (before the
    # solver's index maps were keyed by value, it compiled all of them again)
    assert counts["warm"] == [], f"a second Seeds fit compiled new XLA programs: {counts['warm']}"


def test_a_second_fit_compiles_no_batch_program_on_the_vmapped_path():
    # the accelerators' path: each batch of θ (the Hessian's stencil, the skewness points, the
    # design) one vmapped program. Its programs take the model's data as arguments and are
    # shared by fingerprint, and batches are padded to shared sizes (engine/batching.py): a
    # second fit reuses all of them (before: a jax.jit of a new lambda per model, its data
    # compiled in as literals, recompiled every batch program, one per batch size)
    counts = _counts(vmapped=True)
    assert counts["warm"] == [], f"a second Seeds fit (vmapped batches) compiled new XLA programs: {counts['warm']}"
    # measured (2026-12-06, CPU): 4 cold programs — the objective's value and gradient, one
    # batch program for the Hessian's 2 and the skewness's 2 points (both padded to 8 rows),
    # one for the design's points, and a tiny array-staging program
    assert len(counts["cold"]) <= MAX_COLD_SEEDS, counts["cold"]
