"""The live status lines: a run's state so far → 1–3 lines that fit a terminal's width."""

import unicodedata
from typing import NamedTuple

from carbonwrap.render import units
from carbonwrap.render.text import shown


class LiveState(NamedTuple):
    """What the live view shows. Units: seconds, watts, joules, g/kWh, grams."""

    elapsed_s: float
    cpu_s: float
    # label ("CPU", "DRAM", "GPU 0"), power over the latest readings (None: not known yet),
    # energy so far (None: not measured), method
    components: list[tuple[str, float | None, float | None, str]]
    intensity_g_per_kwh: float | None
    intensity_source: str
    co2e_g: float
    # "→ predicted 2.30 kWh, 410 g ±12 % at 34 %, ETA 38 min 10 s" once progress is reported
    # (render/prediction.py), the budget; None until then
    prediction: str | None


# SGR parameters; "" is plain.
_NAME = "1;36"
_LABEL = "1"
_DIM = "2"
_CO2E = "1;32"

Span = tuple[str, str]  # text, SGR parameters
_SEP: Span = (" · ", _DIM)
TWO_LINE_WIDTH = 100  # from this width the intensity shares the first line
_MIN_TAIL = 12  # a truncated tail shorter than this is dropped instead


def live_lines(state: LiveState, width: int, color: bool) -> list[str]:
    """The status lines, each at most `width` cells; SGR escapes only if `color`."""
    state = _escaped(state)
    width = max(width, 1)
    components = _fit(_component_variants(state.components), width)
    if width >= TWO_LINE_WIDTH:
        lines = [_fit(_head_variants(state, with_intensity=True), width), components]
    else:
        intensity = _fit([(_intensity(state, label=True), True)], width)
        lines = [_fit(_head_variants(state, with_intensity=False), width), components, intensity]
    return [_draw(line, color) for line in lines]


def cells(text: str) -> int:
    """Terminal cells `text` takes: wide East Asian characters 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(ch) for ch in text)


def _char_cells(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _escaped(state: LiveState) -> LiveState:
    """Every string of the state escaped (a provider's source, a GPU's method, the prediction):
    no control character from outside reaches the terminal."""
    return state._replace(
        components=[
            (shown(label), power_w, energy_j, shown(method))
            for label, power_w, energy_j, method in state.components
        ],
        intensity_source=shown(state.intensity_source),
        prediction=shown(state.prediction) if state.prediction is not None else None,
    )


def _power(watts: float) -> str:
    if watts >= 1000:
        return f"{watts / 1000:.2f} kW"
    if watts >= 100:
        return f"{watts:.0f} W"
    if watts >= 10:
        return f"{watts:.1f} W"
    return f"{watts:.2f} W" if watts > 0 else "0 W"


def _join(items: list[list[Span]]) -> list[Span]:
    out: list[Span] = []
    for item in items:
        if out:
            out.append(_SEP)
        out.extend(item)
    return out


def _head_variants(state: LiveState, with_intensity: bool) -> list[tuple[list[Span], bool]]:
    """From the richest to the barest; the first that fits is drawn."""
    name: list[Span] = [("carbonwrap", _NAME)]
    elapsed: list[Span] = [(units.duration(state.elapsed_s), "")]
    known = [energy for _, _, energy, _ in state.components if energy is not None]
    energy: list[Span] = [(units.energy(sum(known)), "")]
    co2e: list[Span] = [(f"{units.mass(state.co2e_g)} CO2e", _CO2E)]
    if state.prediction:
        co2e.append((" " + state.prediction, ""))
    cpu: list[Span] = [(f"CPU time {units.duration(state.cpu_s)}", "")]
    variants: list[tuple[list[Span], bool]] = []
    if with_intensity:
        tail = _intensity(state, label=False)
        variants.append((_join([name, elapsed, energy, co2e, cpu, tail]), True))
        variants.append((_join([name, elapsed, energy, co2e, tail]), True))
    variants += [
        (_join([name, elapsed, energy, co2e, cpu]), False),
        (_join([name, elapsed, energy, co2e]), False),
        (_join([name, elapsed, co2e]), False),
        (_join([elapsed, co2e]), True),
    ]
    return variants


def _intensity(state: LiveState, label: bool) -> list[Span]:
    if state.intensity_g_per_kwh is None:
        spans: list[Span] = [("intensity unknown", "")]
    else:
        prefix = "intensity " if label else ""
        spans = [(f"{prefix}{state.intensity_g_per_kwh:.0f} g/kWh", "")]
    if state.intensity_source:
        spans.append((" " + state.intensity_source, _DIM))
    return spans


def _component(
    label: str, power_w: float | None, energy_j: float | None, method: str
) -> list[Span]:
    spans: list[Span] = [(label, _LABEL)]
    if energy_j is None:
        spans.append((" —", ""))
    else:
        if power_w is not None:
            spans.append((f" {_power(power_w)}", ""))
        spans.append((f" {units.energy(energy_j)}", ""))
    if method:
        spans.append((f" {method}", _DIM))
    return spans


def _component_variants(
    components: list[tuple[str, float | None, float | None, str]],
) -> list[tuple[list[Span], bool]]:
    gpus = [c for c in components if c[0].startswith("GPU")]
    others = [c for c in components if not c[0].startswith("GPU")]
    variants = [
        (_join([_component(*c) for c in components]), False),
        (_join([_component(*c[:3], "") for c in components]), False),
    ]
    if len(gpus) > 1:
        energies = [c[2] for c in gpus if c[2] is not None]
        powers = [c[1] for c in gpus if c[1] is not None]
        together = (
            f"{len(gpus)} GPUs",
            sum(powers) if powers else None,
            sum(energies) if energies else None,
            "",
        )
        variants.append((_join([_component(*c[:3], "") for c in [*others, together]]), False))
        gpus = [("GPUs", None, together[2], "")]  # narrowest: no count, no power
    variants.append((_join([_component(c[0], None, c[2], "") for c in [*others, *gpus]]), True))
    return variants


def _width(spans: list[Span]) -> int:
    return sum(cells(text) for text, _ in spans)


def _fit(variants: list[tuple[list[Span], bool]], width: int) -> list[Span]:
    """The first variant that fits; a variant whose end may be cut is cut if enough remains."""
    for spans, cuttable in variants:
        if _width(spans) <= width:
            return spans
        if cuttable and _width(spans[:-1]) + _MIN_TAIL <= width:
            return _truncate(spans, width)
    return _truncate(variants[-1][0], width)


def _truncate(spans: list[Span], width: int) -> list[Span]:
    """Cut at `width` cells, the last one an ellipsis."""
    out: list[Span] = []
    room = width - 1
    for text, style in spans:
        size = cells(text)
        if size <= room:
            out.append((text, style))
            room -= size
            continue
        kept = []
        for ch in text:
            need = _char_cells(ch)
            if need > room:
                break
            kept.append(ch)
            room -= need
        out.append(("".join(kept) + "…", style))
        return out
    return out


def _draw(spans: list[Span], color: bool) -> str:
    if not color:
        return "".join(text for text, _ in spans)
    return "".join(f"\x1b[{style}m{text}\x1b[0m" if style else text for text, style in spans)
