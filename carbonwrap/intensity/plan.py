"""Where a run is, the intensity in force from its start, and the live source if any: the one
decision `run` and `intensity` share."""

from __future__ import annotations

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.points import AVERAGE, STATIC, IntensityPoint
from carbonwrap.intensity.select import Choice
from carbonwrap.lite import INF, NamedTuple
from carbonwrap.settings.resolve import Config, load_config

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping


class IntensityPlan(NamedTuple):
    region: dict[str, str]  # code, kind, source, detail: for the start record
    static: IntensityPoint  # in force until a live value arrives, and the fallback
    choice: Choice


def plan_intensity(
    region: str | None,
    location: str | None,
    cloud: str | None,
    source: str,
    fixed_g_per_kwh: float | None,
    environ: Mapping[str, str],
    config: Config | None = None,
) -> IntensityPlan:
    """Resolve the location and pick the source; every bad value is one line, exit 125.

    `config`: the settings files (a region they set, provider credentials); None = those of
    the working directory and the user."""
    from carbonwrap.intensity.location import resolve_location
    from carbonwrap.intensity.select import choose

    if config is None:
        config = load_config(environ)
    where = resolve_location(region, location, cloud, environ, configured=config.where())
    region_info = {
        "code": where.region,
        "kind": where.kind,
        "source": where.source,
        "detail": where.detail,
    }
    if fixed_g_per_kwh is not None:
        if source not in ("auto", "static"):
            raise CarbonwrapError(
                f"--intensity fixes the value: it cannot be combined with "
                f"--intensity-source {source}"
            )
        point = IntensityPoint(0.0, INF, fixed_g_per_kwh, STATIC, AVERAGE, "fixed by --intensity")
        return IntensityPlan(region_info, point, Choice(None, None, None))
    static = where.static
    label = f"static table: {static.region_name} {static.year}, {static.source}"
    point = IntensityPoint(0.0, INF, static.intensity_g_per_kwh, STATIC, AVERAGE, label)
    notes = config.notes
    choice = choose(source, where, config.credentials(environ))
    # The start record names the provider asked and why (the static table: why no provider).
    region_info["provider"] = choice.name or "static"
    region_info["provider_why"] = choice.why or choice.note or f"--intensity-source {source}"
    if notes:
        choice = choice._replace(note="; ".join(filter(None, [choice.note, *notes])))
    return IntensityPlan(region_info, point, choice)
