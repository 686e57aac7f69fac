"""Write NCSIDS.csv, nc_sids_polygons.csv and nc_sids.graph from libpysal's ``sids2`` example.

    pip download libpysal==4.14.1 --no-deps -d /tmp/lp
    unzip -q /tmp/lp/libpysal-4.14.1-py3-none-any.whl 'libpysal/examples/sids2/*' -d /tmp/lp/x
    python datasets/sources/convert_nc_sids.py /tmp/lp/x/libpysal/examples/sids2

libpysal (BSD 3-Clause) ships the North Carolina SIDS counties of Cressie (1993) as an
ESRI shapefile (polygons, unprojected longitude/latitude), a dBase table (the counts) and a
GeoDa GAL file (the contiguity graph, keyed by FIPS code). This script reads the three with
the standard library only (the shapefile and dBase layouts are ESRI's and dBase's published
formats) and writes them in adelia's dependency-free forms:

* ``NCSIDS.csv``: one row per county in the shapefile's order, ``region`` 1..100;
* ``nc_sids_polygons.csv``: one row per vertex, ``region, ring, x, y`` (ring 1, 2, ... per
  county; a county on the Outer Banks has several), coordinates rounded to 1e-5 degrees
  (about 1 m), which keeps every vertex that two counties share identical;
* ``nc_sids.graph``: the GAL graph in R-INLA's text format, nodes numbered as ``region``.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # datasets/
COLUMNS = ["NAME", "FIPSNO", "CRESS_ID", "BIR74", "SID74", "NWBIR74", "BIR79", "SID79", "NWBIR79"]


def read_dbf(path: Path) -> list[dict]:
    raw = path.read_bytes()
    n, header_len, record_len = struct.unpack("<IHH", raw[4:12])
    fields, o = [], 32
    while raw[o] != 0x0D:
        name = raw[o:o + 11].split(b"\0")[0].decode()
        fields.append((name, chr(raw[o + 11]), raw[o + 16]))
        o += 32
    rows = []
    for k in range(n):
        rec, pos, row = raw[header_len + k * record_len: header_len + (k + 1) * record_len], 1, {}
        for name, kind, length in fields:
            text = rec[pos:pos + length].decode("latin-1").strip()
            row[name] = text if kind == "C" else float(text)
            pos += length
        rows.append(row)
    return rows


def read_shp_polygons(path: Path) -> list[list[list[tuple[float, float]]]]:
    raw = path.read_bytes()
    shapes, o = [], 100
    while o < len(raw):
        _, words = struct.unpack(">ii", raw[o:o + 8])
        content = raw[o + 8:o + 8 + 2 * words]
        o += 8 + 2 * words
        (kind,) = struct.unpack("<i", content[:4])
        assert kind == 5, f"shape type {kind} is not a polygon"
        n_parts, n_points = struct.unpack("<ii", content[36:44])
        parts = list(struct.unpack(f"<{n_parts}i", content[44:44 + 4 * n_parts])) + [n_points]
        xy = struct.unpack(f"<{2 * n_points}d", content[44 + 4 * n_parts:44 + 4 * n_parts + 16 * n_points])
        pts = [(xy[2 * i], xy[2 * i + 1]) for i in range(n_points)]
        shapes.append([pts[parts[j]:parts[j + 1]] for j in range(n_parts)])
    return shapes


def read_gal(path: Path) -> dict[int, list[int]]:
    tokens = path.read_text().split()
    n, k, nbs = int(tokens[1]), 4, {}
    for _ in range(n):
        key, m = int(tokens[k]), int(tokens[k + 1])
        nbs[key] = [int(t) for t in tokens[k + 2:k + 2 + m]]
        k += 2 + m
    return nbs


def main(folder: Path) -> None:
    rows = read_dbf(folder / "sids2.dbf")
    shapes = read_shp_polygons(folder / "sids2.shp")
    assert len(rows) == len(shapes) == 100
    lines = ["region," + ",".join(COLUMNS)]
    for i, row in enumerate(rows, start=1):
        values = [row["NAME"]] + [str(int(row[c])) for c in COLUMNS[1:]]
        lines.append(f"{i}," + ",".join(values))
    (HERE / "NCSIDS.csv").write_text("\n".join(lines) + "\n")

    lines = ["region,ring,x,y"]
    for i, rings in enumerate(shapes, start=1):
        for r, ring in enumerate(rings, start=1):
            lines += [f"{i},{r},{x:.5f},{y:.5f}" for x, y in ring]
    (HERE / "nc_sids_polygons.csv").write_text("\n".join(lines) + "\n")

    region_of = {int(row["FIPSNO"]): i for i, row in enumerate(rows, start=1)}
    gal = read_gal(folder / "sids2.gal")
    lines = [str(len(rows))]
    for fips, i in sorted(region_of.items(), key=lambda kv: kv[1]):
        nbs = sorted(region_of[j] for j in gal[fips])
        lines.append(" ".join(str(v) for v in [i, len(nbs), *nbs]))
    (HERE / "nc_sids.graph").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
