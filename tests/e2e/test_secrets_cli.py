"""Secrets: never on carbonwrap's command line, never in a log, report, error, `config` output
or Prometheus file; the command's own credentials redacted from its logged argv (or the argv
left out); logs private to the user unless configured otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw
from intensity_server import RecordedServer, serve

from carbonwrap.run.redact import REDACTED

TOKEN = "em-SECRET-token-314159"
PASSWORD = "wt-SECRET-pass-271828"
CHILD_SECRET = "child-SECRET-9f8e7d"


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--token", TOKEN, "--", "touch", "ran"],
        ["run", f"--api-key={TOKEN}", "--", "touch", "ran"],
        ["run", "--electricitymaps-token", TOKEN, "touch", "ran"],
        ["run", "-q", "--watttime-password", TOKEN, "--", "touch", "ran"],
        ["run", "--auth-header", TOKEN, "--", "touch", "ran"],
        ["intensity", "--token", TOKEN],
        ["doctor", f"--secret={TOKEN}"],
    ],
)
def test_a_credential_on_carbonwraps_command_line_is_refused_with_a_hint(
    workdir: Path, args: list[str]
) -> None:
    result = run_cw(*args, cwd=workdir)
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("carbonwrap: --")
    assert "credentials are not taken on the command line" in result.stderr
    assert "CARBONWRAP_ELECTRICITYMAPS_TOKEN" in result.stderr and "config" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert not (workdir / "ran").exists() and not logs_in(workdir)


def test_other_unknown_options_keep_clicks_message(workdir: Path) -> None:
    result = run_cw("run", "--bogus", "--", "true", cwd=workdir)
    assert result.returncode == 125 and "No such option '--bogus'" in result.stderr


def test_the_commands_own_options_are_its_own(workdir: Path) -> None:
    show = "import json, sys; print(json.dumps(sys.argv[1:]))"
    result = run_cw("run", "-q", "--", sys.executable, "-c", show, "--token", TOKEN, cwd=workdir)
    assert result.returncode == 0
    assert json.loads(result.stdout) == ["--token", TOKEN]  # the child gets them unchanged


def test_secrets_appear_nowhere(workdir: Path) -> None:
    """Credentials in the environment and the user file, a provider that answers 401 with the
    token in its body, and a command whose argv holds a credential: the secret is in no log,
    JSON, CSV, HTML, Prometheus file, error or `config` output."""
    xdg = workdir / "xdg"
    (xdg / "carbonwrap").mkdir(parents=True)
    user_file = xdg / "carbonwrap" / "config.toml"
    user_file.write_text(f'[watttime]\nusername = "me"\npassword = "{PASSWORD}"\n')
    user_file.chmod(0o600)
    outputs: list[str] = []

    async def check(server: RecordedServer) -> None:
        echo = {"error": f"invalid token {TOKEN}", "auth": TOKEN}
        server.route("/carbon-intensity/*", status=401, json_body=echo)
        env = cw_env(
            XDG_CONFIG_HOME=str(xdg),
            CARBONWRAP_ELECTRICITYMAPS_TOKEN=TOKEN,
            CARBONWRAP_ELECTRICITYMAPS_URL=server.url,
        )
        argv = cw_argv(
            "run", "--region", "DK-DK1", "--intensity-source", "electricitymaps",
            "--json", "r.json", "--prometheus-textfile", str(workdir / "cw.prom"), "--",
            sys.executable, "-c", "import time; time.sleep(1)",
            "--api-key", CHILD_SECRET, f"HF_TOKEN={CHILD_SECRET}",
        )  # fmt: skip
        done = await asyncio.to_thread(
            subprocess.run, argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.extend([done.stdout, done.stderr])
        assert any("authorization" in str(r.headers).lower() or "auth-token" in str(r.headers)
                   for r in server.requests)  # fmt: skip
        intensity = ["intensity", "--region", "DK-DK1", "--intensity-source", "electricitymaps"]
        for args in (["config"], ["config", "--json"], intensity, ["doctor", "--region", "DK-DK1"]):
            done = await asyncio.to_thread(
                subprocess.run, cw_argv(*args), cwd=workdir, env=env, capture_output=True,
                text=True, timeout=60,
            )  # fmt: skip
            outputs.extend([done.stdout, done.stderr])

    serve(check, timeout_s=120)
    (log,) = logs_in(workdir / "logs")
    outputs += [
        log.read_text(),
        (workdir / "r.json").read_text(),
        (workdir / "cw.prom").read_text(),
    ]
    for fmt in ("--json", "--csv", "--format=codecarbon"):
        outputs.append(run_cw("report", fmt, "logs", cwd=workdir).stdout)
    outputs.append(run_cw("report", "--html", "-", "logs", cwd=workdir).stdout)
    text = "\n".join(outputs)
    for secret in (TOKEN, PASSWORD, CHILD_SECRET):
        assert secret not in text
    start = records(log)[0]
    assert start["argv"][-3:] == ["--api-key", REDACTED, f"HF_TOKEN={REDACTED}"]
    warnings = [r["message"] for r in records(log) if r["type"] == "warning"]
    assert any("401" in w or "token" in w.lower() for w in warnings), warnings


@pytest.mark.parametrize(
    ("args", "env", "user_file"),
    [
        (["--no-argv"], {}, None),
        ([], {"CARBONWRAP_LOG_ARGV": "0"}, None),
        ([], {}, "log_argv = false\n"),
    ],
)
def test_no_argv_leaves_the_command_out(
    workdir: Path, args: list[str], env: dict[str, str], user_file: str | None
) -> None:
    if user_file is not None:
        (workdir / "xdg" / "carbonwrap").mkdir(parents=True)
        (workdir / "xdg" / "carbonwrap" / "config.toml").write_text(user_file)
        env = {**env, "XDG_CONFIG_HOME": str(workdir / "xdg")}
    result = run_cw(
        "run", *args, "--json", "-", "--prometheus-textfile", str(workdir / "x.prom"), "--",
        sys.executable, "-c", "pass", CHILD_SECRET, cwd=workdir, env=cw_env(**env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["command"] is None
    (log,) = logs_in(workdir / "logs")
    assert records(log)[0]["argv"] is None
    assert CHILD_SECRET not in log.read_text() + result.stderr
    assert "(command not logged)" in result.stderr
    table = run_cw("report", "logs", cwd=workdir)
    assert table.returncode == 0 and "(not logged)" in table.stdout
    grouped = run_cw("report", "--group-by", "command", "--csv", "logs", cwd=workdir)
    assert "(command not logged)" in grouped.stdout
    html = run_cw("report", "--html", "-", "logs", cwd=workdir)
    assert html.returncode == 0 and CHILD_SECRET not in html.stdout


def _umask0() -> None:
    os.umask(0)


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, 0o600),
        ({"CARBONWRAP_LOG_MODE": "0640"}, 0o640),
        ({"CARBONWRAP_LOG_MODE": "644"}, 0o644),
    ],
)
def test_log_mode_private_unless_configured(workdir: Path, env: dict[str, str], mode: int) -> None:
    """umask 0 as the worst case: the default stays 0600; a configured mode is exact."""
    result = subprocess.run(
        cw_argv("run", "-q", "--", "true"), cwd=workdir, env=cw_env(**env),
        capture_output=True, text=True, timeout=60, preexec_fn=_umask0,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (log,) = logs_in(workdir / "logs")
    assert stat.S_IMODE(log.stat().st_mode) == mode


@pytest.mark.parametrize("value", ["0700", "0400", "abc", "0777", "4600", "0o600x"])
def test_bad_log_modes_are_one_line_and_125(workdir: Path, value: str) -> None:
    result = run_cw("run", "--", "touch", "ran", cwd=workdir, env=cw_env(CARBONWRAP_LOG_MODE=value))
    assert result.returncode == 125, result.stderr
    assert (
        result.stderr.startswith("carbonwrap: CARBONWRAP_LOG_MODE=")
        and result.stderr.count("\n") == 1
    )
    assert not (workdir / "ran").exists()


def test_log_mode_from_a_file_in_toml_octal(workdir: Path) -> None:
    (workdir / "carbonwrap.toml").write_text("log_mode = 0o640\n")
    result = run_cw("run", "-q", "--", "true", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (log,) = logs_in(workdir / "logs")
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    shown = run_cw("config", "--json", cwd=workdir)
    assert json.loads(shown.stdout)["settings"]["log_mode"]["value"] == "0640"
