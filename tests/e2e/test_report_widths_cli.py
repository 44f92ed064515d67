"""`carbonwrap report` over real runs, at the widths people read it: an 80- and a 60-column
terminal (tmux, rich) and pipe (COLUMNS, plain text), and the HTML page in a 600 px window
(headless Chromium). Tags, regions and how each run ended are shown; a filtered report counts
only what it shows; JSON says each run's outcome (issue 14)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, cw_env, logs_in, records, run_cw

CHROMIUM = "/usr/bin/chromium"
OFFLINE = ("--intensity-source", "static")
CONFIG = "configs/experiments/2026/baseline/lr-{}.yaml"
PROGRESS = f"{shlex.quote(sys.executable)} -m carbonwrap.report_progress epoch"
TRAIN = f"{PROGRESS} 1/2; {shlex.quote(sys.executable)} -c 'sum(range(10**6))'; {PROGRESS} 2/2"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cw("run", "-q", "--log-dir", "logs", *OFFLINE, "--interval", "0.1",
                  "--log-interval", "0.1", *args, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real runs: two that differ only deep in an argument, a failure, a kill, a budget stop,
    one reporting progress, and one whose log was cut before its end record (as a SIGKILLed
    carbonwrap leaves it)."""
    cwd = tmp_path_factory.mktemp("widths")
    python = sys.executable
    for lr, seed in (("0.1", "1"), ("0.3", "2")):
        done = _run(cwd, "--region", "DK", "--tag", "exp=a", "--tag", f"seed={seed}", "--",
                    python, "-c", "import sys", "--config", CONFIG.format(lr))  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert _run(cwd, "--region", "FR", "--tag", "exp=b", "--", "sh", "-c", "exit 3").returncode == 3
    assert _run(cwd, "--tag", "exp=b", "--", "sh", "-c", "kill -TERM $$").returncode == 143
    stopped = _run(cwd, "--tag", "exp=b", "--budget", "1J", "--on-exceed", "stop", "--",
                   python, "-c", "while True: pass")  # fmt: skip
    assert stopped.returncode == 124, stopped.stderr
    assert _run(cwd, "--tag", "exp=a", "--", "sh", "-c", TRAIN).returncode == 0
    _run(cwd, "--tag", "exp=z", "--", python, "-c", "import time; time.sleep(0.5)")
    [cut] = [p for p in logs_in(cwd / "logs") if records(p)[0]["tags"] == {"exp": "z"}]
    lines = cut.read_text().splitlines(keepends=True)
    assert '"type":"end"' in lines[-1].replace(" ", "")
    cut.write_text("".join(lines[:-1]))
    return cwd / "logs"


