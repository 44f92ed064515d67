"""Where ERCOT's dashboard fuel mix serves and what its value is; light, for start-up."""

# ERCOT serves about 90 % of Texas's load (ERCOT's own "about ERCOT" figure); the rest (El Paso,
# the Panhandle, parts of east Texas) is in WECC, SPP and MISO. "US-TX" takes ERCOT for the state.
AREAS: dict[str, str] = {"US-TEX-ERCO": "ERCO", "US-TX": "ERCO"}
KEY_ENV: str | None = None  # public dashboard data, no signup (www.ercot.com answers US addresses)
RESOLUTION_S = 300.0  # one mix per 5 minutes
HISTORY_DAYS = 1.0  # the dashboard's answer holds yesterday and today
BASIS = (
    "ERCOT dashboard generation by fuel × lifecycle factors (IPCC AR5 medians); production-based "
    "(DC ties ignored); ERCOT's area only (~90 % of Texas); www.ercot.com answers US addresses only"
)
