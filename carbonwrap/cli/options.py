"""Option types and options shared by the commands: finite numbers, KEY=VALUE tags, values
parsed by their setting, region completion, and the --region/--location/--cloud/
--intensity-source group."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from carbonwrap.choices import INTENSITY_SOURCES, REPORT_GROUPS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing more at start-up
if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class NotANumber(click.BadParameter):
    """A word where a number belongs: the message says what the option wants, whole."""

    def format_message(self) -> str:
        return self.message


class Finite(click.FloatRange):
    """click.FloatRange lets "nan" through (every comparison with NaN is false) and "inf" past
    a range without a maximum; neither is a setting (nor valid in the JSON log).

    `unit` ("in gCO2e/kWh", "of seconds") and `example` say what a word that is not a number
    should have been: `--intensity 300g` gets "--intensity wants a number in gCO2e/kWh, e.g.
    --intensity 300", not click's "is not a valid float range"."""

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        unit: str = "",
        example: str = "",
    ) -> None:
        super().__init__(min=min, max=max)
        self.unit = unit
        self.example = example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and param is not None:
            try:
                float(value)
            except ValueError:
                raise NotANumber(self.wants(param.opts[0], value), ctx, param) from None
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number

    def wants(self, option: str, given: str) -> str:
        """The line for a word that is not a number: the unit, an example, what was given."""
        unit = f" {self.unit}" if self.unit else ""  # "in gCO2e/kWh", "of seconds"
        example = f", e.g. {option} {self.example}" if self.example else ""
        return f"{option} wants a number{unit}{example}; {given!r} is not one"


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = text
    return tags


def parsed_by_setting(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--start-within / --expected-duration in seconds, --budget: parsed by their settings,
    only when given (start-up)."""
    if value is None or param.name is None:
        return None
    from carbonwrap.settings.catalog import BY_KEY

    try:
        return BY_KEY[param.name].parse(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} {exc}") from None


def complete_region(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """--region values for shell completion: table codes, Electricity Maps zones, a postcode."""
    from click.shell_completion import CompletionItem

    from carbonwrap.intensity.location import em_zones
    from carbonwrap.intensity.table import load_table

    values = dict.fromkeys([*load_table().codes(), *em_zones(), "gb-postcode:"])
    prefix = incomplete.upper()
    return [CompletionItem(v) for v in values if v.upper().startswith(prefix)]


def complete_group_by(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """--group-by values for shell completion: command, host, day, job, and tag: (the key is
    the user's own)."""
    from click.shell_completion import CompletionItem

    values = [group.partition(":")[0] + ":" if ":" in group else group for group in REPORT_GROUPS]
    return [CompletionItem(v) for v in values if v.startswith(incomplete)]


WHERE_OPTIONS = (
    click.option(
        "--region",
        metavar="CODE",
        shell_complete=complete_region,
        help="Grid region: ISO country (DK), US state (US-CA), Electricity Maps zone (DK-DK1, "
        "US-CAL-CISO) or gb-postcode:RG10. Default: $CARBONWRAP_REGION, else a settings file "
        "(see carbonwrap config), else the system time zone's country, else the world average.",
    ),
    click.option(
        "--location",
        metavar="LAT,LON",
        help="Where the machine is, in degrees (for providers that locate by coordinates).",
    ),
    click.option(
        "--cloud",
        metavar="PROVIDER:REGION",
        help="A cloud region, e.g. aws:eu-west-1, gcp:europe-west1, azure:westeurope.",
    ),
    click.option(
        "--intensity-source",
        type=click.Choice(INTENSITY_SOURCES),
        metavar="SOURCE",
        help="[default: auto] Live grid intensity: auto = a provider you have a key for, else "
        "a no-signup one for the region, else the embedded yearly table (`carbonwrap "
        "intensity --list`: what serves where). SOURCE: " + ", ".join(INTENSITY_SOURCES) + ". "
        "Keys come from the environment (CARBONWRAP_ELECTRICITYMAPS_TOKEN, "
        "CARBONWRAP_ENTSOE_TOKEN, CARBONWRAP_FINGRID_KEY, CARBONWRAP_EIA_KEY, "
        "CARBONWRAP_OPENELECTRICITY_KEY, CARBONWRAP_WATTTIME_USERNAME/_PASSWORD) or "
        "~/.config/carbonwrap/config.toml.",
    ),
)


def where_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--region, --location, --cloud, --intensity-source: the same for `run` and `intensity`."""
    for option in reversed(WHERE_OPTIONS):
        command = option(command)
    return command
