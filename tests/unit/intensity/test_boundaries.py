"""Points to countries and US states offline, from the shipped outlines."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from carbonwrap.intensity import boundaries
from carbonwrap.intensity.boundaries import COAST_KM, locate
from carbonwrap.intensity.table import load_table

DATA = REPO / "carbonwrap" / "data"


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (55.6761, 12.5683, "DK"),  # Copenhagen: on the coast, 1 km off the simplified outline
        (55.1, 14.9, "DK"),  # Bornholm
        (37.77, -122.42, "US-CA"),  # San Francisco
        (40.7128, -74.006, "US-NY"),
        (38.9072, -77.0369, "US-DC"),
        (39.0438, -77.4874, "US-VA"),  # Ashburn
        (21.3069, -157.8583, "US-HI"),
        (61.2181, -149.9003, "US-AK"),
        (42.3314, -83.0458, "US-MI"),  # Detroit ...
        (42.3149, -83.0364, "CA"),  # ... and Windsor across the river
        (31.7619, -106.485, "US-TX"),  # El Paso ...
        (31.6904, -106.4245, "MX"),  # ... and Ciudad Juárez
        (46.2044, 6.1432, "CH"),  # Geneva
        (47.5596, 7.5886, "CH"),  # Basel
        (48.5734, 7.7521, "FR"),  # Strasbourg
        (49.6116, 6.1319, "LU"),
        (50.1109, 8.6821, "DE"),
        (1.2903, 103.8519, "SG"),
        (35.8989, 14.5146, "MT"),
        (26.2285, 50.586, "BH"),
        (18.4655, -66.1057, "PR"),  # Puerto Rico: a country of the table, not a state
        (42.6629, 21.1655, "XK"),  # Kosovo: no ISO numeric code in Natural Earth
        (25.033, 121.5654, "TW"),
        (-33.8688, 151.2093, "AU"),
        (-18.1416, 178.4419, "FJ"),  # beside the antimeridian
        (64.1466, -21.9426, "IS"),
    ],
)
def test_points_land_in_their_country_or_state(lat: float, lon: float, code: str) -> None:
    place = locate(lat, lon)
    assert place is not None and place.code == code
    assert place.coast_km < 5  # inside, or on the coast as drawn at 1:50m


def test_at_sea_is_nowhere() -> None:
    assert locate(30.0, -40.0) is None  # the North Atlantic
    assert locate(0.0, -160.0) is None  # the Pacific
    place = locate(-80.0, 0.0)  # Antarctica is land: AQ, with no intensity row
    assert place is not None and place.code == "AQ"


def test_near_a_coast_is_that_country_with_its_distance() -> None:
    place = locate(55.68, 12.75)  # in the Øresund, off Copenhagen
    assert place is not None and place.code == "DK" and 5 < place.coast_km < COAST_KM
    place = locate(36.2, -121.9)  # off Big Sur: the state, not just the US
    assert place is not None and place.code == "US-CA" and place.coast_km > 0


def test_in_the_us_but_in_no_state() -> None:
    """The state outlines end at the shore of the Great Lakes, the country's do not."""
    place = locate(43.5, -87.0)  # the middle of Lake Michigan
    assert place is not None and place.code == "US"
    near = locate(43.75, -87.55)  # 10 km off Sheboygan, Wisconsin
    assert near is not None and near.code == "US-WI"


def test_every_region_is_a_table_code_or_said_to_have_no_row() -> None:
    parsed = json.loads((DATA / "boundaries.json").read_bytes())
    states, countries = (layer["regions"] for layer in parsed["layers"])
    table = load_table()
    state_codes = sorted(code for code in table.codes() if code.startswith("US-"))
    assert sorted(code for code, _, _ in states) == state_codes  # 50 states and DC
    codes = [code for code, _, _ in countries]
    assert len(codes) == len(set(codes)) and "US" in codes
    missing = sorted(code for code in codes if code not in table)
    assert len(missing) < 40 and "AQ" in missing  # small territories; listed in PROVENANCE


def test_the_shipped_file_stays_small() -> None:
    size = (DATA / "boundaries.json").stat().st_size
    assert size < 300_000


def test_polyline_decoding() -> None:
    """Google's reference example (without its 1e5 factor): (38.5, -120.2), (40.7, -120.95),
    (43.252, -126.453), as longitude then latitude."""
    boundaries._arc.cache_clear()
    outlines = boundaries._outlines()
    saved = outlines.arcs[0]
    outlines.arcs[0] = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    try:
        points, box = boundaries._arc(0)
    finally:
        outlines.arcs[0] = saved
        boundaries._arc.cache_clear()
    # The reference encodes latitude first; read as x, y, the pairs are the same numbers.
    assert points == [(3850000, -12020000), (4070000, -12095000), (4325200, -12645300)]
    assert box == (3850000, -12645300, 4325200, -12020000)
