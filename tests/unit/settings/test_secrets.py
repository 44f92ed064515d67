"""Provider credentials from the environment or the user's config file, never leaked."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.location import resolve_location
from carbonwrap.intensity.select import choose
from carbonwrap.settings.resolve import load_config


def config(tmp_path: Path, text: str, mode: int = 0o600) -> dict[str, str]:
    path = tmp_path / "carbonwrap" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_file_supplies_what_the_environment_lacks_and_environment_wins(tmp_path: Path) -> None:
    env = config(tmp_path, '[electricitymaps]\ntoken = "from-file"\n[watttime]\nusername = "u"\n')
    files = load_config(env)
    merged = files.credentials(env)
    assert merged["CARBONWRAP_ELECTRICITYMAPS_TOKEN"] == "from-file"
    assert merged["CARBONWRAP_WATTTIME_USERNAME"] == "u" and files.notes == []
    with_env = {**env, "CARBONWRAP_ELECTRICITYMAPS_TOKEN": "from-env"}
    assert load_config(with_env).credentials(with_env)["CARBONWRAP_ELECTRICITYMAPS_TOKEN"] == (
        "from-env"
    )
    where = resolve_location("DE", None, None, {}, tz_name="Etc/UTC")
    assert choose("auto", where, files.credentials(env)).name == "electricitymaps"


def test_a_secret_file_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    env = config(tmp_path, '[electricitymaps]\ntoken = "x"\n', mode=0o644)
    notes = load_config(env).notes
    assert notes and "others can read it: chmod 600" in notes[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[electricitymaps\ntoken = 1\n", "invalid TOML"),
        ('[electricitymaps]\ntokn = "x"\n', "config.toml:2: unknown key 'electricitymaps.tokn'"),
        ("[electricitymaps]\ntoken = 42\n", "must be a non-empty string"),
        ('electricitymaps = "x"\n', "must be a table"),
    ],
)
def test_bad_files_are_one_clear_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    env = config(tmp_path, text)
    with pytest.raises(CarbonwrapError, match=message) as info:
        load_config(env)
    assert "config.toml" in info.value.message and "\n" not in info.value.message
