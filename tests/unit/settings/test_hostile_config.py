"""Fuzzed settings files, variables and option values, in process: one clear line and exit 125.

Never a traceback, never a second line, never a secret in the message."""

from __future__ import annotations

import io
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonwrap.cli.main import _status
from carbonwrap.commands.config import describe
from carbonwrap.errors import CarbonwrapError
from carbonwrap.settings.catalog import SETTINGS
from carbonwrap.settings.resolve import check_run_settings, load_config

SECRET = "s3cr3t-TOKEN-value-77"
KEYS = [s.key for s in SETTINGS] + ["tags.team", "pue.x", "unknown", "tool", "log-dir", ""]
# TOML values of every type, and values at and beyond each setting's limits.
LITERALS = [
    '"x"', '""', '" "', '"DK"', '"~/logs"', '"/dev/null"', '"a\\u0000b"', '"\\u202e"',
    '"' + "a" * 5000 + '"', "0", "-1", "1", "0.04", "3601", "1e400", "-0.0",
    "nan", "inf", "-inf", "true", "false", "[]", "[1, 2]", '["a"]', "{}", '{ a = "b" }',
    "{ a = 1 }", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27", "0x10", "1_000",
    "[" * 3000 + "]" * 3000, "{ a = " * 500 + "1" + " }" * 500, "'literal'", '"""multi\nline"""',
]  # fmt: skip
_line = st.one_of(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(LITERALS)).map(
        lambda kv: f"{kv[0]} = {kv[1]}"
    ),
    st.sampled_from(["[tags]", "[electricitymaps]", "[watttime]", "[tool.carbonwrap]", "[[x]]"]),
    st.text(string.printable, max_size=30),
)
_document = st.one_of(
    st.lists(_line, max_size=8).map(lambda lines: "\n".join(lines) + "\n"),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
)


def _check_one_line(message: str) -> None:
    assert message and "\n" not in message, message
    assert "\x1b" not in message, message  # no terminal control sequence either


def _settings_of(user: Path, project: Path, env: dict[str, str]) -> None:
    """Everything a command does with settings files before it acts."""
    try:
        config = load_config(env, str(project))
        check_run_settings(config.resolve({}, env))
        config.credentials(env)
        config.where()
        describe(env, str(project))
    except CarbonwrapError as exc:
        _check_one_line(exc.message)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user_text=_document, project_text=_document)
def test_fuzzed_settings_files_are_one_line_errors(
    tmp_path: Path, user_text: str, project_text: str
) -> None:
    (tmp_path / "xdg" / "carbonwrap").mkdir(parents=True, exist_ok=True)
    user = tmp_path / "xdg" / "carbonwrap" / "config.toml"
    user.write_text(user_text, encoding="utf-8", errors="surrogateescape")
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "carbonwrap.toml").write_text(project_text, encoding="utf-8", errors="replace")
    _settings_of(user, project, {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"})


@settings(max_examples=200, deadline=None)
@given(
    variable=st.sampled_from([s.env for s in SETTINGS]),
    value=st.one_of(st.sampled_from(LITERALS), st.text(max_size=20)),
)
def test_fuzzed_variables_are_one_line_errors(variable: str, value: str) -> None:
    value = value.replace("\x00", "")  # the environment cannot hold NUL
    env = {"XDG_CONFIG_HOME": "/nonexistent", variable: value}
    try:
        config = load_config(env, "/")
        check_run_settings(config.resolve({}, env))
        describe(env, "/")
    except CarbonwrapError as exc:
        _check_one_line(exc.message)


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = _status(args)
    return code, out.getvalue(), err.getvalue()


_option_value = st.one_of(
    st.sampled_from(["", "-", "--", "=", "nan", "1e999", "-1", "2026-02-30", "tag:", "x" * 300]),
    st.text(max_size=25).map(lambda t: t.replace("\x00", "")),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    option=st.sampled_from(["--since", "--until", "--group-by", "--tag", "--format"]),
    value=_option_value,
)
def test_fuzzed_report_options(
    tmp_path_factory: pytest.TempPathFactory, option: str, value: str
) -> None:
    # A directory of its own: the base temporary directory holds every earlier test's logs,
    # and reading them all 200 times took most of a minute.
    empty = tmp_path_factory.getbasetemp() / "report-options-fuzz"
    empty.mkdir(exist_ok=True)
    code, _, err = _cli(["report", option, value, str(empty)])
    if code != 0:
        assert code == 125, err
        _check_one_line(err.strip())
        assert err.startswith("carbonwrap: ")


@pytest.mark.parametrize(
    "text",
    [
        f'[electricitymaps]\ntoken = ["{SECRET}"]\n',
        f'[watttime]\nusername = "u"\npassword = {{ p = "{SECRET}" }}\n',
        f'[watttime]\npassword = "{SECRET}"\nusername = 1\n',
        f'[electricitymaps]\ntoken = "{SECRET}"\nextra = "{SECRET}"\n',
    ],
)
def test_a_secret_in_a_bad_file_is_never_shown(tmp_path: Path, text: str) -> None:
    (tmp_path / "carbonwrap").mkdir()
    (tmp_path / "carbonwrap" / "config.toml").write_text(text)
    with pytest.raises(CarbonwrapError) as info:
        load_config({"XDG_CONFIG_HOME": str(tmp_path)}, "/")
    _check_one_line(info.value.message)
    assert SECRET not in info.value.message


def test_control_characters_in_an_error_are_escaped(tmp_path: Path) -> None:
    code, _, err = _cli(["report", "--group-by", "\x1b[2J\nX", str(tmp_path)])
    assert code == 125
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b[2J" in err
