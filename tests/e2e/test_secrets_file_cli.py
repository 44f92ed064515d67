"""A bad user config file stops the run with 125 before the command."""

from __future__ import annotations

from pathlib import Path

from conftest import cw_env, run_cw


def config(tmp_path: Path, text: str, mode: int = 0o600) -> dict[str, str]:
    path = tmp_path / "carbonwrap" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_a_bad_config_file_stops_the_run_with_125_before_the_command(tmp_path: Path) -> None:
    env = config(tmp_path, "[electricitymaps\n")
    marker = tmp_path / "ran"
    result = run_cw(
        "run", "--region", "DE", "--", "touch", str(marker), cwd=tmp_path, env=cw_env(**env)
    )
    assert result.returncode == 125 and result.stderr.count("\n") == 1
    assert "invalid TOML" in result.stderr and not marker.exists()
