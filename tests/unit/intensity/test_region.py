"""Region resolution: --region > CARBONWRAP_REGION > time zone > WORLD, each source recorded.

Resolved as a run resolves it (location.resolve_location); region.py gives it the table codes,
names, near matches and the time zone's country.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carbonwrap.errors import CarbonwrapError, ExitCode
from carbonwrap.intensity.location import resolve_location
from carbonwrap.intensity.region import (
    Region,
    match_region,
    region_from_timezone,
    suggest,
    system_timezone,
    timezone_country,
)
from carbonwrap.intensity.table import load_table

ENV = {"CARBONWRAP_REGION": "US-CA"}


def _resolved(flag: str | None, environ: dict[str, str], tz_name: str | None = None) -> Region:
    """The region a run resolves (--region `flag`): code, source and where it came from (the
    detail up to the notes resolve_location adds after "; ", such as the price area)."""
    loc = resolve_location(flag, None, None, environ, tz_name)
    return Region(loc.region, loc.source, loc.detail.split("; ")[0])


# --- precedence ------------------------------------------------------------------------------


def test_flag_beats_env_and_timezone() -> None:
    assert _resolved("dk", ENV, "America/New_York") == Region("DK", "flag", "--region dk")


def test_env_beats_timezone() -> None:
    region = _resolved(None, ENV, "Europe/Copenhagen")
    assert region == Region("US-CA", "env", "CARBONWRAP_REGION=US-CA")


def test_timezone_when_no_flag_or_env() -> None:
    region = _resolved(None, {}, "Europe/Copenhagen")
    assert region == Region("DK", "timezone", "time zone Europe/Copenhagen")


def test_default_world_when_timezone_has_no_country() -> None:
    region = _resolved(None, {}, "Etc/UTC")
    assert region == Region(
        "WORLD", "default", "no region given and time zone Etc/UTC has no country"
    )


def test_default_world_when_country_has_no_data() -> None:
    region = _resolved(None, {}, "Antarctica/Troll")  # AQ: no grid data
    assert (region.code, region.source) == ("WORLD", "default")
    assert "Antarctica/Troll is in AQ" in region.detail


def test_default_world_when_no_timezone_found() -> None:
    region = _resolved(None, {}, "")
    assert region == Region("WORLD", "default", "no region given and no system time zone found")


def test_timezone_read_from_environ_when_not_given() -> None:
    region = _resolved(None, {"TZ": ":Europe/Copenhagen"})
    assert region == Region("DK", "timezone", "time zone Europe/Copenhagen")


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_env_counts_as_unset(blank: str) -> None:
    region = _resolved(None, {"CARBONWRAP_REGION": blank}, "Europe/Copenhagen")
    assert region.source == "timezone"


# --- accepted spellings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("DK", "DK"),
        ("dk", "DK"),
        (" dk ", "DK"),
        ("us-ca", "US-CA"),
        ("US", "US"),
        ("na", "NA"),  # Namibia
        ("world", "WORLD"),
        ("denmark", "DK"),
        ("United Kingdom", "GB"),
        ("california", "US-CA"),
    ],
)
def test_accepted_spellings(text: str, code: str) -> None:
    assert _resolved(text, {}, "Etc/UTC").code == code


def test_env_value_canonicalised_and_detail_keeps_what_was_typed() -> None:
    region = _resolved(None, {"CARBONWRAP_REGION": "us-tx"}, "Etc/UTC")
    assert region == Region("US-TX", "env", "CARBONWRAP_REGION=us-tx")


# --- errors ----------------------------------------------------------------------------------


def _error(flag: str | None, environ: dict[str, str] | None = None) -> CarbonwrapError:
    with pytest.raises(CarbonwrapError) as info:
        _resolved(flag, environ or {}, "Etc/UTC")
    assert "\n" not in info.value.message
    assert info.value.code == ExitCode.USAGE
    return info.value


def test_alpha3_code_suggests_alpha2() -> None:
    assert _error("DNK").message == (
        "unknown region 'DNK': use a country (DK), a US state (US-CA), "
        "an Electricity Maps zone (DK-DK1) or gb-postcode:RG10; did you mean DK (Denmark)?"
    )


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("Denmrak", "DK (Denmark)"),
        ("Germny", "DE (Germany)"),
        ("UK", "GB (United Kingdom)"),
        ("USA", "US (United States)"),
        ("US-CAL", "US-CA (California)"),
        ("US-Californa", "US-CA (California)"),
        ("US-CF", "US-CA (California)"),
        ("US_CA", "US-CA (California)"),
    ],
)
def test_unknown_region_suggests_near_matches(text: str, hint: str) -> None:
    message = _error(text).message
    assert message.startswith(f"unknown region {text!r}: ")
    assert f"did you mean {hint}" in message or f" or {hint}" in message


def test_wrong_us_state_suggests_only_states() -> None:
    # The table's near matches are states only; resolve_location lists them first, then zones.
    suggestions = suggest("US-CF", load_table())
    assert "US-CA (California)" in suggestions
    assert all(part.startswith("US-") for part in suggestions)
    message = _error("US-CF").message
    assert message.split("did you mean ")[1].startswith(" or ".join(suggestions))


def test_no_suggestion_when_nothing_is_close() -> None:
    assert "did you mean" not in _error("qqqqqq").message


def test_env_error_names_the_variable() -> None:
    message = _error(None, {"CARBONWRAP_REGION": "DNK"}).message
    assert message.startswith("unknown region 'DNK' in CARBONWRAP_REGION: ")


def test_empty_flag_is_an_error() -> None:
    assert _error("").message.startswith("empty region: ")


def test_ambiguous_name() -> None:
    message = _error("Georgia").message
    assert message == "ambiguous region 'Georgia': GE (Georgia) or US-GA (Georgia); give the code"


def test_match_region_returns_none_for_unknown_and_raises_on_ambiguity() -> None:
    table = load_table()
    assert match_region(" denmark ", table) == "DK"
    assert match_region("DK-DK1", table) is None  # zones are location.py's
    with pytest.raises(CarbonwrapError, match="ambiguous region 'Georgia' in X"):
        match_region("Georgia", table, " in X")


def test_region_from_timezone_ignores_flag_and_env() -> None:
    region = region_from_timezone(ENV, "Europe/Copenhagen", load_table())
    assert region == Region("DK", "timezone", "time zone Europe/Copenhagen")


# --- system time zone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "name"),
    [
        ("Europe/Copenhagen", "Europe/Copenhagen"),
        (":Europe/Copenhagen", "Europe/Copenhagen"),
        ("/usr/share/zoneinfo/Europe/Copenhagen", "Europe/Copenhagen"),
        (":/usr/share/zoneinfo/posix/Europe/Copenhagen", "Europe/Copenhagen"),
        ("", "UTC"),  # glibc: set but empty means UTC
        ("CET-1CEST", "CET-1CEST"),  # a POSIX rule; names no country, resolves to WORLD
    ],
)
def test_tz_environment_forms(tz: str, name: str, tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("America/New_York\n")
    assert system_timezone({"TZ": tz}, etc_root=tmp_path) == name


def test_etc_timezone_file(tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("# comment\n\nEurope/Copenhagen\n")
    assert system_timezone({}, etc_root=tmp_path) == "Europe/Copenhagen"


def _fake_zoneinfo(root: Path, name: str) -> Path:
    target = root / "usr" / "share" / "zoneinfo" / name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"TZif2")
    return target


def test_etc_localtime_absolute_link(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "localtime").symlink_to(_fake_zoneinfo(tmp_path, "Europe/Copenhagen"))
    assert system_timezone({}, etc_root=etc) == "Europe/Copenhagen"


def test_etc_localtime_relative_link(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    _fake_zoneinfo(tmp_path, "America/Los_Angeles")
    (etc / "localtime").symlink_to(Path("..", "usr", "share", "zoneinfo", "America/Los_Angeles"))
    assert system_timezone({}, etc_root=etc) == "America/Los_Angeles"


def test_etc_localtime_through_a_chain_of_links(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    hop = tmp_path / "hop"
    hop.symlink_to(_fake_zoneinfo(tmp_path, "Europe/Copenhagen"))
    (etc / "localtime").symlink_to(hop)
    assert system_timezone({}, etc_root=etc) == "Europe/Copenhagen"


def test_localtime_link_comes_before_a_stale_etc_timezone(tmp_path: Path) -> None:
    """glibc and systemd go by /etc/localtime; /etc/timezone is often left over in images."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "timezone").write_text("Europe/Copenhagen\n")
    (etc / "localtime").symlink_to(_fake_zoneinfo(tmp_path, "America/Los_Angeles"))
    assert system_timezone({}, etc_root=etc) == "America/Los_Angeles"
    (etc / "localtime").unlink()
    assert system_timezone({}, etc_root=etc) == "Europe/Copenhagen"


