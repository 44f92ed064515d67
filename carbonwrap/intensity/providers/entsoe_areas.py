"""ENTSO-E Transparency Platform: the bidding zones it is asked for, for the start-up path.

Keys are Electricity Maps zone codes; values the EIC codes of the bidding zones (or, for Ireland,
Northern Ireland and Luxembourg, the control areas) given as in_Domain. EIC codes as in the API
guide's area list, copied there by EnergieID/entsoe-py@fbd0d24 entsoe/mappings.py (`Area`).
Left out: Great Britain (no generation per type published since Brexit: "No matching data
found", recorded 2026-05-08 by a public data pipeline), and countries split into zones (DK, IT,
NO, SE): their zones are listed, Energy-Charts serves the countries.
"""

from __future__ import annotations

AREAS: dict[str, str] = {
    "AT": "10YAT-APG------L",
    "BA": "10YBA-JPCC-----D",
    "BE": "10YBE----------2",
    "BG": "10YCA-BULGARIA-R",
    "CH": "10YCH-SWISSGRIDZ",
    "CZ": "10YCZ-CEPS-----N",
    "DE": "10Y1001A1001A82H",  # the DE-LU bidding zone
    "DK-DK1": "10YDK-1--------W",
    "DK-DK2": "10YDK-2--------M",
    "EE": "10Y1001A1001A39I",
    "ES": "10YES-REE------0",
    "FI": "10YFI-1--------U",
    "FR": "10YFR-RTE------C",
    "GB-NIR": "10Y1001A1001A016",  # SONI control area
    "GR": "10YGR-HTSO-----Y",
    "HR": "10YHR-HEP------M",
    "HU": "10YHU-MAVIR----U",
    "IE": "10YIE-1001A00010",  # EirGrid control area
    "IT-CNO": "10Y1001A1001A70O",
    "IT-CSO": "10Y1001A1001A71M",
    "IT-NO": "10Y1001A1001A73I",
    "IT-SAR": "10Y1001A1001A74G",
    "IT-SIC": "10Y1001A1001A75E",
    "IT-SO": "10Y1001A1001A788",
    "LT": "10YLT-1001A0008Q",
    "LU": "10YLU-CEGEDEL-NQ",  # CREOS control area
    "LV": "10YLV-1001A00074",
    "ME": "10YCS-CG-TSO---S",
    "MK": "10YMK-MEPSO----8",
    "NL": "10YNL----------L",
    "NO-NO1": "10YNO-1--------2",
    "NO-NO2": "10YNO-2--------T",
    "NO-NO3": "10YNO-3--------J",
    "NO-NO4": "10YNO-4--------9",
    "NO-NO5": "10Y1001A1001A48H",
    "PL": "10YPL-AREA-----S",
    "PT": "10YPT-REN------W",
    "RO": "10YRO-TEL------P",
    "RS": "10YCS-SERBIATSOV",
    "SE-SE1": "10Y1001A1001A44P",
    "SE-SE2": "10Y1001A1001A45N",
    "SE-SE3": "10Y1001A1001A46L",
    "SE-SE4": "10Y1001A1001A47J",
    "SI": "10YSI-ELES-----O",
    "SK": "10YSK-SEPS-----K",
}
KEY_ENV: str | None = "CARBONWRAP_ENTSOE_TOKEN"  # a free security token, asked for by e-mail
RESOLUTION_S = 900.0  # 15-minute steps in most zones, hourly in some
HISTORY_DAYS = 365.0  # one request may span a year
BASIS = "generation mix × lifecycle factors, production-based (imports ignored)"
