"""The house's rules, checked on the source: no import circle between modules (imports inside
functions count), and no import from a stage up to one that builds on it. The order below is
the data flow of docs/ARCHITECTURE.md, lowest first; a package may import its own modules,
the leaves and any package before it."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "carbonwrap"
LEAVES = {
    "__init__", "choices", "errors", "gcpause", "jsontext", "outfiles", "packagedata",
    "quantities", "report_progress", "lite",
}  # fmt: skip
ORDER = [
    "settings", "sensors", "measure", "runlog", "intensity", "predict", "report", "doctor",
    "render", "live", "run", "notebook", "commands", "cli", "entry", "__main__",
]  # fmt: skip
# What stands beside the flow: integrations call the public helper only.
BESIDE = {"integrations": {"report_progress"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every carbonwrap module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("carbonwrap")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("carbonwrap"):
            base = str(node.module)
            for alias in node.names:  # `from carbonwrap.render import units` is a module
                candidate = f"{base}.{alias.name}"
                is_module = (REPO / Path(*candidate.split("."))).with_suffix(".py").exists()
                found.add(candidate if is_module else base)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


GRAPH = graph()


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_stage_and_leaf_is_named() -> None:
    stages = {stage(m) for m in GRAPH}
    assert stages <= LEAVES | set(ORDER) | set(BESIDE), stages - LEAVES - set(ORDER)


def test_no_import_runs_up_the_layers() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        own = stage(module)
        for target in targets:
            other = stage(target)
            if other == own or other in LEAVES or target == "carbonwrap":
                continue
            if own in LEAVES:
                wrong.append(f"{module} (a leaf) imports {target}")
            elif own in BESIDE:
                if other not in BESIDE[own]:
                    wrong.append(f"{module} imports {target}")
            elif other in BESIDE or ORDER.index(other) > ORDER.index(own):
                wrong.append(f"{module} ({own}) imports {target} ({other}), a layer above")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle() -> None:
    edges = {m: {t for t in ts if t in GRAPH} for m, ts in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not circles, circles


def test_renderers_import_only_models() -> None:
    """render/ draws what it is handed: no clocks, files or hardware, and no command."""
    allowed_stages = {"render", "runlog", "report", "doctor"} | LEAVES
    for module, targets in GRAPH.items():
        if stage(module) != "render":
            continue
        for target in targets:
            assert stage(target) in allowed_stages, f"{module} imports {target}"
            if stage(target) in ("report", "doctor"):
                assert target in ("carbonwrap.report.model", "carbonwrap.doctor.checks"), target
