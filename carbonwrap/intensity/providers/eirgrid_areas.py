"""Where EirGrid's Smart Grid Dashboard CO2 intensity serves and what it is; light, for start-up."""

# Electricity Maps zone -> the dashboard's region: "ROI" (EirGrid, Ireland) and "NI" (SONI,
# Northern Ireland), as electricitymaps-contrib's SMARTGRIDDASHBOARD parser maps them.
AREAS: dict[str, str] = {"IE": "ROI", "GB-NIR": "NI"}
KEY_ENV: str | None = None  # public dashboard data, no signup
RESOLUTION_S = 900.0  # one value per 15 minutes, published an hour or two late
HISTORY_DAYS = 365.0  # a client reads it back to 2015; history() asks for 31 days at most
BASIS = (
    "EirGrid/SONI's own CO2 intensity of the generation on the system (Ireland or Northern "
    "Ireland), direct emissions, not lifecycle; the dashboard states no method"
)
