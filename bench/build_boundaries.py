"""Build carbonwrap/data/boundaries.json: simplified country and US state outlines for
`--location LAT,LON` offline (carbonwrap/intensity/boundaries.py reads it).

    cd "$(mktemp -d)" && npm pack world-atlas@2.0.2 us-atlas@3.0.1
    python3 bench/build_boundaries.py --world world-atlas-2.0.2.tgz --us us-atlas-3.0.1.tgz

Stdlib only. Inputs (public domain data; provenance in carbonwrap/data/PROVENANCE.md §8):
  - world-atlas 2.0.2 `countries-50m.json`: Natural Earth 4.1.0 Admin 0 countries, 1:50m, as
    TopoJSON; countries by ISO 3166-1 numeric code.
  - us-atlas 3.0.1 `states-10m.json`: US Census Bureau cartographic boundaries (2017), 1:10m;
    states by FIPS code and name.
  - Debian `iso-codes` `iso_3166-1.json` (numeric → alpha-2) and carbonwrap's own
    `us_state_egrid2023.csv` (state name → US-XX).

TopoJSON keeps each border once, as an arc shared by both neighbours; the arcs are simplified
(Douglas–Peucker, `--tolerance` degrees) before the regions are put together again, so
neighbours still share exactly the same border: no gaps, no overlaps. Output:

    {"about": ..., "unit_deg": U, "arcs": ["<encoded polyline>", ...],
     "layers": [{"name": "us-states", "regions": [[code, [x0, y0, x1, y1], [arc, ...]], ...]},
                {"name": "countries", "regions": [...]}]}

Coordinates are whole multiples of U degrees (x = longitude, y = latitude); each arc is one
string in Google's Encoded Polyline Algorithm Format (each number zigzag-encoded in 5-bit
groups, the first point absolute, the rest as differences; x before y), which costs about two
characters a number and is decoded only for the regions whose bounding box holds the point.
A region lists its arcs (the arcs of all its rings, without direction: even-odd ray casting
does not need it; an arc a region holds twice, a border between two of its own parts, is
dropped). US states come first: a point in a state is that
state, else its country.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import random
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "carbonwrap" / "data"
UNIT_DEG = 0.001  # ~110 m of latitude: well below the 1:50m source's own accuracy
# Natural Earth units without an ISO 3166-1 numeric code: what they are counted as.
NO_NUMERIC = {
    "Kosovo": "XK",  # user-assigned code, as country_intensity.csv writes it
    "Somaliland": "SO",  # ISO 3166 counts it as part of Somalia
    "N. Cyprus": "CY",  # ISO 3166 counts it as part of Cyprus
    "Indian Ocean Ter.": None,  # Christmas Island (CX) and Cocos Islands (CC) in one unit: left out
    "Siachen Glacier": None,  # disputed, uninhabited: left out
}
Point = tuple[float, float]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, help="world-atlas-2.0.2.tgz (npm pack)")
    parser.add_argument("--us", required=True, help="us-atlas-3.0.1.tgz (npm pack)")
    parser.add_argument("--iso-codes", default="/usr/share/iso-codes/json/iso_3166-1.json")
    parser.add_argument("--tolerance", type=float, default=0.02, help="degrees (countries)")
    parser.add_argument("--state-tolerance", type=float, default=0.01, help="degrees (states)")
    parser.add_argument("--out", default=str(DATA / "boundaries.json"))
    args = parser.parse_args()

    world = _member(args.world, "package/countries-50m.json")
    states = _member(args.us, "package/states-10m.json")
    numeric = {
        row["numeric"]: row["alpha_2"]
        for row in json.loads(Path(args.iso_codes).read_text())["3166-1"]
    }
    state_codes = _state_codes()

    arcs: list[list[Point]] = []
    layers = []
    for name, topology, key, tolerance, code_of in (
        ("us-states", states, "states", args.state_tolerance, _state(state_codes)),
        ("countries", world, "countries", args.tolerance, _country(numeric)),
    ):
        offset = len(arcs)
        decoded = [_simplify(arc, tolerance) for arc in _decode(topology)]
        arcs += decoded
        regions = []
        for geometry in topology["objects"][key]["geometries"]:
            code = code_of(geometry)
            if code is None:
                continue
            used: dict[int, int] = {}
            for ring in _rings(geometry):
                for index in ring:
                    arc = index if index >= 0 else ~index
                    used[arc + offset] = used.get(arc + offset, 0) + 1
            kept = sorted(arc for arc, n in used.items() if n % 2)
            if kept:
                regions.append([code, kept])
        layers.append({"name": name, "regions": _merge(regions)})

    # Quantize, renumber the arcs that are used, delta-encode.
    used_arcs = sorted({a for layer in layers for _, ids in layer["regions"] for a in ids})
    number = {old: new for new, old in enumerate(used_arcs)}
    quantized = [
        [(round(x / UNIT_DEG), round(y / UNIT_DEG)) for x, y in arcs[a]] for a in used_arcs
    ]
    out_layers = []
    for layer in layers:
        regions = []
        for code, ids in layer["regions"]:
            points = [p for a in ids for p in quantized[number[a]]]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            bbox = [min(xs), min(ys), max(xs), max(ys)]
            regions.append([code, bbox, [number[a] for a in ids]])
        out_layers.append({"name": layer["name"], "regions": regions})
    document = {
        "about": (
            "Country outlines: Natural Earth 4.1.0 Admin 0 countries 1:50m (public domain), via "
            "npm world-atlas 2.0.2. US states: US Census Bureau cartographic boundaries 2017 "
            "1:10m (public domain), via npm us-atlas 3.0.1. Simplified by "
            "bench/build_boundaries.py; see PROVENANCE.md."
        ),
        "unit_deg": UNIT_DEG,
        "arcs": [_encode(arc) for arc in quantized],
        "layers": out_layers,
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True) + "\n"
    Path(args.out).write_text(text)
    points = sum(len(arc) for arc in quantized)
    print(f"inputs: {_sha(args.world)}  {args.world}", file=sys.stderr)
    print(f"        {_sha(args.us)}  {args.us}", file=sys.stderr)
    print(f"        {_sha(args.iso_codes)}  {args.iso_codes}", file=sys.stderr)
    for layer in out_layers:
        print(f"{layer['name']}: {len(layer['regions'])} regions", file=sys.stderr)
    print(
        f"{len(quantized)} arcs, {points} points, {len(text):,} bytes -> {args.out}",
        file=sys.stderr,
    )
    _check(args.world, world, quantized, out_layers, numeric)


def _member(archive: str, name: str) -> dict:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        if member is None:
            raise SystemExit(f"{archive}: no {name}")
        return json.loads(member.read())


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _state_codes() -> dict[str, str]:
    with open(DATA / "us_state_egrid2023.csv", newline="") as f:
        return {row["state"].casefold(): f"US-{row['state_code']}" for row in csv.DictReader(f)}


def _state(codes: dict[str, str]):  # type: ignore[no-untyped-def]
    def code_of(geometry: dict) -> str | None:
        # Territories (PR, GU, VI, AS, MP) are not in the state table: Natural Earth has them
        # as countries of their own, which the country layer finds.
        return codes.get(geometry["properties"]["name"].casefold())

    return code_of


def _country(numeric: dict[str, str]):  # type: ignore[no-untyped-def]
    def code_of(geometry: dict) -> str | None:
        name = geometry["properties"]["name"]
        if "id" not in geometry:
            if name not in NO_NUMERIC:
                raise SystemExit(f"no ISO code for Natural Earth unit {name!r}: add it")
            return NO_NUMERIC[name]
        if geometry["id"] not in numeric:
            raise SystemExit(f"ISO numeric {geometry['id']} ({name}) not in iso-codes")
        return numeric[geometry["id"]]

    return code_of


def _decode(topology: dict) -> list[list[Point]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def _rings(geometry: dict) -> list[list[int]]:
    if geometry["type"] == "Polygon":
        return list(geometry["arcs"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["arcs"] for ring in polygon]
    return []


def _merge(regions: list[list]) -> list[list]:
    """One entry per code (Natural Earth units that share a code: their arcs together)."""
    merged: dict[str, dict[int, int]] = {}
    for code, ids in regions:
        counts = merged.setdefault(code, {})
        for arc in ids:
            counts[arc] = counts.get(arc, 0) + 1
    return [
        [code, sorted(a for a, n in counts.items() if n % 2)] for code, counts in merged.items()
    ]


def _simplify(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas–Peucker; a closed arc (an island) keeps at least a triangle."""
    if len(points) <= 2:
        return points
    if points[0] == points[-1]:
        far = max(range(len(points)), key=lambda i: _sq(points[i], points[0]))
        first = _dp(points[: far + 1], tolerance)
        second = _dp(points[far:], tolerance)
        kept = first + second[1:]
        if len(kept) < 4:  # keep the island: its three points farthest apart
            third = max(range(len(points)), key=lambda i: _dist(points[i], points[0], points[far]))
            order = sorted({0, far, third})
            kept = [points[i] for i in order] + [points[0]]
        return kept
    return _dp(points, tolerance)


