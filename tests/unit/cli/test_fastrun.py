"""`run`'s fast parser (cli/fastrun.py) against click's definition (cli/definition.py): every
option of the definition read as click declares it, the same values as click for any command
line the fast parser takes, and click's reading (its help, its errors) for every other."""

from __future__ import annotations

import inspect
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import carbonwrap.commands.run
from carbonwrap.cli import fastrun
from carbonwrap.cli.definition import cli
from carbonwrap.cli.definition import run as run_command
from carbonwrap.cli.main import _status
from carbonwrap.cli.options import Finite, parsed_by_setting
from carbonwrap.errors import CarbonwrapError

REAL_SIGNATURE = inspect.signature(carbonwrap.commands.run.run)
OPTIONS = [p for p in run_command.params if isinstance(p, click.Option)]
SPECS = {spec.name: spec for spec in fastrun.SPECS}
KNOWN = [option for option in OPTIONS if option.name in SPECS]
UNKNOWN = [option for option in OPTIONS if option.name not in SPECS]  # learnt later, or never
# A valid value of each option that takes one, by its kind (settings: by name).
SETTING_VALUES = {"start_within": "1h", "expected_duration": "2h", "budget": "5kWh"}


def click_params(args: list[str]) -> dict[str, Any] | None:
    """The parameters click hands `run`'s callback for the words after `run`; None where it
    refuses them (an error, or help, which exits)."""
    parent = click.Context(cli, info_name="carbonwrap", **cli.context_settings)
    try:  # help (-h) is written to stdout, which pytest captures
        ctx = run_command.make_context("run", list(args), parent=parent)
    except (click.ClickException, click.exceptions.Exit):
        return None
    # The options the table lacks (added to the definition since) are left out: the fast
    # parser leaves a line that gives one to click (below), and passes nothing for them.
    return {k: v for k, v in ctx.params.items() if k in SPECS or k == fastrun.COMMAND}


def kind(option: click.Option) -> str:
    """What the fast parser must make of this option, from click's declaration alone."""
    if option.callback is parsed_by_setting:
        return "setting"
    if option.is_flag:
        return "flag"
    if option.multiple:
        return "texts"
    if isinstance(option.type, Finite):
        return "number"
    if isinstance(option.type, click.Choice):
        return "choice"
    if isinstance(option.type, click.Path):
        return "dir" if not option.type.file_okay else "file"
    assert option.type is click.STRING, f"{option.name}: a type cli/fastrun.py does not read"
    return "text"


@pytest.mark.parametrize("option", KNOWN, ids=lambda o: o.opts[0])
def test_each_option_is_read_as_the_definition_declares_it(option: click.Option) -> None:
    """Change an option in cli/definition.py and this says what cli/fastrun.py must learn."""
    spec = SPECS[option.name]
    assert spec.opts == tuple(option.opts) and not option.secondary_opts
    assert spec.takes == kind(option)
    assert option.nargs == 1 and not option.count and option.expose_value
    assert option.envvar is None and option.prompt is None and not option.required
    assert option.callback in (None, parsed_by_setting)
    # Defaults (None, False, ()) are held against click's in every parity test below.
    if isinstance(option.type, Finite):
        assert not (option.type.min_open or option.type.max_open or option.type.clamp)
        assert (spec.low, spec.high) == (option.type.min, option.type.max)
    if isinstance(option.type, click.Choice):
        assert spec.choices == tuple(option.type.choices) and option.type.case_sensitive
    if isinstance(option.type, click.Path):
        path = option.type
        assert path.file_okay != path.dir_okay and path.readable and path.type is None
        assert not (path.exists or path.writable or path.executable or path.resolve_path)
        assert not path.allow_dash


def test_the_table_holds_only_the_definitions_options_and_its_one_argument() -> None:
    assert set(SPECS) <= {option.name for option in OPTIONS}
    (argument,) = [p for p in run_command.params if isinstance(p, click.Argument)]
    assert argument.name == fastrun.COMMAND and argument.nargs == -1 and argument.required
    assert argument.type is click.UNPROCESSED
    assert run_command.context_settings == {"allow_interspersed_args": False}
    assert cli.context_settings == {"help_option_names": ["-h", "--help"]}


