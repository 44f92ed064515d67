"""`report --model-card`: the selected runs as the `co2_eq_emissions` block of a Hugging Face
model card's YAML header. Pure.

The fields are the Hub's (https://huggingface.co/docs/hub/model-cards-co2): `emissions` in
grams CO2e, `source`, `training_type` ("pre-training" or "fine-tuning"), `geographical_location`
("as granular as possible"), `hardware_used` ("how much compute and what kind"). huggingface_hub
has no class of its own for them: `ModelCardData` keeps them as an extra key (its
repocard_data.py), so the tests load the block through `ModelCard`."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from carbonwrap.report.model import Place
from carbonwrap.runlog.summary import RunSummary

DIGITS = 6  # as render/json.py rounds CO2e: finer than anything measured, without float noise


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's string syntax is a subset of it, so any text (a
    colon, a quote, a control character) stays one value."""
    return json.dumps(text)


def _location(runs: Sequence[RunSummary], places: Mapping[str, Place]) -> str:
    """Each grid region once, in the order first used: "Denmark (DK-DK1)", "DE", "aws:us-east-1
    (cloud)" where the country is not known."""
    seen: list[str] = []
    for s in runs:
        code = s.region.get("code", "")
        if not code or code in seen:
            continue
        seen.append(code)
    shown = []
    for code in seen:
        place = places.get(code, Place())
        if place.country_name and place.country_name.upper() != code.upper():
            shown.append(f"{place.country_name} ({code})")
        elif place.on_cloud:
            shown.append(f"{code} (cloud region)")
        else:
            shown.append(code)
    return "; ".join(shown)


def _hardware(runs: Sequence[RunSummary]) -> str:
    """The GPUs the commands used, each device once (host and UUID, else index) and counted by
    name ("4 x NVIDIA A100-SXM4-80GB"), then the hosts whose CPU and memory were measured."""
    devices: dict[tuple[str, str], str] = {}
    for s in runs:
        for gpu in s.gpus.values():
            if gpu.used:
                devices[(s.host, gpu.uuid or str(gpu.index))] = gpu.name or "GPU"
    names = Counter(devices.values())
    parts = [f"{n} x {name}" for name, n in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))]
    hosts = len({s.host for s in runs})
    parts.append(f"CPU and memory of {hosts} host{'' if hosts == 1 else 's'}")
    return ", ".join(parts)


def _training_type(runs: Sequence[RunSummary]) -> str:
    """The runs' `training_type` tag (`run --tag training_type=fine-tuning`), each value once;
    "" when none has it."""
    values = dict.fromkeys(s.tags["training_type"] for s in runs if s.tags.get("training_type"))
    return ", ".join(values)


def grams_text(grams: float) -> str:
    """Grams as a plain decimal of DIGITS significant digits: "0.000123457", "1234.57". Never
    an exponent: YAML 1.1 readers (PyYAML) read `1e-07` as a string, not a number."""
    if not grams > 0:
        return "0.0"
    decimals = max(1, DIGITS - 1 - math.floor(math.log10(grams)))
    return f"{grams:.{decimals}f}"


def model_card_yaml(runs: Sequence[RunSummary], places: Mapping[str, Place], version: str) -> str:
    """The block, CO2e summed over `runs` (with PUE, as reported); `places`: where each grid
    region is (`report/places.py`); `training_type` from the runs' tag of that name, left out
    where none has it."""
    lines = ["co2_eq_emissions:", f"  emissions: {grams_text(sum(s.co2e_g for s in runs))}"]
    lines.append(f"  source: {_quoted(f'carbonwrap {version}')}")
    training_type = _training_type(runs)
    if training_type:
        lines.append(f"  training_type: {_quoted(training_type)}")
    location = _location(runs, places)
    if location:
        lines.append(f"  geographical_location: {_quoted(location)}")
    lines.append(f"  hardware_used: {_quoted(_hardware(runs))}")
    return "\n".join(lines) + "\n"