def _dp(points: list[Point], tolerance: float) -> list[Point]:
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        best, index = -1.0, -1
        for i in range(first + 1, last):
            d = _dist(points[i], points[first], points[last])
            if d > best:
                best, index = d, i
        if index >= 0 and best > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def _sq(a: Point, b: Point) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _dist(p: Point, a: Point, b: Point) -> float:
    """Distance from p to the segment a-b, in degrees (planar: fine for simplification)."""
    length = _sq(a, b)
    if length == 0:
        return _sq(p, a) ** 0.5
    t = max(0.0, min(1.0, ((p[0] - a[0]) * (b[0] - a[0]) + (p[1] - a[1]) * (b[1] - a[1])) / length))
    return _sq(p, (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))) ** 0.5


def _encode(points: list[tuple[int, int]]) -> str:
    """Encoded Polyline Algorithm Format (developers.google.com/maps/documentation/utilities/
    polylinealgorithm), of x then y, without its factor of 1e5: the values are already whole."""
    chars = []
    x0 = y0 = 0
    for x, y in points:
        for value in (x - x0, y - y0):
            value = ~(value << 1) if value < 0 else value << 1
            while value >= 0x20:
                chars.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            chars.append(chr(value + 63))
        x0, y0 = x, y
    return "".join(chars)


