"""Small things that cost a user time (issue 14), in-process: an option before the command's
name, a command line given as one word, a unit on a number, completing the wrapped command,
the man pages' examples and `--help`'s whole sentences."""

from __future__ import annotations

import errno
import io
import os
import shlex
import stat
import time
from pathlib import Path

import click
import pytest

from carbonwrap.cli.definition import cli
from carbonwrap.cli.docs import EXAMPLES, man_page, programs, wrapped_completions
from carbonwrap.cli.main import _status
from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.run.child import exec_error
from carbonwrap.run.finish import still_running

# --- an option of a command given before the command's name ------------------------------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--region", "DK", "run", "--", "python", "train.py"],
            "--region is an option of `run` and goes after the command's name: "
            "carbonwrap run --region DK -- …",
        ),
        (
            ["--region=DK-DK1", "run", "true"],
            "--region is an option of `run` and goes after the command's name: "
            "carbonwrap run --region DK-DK1 -- …",
        ),
        (
            ["-q", "run", "true"],
            "-q is an option of `run` and goes after the command's name: carbonwrap run -q -- …",
        ),
        (
            ["--tag", "exp=a b", "run", "true"],
            "--tag is an option of `run` and goes after the command's name: "
            "carbonwrap run --tag 'exp=a b' -- …",
        ),
        (
            ["--since", "2026-11-01", "report"],
            "--since is an option of `report` and goes after the command's name: "
            "carbonwrap report --since 2026-11-01",
        ),
        (
            ["--region", "DK"],  # no command named: every command that has it
            "--region is an option of `run`, `intensity` and `doctor` and goes after the "
            "command's name: carbonwrap run --region DK -- …",
        ),
    ],
)
def test_a_commands_option_before_its_name_says_where_it_goes(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "No such option '--region'. Did you mean '--version'?"."""
    assert _status(argv) == 125
    assert capsys.readouterr().err == f"carbonwrap: {line}\n"


def test_an_option_of_no_command_keeps_clicks_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _status(["--bogus", "run", "true"]) == 125
    assert (
        capsys.readouterr().err
        == "carbonwrap: No such option '--bogus'. (see 'carbonwrap --help')\n"
    )


def test_a_credential_option_is_still_refused_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    assert _status(["--token", "x", "run", "true"]) == 125
    assert "credentials are not taken on the command line" in capsys.readouterr().err


# --- a number with a unit -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["run", "--intensity", "300g", "--", "true"],
            "--intensity wants a number in gCO2e/kWh, e.g. --intensity 300; '300g' is not one",
        ),
        (
            ["run", "--interval", "5s", "--", "true"],
            "--interval wants a number of seconds, e.g. --interval 1; '5s' is not one",
        ),
        (
            ["run", "--pue", "x", "--", "true"],
            "--pue wants a number, e.g. --pue 1.2; 'x' is not one",
        ),
    ],
)
def test_a_number_with_a_unit_says_what_the_option_wants(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "Invalid value for '--intensity': '300g' is not a valid float range."."""
    assert _status(argv) == 125
    assert capsys.readouterr().err == f"carbonwrap: {line} (see 'carbonwrap run --help')\n"


def test_a_number_out_of_range_keeps_its_range_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _status(["run", "--pue", "9", "--", "true"]) == 125
    assert "9.0 is not in the range 1.0<=x<=5.0" in capsys.readouterr().err


# --- a command line given as one word -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv0", "words"),
    [
        ("python3 -c pass", "python3 -c pass"),
        ("python3 -c 'print(1)'", "python3 -c 'print(1)'"),
        ('grep -r "a b" .', "grep -r 'a b' ."),
        ("echo 'unbalanced", "echo 'unbalanced"),
    ],
)
def test_a_command_line_in_one_word_hints_at_separate_words(argv0: str, words: str) -> None:
    error = exec_error(argv0, FileNotFoundError(errno.ENOENT, argv0))
    assert error.code == 127
    assert error.message == (
        f"{argv0}: command not found; pass the command and its arguments as separate words: "
        f"carbonwrap run -- {words}"
    )


@pytest.mark.parametrize("argv0", ["nosuchcommand", "", " "])
def test_a_name_without_spaces_keeps_the_plain_line(argv0: str) -> None:
    error = exec_error(argv0, FileNotFoundError(errno.ENOENT, argv0))
    assert error.message.endswith(": command not found (check the name and PATH)")


# --- report where there is no log directory -----------------------------------------------


