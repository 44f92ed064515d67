"""Where NYISO's real-time fuel mix serves and what its value is; light, for start-up."""

# NYISO is the balancing authority for all of New York State: the state's code means the same.
AREAS: dict[str, str] = {"US-NY-NYIS": "NYIS", "US-NY": "NYIS"}
KEY_ENV: str | None = None  # public files on mis.nyiso.com, no signup
RESOLUTION_S = 300.0  # one mix per 5 minutes
HISTORY_DAYS = 7.0  # the daily files of the last week or so; older days are in monthly zips
BASIS = (
    "NYISO real-time generation by fuel category × lifecycle factors (IPCC AR5 medians); "
    "production-based (imports ignored), dual-fuel units priced as gas"
)