def report(logs: Path, *args: str, columns: int | None = None) -> str:
    env = cw_env(**({"COLUMNS": str(columns)} if columns else {}))
    done = run_cw("report", str(logs), *args, cwd=logs.parent, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout


def _table_checks(text: str, width: int) -> None:
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert "lr-0.1.yaml" in text and "lr-0.3.yaml" in text, text  # what tells them apart
    for status in ("FAILED exit 3", "KILLED SIGTERM", "STOPPED budget", "incomplete", "ok"):
        assert status in text, (status, text)
    assert re.search(r"\d (µJ|mJ|J) ", text) and re.search(r"\d (µg|mg) ", text)  # whole


@pytest.mark.parametrize("width", [60, 80])
def test_the_table_fits_a_pipe_of_columns(logs: Path, width: int) -> None:
    text = report(logs, columns=width)
    _table_checks(text, width)
    header = text.splitlines()[0].split()
    assert header[-3:] == ["energy", "CO2e", "status"]
    assert ("tags" in header) is (width == 80)
    assert ("exp=a seed=1" in text) is (width == 80)


def test_a_pipe_without_a_width_gets_every_column(logs: Path) -> None:
    text = report(logs)
    assert text.splitlines()[0].split() == [
        "start", "(UTC)", "command", "tags", "host", "region", "duration", "energy", "CO2e",
        "status",
    ]  # fmt: skip
    assert " DK " in text and " FR " in text and "exp=a seed=1" in text


class Terminal:
    """A tmux window of `columns`, running one command at a time in an interactive bash."""

    def __init__(self, workdir: Path, columns: int) -> None:
        self.socket = str(workdir / f"tmux-{columns}.sock")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "LC_ALL": "C.UTF-8", "TERM": "xterm-256color", "PS1": "$ ",
               "HISTFILE": "/dev/null", "INPUTRC": "/dev/null"}  # fmt: skip
        self.tmux("new-session", "-d", "-x", str(columns), "-y", "40", "-c", str(workdir),
                  "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                  "bash", "--norc", "--noprofile", "-i", env=env)  # fmt: skip

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=10, env=env,
                              check=True).stdout  # fmt: skip

    def run(self, command: str) -> list[str]:
        """The rows `command` printed, each as the terminal shows it (colours as SGR)."""
        self.tmux("send-keys", "-t", "0", "-l", f"clear; {command}; echo rc=$?")
        self.tmux("send-keys", "-t", "0", "Enter")
        deadline = time.monotonic() + 60
        while True:
            rows = self.tmux("capture-pane", "-p", "-e", "-t", "0").split("\n")
            plain = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in rows]
            if any(row.startswith("rc=") for row in plain):
                break
            assert time.monotonic() < deadline, "\n".join(plain)
            time.sleep(0.05)
        end = next(i for i, row in enumerate(plain) if row.startswith("rc="))
        assert plain[end] == "rc=0", "\n".join(plain)
        return rows[:end]  # `clear` ran first: the output begins at the top

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[dict[int, Terminal]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made = {columns: Terminal(tmp_path, columns) for columns in (60, 80)}
    try:
        yield made
    finally:
        for terminal in made.values():
            terminal.close()


def _colours(rows: list[str]) -> list[str]:
    """The foreground colour each row's text begins in ("" for the default): tmux writes a
    colour where it changes, so a run of red rows has one SGR 31, before the first."""
    colour, found = "", []

    def apply(codes: str) -> str:
        new = colour
        for code in codes.split(";"):
            if code in ("", "0", "39"):
                new = ""
            elif len(code) == 2 and code.startswith("3"):
                new = code
        return new

    for row in rows:
        lead = re.match(r"(?:\x1b\[[0-9;]*m)*", row)
        head = lead.group(0) if lead else ""
        for codes in re.findall(r"\x1b\[([0-9;]*)m", head):
            colour = apply(codes)
        found.append(colour)
        for codes in re.findall(r"\x1b\[([0-9;]*)m", row[len(head) :]):
            colour = apply(codes)
    return found


def _define_cw(logs: Path) -> str:
    """A shell function `cw`: the real program, so that each command typed fits one row."""
    env = [f"PYTHONPATH={REPO}", "XDG_CONFIG_HOME=/nonexistent"]
    program = shlex.join(["env", *env, sys.executable, "-m", "carbonwrap"])
    return f'cd {shlex.quote(str(logs.parent))} && cw() {{ {program} "$@"; }}'


def test_a_real_terminal_of_80_and_60_columns(logs: Path, terminals: dict[int, Terminal]) -> None:
    for width, terminal in terminals.items():
        terminal.run(_define_cw(logs))
        rows = terminal.run("cw report logs")
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in rows]
        _table_checks("\n".join(plain), width)
        # Nothing wrapped: as many rows as the table and its notes have lines.
        joined = terminal.tmux("capture-pane", "-p", "-J", "-t", "0").split("\n")
        assert all(len(line) <= width for line in joined), "\n".join(joined)
        # Failed, killed and stopped runs in red (SGR 31), incomplete in yellow (33).
        colours = _colours(rows)
        red = [row for row, colour in zip(plain, colours, strict=True) if colour == "31"]
        assert len(red) == 3 and all(re.search("FAILED|KILLED|STOPPED", row) for row in red)
        yellow = [row for row, colour in zip(plain, colours, strict=True) if colour == "33"]
        assert len(yellow) == 1 and "incomplete" in yellow[0]
        groups = terminal.run("cw report --group-by tag:exp logs")
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in groups]
        assert all(len(row.rstrip()) <= width for row in plain)
        assert plain[0].split()[-2:] == ["failed", "incomplete"], plain


