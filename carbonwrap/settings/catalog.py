"""Every setting carbonwrap reads from flags, the environment and settings files: its key,
variable, parser (with the same limits as the option) and default."""

from __future__ import annotations

from carbonwrap.choices import CPU_ACCOUNTING, INTENSITY_SOURCES, ON_EXCEED
from carbonwrap.lite import INF, NamedTuple, isfinite, isinf

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Setting(NamedTuple):
    """One setting: its key in files (`log_interval`), variable, parser and default."""

    key: str
    env: str
    parse: Callable[[Any], Any]  # a file's or variable's value -> the setting; ValueError(why)
    default: Any
    help: str
    secret: bool = False


class Value(NamedTuple):
    """An effective value and where it came from."""

    value: Any
    source: str  # "flag" | "env" | "project" | "user" | "default"
    origin: str  # "--pue", "CARBONWRAP_PUE", "/path/carbonwrap.toml:3", ""


def _number(low: float, high: float = INF) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError("must be a number") from None
        if not isfinite(number):
            raise ValueError("must be a finite number")
        if not (low <= number <= high):
            if isinf(high):
                raise ValueError(f"must be at least {low:g}")
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number

    return parse


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _path(value: Any) -> str:
    text = _text(value)
    if "\x00" in text:  # TOML can hold one; no file name can
        raise ValueError("must be a path (it holds a NUL character)")
    return text


def _log_mode(value: Any) -> str:
    """Permissions of new log files, in octal ("0640", or 0o640 in TOML): read and write for
    the owner at least, never execute or set-id bits."""
    text = f"{value:o}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    try:
        mode = int(text.strip(), 8)
    except ValueError:
        raise ValueError('must be an octal mode such as "0600" or "0640"') from None
    if mode & 0o600 != 0o600 or mode & ~0o666:
        raise ValueError("must give the owner read and write and nobody execute (0600 to 0666)")
    return f"{mode:04o}"


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return parse


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"must be true or false ({'/'.join(_TRUE)} or {'/'.join(_FALSE)})")


def _duration(low_s: float, high_s: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        from carbonwrap.quantities import parse_duration_s  # only when one is set (start-up)

        return parse_duration_s(value, low_s, high_s)

    return parse


def _budget(value: Any) -> str:
    """A CO2e or energy amount with its unit ("500 g", "5 kWh"), normalised."""
    from carbonwrap.quantities import parse_budget  # only when one is set (start-up)

    return parse_budget(value).text


def _tags(value: Any) -> dict[str, str]:
    """A table of strings, or (from a variable) KEY=VALUE pairs separated by commas."""
    if isinstance(value, str):
        pairs = [p for p in value.split(",") if p.strip()]
        table: dict[str, Any] = {}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{pair.strip()!r} is not KEY=VALUE")
            table[key.strip()] = text.strip()
        value = table
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError('must be a table of strings, e.g. [tags] team = "nlp"')
    return dict(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("interval", "CARBONWRAP_INTERVAL", _number(0.05, 3600), 1.0,
            "seconds between sensor readings"),
    Setting("log_interval", "CARBONWRAP_LOG_INTERVAL", _number(0.05), 10.0,
            "at most one sample record per this many seconds"),
    Setting("log_dir", "CARBONWRAP_LOG_DIR", _path, "logs",
            "directory for run logs (in a project file: relative to the file)"),
    Setting("region", "CARBONWRAP_REGION", _text, None, "grid region (see --region)"),
    Setting("location", "CARBONWRAP_LOCATION", _text, None, "LAT,LON (see --location)"),
    Setting("cloud", "CARBONWRAP_CLOUD", _text, None, "PROVIDER:REGION (see --cloud)"),
    Setting("intensity_source", "CARBONWRAP_INTENSITY_SOURCE", _choice(*INTENSITY_SOURCES),
            "auto", "live intensity provider"),
    Setting("intensity", "CARBONWRAP_INTENSITY", _number(0, 5000), None,
            "fixed intensity in gCO2e/kWh"),
    Setting("pue", "CARBONWRAP_PUE", _number(1.0, 5.0), 1.0, "power usage effectiveness"),
    Setting("tags", "CARBONWRAP_TAGS", _tags, {}, "labels for every run (merged by key)"),
    Setting("log_mode", "CARBONWRAP_LOG_MODE", _log_mode, "0600",
            "permissions of new log files (octal; 0640 lets the group read them)"),
    Setting("log_argv", "CARBONWRAP_LOG_ARGV", _bool, True,
            "log the command line (credential-like values redacted)"),
    Setting("quiet", "CARBONWRAP_QUIET", _bool, False, "no live view, no final report"),
    Setting("live", "CARBONWRAP_LIVE", _bool, True, "the live view on a terminal"),
    Setting("verbose", "CARBONWRAP_VERBOSE", _bool, False,
            "the full final report: bases, sources, per-device energy, equivalences"),
    Setting("cpu_accounting", "CARBONWRAP_CPU_ACCOUNTING", _choice(*CPU_ACCOUNTING), "auto",
            "how the tree's CPU time is counted"),
    Setting("prometheus_textfile", "CARBONWRAP_PROMETHEUS_TEXTFILE", _path, None,
            "*.prom file for node_exporter (in a project file: relative to the file)"),
    Setting("start_within", "CARBONWRAP_START_WITHIN", _duration(0, 7 * 86400), None,
            "wait up to this long for the lowest forecast intensity (8h, 90m; 0 = no wait)"),
    Setting("expected_duration", "CARBONWRAP_EXPECTED_DURATION", _duration(1, 30 * 86400), None,
            "how long the command is expected to run (for start_within)"),
    Setting("budget", "CARBONWRAP_BUDGET", _budget, None,
            "CO2e or energy limit for a run: 500g, 2kg, 5kWh (see on_exceed)"),
    Setting("on_exceed", "CARBONWRAP_ON_EXCEED", _choice(*ON_EXCEED), "warn",
            "when the actual or predicted total exceeds the budget: warn or stop"),
    Setting("budget_grace", "CARBONWRAP_BUDGET_GRACE", _number(0, 3600), 10.0,
            "seconds from SIGTERM to SIGKILL when the budget stops a command"),
    Setting("electricitymaps.token", "CARBONWRAP_ELECTRICITYMAPS_TOKEN", _text, None,
            "Electricity Maps API token", secret=True),
    Setting("watttime.username", "CARBONWRAP_WATTTIME_USERNAME", _text, None,
            "WattTime user name", secret=True),
    Setting("watttime.password", "CARBONWRAP_WATTTIME_PASSWORD", _text, None,
            "WattTime password", secret=True),
    Setting("entsoe.token", "CARBONWRAP_ENTSOE_TOKEN", _text, None,
            "ENTSO-E Transparency Platform security token", secret=True),
    Setting("fingrid.key", "CARBONWRAP_FINGRID_KEY", _text, None,
            "Fingrid open data API key", secret=True),
    Setting("eia.key", "CARBONWRAP_EIA_KEY", _text, None,
            "US EIA Open Data API key", secret=True),
    Setting("openelectricity.key", "CARBONWRAP_OPENELECTRICITY_KEY", _text, None,
            "Open Electricity API key", secret=True),
)  # fmt: skip
BY_KEY = {s.key: s for s in SETTINGS}
WHERE = ("region", "location", "cloud")  # one of them at each level
PATHS = ("log_dir", "prometheus_textfile")
TABLES = {"tags"} | {key.partition(".")[0] for key in BY_KEY if "." in key}
