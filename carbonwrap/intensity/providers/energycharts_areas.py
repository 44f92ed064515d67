"""Energy-Charts (Fraunhofer ISE): the countries it serves, light enough for the start-up path.

The country parameters are those the API documents (https://api.energy-charts.info, "country"
of /public_power), as listed by the client alexanderblinn/Energy-Charts@747045e8
src/api_accessor.py (`supported_countries`, where the ones it found unserved are commented out)
and app/enums.py; aggregates ("eu", "all") are left out. Keys are Electricity Maps zone codes:
ISO 3166 alpha-2, except the United Kingdom, which Electricity Maps calls "GB".
"""

from __future__ import annotations

AREAS: dict[str, str] = {
    "AT": "at",
    "BA": "ba",
    "BE": "be",
    "CH": "ch",
    "CY": "cy",
    "CZ": "cz",
    "DE": "de",
    "DK": "dk",
    "EE": "ee",
    "ES": "es",
    "FI": "fi",
    "FR": "fr",
    "GB": "uk",
    "GE": "ge",
    "GR": "gr",
    "HR": "hr",
    "HU": "hu",
    "IE": "ie",
    "IT": "it",
    "LT": "lt",
    "LU": "lu",
    "LV": "lv",
    "MD": "md",
    "ME": "me",
    "MK": "mk",
    "NL": "nl",
    "NO": "no",
    "PL": "pl",
    "PT": "pt",
    "RO": "ro",
    "RS": "rs",
    "SE": "se",
    "SK": "sk",
    "UA": "ua",
    "XK": "xk",
}
# Countries for which Energy-Charts publishes its own CO2eq series (/co2eq): preferred there.
# Inferred, not documented: the ones bluehands/Carbon-Aware-Computing@7fc7b60 serves from that
# endpoint (src/CarbonAwareComputing/ComputingLocation.cs). Elsewhere, or where /co2eq answers
# 4xx or nothing, the generation mix is priced instead.
CO2EQ_AREAS: frozenset[str] = frozenset({"AT", "CH", "DE", "FR"})
KEY_ENV: str | None = None  # no signup
RESOLUTION_S = 900.0  # 15-minute steps (hourly in some countries)
HISTORY_DAYS = 365.0  # /public_power takes any start; a year is what we promise
BASIS = "generation mix × lifecycle factors, production-based (imports ignored)"
CO2EQ_BASIS = "Energy-Charts' own CO2eq series (Fraunhofer ISE)"
