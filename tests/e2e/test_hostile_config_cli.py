"""Hostile option values and settings files in real runs: one clear line and exit 125 before
the command starts, or a run.

Never a traceback, never a second line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, run_cw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _check_one_line(message: str) -> None:
    assert message and "\n" not in message, message
    assert "\x1b" not in message, message  # no terminal control sequence either


_option_value = st.one_of(
    st.sampled_from(["", "-", "--", "=", "nan", "1e999", "-1", "2026-02-30", "tag:", "x" * 300]),
    st.text(max_size=25).map(lambda t: t.replace("\x00", "")),
)


# `run` options, each given a hostile value: every one must end as a run of `true` (exit 0) or
# one line and 125 before the command starts. Real processes, so fewer examples.
RUN_OPTIONS = [
    "--interval", "--log-interval", "--log-dir", "--region", "--location", "--cloud",
    "--intensity-source", "--intensity", "--pue", "--tag", "--json", "--cpu-accounting",
    "--prometheus-textfile",
]  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(RUN_OPTIONS), value=_option_value)
def test_fuzzed_run_options(
    tmp_path_factory: pytest.TempPathFactory, option: str, value: str
) -> None:
    work = tmp_path_factory.mktemp("run")
    marker = work / "ran"
    result = run_cw("run", "-q", option, value, "--", "touch", str(marker), cwd=work)
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        assert marker.exists()
    else:
        assert result.returncode == 125, result.stderr
        _check_one_line(result.stderr.strip())
        assert not marker.exists() and not logs_in(work)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pue = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),  # RecursionError
        ('log_dir = "a\\u0000b"\n', "log_dir"),  # ValueError: embedded null byte, in the run
        ('prometheus_textfile = "x\\u0000.prom"\n', "prometheus_textfile"),
    ],
)
def test_files_that_broke_the_run_are_one_line_and_125(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "xdg" / "carbonwrap").mkdir(parents=True)
    (tmp_path / "xdg" / "carbonwrap" / "config.toml").write_text(text)
    marker = tmp_path / "ran"
    env = cw_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    for args in (["run", "--", "touch", str(marker)], ["config"], ["report"]):
        result = subprocess.run(
            cw_argv(*args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 125, (args, result.stderr)
        assert result.stderr.startswith("carbonwrap: ") and result.stderr.count("\n") == 1
        assert message in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--interval", "nan"], {}),  # FloatRange passes NaN: the log write crashed the run
        (["--log-interval", "inf"], {}),
        (["--pue", "NaN"], {}),
        (["--intensity", "nan"], {}),
        ([], {"CARBONWRAP_LOG_INTERVAL": "inf"}),
    ],
)
def test_non_finite_numbers_are_refused_before_the_command(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    marker = tmp_path / "ran"
    result = run_cw("run", "-q", *args, "--", "touch", str(marker), cwd=tmp_path, env=cw_env(**env))
    assert result.returncode == 125, result.stderr
    assert result.stderr.startswith("carbonwrap: ") and result.stderr.count("\n") == 1
    assert "finite" in result.stderr or "number" in result.stderr
    assert not marker.exists() and not logs_in(tmp_path)
