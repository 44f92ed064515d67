"""Where Fingrid's open data serves and what its value is; light, for the start-up path."""

AREAS: dict[str, str] = {"FI": "FI"}  # one national value
KEY_ENV: str | None = "CARBONWRAP_FINGRID_KEY"  # free at data.fingrid.fi; sent as x-api-key
RESOLUTION_S = 180.0  # real-time values every 3 minutes
HISTORY_DAYS = 365.0  # the dataset holds years; one request reaches 20,000 values (~41 days)
BASIS = (
    "Fingrid: CO2 emission factor of electricity consumed in Finland (production plus imports "
    "minus exports), TSO real-time estimate; consumption-based, not lifecycle"
)
