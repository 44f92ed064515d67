"""Settings in real runs: bad variables stop the run with 125 before the command, a project's
file is used, and `carbonwrap config` shows each value and where it came from, secrets masked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import cw_env, logs_in, records, run_cw

TOKEN = "tok-SECRET-1234567890"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A user config dir and a project with a nested working directory."""
    home = tmp_path / "xdg"
    (home / "carbonwrap").mkdir(parents=True)
    project = tmp_path / "project"
    work = project / "src" / "deep"
    work.mkdir(parents=True)
    return {"xdg": home, "user": home / "carbonwrap" / "config.toml", "project": project,
            "work": work}  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CARBONWRAP_PUE", "abc", "CARBONWRAP_PUE=abc: must be a number; fix or unset it"),
        ("CARBONWRAP_INTERVAL", "0", "CARBONWRAP_INTERVAL=0: must be between 0.05 and 3600"),
        ("CARBONWRAP_QUIET", "perhaps", "CARBONWRAP_QUIET=perhaps: must be true or false"),
        ("CARBONWRAP_TAGS", "novalue", "CARBONWRAP_TAGS=novalue: 'novalue' is not KEY=VALUE"),
    ],
)
def test_bad_variables_stop_the_run_with_125_before_the_command(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    marker = tmp_path / "ran"
    result = run_cw(
        "run", "--", "touch", str(marker), cwd=tmp_path, env=cw_env(**{variable: value})
    )
    assert result.returncode == 125
    assert result.stderr.strip() == f"carbonwrap: {message}" or message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists() and not logs_in(tmp_path)


def test_a_run_in_a_project_uses_its_settings(tree: dict[str, Path]) -> None:
    (tree["project"] / "carbonwrap.toml").write_text(
        'pue = 1.25\nlog_dir = "runs"\nregion = "DK"\n[tags]\nteam = "nlp"\n'
    )
    env = cw_env(XDG_CONFIG_HOME=str(tree["xdg"]), CARBONWRAP_LOG_INTERVAL="1.5")
    result = run_cw("run", "-q", "--tag", "exp=7", "--json", "-", "--", "true",
                    cwd=tree["work"], env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pue"] == 1.25
    assert report["intensity"]["region"] == "DK"
    assert report["intensity"]["region_source"] == "config"
    assert report["log_path"].startswith(str(tree["project"] / "runs") + os.sep)
    (log,) = logs_in(tree["project"] / "runs")
    start = records(log)[0]
    assert start["tags"] == {"team": "nlp", "exp": "7"}
    assert start["log_interval_s"] == 1.5
    # `report` without a PATH reads the configured log directory.
    listed = run_cw("report", "--json", cwd=tree["work"], env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [report["run_id"]]


def test_config_shows_values_and_sources_and_masks_secrets(tree: dict[str, Path]) -> None:
    tree["user"].write_text(f'pue = 1.1\n[electricitymaps]\ntoken = "{TOKEN}"\n')
    tree["user"].chmod(0o644)
    (tree["project"] / "carbonwrap.toml").write_text('log_dir = "runs"\n')
    env = cw_env(XDG_CONFIG_HOME=str(tree["xdg"]), CARBONWRAP_INTERVAL="3")
    text = run_cw("config", cwd=tree["work"], env=env)
    assert text.returncode == 0, text.stderr
    assert TOKEN not in text.stdout + text.stderr
    lines = {line.split()[0]: line.split() for line in text.stdout.splitlines() if line.strip()}
    assert lines["pue"][1:3] == ["1.1", "user"]
    assert lines["interval"][1:5] == ["3.0", "s", "env", "CARBONWRAP_INTERVAL"]
    assert lines["log_dir"][1:3] == [str(tree["project"] / "runs"), "project"]
    assert lines["electricitymaps.token"][1:3] == ["********", "user"]
    assert lines["log_interval"][1:4] == ["10", "s", "default"]
    assert "others can read it: chmod 600" in text.stdout
    document = json.loads(run_cw("config", "--json", cwd=tree["work"], env=env).stdout)
    assert document["schema"] == "carbonwrap.config/1"
    assert document["settings"]["interval"] == {
        "value": 3.0,
        "source": "env",
        "origin": "CARBONWRAP_INTERVAL",
        "unit": "s",
    }
    assert document["settings"]["electricitymaps.token"]["value"] == "********"
    assert document["files"]["project"] == str(tree["project"] / "carbonwrap.toml")
    assert TOKEN not in json.dumps(document)


def test_the_interval_check_names_where_each_value_came_from(tree: dict[str, Path]) -> None:
    (tree["project"] / "carbonwrap.toml").write_text("interval = 5\n")
    env = cw_env(XDG_CONFIG_HOME=str(tree["xdg"]), CARBONWRAP_LOG_INTERVAL="2")
    result = run_cw("run", "--", "true", cwd=tree["work"], env=env)
    assert result.returncode == 125
    file = tree["project"] / "carbonwrap.toml"
    assert result.stderr == (
        f"carbonwrap: CARBONWRAP_LOG_INTERVAL 2 is shorter than interval ({file}:1) 5; "
        "make it at least as long\n"
    )
