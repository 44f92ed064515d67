"""The doctor report: aligned text lines, or a JSON document (carbonwrap.doctor/1). Pure."""

import json
from collections.abc import Sequence

from carbonwrap.doctor.checks import ESSENTIAL, OK, WARN, Check
from carbonwrap.render.text import shown

DOCTOR_SCHEMA = "carbonwrap.doctor/1"


def render_text(checks: Sequence[Check], can_measure: bool, width: int | None = None) -> str:
    """One line per check, `fix:` on the line below where there is one, then the verdict. The
    host's and the providers' text in them (a CPU or GPU name, an error) escaped. With a
    `width` (the terminal's), details and fixes wrap under their own column."""
    checks = [
        Check(shown(c.name), shown(c.status), shown(c.detail), c.fix and shown(c.fix))
        for c in checks
    ]
    name_w = max((len(c.name) for c in checks), default=0)
    status_w = max((len(c.status) for c in checks), default=0)
    indent = " " * (name_w + status_w + 4)
    if width is not None and width - len(indent) < 30:  # no room beside the names: below them
        indent = "    "
    lines: list[str] = []
    for check in checks:
        first = f"{check.name:<{name_w}}  {check.status:<{status_w}}  "
        lines += _wrapped(first, check.detail, indent, width)
        if check.fix:
            lines += _wrapped(f"{indent}fix: ", check.fix, indent + "     ", width)
    lines.append("")
    if can_measure:
        lines.append("carbonwrap can measure here (exit status 0)")
    else:
        failed = ", ".join(
            c.name for c in checks if c.name in ESSENTIAL and c.status not in (OK, WARN)
        )
        lines.append(f"carbonwrap cannot measure here: {failed} (exit status 1)")
    return "\n".join(lines) + "\n"


def _wrapped(first: str, text: str, indent: str, width: int | None) -> list[str]:
    """`first` + `text` within `width` (words kept whole: a path longer than a line stays
    one), the lines after the first indented by `indent`."""
    if width is None or len(first) + len(text) <= width:
        return [(first + text).rstrip()]
    import textwrap

    return textwrap.wrap(
        text,
        max(width, len(first) + 10),
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_json(checks: Sequence[Check], can_measure: bool) -> str:
    """The report for scripts: every check with its status, detail and fix (null if none)."""
    doc = {
        "schema": DOCTOR_SCHEMA,
        "can_measure": can_measure,
        "checks": [check._asdict() for check in checks],
    }
    return json.dumps(doc, indent=2) + "\n"
