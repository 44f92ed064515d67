"""Every closed list of words a user may give carbonwrap, written once: the options' choices,
the settings' parsers, the completions and the error messages all read them from here."""

# --intensity-source: auto, static, then every provider in intensity/catalog.py's order (a test
# checks that the two lists agree)
INTENSITY_SOURCES = (
    "auto",
    "static",
    "electricitymaps",
    "entsoe",
    "fingrid",
    "openelectricity",
    "eia",
    "ukgrid",
    "energidataservice",
    "odre",
    "caiso",
    "eirgrid",
    "nyiso",
    "miso",
    "ercot",
    "energycharts",
    "watttime",
)
CPU_ACCOUNTING = ("auto", "cgroup2", "cgroup1", "process-tree")
ON_EXCEED = ("warn", "stop")  # what --budget does when exceeded
REPORT_FORMATS = ("table", "json", "csv", "codecarbon")
# --group-by; "tag:KEY" last (a pattern, not a word)
REPORT_GROUPS = ("command", "host", "day", "job", "job,host", "job,rank", "tag:KEY")
SHELLS = ("bash", "zsh", "fish")  # completion scripts
