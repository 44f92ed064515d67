"""What one run is asked to do: `RunOptions`, and `from_settings`, the resolved settings (flag >
environment > files > default) turned into them."""

from __future__ import annotations

from carbonwrap.lite import NamedTuple
from carbonwrap.settings.catalog import Value
from carbonwrap.settings.resolve import Config

MappingProxyType = type(type.__dict__)  # types.MappingProxyType, without importing types
TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_EMPTY: Mapping[Any, Any] = MappingProxyType({})  # shared, read-only default


class RunOptions(NamedTuple):
    command: tuple[str, ...]
    interval_s: float = 1.0
    log_interval_s: float = 10.0
    log_dir: str = "logs"
    region: str | None = None
    location: str | None = None
    cloud: str | None = None
    intensity_source: str = "auto"
    intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    tags: Mapping[str, str] = _EMPTY
    json_path: str | None = None
    quiet: bool = False
    verbose: bool = False  # the full final report (render/final.py)
    no_live: bool = False
    cpu_accounting: str = "auto"
    run_id: str = ""  # empty: a new one
    config: Config | None = None  # settings files (region, credentials); None: cwd's and user's
    prometheus_textfile: str | None = None  # a .prom file kept current for node_exporter
    schedule: Mapping[str, Any] | None = None  # the carbon-aware start (schedule.py), if any
    budget: str | None = None  # "500 g", "5 kWh" (quantities.parse_budget); None: no budget
    on_exceed: str = "warn"  # or "stop"
    budget_grace_s: float = 10.0  # from SIGTERM to SIGKILL when the budget stops the command
    progress_from_output: bool = False  # relay stdout/stderr (pipes; a terminal via a pty)
    log_argv: bool = True  # the command line in the start record (redacted); False: None
    log_mode: int = 0o600  # permissions of the new log file
    # --mlflow: None (off), else {"run_id", "experiment"} as given (None: MLFLOW_* or default)
    mlflow: Mapping[str, str | None] | None = None

    @classmethod
    def from_settings(
        cls,
        resolved: Mapping[str, Value],
        command: tuple[str, ...],
        where: tuple[str | None, str | None, str | None],
        **given: Any,
    ) -> RunOptions:
        """The options of a run whose settings are `resolved` (`Config.resolve`); `where`:
        --region, --location, --cloud as given (files and variables are read later, by the
        location's own precedence); `given`: the rest, as the caller has them (json_path,
        progress_from_output, run_id, config, schedule)."""
        setting = {key: value.value for key, value in resolved.items()}
        region, location, cloud = where
        return cls(
            command=command,
            interval_s=setting["interval"],
            log_interval_s=setting["log_interval"],
            log_dir=setting["log_dir"],
            region=region,
            location=location,
            cloud=cloud,
            intensity_source=setting["intensity_source"],
            intensity_g_per_kwh=setting["intensity"],
            pue=setting["pue"],
            tags=setting["tags"],
            quiet=setting["quiet"],
            verbose=setting["verbose"],
            no_live=not setting["live"],
            log_argv=setting["log_argv"],
            log_mode=int(setting["log_mode"], 8),
            cpu_accounting=setting["cpu_accounting"],
            prometheus_textfile=setting["prometheus_textfile"],
            budget=setting["budget"],
            on_exceed=setting["on_exceed"],
            budget_grace_s=setting["budget_grace"],
            **given,
        )
