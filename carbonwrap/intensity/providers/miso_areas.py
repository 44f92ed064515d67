"""Where MISO's real-time fuel mix serves and what its value is; light, for start-up."""

# MISO spans parts of 15 states, none with much of its load (us_zone_states.csv): no state code.
AREAS: dict[str, str] = {"US-MIDW-MISO": "MISO"}
KEY_ENV: str | None = None  # public-api.misoenergy.org, no signup
RESOLUTION_S = 300.0  # one mix per 5 minutes
HISTORY_DAYS = 1.0  # the public API serves today and yesterday only
BASIS = (
    "MISO real-time generation by fuel × lifecycle factors (IPCC AR5 medians); production-based "
    "(imports ignored), MISO's 'Other' (hydro, diesel, waste, …) priced as unspecified thermal"
)