def test_tz_path_without_a_zone_name_falls_back_to_etc(tmp_path: Path) -> None:
    (tmp_path / "copied").write_bytes(b"TZif2")
    (tmp_path / "timezone").write_text("Europe/Copenhagen\n")
    tz = f":{tmp_path / 'copied'}"
    assert system_timezone({"TZ": tz}, etc_root=tmp_path) == "Europe/Copenhagen"


def test_copied_localtime_file_or_nothing_gives_none(tmp_path: Path) -> None:
    assert system_timezone({}, etc_root=tmp_path) is None
    (tmp_path / "localtime").write_bytes(b"TZif2")  # a copy, not a link: no name to read
    assert system_timezone({}, etc_root=tmp_path) is None


def test_fake_etc_root_end_to_end(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "localtime").symlink_to(_fake_zoneinfo(tmp_path, "Europe/Copenhagen"))
    tz = system_timezone({}, etc_root=etc)
    assert _resolved(None, {}, tz) == Region("DK", "timezone", "time zone Europe/Copenhagen")


# --- time zone → country ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "country"),
    [
        ("Europe/Copenhagen", "DK"),
        (":Europe/Copenhagen", "DK"),
        ("America/Los_Angeles", "US"),
        ("Africa/Windhoek", "NA"),
        ("Etc/UTC", None),
        ("UTC", None),
        ("CET-1CEST", None),
        ("Not/AZone", None),
    ],
)
def test_timezone_country(tz: str, country: str | None) -> None:
    assert timezone_country(tz) == country


