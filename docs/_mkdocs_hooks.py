"""MkDocs hooks: build the site from the repository's own files, where they already live.

The pages (README.md as the home page, docs/*.md, vignettes/*.md and vignettes/*.ipynb) keep
their repository paths, so the relative links between them that work on a forge
(``docs/models.md`` from the README, ``../benchmarks/README.md`` from docs/developing.md) also
resolve in the site. Files they link to that are not pages (a figure, a source file) are copied
as static files. Notebooks are added to the navigation by glob, so a new vignette appears
without editing mkdocs.yml.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

#: pages, as repository-relative globs, in navigation order
PAGES = ["README.md", "docs/*.md", "docs/api/*.md", "vignettes/*.md", "vignettes/*.ipynb"]

_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)|<img[^>]*\bsrc=\"([^\"]+)\"")


def _page_paths() -> list[str]:
    paths: list[str] = []
    for pattern in PAGES:
        for p in sorted(ROOT.glob(pattern)):
            rel = p.relative_to(ROOT).as_posix()
            if rel not in paths:
                paths.append(rel)
    return paths


def _linked_files(rel: str) -> list[str]:
    """Repository files that a Markdown page links to by relative path."""
    if not rel.endswith(".md"):
        return []
    base = (ROOT / rel).parent
    found = []
    for m in _LINK.finditer((ROOT / rel).read_text(encoding="utf-8")):
        target = m.group(1) or m.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            continue
        path = (base / target).resolve()
        if path.is_file() and ROOT in path.parents:
            found.append(path.relative_to(ROOT).as_posix())
    return found


def _title(rel: str) -> str:
    stem = Path(rel).stem
    return stem.replace("_", " ").capitalize()


def _listed(entries) -> set[str]:
    out = set()
    for e in entries:
        v = next(iter(e.values())) if isinstance(e, dict) else e
        out |= _listed(v) if isinstance(v, list) else {v}
    return out


def on_config(config):
    """Complete the navigation: every vignettes/*.ipynb under "Vignettes", and every docs/*.md
    page that mkdocs.yml does not list under "User guide"."""
    nav = config["nav"] or []
    listed = _listed(nav)
    extra = {
        "Vignettes": [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob("vignettes/*.ipynb"))],
        "User guide": [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.glob("docs/*.md"))],
    }
    for section in nav:
        if isinstance(section, dict):
            for name, paths in extra.items():
                if name in section:
                    section[name] += [{_title(p): p} for p in paths if p not in listed]
    return config


@event_priority(100)  # before mkdocs-jupyter wraps the notebooks
def on_files(files: Files, config) -> Files:
    """Replace the scan of docs_dir with the repository's pages and the files they link to."""
    site_dir, urls = config["site_dir"], config["use_directory_urls"]
    wanted = _page_paths()
    for rel in list(wanted):
        for linked in _linked_files(rel):
            if linked not in wanted:
                wanted.append(linked)
    out = Files([])
    for rel in wanted:
        out.append(File(rel, src_dir=str(ROOT), dest_dir=site_dir, use_directory_urls=urls))
    return out
