"""R-INLA's classic data sets, shipped with adelia: ``adelia.datasets.load("Germany")``.

The data sets that R-INLA's ``data(...)`` and its example pages use, as CSV files with the
values unchanged (``datasets/`` in the repository, installed as the package ``adelia.data``),
and the neighbourhood graphs of the areal ones in R-INLA's graph format. Their sources and
columns are listed in ``datasets/README.md``.

Names are R-INLA's (``"Seeds"``, ``"Germany"``, ``"SPDEtoy"``, ...) and match without regard
to case, so ``load("germany")`` works too.

R-INLA                                            adelia
------------------------------------------------  -------------------------------------------
``data(Germany)``                                 ``df = datasets.load("Germany")``
``g = system.file("demodata/germany.graph",       ``g = datasets.graph("Germany")``
package = "INLA")``
``f(region, model = "bym2", graph = g)``          ``f(region, model="bym2", graph=g)`` with
                                                  ``context={"g": g}``

Example:
    >>> from adelia import datasets
    >>> germany = datasets.load("Germany")
    >>> germany.shape, datasets.graph("germany").n
    ((544, 4), 544)
"""

from __future__ import annotations

import builtins
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, unknown_choice
from .models.graph import Graph, read_graph

__all__ = ["load", "list", "available", "graphs", "graph", "graph_path", "polygons", "graph_from_polygons"]

#: R-INLA's name of each data set -> its CSV file in ``datasets/``.
_FILES = {
    "BivMetaAnalysis": "BivMetaAnalysis.csv",
    "Cancer": "Cancer.csv",
    "Drivers": "Drivers.csv",
    "Epil": "Epil.csv",
    "Germany": "Germany.csv",
    "Kidney": "Kidney.csv",
    "Leuk": "Leuk.csv",
    "Munich": "Munich.csv",
    "NCSIDS": "NCSIDS.csv",
    "Oral": "Oral.csv",
    "Oxford": "oxford.csv",
    "PRborder": "PRborder.csv",
    "PRprec": "PRprec.csv",
    "Salm": "Salm.csv",
    "salamander_x": "salamander_x.csv",
    "salamander_y": "salamander_y.csv",
    "salamander_z": "salamander_z.csv",
    "Scotland": "Scotland.csv",
    "Seeds": "seeds.csv",
    "SPDEtoy": "SPDEtoy.csv",
    "Surg": "Surg.csv",
    "SurvSim": "SurvSim.csv",
    "Tokyo": "Tokyo.csv",
    "Zambia": "Zambia.csv",
}

#: Neighbourhood graph files (R-INLA's text format, nodes 1..n) by name: the data sets whose
#: region index is a graph node (Oral is on Germany's 544 districts, as in R-INLA's examples),
#: and ``scotland_bugs``, the classic WinBUGS adjacency of Scotland with its three islands
#: unconnected (``Scotland`` gets the connected graph that R-INLA ships today).
_GRAPHS = {
    "Germany": "germany.graph",
    "Leuk": "Leuk.graph",
    "Munich": "munich.graph",
    "NCSIDS": "nc_sids.graph",
    "Oral": "germany.graph",
    "Scotland": "scotland.graph",
    "scotland_bugs": "scotland_bugs.graph",
    "Zambia": "zambia.graph",
}

#: Area boundary polygons by data set: one row per vertex, ``region, ring, x, y`` (see
#: ``datasets/README.md`` for their source and licence).
_POLYGONS = {
    "NCSIDS": "nc_sids_polygons.csv",
}


def list() -> builtins.list[str]:  # noqa: A001 - the name R users look for (R's data())
    """Names of the shipped data sets, in R-INLA's spelling, sorted without regard to case.

    Example:
        >>> names = list()
        >>> "Germany" in names and "Seeds" in names
        True
    """
    return sorted(_FILES, key=str.lower)


def available() -> builtins.list[str]:
    """The same as :func:`list` (kept for older code).

    Example:
        >>> available() == list()
        True
    """
    return list()


def load(name: str) -> pd.DataFrame:
    """A shipped data set as a DataFrame, as R-INLA's ``data(name)`` gives it.

    Args:
        name: a name from :func:`list` (any case: ``"Germany"`` or ``"germany"``).

    Raises:
        DataError: an unknown name; the message lists the valid ones.

    Example:
        >>> load("Seeds").shape
        (21, 5)
        >>> load("tokyo").columns.tolist()
        ['y', 'n', 'time']
    """
    key = _resolve(name, _FILES, "data set")
    return pd.read_csv(_location() / _FILES[key])


def graphs() -> builtins.list[str]:
    """Names that :func:`graph` accepts: the data sets with a neighbourhood graph, and
    ``scotland_bugs``.

    Example:
        >>> "Germany" in graphs()
        True
    """
    return sorted(_GRAPHS, key=str.lower)