@pytest.mark.skipif(
    not os.path.exists("/usr/share/zoneinfo/tzdata.zi"), reason="system has no tzdata.zi"
)
@pytest.mark.parametrize(("tz", "country"), [("US/Pacific", "US"), ("Europe/Kiev", "UA")])
def test_backward_links_on_this_system(tz: str, country: str) -> None:
    assert timezone_country(tz) == country


def test_fake_zoneinfo_with_links(tmp_path: Path) -> None:
    (tmp_path / "zone.tab").write_text("# c\nDK\t+5540+01235\tEurope/Copenhagen\n")
    (tmp_path / "tzdata.zi").write_text(
        "# version x\nL Europe/Copenhagen Old/Name\nL Old/Name Older/Name\n"
    )
    assert timezone_country("Europe/Copenhagen", tmp_path) == "DK"
    assert timezone_country("Old/Name", tmp_path) == "DK"
    assert timezone_country("Older/Name", tmp_path) == "DK"
    assert timezone_country("Europe/Berlin", tmp_path) is None


def test_shipped_zone_tab_when_system_has_none(tmp_path: Path) -> None:
    assert timezone_country("Europe/Copenhagen", tmp_path / "missing") == "DK"
    assert timezone_country("Asia/Tokyo", tmp_path / "missing") == "JP"
    assert timezone_country("US/Pacific", tmp_path / "missing") is None  # no tzdata.zi: no links