def _inside(x: float, y: float, arcs: list[list[tuple[int, int]]]) -> bool:
    odd = False
    for arc in arcs:
        for (x1, y1), (x2, y2) in itertools.pairwise(arc):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                odd = not odd
    return odd


def _bbox(arcs: list[list[Point]]) -> list[float]:
    xs = [x for arc in arcs for x, _ in arc]
    ys = [y for arc in arcs for _, y in arc]
    return [min(xs), min(ys), max(xs), max(ys)]


def _within(x: float, y: float, bbox: list[float]) -> bool:
    return bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]


def _check(archive: str, world: dict, quantized: list, layers: list, numeric: dict) -> None:
    """How often the simplified countries agree with the unsimplified ones, at random points on
    land (a point agrees when both name the same country, or both none)."""
    full = _decode(world)
    truth = []
    for geometry in world["objects"]["countries"]["geometries"]:
        code = _country(numeric)(geometry)
        if code is not None:
            arcs = [full[i if i >= 0 else ~i] for ring in _rings(geometry) for i in ring]
            truth.append((code, _bbox(arcs), arcs))
    countries = next(layer for layer in layers if layer["name"] == "countries")["regions"]
    rng = random.Random(14)
    agree = total = 0
    while total < 2000:
        x, y = rng.uniform(-180, 180), rng.uniform(-60, 75)
        expected = next(
            (c for c, b, arcs in truth if _within(x, y, b) and _inside(x, y, arcs)), None
        )
        if expected is None:
            continue  # at sea: most of the globe, not what the check is about
        qx, qy = x / UNIT_DEG, y / UNIT_DEG
        found = next(
            (
                c
                for c, b, ids in countries
                if _within(qx, qy, b) and _inside(qx, qy, [quantized[i] for i in ids])
            ),
            None,
        )
        total += 1
        agree += found == expected
    print(
        f"check: {agree}/{total} random land points agree with the unsimplified 1:50m data",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