def test_a_filtered_report_counts_only_what_it_shows(logs: Path) -> None:
    """Before: "1 without an end record (killed or still running)" under a filter that left
    that run out."""
    everything = report(logs)
    assert "1 without an end record" in everything
    shown = report(logs, "--tag", "exp=b")
    assert "without an end record" not in shown
    assert "3 runs shown, from 7 logs; 4 runs outside the filters left out" in shown
    document = json.loads(report(logs, "--tag", "exp=b", "--json"))
    assert document["totals"]["incomplete_runs"] == 0 and document["totals"]["failed_runs"] == 3
    assert "1 without an end record" in report(logs, "--tag", "exp=z")


def test_json_says_how_each_run_ended(logs: Path) -> None:
    document = json.loads(report(logs, "--json"))
    assert document["schema"] == "carbonwrap.report/2"
    by_tag: dict[str, list[tuple[str, bool]]] = {}
    for run in document["runs"]:
        assert run["schema"] == "carbonwrap.run/2"
        by_tag.setdefault(run["tags"]["exp"], []).append((run["status"], run["log_complete"]))
    assert sorted(by_tag["a"]) == [("ok", True)] * 3
    assert sorted(by_tag["b"]) == [("failed", True), ("killed", True), ("stopped", True)]
    assert by_tag["z"] == [("incomplete", False)]
    numbers = re.findall(r"-?\d+\.\d+(?:e-?\d+)?", json.dumps(document))
    assert all(len(n.split("e")[0].replace("-", "").replace(".", "").strip("0")) <= 6
               for n in numbers), numbers  # fmt: skip


def test_the_page_shows_tags_regions_failures_and_predictions(logs: Path) -> None:
    page = report(logs, "--html", "-")
    head = page.split("<thead>")[1].split("</thead>")[0]
    assert '<th class="c-tags">tags</th>' in head and '<th class="c-region">region</th>' in head
    assert page.count('<tr class="alarm">') == 3 and page.count('<tr class="incomplete">') == 1
    assert "<strong>Prediction</strong> at " in page and "vs actual" in page  # progress
    assert "<strong>Budget</strong> 1 J (--on-exceed stop)" in page


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium at /usr/bin/chromium")
@pytest.mark.parametrize("width", [600, 800, 1200])
def test_the_page_fits_a_window(logs: Path, tmp_path: Path, width: int) -> None:
    """Chromium lays the page out in a window of `width` px; a copy of it without the page's
    script-forbidding policy measures the table (the policy would block the measuring)."""
    page = report(logs, "--html", "-")
    policy = re.search(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', page)
    assert policy is not None
    probe = (
        "<script>const t=document.querySelector('table.runs');document.body.dataset.probe="
        "JSON.stringify({table:t.getBoundingClientRect().right,page:innerWidth,"
        "shown:[...t.querySelectorAll('thead th')].filter(e=>e.offsetWidth).map(e=>"
        "e.textContent)});</script>"
    )
    measured = tmp_path / "probe.html"
    measured.write_text(page.replace(policy.group(0), "").replace("</body>", probe + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},1000",
         "--dump-dom", measured.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "HOME": str(tmp_path)},
    ).stdout  # fmt: skip
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found is not None, dom[-2000:]
    probe_result = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe_result["table"] <= probe_result["page"], probe_result  # no sideways scrolling
    shown = probe_result["shown"]
    assert {"command", "tags", "energy", "CO2e", "status"} <= set(shown), shown
    assert ("host" in shown) is (width > 1060) and ("duration" in shown) is (width > 720)
