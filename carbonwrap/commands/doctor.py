"""The `doctor` command: resolve the options, run every check, print text or JSON, exit 0 or 1."""

import contextlib
import os
from collections.abc import Mapping
from typing import Any, TextIO

from carbonwrap.doctor.checks import Check, can_measure
from carbonwrap.settings.resolve import intensity_source as resolved_source

CANNOT_MEASURE = 1  # exit status when an essential check fails (see doctor.ESSENTIAL)


def doctor(
    region: str | None,
    location: str | None,
    cloud: str | None,
    source_flag: str | None,
    as_json: bool,
    environ: Mapping[str, str],
    stdout: TextIO,
    *,
    proc_root: str = "/proc",
    root: str = "/",
    nvml: Any = None,
    amdsmi: Any = None,
    timeout_s: float | None = None,
) -> int:
    """Print the report; 0 when carbonwrap can measure something here, else 1.

    A bad --region/--location/--cloud or settings file raises CarbonwrapError (exit 125) before
    any probe runs. `source_flag`: --intensity-source (None: the settings').
    """
    from carbonwrap.doctor.grid import TIMEOUT_S, check_grid

    config, intensity_source = resolved_source(source_flag, environ)
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    grid = check_grid(region, location, cloud, intensity_source, environ, timeout_s, config)
    checks = [*run_checks(environ, proc_root, root, nvml, amdsmi), *grid]
    measurable = can_measure(checks)
    from carbonwrap.render.doctor import render_json, render_text

    width = None  # a terminal's: details and fixes wrap under their own column
    if not as_json and stdout.isatty():
        with contextlib.suppress(OSError, ValueError):
            width = os.get_terminal_size(stdout.fileno()).columns
    text = render_json(checks, measurable) if as_json else render_text(checks, measurable, width)
    stdout.write(text)
    stdout.flush()
    return 0 if measurable else CANNOT_MEASURE


def run_checks(
    environ: Mapping[str, str], proc_root: str, root: str, nvml: Any, amdsmi: Any = None
) -> list[Check]:
    """The host and GPU checks, in the order a run opens them."""
    from carbonwrap.doctor.gpu import check_gpus
    from carbonwrap.doctor.gpu_backends import check_other_gpus
    from carbonwrap.doctor.host import check_cgroups, check_proc, check_rapl
    from carbonwrap.sensors.rapl import sysfs_root_from_env

    return [
        check_proc(proc_root),
        *check_cgroups(proc_root, environ, os.geteuid()),
        *check_rapl(sysfs_root_from_env(environ), proc_root),
        *check_gpus(nvml, environ, proc_root, root),
        *check_other_gpus(environ, environ, root, amdsmi),
    ]