@pytest.mark.parametrize("option", UNKNOWN or [None], ids=lambda o: o.opts[0] if o else "none")
def test_an_option_the_table_lacks_is_left_to_click(option: click.Option | None) -> None:
    """An option added to the definition since: the fast parser never guesses at it."""
    words = option.opts if option is not None else ["--not-an-option", "-x"]
    for word in words:
        assert fastrun.parse([word, "x", "--", "true"]) is None
        assert fastrun.parse([f"{word}=x", "--", "true"]) is None


def valid_words(option: click.Option, tmp_path: Path) -> list[str]:
    spec = SPECS[str(option.name)]
    takes = spec.takes
    value = {
        "number": "1",
        "choice": spec.choices[-1] if spec.choices else "",
        "text": "x",
        "texts": "team=nlp",
        "dir": str(tmp_path),
        "file": str(tmp_path / "run.prom"),
        "setting": SETTING_VALUES.get(str(option.name), ""),
    }.get(takes)
    return [option.opts[-1]] if value is None else [option.opts[-1], value]


@pytest.mark.parametrize("option", KNOWN, ids=lambda o: o.opts[0])
def test_each_option_given_well_is_read_without_click(option: click.Option, tmp_path: Path) -> None:
    args = [*valid_words(option, tmp_path), "--", "python", "-c", "pass"]
    fast = fastrun.parse(args)
    assert fast is not None, f"{args} went to click"
    assert fast == click_params(args)


def test_every_option_at_once_and_the_forms_click_takes(tmp_path: Path) -> None:
    every = [word for option in KNOWN for word in valid_words(option, tmp_path)]
    for args in (
        [*every, "--", "true"],
        [*every, "true", "--pue", "2"],  # the first other word starts the command
        ["-qv", "--pue=1.5", "--tag", "a=b", "--tag=c=d=e", "--json", "--", "sleep", "1"],
        ["--json", "--", "--", "true"],  # a value is the next word, whatever it is
        ["--interval", "2", "--interval", "3", "-", "x"],  # the last value stands; "-" is a word
        ["--", "-q"],
        ["", "-q"],
    ):
        fast = fastrun.parse(args)
        assert fast is not None, f"{args} went to click"
        assert fast == click_params(args)


@pytest.mark.parametrize(
    "args",
    [
        ["-h", "--", "true"],
        ["--help"],
        ["-qh", "true"],
        ["--version", "true"],
        [],
        ["-q"],
        ["--"],
        ["--pue", "9", "--", "true"],
        ["--pue", "nan", "true"],
        ["--log-interval", "inf", "true"],
        ["--interval", "5s", "true"],
        ["--quiet=1", "true"],
        ["-q=1", "true"],
        ["--on-exceed", "STOP", "true"],
        ["--budget", "5 parsecs", "true"],
        ["--pue"],
        ["--regio", "DK", "true"],
    ],
)
def test_what_click_refuses_or_answers_itself_is_left_to_click(args: list[str]) -> None:
    assert click_params(args) is None
    assert fastrun.parse(args) is None


def test_a_tag_that_is_not_key_value_is_left_to_click() -> None:
    """click takes the word; the callback refuses it (cli/options.parse_tags), in a line of
    click's own."""
    for tag in ("team", "=nlp", " =nlp"):
        assert fastrun.parse(["--tag", "a=b", "--tag", tag, "true"]) is None
    assert _status(["run", "--tag", "team", "--", "true"]) == 125


def test_a_path_click_refuses_is_left_to_click(tmp_path: Path) -> None:
    a_file, a_dir = tmp_path / "file", tmp_path
    a_file.write_text("")
    for args in (["--log-dir", str(a_file), "true"], ["--prometheus-textfile", str(a_dir), "x"]):
        assert click_params(args) is None
        assert fastrun.parse(args) is None


# --- any command line: the fast parser's values are click's, or it defers ------------------

_VALUES = [
    "0", "0.05", "0.049", "1", "1.0", " 2 ", "1e3", "1_0", "3600", "3600.5", "5000", "5000.1",
    "-1", "abc", "", "nan", "inf", "-inf", "1e400", "auto", "AUTO", "stop", "warn", "cgroup2",
    "static", "k=v", "k=", "=v", " =v", "a=b=c", "8h", "90m", "1h30m", "-1h", "5kWh", "500g",
    "-", "--", "-q", "true",
]  # fmt: skip
_JUNK = ["-", "--", "", "-x", "---x", "-=", "--qu", "-qvq", "-vh", "-qx", "--=", "-h"]


