"""`carbonwrap config` as text: the files consulted, then one line per setting."""

from typing import Any

from carbonwrap.render.text import shown, shown_row


def config_text(document: dict[str, Any]) -> str:
    files = document["files"]
    project = files["project"] or (
        "(none: carbonwrap.toml or [tool.carbonwrap] in pyproject.toml, from here upward)"
    )
    user = files["user"] or f"{files['user_path']} (not found)"
    lines = [
        "settings files (flag > environment > project file > user file > default):",
        f"  project  {shown(project)}",
        f"  user     {shown(user)}",
        "",
    ]
    rows = [  # values, paths and origins are the user's text: escaped, as everything shown
        shown_row(
            (key, _value(entry["value"], entry.get("unit")), entry["source"], entry["origin"])
        )
        for key, entry in document["settings"].items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for key, value, source, origin in rows:
        lines.append(
            f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source:<{widths[2]}}  {origin}".rstrip()
        )
    lines += [f"note: {shown(note)}" for note in document["notes"]]
    return "\n".join(lines) + "\n"


def _value(value: Any, unit: str | None = None) -> str:
    if value is None:
        return "-"
    if unit == "s":
        from carbonwrap.render.units import duration

        return duration(float(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)
