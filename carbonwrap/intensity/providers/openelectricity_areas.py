"""Which NEM regions Open Electricity serves and what its value is; light, for the start-up path."""

# Electricity Maps zone -> NEM region code (electricitymaps-contrib parsers/OPENNEM.py maps the
# same; the v4 answers label regions "NSW1" … in columns.region).
AREAS: dict[str, str] = {
    "AU-NSW": "NSW1",
    "AU-QLD": "QLD1",
    "AU-VIC": "VIC1",
    "AU-SA": "SA1",
    "AU-TAS": "TAS1",
}
KEY_ENV: str | None = "CARBONWRAP_OPENELECTRICITY_KEY"  # free at openelectricity.org.au; Bearer
RESOLUTION_S = 300.0  # NEM dispatch intervals
HISTORY_DAYS = 365.0  # the API holds years; one history() call reads at most 7 days
BASIS = (
    "Open Electricity: emissions (tCO2e, facility factors) / energy of the region's "
    "generation, 5-minute; production-based (interconnector imports ignored), not lifecycle"
)
