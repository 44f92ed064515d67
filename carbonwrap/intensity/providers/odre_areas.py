"""Where RTE's éCO2mix (through ODRÉ) serves and what its value is; light, for the start-up path."""

AREAS: dict[str, str] = {"FR": "national"}  # mainland France without Corsica: one national value
KEY_ENV: str | None = None  # ODRÉ's Explore API needs no key
RESOLUTION_S = 900.0  # one value per quarter hour
# The real-time dataset reaches back to where the consolidated one (since 2012) takes over;
# history() asks the consolidated one when the real-time one has nothing for a window.
HISTORY_DAYS = 365.0
BASIS = (
    "RTE taux_co2: CO2e emitted by electricity production in mainland France (not Corsica) per kWh "
    "produced; production-based, imports ignored, not lifecycle"
)
