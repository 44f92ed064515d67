"""Which country or US state a point lies in, offline: the outlines in carbonwrap/data/
boundaries.json (Natural Earth countries, US Census states, simplified by
bench/build_boundaries.py), bounding boxes first, then even-odd ray casting."""

import functools
import json
import math
from typing import NamedTuple

from carbonwrap.packagedata import read_data

_FILE = "boundaries.json"
# A point off every outline still belongs to the nearest coast within the territorial sea
# (12 nautical miles, UNCLOS art. 3): a harbour, a bridge, or where the simplified coast
# (~2 km) cuts off a bit of land.
COAST_KM = 22.224
_KM_PER_DEG = 111.195  # a degree of a great circle, on a sphere of radius 6371.0 km

Points = list[tuple[int, int]]


class Place(NamedTuple):
    """Where a point lies: an ISO 3166-1 alpha-2 code ("DK") or a US state ("US-CA")."""

    code: str
    coast_km: float  # 0.0 inside the outline; else how far off it the point is (< COAST_KM)


class _Region(NamedTuple):
    code: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in units of `unit_deg`
    arcs: tuple[int, ...]


class _Outlines(NamedTuple):
    unit_deg: float
    arcs: list[str]  # encoded polylines, decoded on first use (`_arc`)
    layers: list[list[_Region]]  # US states, then countries


def locate(lat: float, lon: float) -> Place | None:
    """The US state or else the country the point (degrees north, east) lies in, or the one
    whose coast is nearest within COAST_KM; None at sea. Reads the outlines on first use
    (~2 ms: 250 kB), and decodes only the outlines whose box holds the point."""
    data = _outlines()
    states, countries = data.layers
    x, y = lon / data.unit_deg, lat / data.unit_deg
    for layer in (states, countries):
        for region in layer:
            if _in_box(x, y, region.box) and _inside(x, y, region.arcs):
                if region.code == "US":  # in the US but in no state: the Great Lakes, a border
                    return _nearest(lat, lon, data, states) or Place("US", 0.0)
                return Place(region.code, 0.0)
    state = _nearest(lat, lon, data, states)
    country = _nearest(lat, lon, data, countries)
    if state is not None and (
        country is None or country.code == "US" or state.coast_km <= country.coast_km
    ):
        return state
    return country


def _nearest(lat: float, lon: float, data: _Outlines, layer: list[_Region]) -> Place | None:
    """The region of `layer` whose outline is nearest the point, if within COAST_KM."""
    x, y = lon / data.unit_deg, lat / data.unit_deg
    # Flat near the point: a unit of x shrinks with the cosine of the latitude.
    ky = _KM_PER_DEG * data.unit_deg
    kx = ky * max(math.cos(math.radians(lat)), 1e-6)
    found: Place | None = None
    for region in layer:
        if _in_box(x, y, region.box, COAST_KM / kx, COAST_KM / ky):
            best = COAST_KM if found is None else found.coast_km
            km = _distance_km(x, y, region.arcs, kx, ky, best)
            if km < best:
                found = Place(region.code, km)
    return found


def _in_box(
    x: float, y: float, box: tuple[int, int, int, int], margin_x: float = 0, margin_y: float = 0
) -> bool:
    x0, y0, x1, y1 = box
    return x0 - margin_x <= x <= x1 + margin_x and y0 - margin_y <= y <= y1 + margin_y


def _inside(x: float, y: float, arcs: tuple[int, ...]) -> bool:
    """Even-odd rule over every edge of the region's rings (their direction does not matter);
    an edge counts when it straddles the horizontal through the point, right of it."""
    odd = False
    for arc in arcs:
        points, (_, y0, x1, y1) = _arc(arc)
        if y < y0 or y > y1 or x > x1:
            continue  # no edge of this arc crosses the ray
        xa, ya = points[0]
        for xb, yb in points[1:]:
            if (ya > y) != (yb > y) and x < xa + (y - ya) * (xb - xa) / (yb - ya):
                odd = not odd
            xa, ya = xb, yb
    return odd


def _distance_km(
    x: float, y: float, arcs: tuple[int, ...], kx: float, ky: float, best: float
) -> float:
    """The distance from the point to the nearest edge of the region in km (flat near the
    point), if under `best`; else `best`. Arcs whose box lies farther are passed over."""
    for arc in arcs:
        points, (x0, y0, x1, y1) = _arc(arc)
        gap_x = max(x0 - x, 0.0, x - x1) * kx
        gap_y = max(y0 - y, 0.0, y - y1) * ky
        if gap_x * gap_x + gap_y * gap_y >= best * best:
            continue
        ax, ay = (points[0][0] - x) * kx, (points[0][1] - y) * ky
        for px, py in points[1:]:
            bx, by = (px - x) * kx, (py - y) * ky
            dx, dy = bx - ax, by - ay
            length = dx * dx + dy * dy
            t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
            best = min(best, math.hypot(ax + t * dx, ay + t * dy))
            ax, ay = bx, by
    return best


@functools.cache
def _arc(arc: int) -> tuple[Points, tuple[int, int, int, int]]:
    """One arc's points and their box (x0, y0, x1, y1). The points come in Google's Encoded
    Polyline Algorithm Format (without its 1e5 factor: the numbers are whole units already),
    x before y, the first point absolute, the others as differences."""
    text = _outlines().arcs[arc]
    numbers: list[int] = []
    value = shift = 0
    for char in text:
        chunk = ord(char) - 63
        value |= (chunk & 0x1F) << shift
        if chunk & 0x20:
            shift += 5
            continue
        numbers.append(~(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    points: Points = []
    x = y = 0
    for i in range(0, len(numbers) - 1, 2):
        x += numbers[i]
        y += numbers[i + 1]
        points.append((x, y))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return points, (min(xs), min(ys), max(xs), max(ys))


@functools.cache
def _outlines() -> _Outlines:
    parsed = json.loads(read_data(_FILE))
    layers = [
        [_Region(str(code), tuple(box), tuple(arcs)) for code, box, arcs in layer["regions"]]
        for layer in parsed["layers"]
    ]
    return _Outlines(float(parsed["unit_deg"]), list(parsed["arcs"]), layers)
