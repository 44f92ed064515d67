"""`carbonwrap config` as text: the files consulted, then one line per setting."""

from typing import Any


def config_text(document: dict[str, Any]) -> str:
    files = document["files"]
    project = files["project"] or (
        "(none: carbonwrap.toml or [tool.carbonwrap] in pyproject.toml, from here upward)"
    )
    user = files["user"] or f"{files['user_path']} (not found)"
    lines = [
        "settings files (flag > environment > project file > user file > default):",
        f"  project  {project}",
        f"  user     {user}",
        "",
    ]
    rows = [
        (key, _shown(entry["value"], entry.get("unit")), entry["source"], entry["origin"])
        for key, entry in document["settings"].items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for key, value, source, origin in rows:
        lines.append(
            f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source:<{widths[2]}}  {origin}".rstrip()
        )
    lines += [f"note: {note}" for note in document["notes"]]
    return "\n".join(lines) + "\n"


def _shown(value: Any, unit: str | None = None) -> str:
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
