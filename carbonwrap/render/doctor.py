"""The doctor report: aligned text lines, or a JSON document (carbonwrap.doctor/1). Pure."""

import json
from collections.abc import Sequence

from carbonwrap.doctor.checks import ESSENTIAL, OK, WARN, Check
from carbonwrap.render.text import shown

DOCTOR_SCHEMA = "carbonwrap.doctor/1"


def render_text(checks: Sequence[Check], can_measure: bool) -> str:
    """One line per check, `fix:` on the line below where there is one, then the verdict. The
    host's and the providers' text in them (a CPU or GPU name, an error) escaped."""
    checks = [
        Check(shown(c.name), shown(c.status), shown(c.detail), c.fix and shown(c.fix))
        for c in checks
    ]
    name_w = max((len(c.name) for c in checks), default=0)
    status_w = max((len(c.status) for c in checks), default=0)
    indent = " " * (name_w + status_w + 4)
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.name:<{name_w}}  {check.status:<{status_w}}  {check.detail}")
        if check.fix:
            lines.append(f"{indent}fix: {check.fix}")
    lines.append("")
    if can_measure:
        lines.append("carbonwrap can measure here (exit status 0)")
    else:
        failed = ", ".join(
            c.name for c in checks if c.name in ESSENTIAL and c.status not in (OK, WARN)
        )
        lines.append(f"carbonwrap cannot measure here: {failed} (exit status 1)")
    return "\n".join(lines) + "\n"


def render_json(checks: Sequence[Check], can_measure: bool) -> str:
    """The report for scripts: every check with its status, detail and fix (null if none)."""
    doc = {
        "schema": DOCTOR_SCHEMA,
        "can_measure": can_measure,
        "checks": [check._asdict() for check in checks],
    }
    return json.dumps(doc, indent=2) + "\n"