def graph(name: str) -> Graph:
    """The neighbourhood graph of an areal data set, as adelia's :class:`~adelia.models.graph.Graph`.

    Node ``i`` (1-based, as in the file and in the data's region column) is the graph's node
    ``i - 1``. Give it to a besag / bym / bym2 / besagproper term through ``context``, as R
    users give ``graph = g``.

    Args:
        name: a name from :func:`graphs` (any case).

    Raises:
        DataError: a name without a graph; the message lists the valid ones.

    Example:
        >>> g = graph("Scotland")
        >>> g.n, g.n_components
        (56, 1)
        >>> graph("scotland_bugs").n_components   # the WinBUGS adjacency: 3 islands
        4
    """
    return read_graph(graph_path(name))


def graph_path(name: str) -> Path:
    """The path of the graph file of :func:`graph`, for code that wants a file name (as R-INLA
    examples pass ``graph = "germany.graph"``).

    Example:
        >>> graph_path("Germany").name
        'germany.graph'
    """
    if isinstance(name, str) and not any(k.lower() == name.lower() for k in _GRAPHS):
        if any(k.lower() == name.lower() for k in _FILES):
            raise DataError(
                f'the data set "{name}" has no neighbourhood graph; the graphs are: {", ".join(graphs())}.'
            )
    key = _resolve(name, _GRAPHS, "graph")
    return _location() / _GRAPHS[key]


def _resolve(name, table: dict, kind: str) -> str:
    """The key of ``table`` that equals ``name`` without regard to case."""
    if isinstance(name, str):
        for key in table:
            if key.lower() == name.lower():
                return key
    raise DataError(unknown_choice(kind, name, table))


def _location() -> Path:
    """The shipped files: the installed package ``adelia.data`` (the repository's
    ``datasets/`` folder), or that folder itself when adelia runs from a source checkout."""
    try:
        return Path(str(resources.files("adelia.data")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "datasets"


def polygons(name: str) -> builtins.list[builtins.list[np.ndarray]]:
    """The boundary polygons of an areal data set's regions, for maps.

    R-INLA ships no boundaries (its examples read shapefiles with ``sf``/``sp``); adelia ships
    them, in a plain CSV, for the data sets listed in ``datasets/README.md`` ("Area
    polygons"). Draw them with :func:`adelia.plotting.choropleth`.

    Args:
        name: a data set with polygons (any case): ``"NCSIDS"``.

    Returns:
        One entry per region, in the order of the data set's ``region`` column (region ``i``
        is entry ``i - 1``): a list of rings, each an ``(m, 2)`` array of (longitude, latitude)
        with the first vertex repeated at the end. A region of several islands has several
        rings; the shipped data have no holes.

    Raises:
        DataError: a name without polygons; the message lists the valid ones.

    Example:
        >>> rings = polygons("NCSIDS")
        >>> ashe = rings[0]                  # region 1: one ring of (lon, lat) vertices
        >>> len(rings), len(ashe), ashe[-1].shape[1]
        (100, 1, 2)
    """
    key = _resolve(name, _POLYGONS, "polygon set")
    table = pd.read_csv(_location() / _POLYGONS[key])
    out: builtins.list[builtins.list[np.ndarray]] = [[] for _ in range(int(table["region"].max()))]
    for (region, _), ring in table.groupby(["region", "ring"], sort=True):
        out[int(region) - 1].append(ring[["x", "y"]].to_numpy(dtype=float))
    return out


def graph_from_polygons(rings, rule: str = "rook", digits: int = 5) -> Graph:
    """The neighbourhood graph of areas given by their boundary polygons (R's
    ``spdep::poly2nb``): two areas are neighbours when their boundaries share an edge
    (``rule="rook"``, R's ``queen = FALSE``) or at least one vertex (``rule="queen"``).

    Shared boundaries are found by exact matching of vertices rounded to ``digits``
    decimals, so the polygons must be topologically clean (neighbouring areas list the same
    vertices along their common border), as boundary files from a GIS are.

    Args:
        rings: per area, a list of rings (``(m, 2)`` arrays), as :func:`polygons` returns.
        rule: ``"rook"`` (a common edge) or ``"queen"`` (a common vertex).
        digits: decimals the coordinates are rounded to before matching.

    Returns:
        adelia's :class:`~adelia.models.graph.Graph`, node ``i`` = area ``i``.

    Example:
        >>> g = graph_from_polygons(polygons("NCSIDS"))
        >>> bool((g.adjacency != graph("NCSIDS").adjacency).nnz == 0)
        True
    """
    if rule not in ("rook", "queen"):
        raise DataError(unknown_choice("rule", rule, ["rook", "queen"]))
    owners: dict = {}
    for area, area_rings in enumerate(rings):
        for ring in area_rings:
            xy = np.round(np.asarray(ring, dtype=float), digits)
            if xy.ndim != 2 or xy.shape[1] != 2:
                raise DataError(f"rings: area {area + 1} has a ring of shape {xy.shape}; expected (m, 2)")
            points = [tuple(p) for p in xy]
            if rule == "queen":
                keys = points
            else:
                keys = [(a, b) if a <= b else (b, a) for a, b in zip(points[:-1], points[1:])]
            for key in keys:
                owners.setdefault(key, set()).add(area)
    neighbours = [set() for _ in range(len(rings))]
    for areas in owners.values():
        if len(areas) > 1:
            for i in areas:
                neighbours[i].update(areas - {i})
    return Graph.from_neighbours([sorted(v) for v in neighbours], len(rings), source=f"polygons ({rule})")
