"""The documentation site (mkdocs.yml) builds with no warnings, and its API pages carry the
docstrings of the public API.

Oracle: MkDocs itself in strict mode (any warning -- a broken link between pages, a docstring
parameter that is not in the signature -- fails the build), and the rendered API pages, which
must name the public objects that the mkdocs.yml nav promises.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

for _module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
    pytest.importorskip(_module, reason='the docs tooling is not installed (pip install -e ".[docs]")')


def test_docs_build_strict_and_api_pages(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]

    def page(rel: str) -> str:
        return (site / rel / "index.html").read_text(encoding="utf-8")

    api = {
        "docs/api/adelia": ["inla", "compile", "make_lincomb", "make_lincombs", "inla_surv", "inla_coxph", "inla_group"],
        "docs/api/results": ["InlaResult", "summary"],
        "docs/api/model": ["Model"],
        "docs/api/spde": ["mesh_2d", "spde2_pcmatern", "make_A"],
        "docs/api/models": ["custom"],
        "docs/api/likelihoods": ["make_likelihood"],
        "docs/api/marginals": ["qmarginal", "emarginal"],
        "docs/api/datasets": ["load"],
    }
    for rel, names in api.items():
        html = page(rel)
        for name in names:
            assert f'id="adelia.' in html and name in html, (rel, name)
        # Sphinx roles in the docstrings are rewritten to code spans (docs/_griffe_sphinx_roles.py)
        assert ":func:`" not in html and ":class:`" not in html, rel

    assert 'id="adelia.make_lincomb"' in page("docs/api/adelia")
    assert 'id="adelia.results.InlaResult"' in page("docs/api/results")

    # the README is the home page; the hand-written pages and every notebook are rendered, the
    # notebooks with their stored outputs (figures as embedded images)
    assert "adelia" in (site / "index.html").read_text(encoding="utf-8")
    for rel in ("docs/models", "docs/rinla_to_adelia", "docs/developing", "vignettes/spde"):
        assert page(rel)
    notebooks = sorted((ROOT / "vignettes").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        html = page(f"vignettes/{nb.stem}")
        assert "data:image/png;base64" in html, nb.name
