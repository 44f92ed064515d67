"""Settings: flag > environment > project file > user file > default, and every file error one
line naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

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
