"""Every vignette notebook runs top to bottom and shows at least one figure.

The oracle is the notebook itself: each cell must run without an error at the default size
(``FULL = False``) in a fresh python3 kernel, from a temporary copy so that the committed
outputs are never touched, and the executed notebook must hold an ``image/png`` output (the
figures are the point of a vignette). The numbers in the notebooks are checked against R-INLA
by the reference suite (``tests/inference/test_rinla_reference.py``), not here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install '.[test]')")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install '.[test]')")

VIGNETTES = Path(__file__).resolve().parents[1] / "vignettes"
NOTEBOOKS = sorted(VIGNETTES.glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def _has_python3_kernel() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    return True


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {VIGNETTES}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_a_figure(path, tmp_path):
    if not _has_python3_kernel():
        pytest.skip("no 'python3' Jupyter kernel (ipykernel installs it: pip install ipykernel)")
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:  # run from scratch: the committed outputs must not count
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell and its traceback

    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert images, f"{path.name} executed but shows no figure (no image/png output)"
    first_cell = next(c for c in nb.cells if c.cell_type == "code")
    assert "FULL = False" in first_cell.source, f"{path.name}: the first code cell should be the FULL = False switch"
