"""Which US balancing authorities EIA's hourly grid monitor serves and what its value is; light,
for the start-up path."""

# Electricity Maps zone -> EIA-930 respondent (balancing authority), as electricitymaps-contrib
# maps them (electricitymap/contrib/parsers/EIA.py REGIONS), for the zones carbonwrap knows.
# Alaska and Hawaii do not report to EIA-930. US states ("US-CA") are left out: a state is
# served by several balancing authorities, and one of them is no answer for the rest.
AREAS: dict[str, str] = {
    "US-CAL-BANC": "BANC",
    "US-CAL-CISO": "CISO",
    "US-CAL-IID": "IID",
    "US-CAL-LDWP": "LDWP",
    "US-CAL-TIDC": "TIDC",
    "US-CAR-CPLE": "CPLE",
    "US-CAR-CPLW": "CPLW",
    "US-CAR-DUK": "DUK",
    "US-CAR-SC": "SC",
    "US-CAR-SCEG": "SCEG",
    "US-CAR-YAD": "YAD",
    "US-CENT-SPA": "SPA",
    "US-CENT-SWPP": "SWPP",
    "US-FLA-FMPP": "FMPP",
    "US-FLA-FPC": "FPC",
    "US-FLA-FPL": "FPL",
    "US-FLA-GVL": "GVL",
    "US-FLA-HST": "HST",
    "US-FLA-JEA": "JEA",
    "US-FLA-SEC": "SEC",
    "US-FLA-TAL": "TAL",
    "US-FLA-TEC": "TEC",
    "US-MIDA-PJM": "PJM",
    "US-MIDW-AECI": "AECI",
    "US-MIDW-LGEE": "LGEE",
    "US-MIDW-MISO": "MISO",
    "US-NE-ISNE": "ISNE",
    "US-NW-AVA": "AVA",
    "US-NW-BPAT": "BPAT",
    "US-NW-CHPD": "CHPD",
    "US-NW-DOPD": "DOPD",
    "US-NW-GCPD": "GCPD",
    "US-NW-GRID": "GRID",
    "US-NW-GWA": "GWA",
    "US-NW-IPCO": "IPCO",
    "US-NW-NEVP": "NEVP",
    "US-NW-NWMT": "NWMT",
    "US-NW-PACE": "PACE",
    "US-NW-PACW": "PACW",
    "US-NW-PGE": "PGE",
    "US-NW-PSCO": "PSCO",
    "US-NW-PSEI": "PSEI",
    "US-NW-SCL": "SCL",
    "US-NW-TPWR": "TPWR",
    "US-NW-WACM": "WACM",
    "US-NW-WAUW": "WAUW",
    "US-NW-WWA": "WWA",
    "US-NY-NYIS": "NYIS",
    "US-SE-SEPA": "SEPA",
    "US-SE-SOCO": "SOCO",
    "US-SW-AZPS": "AZPS",
    "US-SW-EPE": "EPE",
    "US-SW-GRIF": "GRIF",
    "US-SW-PNM": "PNM",
    "US-SW-SRP": "SRP",
    "US-SW-TEPC": "TEPC",
    "US-SW-WALC": "WALC",
    "US-TEN-TVA": "TVA",
    "US-TEX-ERCO": "ERCO",
}
KEY_ENV: str | None = "CARBONWRAP_EIA_KEY"  # free at eia.gov/opendata; EIA takes it in the URL only
RESOLUTION_S = 3600.0  # hourly, published hours to a day late
HISTORY_DAYS = 3650.0  # EIA-930 hourly data go back to 2018 and more
BASIS = (
    "EIA-930 hourly net generation by fuel × lifecycle factors (IPCC AR5 medians); "
    "production-based (interchange ignored), the newest complete hour, hours to a day late"
)
