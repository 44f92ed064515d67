"""Where CAISO's Today's Outlook emissions serve and what their value is; light, for start-up."""

# CAISO's balancing area serves about 80 % of California's load (CAISO's summer assessments);
# "US-CA" takes it for the whole state, the rest (LADWP, BANC, IID, TID) being smaller.
AREAS: dict[str, str] = {"US-CAL-CISO": "CISO", "US-CA": "CISO"}
KEY_ENV: str | None = None  # public files, no signup
RESOLUTION_S = 300.0  # one row per 5 minutes
HISTORY_DAYS = 365.0  # daily files under outlook/history/YYYYMMDD/ reach back to 2018
BASIS = (
    "CAISO: CO2 of the generation serving CAISO load, imports at CAISO's estimate, per kWh of "
    "CAISO demand; direct emissions, not lifecycle; CAISO's area only (~80 % of California)"
)