@st.composite
def command_lines(draw: st.DrawFn, paths: list[str]) -> list[str]:
    words = [o for option in OPTIONS for o in option.opts] + ["--not-an-option"]
    values = st.sampled_from(_VALUES + paths)
    item = st.one_of(
        st.tuples(st.sampled_from(words), values).map(list),
        st.tuples(st.sampled_from(words), values).map(lambda wv: [f"{wv[0]}={wv[1]}"]),
        st.sampled_from(words).map(lambda w: [w]),
        st.text(alphabet="qvhx", min_size=1, max_size=3).map(lambda s: ["-" + s]),
        st.sampled_from(_JUNK).map(lambda w: [w]),
    )
    args = [word for part in draw(st.lists(item, max_size=6)) for word in part]
    tail = draw(st.lists(st.sampled_from(["true", "-q", "--", "x", "--pue", ""]), max_size=3))
    return args + (["--"] if draw(st.booleans()) else []) + tail


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("fastrun")
    (root / "file").write_text("")
    return [str(root), str(root / "file"), str(root / "absent")]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_line_is_read_as_click_reads_it_or_left_to_click(
    data: st.DataObject, paths: list[str]
) -> None:
    args = data.draw(command_lines(paths))
    fast = fastrun.parse(args)
    if fast is not None:
        assert fast == click_params(args), args


# --- the same call into commands.run both ways ----------------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """A stand-in for carbonwrap.commands.run that records each call and runs nothing."""
    recorded: list[tuple[Any, ...]] = []
    stand_in = types.ModuleType("carbonwrap.commands.run")

    def run(*args: Any) -> int:
        recorded.append(args)
        return 7

    stand_in.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "carbonwrap.commands.run", stand_in)
    yield recorded


def the_call(args: tuple[Any, ...]) -> dict[str, Any]:
    """A call of commands.run.run as it binds to the real signature, defaults filled in; flags
    that are None left out (Config.resolve reads a None flag as one not given)."""
    bound = REAL_SIGNATURE.bind(*args)
    bound.apply_defaults()
    call = dict(bound.arguments)
    call["flags"] = {k: v for k, v in call["flags"].items() if v is not None}
    return call


def test_the_fast_path_calls_the_run_command_as_the_definitions_callback_does(
    calls: list[tuple[Any, ...]], tmp_path: Path
) -> None:
    """What the definition's callback passes on and cli/fastrun.run does not fails here: an
    option with a default other than None, a new argument without a default."""
    every = [word for option in KNOWN for word in valid_words(option, tmp_path)]
    for args in ([*every, "--", "true"], ["true"], ["-q", "--tag", "a=b", "--tag", "a=c", "x"]):
        params = fastrun.parse(args)
        assert params is not None
        assert fastrun.run(params, os.environ, sys.stderr) == 7
        assert cli.main(["run", *args], standalone_mode=False) == 7
        fast, slow = calls[-2:]
        assert the_call(fast) == the_call(slow)
    assert calls[0][0]["tags"] == {"team": "nlp"} and calls[0][1] == ("true",)


# --- how a run read by the fast parser ends, as click would end it ---------------------------


def ending(monkeypatch: pytest.MonkeyPatch, raised: BaseException) -> None:
    stand_in = types.ModuleType("carbonwrap.commands.run")

    def run(*args: Any) -> int:
        raise raised

    stand_in.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "carbonwrap.commands.run", stand_in)


@pytest.mark.parametrize(
    ("raised", "status", "err"),
    [
        (KeyboardInterrupt(), 130, "\n"),
        (EOFError(), 125, "\n"),
        (BrokenPipeError(32, "Broken pipe"), 1, ""),
        (CarbonwrapError("no log directory"), 125, "carbonwrap: no log directory\n"),
        (OSError(24, "Too many open files"), 125, "carbonwrap: cannot open the files a run"),
    ],
)
def test_an_ending_before_the_command_is_what_click_made_of_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    status: int,
    err: str,
) -> None:
    ending(monkeypatch, raised)
    assert fastrun.parse(["--", "true"]) is not None  # the fast path is the one taken
    assert _status(["run", "--", "true"]) == status
    assert capsys.readouterr().err.startswith(err)
