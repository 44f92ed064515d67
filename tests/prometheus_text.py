"""A Prometheus text file read back: prometheus_client's parser, and what node_exporter's textfile
collector needs beyond it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Series]:
    """prometheus_client's parser: family name -> type, and (sample name, labels) -> value."""
    types: dict[str, str] = {}
    series: Series = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in series, f"duplicate series {key}"
            assert s.timestamp is None  # node_exporter skips a whole file with timestamps
            series[key] = s.value
    return types, series


def value(series: Series, name: str, **labels: str) -> float:
    matches = [
        v for (n, ls), v in series.items() if n == name and labels.items() <= dict(ls).items()
    ]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def names(series: Series) -> set[str]:
    return {name for name, _ in series}


def check_classic_format(text: str) -> None:
    """What node_exporter's textfile collector (expfmt.TextParser) needs beyond parsing."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not any(line.startswith("# EOF") for line in text.splitlines())  # OpenMetrics only
    seen: list[str] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in seen, f"{name}: a family must be contiguous"
            seen.append(name)
        elif line.startswith("# HELP "):
            continue
        else:
            assert line.startswith("carbonwrap_") and line.split("{")[0] == seen[-1], line
