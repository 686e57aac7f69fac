"""docs/rinla_to_adelia.md against adelia's registries, so the page cannot fall behind.

The oracle is the code itself: the latent-model and prior registries
(``adelia.models.registry`` after ``_load_all()``), the families and their aliases
(``adelia.likelihoods.FAMILIES``/``FAMILY_ALIASES``), the links (``LINKS``), the control
defaults (``adelia.controls.DEFAULTS``), the signature of ``adelia.inla``, the f() argument list
(``adelia.models.build.F_ARGUMENTS``) and the result's R names (``InlaResult._R_NAMES``). Every
entry must appear as a code span in the first columns of the page's table for its section, and
every name in the model/family/prior/link/control tables must exist in the code (typos).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "rinla_to_adelia.md"
_CODE = re.compile(r"`([^`]+)`")


def _sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> body, for headings of exactly ``level`` '#' (the body runs to the next
    heading of the same or a higher level)."""
    out: dict[str, str] = {}
    current, lines = None, []
    for line in text.splitlines():
        m = re.match(r"^(#+)\s+(.*)$", line)
        if m and len(m.group(1)) <= level:
            if current is not None:
                out[current] = "\n".join(lines)
            current, lines = (m.group(2).strip(), []) if len(m.group(1)) == level else (None, [])
            continue
        if current is not None:
            lines.append(line)
    if current is not None:
        out[current] = "\n".join(lines)
    return out


def _first_table(body: str) -> list[list[str]]:
    """The data rows (cells) of the first Markdown table in ``body``."""
    rows, started = [], False
    for line in body.splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                continue
            rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header row


def _spans(rows: list[list[str]], columns: tuple[int, ...]) -> set[str]:
    """Code spans in the given columns of the rows."""
    return {s for row in rows for c in columns if c < len(row) for s in _CODE.findall(row[c])}


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text()


@pytest.fixture(scope="module")
def h2(page) -> dict[str, str]:
    return _sections(page, 2)


@pytest.fixture(scope="module")
def h3(page) -> dict[str, str]:
    return _sections(page, 3)


def _compare(listed: set[str], registered: set[str], what: str, check_extra: bool = True) -> None:
    missing = sorted(registered - listed)
    extra = sorted(listed - registered) if check_extra else []
    assert not missing and not extra, (
        f"docs/rinla_to_adelia.md, {what}: "
        + (f"missing from the page: {', '.join(missing)}. " if missing else "")
        + (f"on the page but not in adelia (typo?): {', '.join(extra)}." if extra else "")
    )


def test_latent_models_match_the_registry(h2):
    from adelia.models import registry

    registry._load_all()
    rows = _first_table(h2["Latent models"])
    _compare(_spans(rows, (0,)), set(registry.MODELS), "latent models table")


def test_families_and_aliases_match_the_registry(h2):
    from adelia.likelihoods import FAMILIES, FAMILY_ALIASES

    rows = _first_table(h2["Families"])
    _compare(_spans(rows, (0,)), set(FAMILIES), "families table, first column")
    _compare(_spans(rows, (1,)), set(FAMILY_ALIASES), "families table, aliases column")
    # each alias is listed on the row of the family it stands for
    for row in rows:
        family = _CODE.findall(row[0])[0]
        for alias in _CODE.findall(row[1]):
            assert FAMILY_ALIASES[alias] == family, f"alias {alias!r} is listed under {family!r}, not {FAMILY_ALIASES[alias]!r}"


def test_links_match_the_registry(h2):
    from adelia.likelihoods.links import LINKS

    _compare(_spans(_first_table(h2["Links"]), (0,)), set(LINKS), "links table")


def test_family_links_are_links(h2):
    """The links named in the families table exist, and each family's first one is its default."""
    from adelia.likelihoods import FAMILIES

    for row in _first_table(h2["Families"]):
        family = _CODE.findall(row[0])[0]
        links = [s.strip() for s in row[3].split(",")]
        assert tuple(links) == tuple(FAMILIES[family].links), f"family {family}: page links {links}, adelia {FAMILIES[family].links}"


def test_priors_match_the_registry(h2):
    from adelia.models import registry

    registry._load_all()
    _compare(_spans(_first_table(h2["Priors"]), (0,)), set(registry.PRIORS), "priors table")


def test_control_keys_match_the_defaults(h3):
    from adelia.controls import DEFAULTS

    for name, defaults in DEFAULTS.items():
        assert name in h3, f"docs/rinla_to_adelia.md has no section '### {name}'"
        _compare(_spans(_first_table(h3[name]), (0,)), set(defaults), f"section {name}")


def test_inla_arguments_are_listed(h2):
    import adelia

    params = set(inspect.signature(adelia.inla).parameters)
    rows = _first_table(h2["inla() arguments"])
    _compare(_spans(rows, (1,)), params, "inla() arguments table, adelia column")


def test_f_arguments_are_listed(h2):
    from adelia.models.build import F_ARGUMENTS

    rows = _first_table(h2["f() arguments"])
    _compare(_spans(rows, (1,)), set(F_ARGUMENTS), "f() arguments table, adelia column")


def test_result_fields_are_listed(h2):
    from adelia.results import InlaResult

    rows = _first_table(h2["Result fields"])
    r_names = set(InlaResult._R_NAMES)
    own = {"diagnostics"}  # adelia's own elements: no R-INLA spelling
    _compare(_spans(rows, (0,)), r_names - own, "result fields table, R-INLA column")
    attrs = _spans(rows, (1,))
    _compare(attrs, {n.replace(".", "_") for n in r_names}, "result fields table, adelia column")
    for a in attrs:
        assert hasattr(InlaResult, a), f"InlaResult has no attribute {a!r}"


def test_docs_link_to_the_page():
    assert "(rinla_to_adelia.md)" in (ROOT / "docs" / "models.md").read_text().split("\n", 3)[2], \
        "docs/models.md should link to rinla_to_adelia.md at its top"
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    assert "docs/rinla_to_adelia.md" in layout, "README's Layout section should list docs/rinla_to_adelia.md"
