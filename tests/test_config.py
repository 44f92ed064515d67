"""Settings: flag > environment > project file > user file > default, and every file error one
line naming file, key and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import cw_env, logs_in, records, run_cw

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.location import resolve_location
from carbonwrap.settings.resolve import load_config

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


def _env(tree: dict[str, Path], **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tree["xdg"]), **extra}


def test_each_level_beats_the_ones_below(tree: dict[str, Path]) -> None:
    tree["user"].write_text("# mine\npue = 1.1\ninterval = 2\n")
    (tree["project"] / "carbonwrap.toml").write_text("\n\npue = 1.2\n")
    env = _env(tree)
    config = load_config(env, str(tree["work"]))

    def pue(flags: dict[str, object], environ: dict[str, str]) -> tuple[object, str, str]:
        value = config.resolve(flags, environ)["pue"]
        return value.value, value.source, value.origin

    project_file = str(tree["project"] / "carbonwrap.toml")
    assert pue({"pue": 1.4}, {**env, "CARBONWRAP_PUE": "1.3"}) == (1.4, "flag", "--pue")
    assert pue({}, {**env, "CARBONWRAP_PUE": "1.3"}) == (1.3, "env", "CARBONWRAP_PUE")
    assert pue({}, env) == (1.2, "project", f"{project_file}:3")
    interval = config.resolve({}, env)["interval"]
    assert (interval.value, interval.source) == (2.0, "user")
    assert interval.origin == f"{tree['user']}:3"
    assert config.resolve({}, env)["log_interval"][:2] == (10.0, "default")


def test_pyproject_tool_table_is_found_upward_and_carbonwrap_toml_wins(
    tree: dict[str, Path],
) -> None:
    (tree["project"] / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.carbonwrap]\npue = 1.5\nlog_dir = "runs"\n'
        '[tool.carbonwrap.tags]\nteam = "nlp"\n'
    )
    (tree["project"] / "src" / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    config = load_config(_env(tree), str(tree["work"]))
    resolved = config.resolve({}, {})
    assert resolved["pue"].origin == f"{tree['project'] / 'pyproject.toml'}:5"
    # Relative paths in a project file are the project's, wherever in it one runs.
    assert resolved["log_dir"].value == str(tree["project"] / "runs")
    assert resolved["tags"].value == {"team": "nlp"}
    (tree["project"] / "src" / "carbonwrap.toml").write_text("pue = 1.6\n")
    assert load_config(_env(tree), str(tree["work"])).resolve({}, {})["pue"].value == 1.6


def test_tags_merge_by_key_higher_levels_winning(tree: dict[str, Path]) -> None:
    tree["user"].write_text('[tags]\nowner = "me"\nteam = "user-team"\n')
    (tree["project"] / "carbonwrap.toml").write_text('[tags]\nteam = "nlp"\nexp = "a"\n')
    config = load_config(_env(tree), str(tree["work"]))
    tags = config.resolve({"tags": {"exp": "b"}}, {"CARBONWRAP_TAGS": "gpu=h100"})["tags"]
    assert tags.value == {"owner": "me", "team": "nlp", "exp": "b", "gpu": "h100"}
    assert tags.source == "flag"


def test_region_from_a_file_has_source_config_and_yields_to_env_and_flags(
    tree: dict[str, Path],
) -> None:
    (tree["project"] / "carbonwrap.toml").write_text('region = "DK"\n')
    config = load_config(_env(tree), str(tree["work"]))
    where = resolve_location(None, None, None, {}, "Etc/UTC", configured=config.where())
    assert (where.region, where.source) == ("DK", "config")
    assert "carbonwrap.toml:1" in where.detail
    env = {"CARBONWRAP_REGION": "DE"}
    assert resolve_location(None, None, None, env, "Etc/UTC", configured=config.where()).region == (
        "DE"
    )
    assert resolve_location("FR", None, None, env, "Etc/UTC", configured=config.where()).region == (
        "FR"
    )


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        ("project", "pue = 7\n", "carbonwrap.toml:1: pue = 7: must be between 1 and 5"),
        ("project", "\npu = 1.2\n", "carbonwrap.toml:2: unknown key 'pu' (did you mean 'pue'?)"),
        ("project", "pue = [\n", "carbonwrap.toml: invalid TOML: "),
        ("project", 'interval = "fast"\n', ':1: interval = "fast": must be a number'),
        ("project", 'cpu_accounting = "magic"\n', "must be one of auto, cgroup2, cgroup1"),
        ("project", "tags = 3\n", "tags = 3: must be a table of strings"),
        ("project", 'region = "DK"\ncloud = "aws:eu-west-1"\n', ":2: region and cloud set"),
        ("project", f'[electricitymaps]\ntoken = "{TOKEN}"\n',
         ":2: electricitymaps.token: credentials are not read from project files"),
        ("user", "[watttime]\npassword = 12\n", "config.toml:2: watttime.password = (hidden)"),
        ("user", "quiet = 'maybe'\n", "config.toml:1: quiet = \"maybe\": must be true or false"),
        ("user", b"pue = \xff\n", "config.toml: not UTF-8 text"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_naming_file_key_and_line(
    tree: dict[str, Path], where: str, text: str | bytes, message: str
) -> None:
    path = tree["user"] if where == "user" else tree["project"] / "carbonwrap.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(CarbonwrapError) as info:
        load_config(_env(tree), str(tree["work"]))
    assert message in info.value.message
    assert "\n" not in info.value.message and TOKEN not in info.value.message
    assert "12" not in info.value.message.partition("password")[2]  # a secret stays hidden


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
