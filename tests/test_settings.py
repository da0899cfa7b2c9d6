"""Settings: the https-only Vast URL, spending caps and the default lifetime from env and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from vast_mcp.cli import _parser
from vast_mcp.serve import settings_from_args
from vast_mcp.settings import Settings, check_api_url, default_state_dir


@pytest.mark.parametrize(
    "url",
    ["http://console.vast.ai", "http://10.0.0.1:8080", "http://192.168.1.2", "ftp://127.0.0.1", "https://", "vast.ai"],
)
def test_a_cleartext_or_odd_vast_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="clear text"):
        Settings(api_url=url)


@pytest.mark.parametrize(
    "url", ["https://console.vast.ai", "http://127.0.0.1:8700", "http://localhost:1", "http://[::1]:9"]
)
def test_https_and_loopback_urls_are_accepted(url: str) -> None:
    assert check_api_url(url) == url
    assert Settings(api_url=url).api_is_loopback == url.startswith("http://")


def test_caps_ttl_and_state_dir_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "VAST_MCP_MAX_BURN": "2.5",
        "VAST_MCP_DAILY_BUDGET": "40",
        "VAST_MCP_DEFAULT_TTL_HOURS": "0",
        "VAST_MCP_STATE_DIR": str(tmp_path),
    }
    settings = Settings.from_env(env)
    assert (settings.max_burn, settings.daily_budget, settings.default_ttl_hours) == (2.5, 40.0, 0.0)
    assert settings.state_dir == tmp_path
    defaults = Settings.from_env({})
    assert (defaults.max_burn, defaults.daily_budget, defaults.default_ttl_hours) == (None, None, 24.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VAST_MCP_MAX_BURN", "-1"),
        ("VAST_MCP_MAX_BURN", "lots"),
        ("VAST_MCP_DAILY_BUDGET", "0"),
        ("VAST_MCP_DEFAULT_TTL_HOURS", "-2"),
        ("VAST_MCP_DEFAULT_TTL_HOURS", "99999"),
        ("VAST_URL", "http://example.com"),
        ("VAST_MCP_CONFIRM", "Elicit"),
        ("VAST_MCP_CONFIRM", "yes"),
    ],
)
def test_a_bad_environment_value_is_a_plain_error(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name}|clear text"):
        Settings.from_env({name: value})


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAST_MCP_MAX_BURN", "9")
    args = _parser().parse_args(["serve", "--max-burn", "1.5", "--daily-budget", "12", "--default-ttl", "6"])
    settings = settings_from_args(args)
    assert (settings.max_burn, settings.daily_budget, settings.default_ttl_hours) == (1.5, 12.0, 6.0)


@pytest.mark.parametrize("flag", [["--max-burn", "0"], ["--daily-budget", "x"], ["--default-ttl", "-1"]])
def test_bad_flags_are_refused_by_the_parser(flag: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", *flag])


def test_state_dir_follows_xdg_unless_set(tmp_path: Path) -> None:
    assert default_state_dir({"VAST_MCP_STATE_DIR": str(tmp_path)}) == tmp_path
    xdg = default_state_dir({"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert xdg in (tmp_path / "xdg" / "vast-mcp", Path.home() / "Library" / "Application Support" / "vast-mcp")
