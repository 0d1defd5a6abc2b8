"""Configuration: defaults, validation messages naming file and key, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from scadad import config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scadad.toml"
    p.write_text(text)
    return p


def test_defaults_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("SCADA_SOCKET", raising=False)
    cfg = config.load(None)
    assert cfg.data_dir == tmp_path / "data" / "scada"
    assert cfg.socket_path == tmp_path / "run" / "scadad" / "scadad.sock"
    assert cfg.store_url == f"sqlite:///{tmp_path}/data/scada/scada.db"
    assert cfg.socket_mode == 0o660
    assert cfg.settings.api.max_frame_bytes == 1024 * 1024


def test_system_install_paths_override(tmp_path: Path) -> None:
    p = write(tmp_path, '[paths]\ndata_dir = "/var/lib/scada"\n[api]\nsocket = "/run/scadad/scadad.sock"\n')
    cfg = config.load(p)
    assert cfg.data_dir == Path("/var/lib/scada")
    assert cfg.socket_path == Path("/run/scadad/scadad.sock")
    assert cfg.store_url == "sqlite:////var/lib/scada/scada.db"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, '[paths]\ndata_dir = "data"\n')
    assert config.load(p).data_dir == tmp_path / "data"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[api]\nsockett = 'x'\n", "api.sockett: unknown key"),
        ("[bogus]\nx = 1\n", "bogus: unknown key"),
        ("[api]\nidle_timeout_s = 'soon'\n", "api.idle_timeout_s: Expected `float`, got `str`"),
        ("[api]\nmax_frame_bytes = 10\n", "api.max_frame_bytes: Expected `int` >= 1024"),
        ("[log]\nformat = 'xml'\n", "log.format: Invalid enum value 'xml'"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "site.timezone: unknown time zone 'Mars/Olympus'"),
        ("[store]\nurl = 'mysql://x'\n", "store.url: expected a sqlite:/// or postgresql:// URL"),
        ("[api\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as err:
        config.load(p)
    assert str(err.value).startswith(f"{p}: ")
    assert expected in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_changed_keys() -> None:
    a = config.Settings()
    b = config.Settings()
    b.api.idle_timeout_s = 5
    b.store.url = "sqlite:///x"
    assert config.changed_keys(a, b) == ["api.idle_timeout_s", "store.url"]
    assert "api.idle_timeout_s" in config.RELOADABLE and "store.url" not in config.RELOADABLE


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "etc" / "scadad.toml"
    cfg = config.load(example)
    assert cfg.settings.site.name