def test_report_without_a_log_directory_says_there_are_no_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: "carbonwrap: logs: no such file or directory", exit status 125."""
    monkeypatch.chdir(tmp_path)
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    out, err = io.StringIO(), io.StringIO()
    assert report(ReportOptions(paths=[]), environ, out, err) == 0
    assert err.getvalue() == (
        "carbonwrap: no runs here: logs/ does not exist (the default log_dir); `carbonwrap run "
        "-- COMMAND` logs a run there, or point at logs elsewhere: carbonwrap report DIR, or "
        "set log_dir (see 'carbonwrap config')\n"
    )
    assert out.getvalue().startswith("No runs.\n")
    err = io.StringIO()
    environ["CARBONWRAP_LOG_DIR"] = str(tmp_path / "runs")
    assert report(ReportOptions(paths=[]), environ, io.StringIO(), err) == 0
    assert f"no runs here: {tmp_path}/runs/ does not exist (CARBONWRAP_LOG_DIR)" in err.getvalue()


def test_report_of_a_path_that_does_not_exist_is_still_an_error(tmp_path: Path) -> None:
    from carbonwrap.errors import CarbonwrapError

    with pytest.raises(CarbonwrapError, match="no such file or directory"):
        report(ReportOptions(paths=[tmp_path / "nope"]), {}, io.StringIO(), io.StringIO())


# --- completing the wrapped command -------------------------------------------------------


def _completed(args: str, incomplete: str) -> list[tuple[str, str]] | None:
    items = wrapped_completions(cli, shlex.split(args), incomplete)
    return None if items is None else [(item.type, item.value) for item in items]


@pytest.fixture
def path_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds one directory: two programs, a file that is not executable, a directory."""
    for name, mode in (("trainer", 0o755), ("train-cli", 0o755), ("train.txt", 0o644)):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(mode)
    (tmp_path / "train.d").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("args", "incomplete", "expected"),
    [
        ("run", "tra", [("plain", "train-cli"), ("plain", "trainer")]),  # the command's name
        ("run --", "tra", [("plain", "train-cli"), ("plain", "trainer")]),
        ("run --region DK -q --tag a=b --", "tra", [("plain", "train-cli"), ("plain", "trainer")]),
        ("run --region DK", "tra", [("plain", "train-cli"), ("plain", "trainer")]),
        ("run", "./tr", [("file", "./tr")]),  # a path: files
        ("run trainer", "da", [("file", "da")]),  # its arguments: files
        ("run -- trainer --epochs 3", "", [("file", "")]),
        ("run trainer", "--reg", [("file", "--reg")]),  # the command's option, not run's
        ("run -- trainer --region", "", [("file", "")]),  # not run's --region either
        ("run", "--reg", None),  # run's own options: click's
        ("run --region", "DK", None),  # an option's value: click's
        ("report --group-by", "", None),
        ("report", "", None),
        ("", "r", None),
    ],
)
def test_run_completes_a_program_then_files(
    path_dir: Path, args: str, incomplete: str, expected: list[tuple[str, str]] | None
) -> None:
    """Before: nothing after `run` (its argument had no completion) but run's own options."""
    assert _completed(args, incomplete) == expected


def test_programs_are_those_on_path_that_may_be_executed(path_dir: Path) -> None:
    assert [item.value for item in programs("")] == ["train-cli", "trainer"]
    (path_dir / "trainer").chmod(stat.S_IRUSR | stat.S_IWUSR)
    if os.geteuid() != 0:  # root may execute any file with an x bit; this one has none left
        assert [item.value for item in programs("")] == ["train-cli"]


def test_group_by_completes_its_values() -> None:
    report_command = cli.commands["report"]
    ctx = click.Context(report_command, info_name="report")
    (option,) = [p for p in report_command.params if p.name == "group_by"]
    assert [i.value for i in option.shell_complete(ctx, "")] == [
        "command",
        "host",
        "day",
        "job",
        "job,host",
        "job,rank",
        "tag:",
    ]
    assert [i.value for i in option.shell_complete(ctx, "t")] == ["tag:"]


# --- processes that end a moment after the command ----------------------------------------


def test_still_running_returns_as_soon_as_the_processes_have_ended() -> None:
    import subprocess

    quick = subprocess.Popen(["sleep", "0.2"])
    slow = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        assert still_running([quick.pid], 5.0) == []  # ended (a zombie, not reaped yet)
        assert time.monotonic() - started < 2.0
        started = time.monotonic()
        assert still_running([slow.pid], 0.3) == [slow.pid]
        assert 0.3 <= time.monotonic() - started < 2.0
        assert still_running([quick.pid, slow.pid, 2**22 + 7], 0.0) == [slow.pid]
    finally:
        slow.kill()
        slow.wait()
        quick.wait()


# --- man pages and --help -----------------------------------------------------------------


@pytest.mark.parametrize("page", sorted(EXAMPLES))
def test_every_man_page_example_parses(page: str) -> None:
    for line, _meaning in EXAMPLES[page]:
        # The words from `carbonwrap` to a redirection or the end of a process substitution.
        words = shlex.split(line.replace("<(", "").replace(")", ""))
        args = words[words.index("carbonwrap") + 1 :]
        args = args[: args.index(">")] if ">" in args else args
        assert page in ("carbonwrap", args[0]), line
        parent = click.Context(cli, info_name="carbonwrap")
        cli.commands[args[0]].make_context(args[0], args[1:], parent=parent)  # raises if bad


def test_man_pages_have_examples() -> None:
    for name, command in [("carbonwrap", cli), *cli.commands.items()]:
        path = ["carbonwrap"] if command is cli else ["carbonwrap", name]
        page = man_page(command, path)
        assert ".SH EXAMPLES" in page, name
        assert page.index(".SH EXAMPLES") < page.index(".SH SEE ALSO")


def test_help_lists_each_command_with_a_whole_sentence() -> None:
    """Before: "Check what carbonwrap can measure here, and how to fix what..." (cut)."""
    text = cli.get_help(click.Context(cli, info_name="carbonwrap", terminal_width=80))
    listed = " ".join(text.split("Commands:\n", 1)[1].split())
    assert "..." not in listed and "e.g." not in listed
    for name, command in cli.commands.items():
        assert command.short_help and command.short_help.endswith("."), name
        assert f"{name} {command.short_help}" in listed, name
