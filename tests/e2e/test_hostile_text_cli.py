"""Others' text through the real program: a command whose argv holds control sequences, rich
markup and bytes that are not UTF-8, run by `carbonwrap run` and reported by `carbonwrap report`
in every format; on a real terminal (tmux), whose title an OSC 2 sequence would change."""

from __future__ import annotations

import asyncio
import csv
import io
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
from conftest import REPO, cw_argv, cw_env, logs_in, records, run_cw

# What no byte of others' text may become on a terminal (C0 but line feed, DEL, C1, surrogates).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _run_with_bytes_argv(workdir: Path, *args: bytes) -> subprocess.CompletedProcess[bytes]:
    """`carbonwrap run ARGS` with argv as bytes, as a shell passes $'\\xff': not UTF-8; the
    commands in workdir/bin found first."""
    argv = [os.fsencode(a) for a in cw_argv("run")] + list(args)
    env = cw_env(PATH=f"{workdir / 'bin'}:{os.environ['PATH']}")
    return subprocess.run(argv, cwd=workdir, env=env, capture_output=True, timeout=60)


def _report(workdir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`carbonwrap report ARGS` writing to a strict UTF-8 stdout (no surrogateescape)."""
    env = cw_env(PYTHONIOENCODING="utf-8:strict", LC_ALL="C.UTF-8")
    return subprocess.run(
        cw_argv("report", *args, "logs"), cwd=workdir, env=env, capture_output=True, timeout=60
    )


@pytest.fixture(scope="module")
def undecodable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log written by carbonwrap for `/bin/echo $'\\xff\\xfe'` tagged `exp=$'\\xfe'`, and one
    for `@SUM 1+1` tagged `exp==cmd`: cells a spreadsheet would take for formulas."""
    workdir = tmp_path_factory.mktemp("undecodable")
    done = _run_with_bytes_argv(
        workdir, b"--tag", b"exp=\xfe", b"--json", b"run.json", b"--", b"/bin/echo", b"\xff\xfe"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"\xff\xfe\n"  # the command got its bytes
    (workdir / "run.stderr").write_bytes(done.stderr)
    formula = workdir / "bin" / "@SUM"  # a command a spreadsheet would take for a function
    formula.parent.mkdir()
    formula.write_text("#!/bin/sh\nexit 0\n")
    formula.chmod(0o755)
    done = _run_with_bytes_argv(workdir, b"--tag", b"exp==cmd", b"--", b"@SUM", b"1+1")
    assert done.returncode == 0, done.stderr
    [log] = [p for p in logs_in(workdir) if records(p)[0]["argv"][0] == "/bin/echo"]
    assert records(log)[0]["argv"] == ["/bin/echo", "\udcff\udcfe"]  # as the log writer keeps it
    return workdir


def test_the_final_report_shows_the_bytes_escaped(undecodable: Path) -> None:
    """The plain-text report (stderr is a pipe). Before: \\udcff\\udcfe (Python's backslashreplace
    of the surrogates), not the bytes."""
    title = (undecodable / "run.stderr").read_text("utf-8").splitlines()[0]
    assert title.startswith("carbonwrap: /bin/echo '\\xff\\xfe' · exit 0"), title


def _strict_utf8(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode("utf-8", "replace")
    return done.stdout.decode("utf-8")  # strict: raises on anything not UTF-8


def test_the_table_and_groups_on_a_strict_utf8_stdout(undecodable: Path) -> None:
    """Before: UnicodeEncodeError ('surrogates not allowed'), a traceback and exit 1."""
    table = _strict_utf8(_report(undecodable))
    assert "/bin/echo '\\xff\\xfe'" in table and not UNSAFE.search(table)
    groups = _strict_utf8(_report(undecodable, "--group-by", "tag:exp"))
    assert "\\xfe " in groups and "=cmd" in groups and not UNSAFE.search(groups)


def test_json_keeps_the_exact_argv(undecodable: Path) -> None:
    run = (undecodable / "run.json").read_text("utf-8")
    assert run.isascii() and json.loads(run)["command"] == ["/bin/echo", "\udcff\udcfe"]
    text = _strict_utf8(_report(undecodable, "--json"))
    assert text.isascii()
    commands = {tuple(run["command"]) for run in json.loads(text)["runs"]}
    assert ("/bin/echo", "\udcff\udcfe") in commands  # the data itself, not a rendering


@pytest.mark.parametrize(
    "columns", [["--csv"], ["--format", "codecarbon"], ["--csv", "--group-by", "tag:exp"]]
)
def test_csv_on_a_strict_utf8_stdout_without_formulas(
    undecodable: Path, columns: list[str]
) -> None:
    """Before: UnicodeEncodeError for --csv; `=cmd` and `@SUM 1+1` cells a spreadsheet runs."""
    rows = list(csv.reader(io.StringIO(_strict_utf8(_report(undecodable, *columns)))))
    cells = [cell for row in rows for cell in row]
    assert not any(
        c.startswith(FORMULA_STARTS) and not re.fullmatch(r"-?[\d.e+-]+", c) for c in cells
    )
    assert not any(UNSAFE.search(c) for c in cells)
    if columns == ["--csv"]:
        header = rows[0]
        by_command = {row[header.index("command")]: row for row in rows[1:]}
        assert by_command["/bin/echo '\\xff\\xfe'"][header.index("tag:exp")] == "\\xfe"
        assert by_command["'@SUM 1+1"][header.index("tag:exp")] == "'=cmd"
    if "--group-by" in columns:
        assert sorted(row[0] for row in rows[1:]) == ["'=cmd", "\\xfe"]


def test_html_to_a_file_and_to_a_strict_utf8_stdout(undecodable: Path) -> None:
    """Before: UnicodeEncodeError for both (the page is encoded as UTF-8)."""
    page = _strict_utf8(_report(undecodable, "--html", "-"))
    assert "/bin/echo &#x27;\\xff\\xfe&#x27;" in page and not UNSAFE.search(page)
    done = _report(undecodable, "--html", "page.html")
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert (undecodable / "page.html").read_text("utf-8") == page


# -- on a real terminal ----------------------------------------------------------------------

PROMPT = "$"
TITLE = "untouched"
OSC_TITLE = r"$'\e]2;PWNED\a'"  # what bash turns into ESC ] 2 ; PWNED BEL


class Terminal:
    """One tmux server, one window with an interactive bash (as tests/e2e/test_liveview_tmux.py)."""

    def __init__(self, workdir: Path, columns: int = 200, rows: int = 50) -> None:
        self.workdir = workdir
        self.socket = str(workdir / "tmux.sock")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "LC_ALL": "C.UTF-8", "TERM": "screen", "PS1": PROMPT + " ",
               "HISTFILE": "/dev/null", "INPUTRC": "/dev/null"}  # fmt: skip
        self.tmux("new-session", "-d", "-x", str(columns), "-y", str(rows), "-c", str(workdir),
                  "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                  "bash", "--norc", "--noprofile", "-i", env=env)  # fmt: skip
        self.tmux("select-pane", "-t", "0", "-T", TITLE)

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=10, env=env,
                              check=True).stdout  # fmt: skip

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "0", "-l", text)
        self.tmux("send-keys", "-t", "0", "Enter")

    def title(self) -> str:
        return self.tmux("display-message", "-p", "-t", "0", "#{pane_title}").strip()

    def history(self) -> list[str]:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "0").split("\n")

    def wait_text(self, text: str, timeout_s: float = 30) -> list[str]:
        """The screen once a row holds `text`."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.tmux("capture-pane", "-p", "-t", "0").split("\n")
            if any(text in row for row in rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}:\n" + "\n".join(rows))
            time.sleep(0.05)

    def wait_row(self, start: str, timeout_s: float = 30) -> list[str]:
        """The scrollback once a row begins with `start`."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.history()
            if any(row.startswith(start) for row in rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {start!r}:\n" + "\n".join(rows))
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        term.close()


def _carbonwrap(*args: str) -> str:
    env = [
        f"PYTHONPATH={REPO}",
        "XDG_CONFIG_HOME=/nonexistent",
        "CARBONWRAP_UKGRID_URL=http://127.0.0.1:9",
    ]
    return shlex.join(["env", *env, sys.executable, "-m", "carbonwrap", *args])


def _after(rows: list[str], marker: str) -> list[str]:
    start = max(i for i, row in enumerate(rows) if marker in row)
    return rows[start:]


def _type(terminal: Terminal, command: str, n: int) -> list[str]:
    """Type `command` and wait for its exit status: the rows from the command line on."""
    terminal.type(f"{command}; echo rc{n}=$?")
    return _after(terminal.wait_row(f"rc{n}="), f"rc{n}=$?")


def _no_traceback(rows: list[str]) -> None:
    bad = ("Traceback", "MarkupError", "UnicodeEncodeError")
    assert not any(word in row for row in rows for word in bad), "\n".join(rows)


def test_a_command_that_sets_the_title_leaves_it_on_a_terminal(terminal: Terminal) -> None:
    """`carbonwrap run` whose argv holds OSC 2 (set the window title), then `report` of it.
    Before: the title became PWNED from the final report and again from the table, and the
    argv's byte \\xff was shown as \\udcff (stderr's backslashreplace of a lone surrogate)."""
    run = _carbonwrap("run", "--region", "DK", "--intensity-source", "static", "--", "sh", "-c")
    rows = _type(terminal, f"{run} 'exit 3' {OSC_TITLE} $'\\xff:warning:'", 1)
    assert terminal.title() == TITLE
    assert "rc1=3" in rows
    title = next(row for row in rows if row.startswith("carbonwrap: sh -c"))
    assert "'\\x1b]2;PWNED\\x07' '\\xff:warning:' · exit 3" in title, title
    assert not any("⚠" in row for row in rows)  # rich's emoji code, not replaced
    _no_traceback(rows)

    rows = _type(terminal, _carbonwrap("report", "logs"), 2)
    assert terminal.title() == TITLE
    assert "rc2=0" in rows and any("sh -c 'exit 3' '\\x1b]2;PWNED\\x07'" in row for row in rows)
    _no_traceback(rows)


def test_rich_markup_in_paths_argv_and_tags_is_shown_as_it_is(terminal: Terminal) -> None:
    """A log directory, an argv and a tag that hold rich markup ("[/x]" closes a tag never
    opened). Before: rich raised MarkupError: a traceback instead of the final report (exit 1,
    not the command's 0) and instead of the table and the groups."""
    run = _carbonwrap("run", "--log-dir", "logs/[/x]", "--tag")
    rows = _type(terminal, f"{run} $'exp=[/y]\\e[31m' -- true '[/z]' '[red]'", 1)
    assert "rc1=0" in rows
    assert any(row.startswith("Log") and "logs/[/x]/carbonwrap-" in row for row in rows), rows
    _no_traceback(rows)

    rows = _type(terminal, _carbonwrap("report", "logs"), 2)
    assert "rc2=0" in rows and any("true '[/z]' '[red]'" in row for row in rows), rows
    _no_traceback(rows)
    rows = _type(terminal, _carbonwrap("report", "--group-by", "tag:exp", "logs"), 3)
    assert "rc3=0" in rows and any(row.startswith("[/y]\\x1b[31m ") for row in rows), rows
    _no_traceback(rows)


# A grid region as a WattTime server might name it: it becomes the intensity source shown in the
# live view, the final report and the table.
REGION = "CAISO\x1b]2;PWNED\x07\x1b[2J\x9b1m[/x]"
REGION_SHOWN = "CAISO\\x1b]2;PWNED\\x07\\x1b[2J\\x9b1m[/x]"


def test_a_providers_region_in_the_live_view_and_the_final_report(terminal: Terminal) -> None:
    """WattTime names the grid region of --location; carbonwrap shows it as the source. Before:
    the region's OSC 2 set the title from the final report (the live view replaced control
    characters with spaces), and "[/x]" made rich raise MarkupError instead of the report."""
    from intensity_server import RecordedServer, serve

    now = time.time()
    point = time.strftime("%Y-%m-%dT%H:%M:00+00:00", time.gmtime(now - now % 300))
    meta = {"units": "lbs_co2_per_mwh", "data_point_period_seconds": 300,
            "signal_type": "co2_moer", "region": REGION}  # fmt: skip
    go = terminal.workdir / "go"

    async def check(server: RecordedServer) -> None:
        server.route("/login", json_body={"token": "t0ken"})
        server.route("/v3/region-from-loc", json_body={"region": REGION, "signal_type": "co2_moer"})
        server.route(
            "/v3/forecast", json_body={"data": [{"point_time": point, "value": 900}], "meta": meta}
        )
        env = [f"PYTHONPATH={REPO}", "XDG_CONFIG_HOME=/nonexistent",
               f"CARBONWRAP_WATTTIME_URL={server.url}", "CARBONWRAP_WATTTIME_USERNAME=u",
               "CARBONWRAP_WATTTIME_PASSWORD=p"]  # fmt: skip
        child = f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.05; done"
        run = ["env", *env, sys.executable, "-m", "carbonwrap", "run", "--intensity-source",
               "watttime", "--location", "42.37,-72.52", "--", "sh", "-c", child]  # fmt: skip
        await asyncio.to_thread(terminal.type, shlex.join(run) + "; echo rc1=$?")
        screen = await asyncio.to_thread(terminal.wait_text, "watttime:CAISO")
        assert terminal.title() == TITLE, screen
        go.touch()
        rows = _after(await asyncio.to_thread(terminal.wait_row, "rc1="), "rc1=$?")
        assert terminal.title() == TITLE
        _no_traceback(rows)
        assert "rc1=0" in rows
        folded = "".join(row.strip() for row in rows)  # rich folds the long intensity line
        assert f"watttime:{REGION_SHOWN}:co2_moer" in folded, rows
        [live] = [row for row in screen if row.startswith("carbonwrap · ")]
        assert f"watttime:{REGION_SHOWN}" in live  # escaped as everywhere, not blanked

    serve(check, timeout_s=60)


def test_report_names_unreadable_and_empty_places_escaped(tmp_path: Path) -> None:
    """The paths `report` names on stderr come from the file system: others chose them."""
    hostile = tmp_path / "logs\x1b]2;PWNED\x07"
    hostile.mkdir()
    result = run_cw("report", str(hostile), cwd=tmp_path)
    assert result.returncode == 0
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]2;PWNED\\x07" in result.stderr
