"""The shipped data sets (adelia.datasets) against their sources in ../shared/datasets.

Oracles: the source CSV and graph files themselves (shape, column names, bytes), an adjacency
matrix built here from the graph file's tokens (symmetry, node count), and a bym2 fit given the
graph by its path in ../shared (the way R-INLA users pass ``graph = "germany.graph"``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import shared_path

import adelia
from adelia import datasets
from adelia.errors import DataError
from adelia.models.graph import Graph

REPO = Path(__file__).resolve().parents[2]

#: Source file in ../shared/datasets of each data set whose packaged name differs.
SOURCE_NAME = {"Seeds": "Seeds.csv"}

#: (data set, region column, graph nodes). Munich's graph has R-INLA's 380 subquarters and
#: Zambia's its 57 districts; the data observe 312 and 54 of them.
AREAL = [
    ("Germany", "region", 544),
    ("Oral", "region", 544),
    ("Scotland", "Region", 56),
    ("Leuk", "district", 24),
    ("Munich", "location", 380),
    ("Zambia", "district", 57),
]


def _source(name: str) -> Path:
    return shared_path("datasets", SOURCE_NAME.get(name, datasets._FILES[name]))


def test_list_names_at_least_fifteen_data_sets_and_available_is_an_alias():
    names = datasets.list()
    assert len(names) >= 15
    for classic in ["Seeds", "Germany", "Scotland", "Tokyo", "Epil", "Salm", "Surg", "Drivers", "Oral",
                    "SPDEtoy", "PRprec", "PRborder", "Leuk", "Kidney", "Munich", "Zambia"]:
        assert classic in names
    assert datasets.available() == names


@pytest.mark.parametrize("name", datasets.list())
def test_each_data_set_loads_as_its_source(name):
    source = _source(name)
    expected = pd.read_csv(source)
    df = datasets.load(name)
    assert df.shape == expected.shape
    assert df.columns.tolist() == expected.columns.tolist()
    pd.testing.assert_frame_equal(df, expected)
    packaged = datasets._location() / datasets._FILES[name]
    assert packaged.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("name", datasets.graphs())
def test_packaged_graph_files_equal_their_sources(name):
    packaged = datasets.graph_path(name)
    assert packaged.read_bytes() == shared_path("datasets", packaged.name).read_bytes()


def test_every_source_file_is_shipped():
    # nothing in ../shared/datasets is left out silently
    folder = shared_path("datasets")
    sources = {p.name.lower() for p in folder.iterdir() if p.suffix in (".csv", ".graph")}
    shipped = {f.lower() for f in datasets._FILES.values()} | {f.lower() for f in set(datasets._GRAPHS.values())}
    assert sources == shipped


def test_package_data_globs_cover_every_shipped_file():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["adelia.data"] == "datasets"
    globs = config["package-data"]["adelia.data"]
    for f in list(datasets._FILES.values()) + list(datasets._GRAPHS.values()) + ["README.md"]:
        assert (REPO / "datasets" / f).is_file(), f
        assert any(fnmatch.fnmatch(f, g) for g in globs), f"{f} is not installed by {globs}"


def _adjacency_from_file(path: Path) -> sp.csr_matrix:
    """R-INLA's text graph format read here by hand: n, then `i nnbs nbr...` per node (1-based)."""
    tokens = [int(t) for t in path.read_text().split()]
    n, k, rows, cols = tokens[0], 1, [], []
    for _ in range(n):
        i, m = tokens[k], tokens[k + 1]
        rows += [i - 1] * m
        cols += [j - 1 for j in tokens[k + 2:k + 2 + m]]
        k += 2 + m
    assert k == len(tokens)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


@pytest.mark.parametrize("name, column, nodes", AREAL)
def test_graph_has_one_node_per_region_and_is_symmetric(name, column, nodes):
    g = datasets.graph(name)
    assert isinstance(g, Graph)
    assert g.n == nodes
    regions = pd.read_csv(_source(name))[column]
    assert regions.min() >= 1 and regions.max() <= g.n
    if name not in ("Munich", "Zambia"):
        assert regions.nunique() == g.n
    A = _adjacency_from_file(shared_path("datasets", datasets.graph_path(name).name))
    assert (A != A.T).nnz == 0
    assert A.diagonal().sum() == 0
    assert (g.adjacency != A).nnz == 0


def test_scotland_bugs_graph_has_three_islands():
    g = datasets.graph("scotland_bugs")
    assert g.n == 56 and g.n_singletons == 3
    assert datasets.graph("Scotland").n_components == 1


def test_names_match_without_regard_to_case():
    pd.testing.assert_frame_equal(datasets.load("germany"), datasets.load("Germany"))
    pd.testing.assert_frame_equal(datasets.load("SPDETOY"), datasets.load("SPDEtoy"))
    assert datasets.graph("GERMANY").n == datasets.graph("Germany").n == 544
    assert datasets.graph_path("oral") == datasets.graph_path("Germany")


def test_unknown_name_lists_the_choices():
    with pytest.raises(DataError) as err:
        datasets.load("Germani")
    message = str(err.value)
    assert '"Germani"' in message and 'Did you mean "Germany"?' in message
    for name in datasets.list():
        assert name in message
    with pytest.raises(DataError, match="Valid choices: .*Germany"):
        datasets.graph("nowhere")
    with pytest.raises(DataError, match='"Seeds" has no neighbourhood graph.*Germany'):
        datasets.graph("Seeds")
    with pytest.raises(DataError, match="Valid choices"):
        datasets.load(None)


def test_germany_bym2_with_the_shipped_graph_equals_the_fit_with_the_graph_file():
    source_graph = str(shared_path("datasets", "germany.graph"))
    formula = 'Y ~ 1 + x + f(region, model="bym2", graph=g)'
    df = datasets.load("Germany")
    shipped = adelia.inla(formula, df, family="poisson", E="E", context={"g": datasets.graph("Germany")})
    by_path = adelia.inla(formula, df, family="poisson", E="E",
                          context={"g": source_graph})
    pd.testing.assert_frame_equal(shipped.summary_fixed, by_path.summary_fixed, check_exact=True)
    pd.testing.assert_frame_equal(shipped.summary_hyperpar, by_path.summary_hyperpar, check_exact=True)
    pd.testing.assert_frame_equal(shipped.summary_random["region"], by_path.summary_random["region"],
                                  check_exact=True)
    pd.testing.assert_series_equal(shipped.mlik, by_path.mlik, check_exact=True)
    # bym2 on 544 districts: 2 x 544 latent values (total effect, then the structured part)
    assert len(shipped.summary_random["region"]) == 2 * 544
