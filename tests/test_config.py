"""Config: flags over environment over defaults, and the safety rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidhub.config import DEFAULT_SECRET, Config, ConfigError, is_loopback_host


def test_defaults_are_loopback_sqlite() -> None:
    cfg = Config.from_env({})
    assert (cfg.host, cfg.port, cfg.secret, cfg.store) == (
        "127.0.0.1",
        4443,
        DEFAULT_SECRET,
        "sqlite",
    )
    assert cfg.db_path is not None and cfg.db_path.name == "vidhub.sqlite3"
    assert cfg.serve_app_endpoints


def test_environment_uses_openvidu_names_and_flags_win() -> None:
    env = {"OPENVIDU_SECRET": "s3cret", "SERVER_PORT": "5000", "VIDHUB_DATA_DIR": "/tmp/x"}
    cfg = Config.from_env(env)
    assert (cfg.secret, cfg.port, cfg.data_dir) == ("s3cret", 5000, Path("/tmp/x"))
    cfg = Config.from_env(env, port=6000, secret=None)
    assert (cfg.port, cfg.secret) == (6000, "s3cret")


def test_default_secret_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match="default secret"):
        Config.from_env({}, host="0.0.0.0")
    assert Config.from_env({"OPENVIDU_SECRET": "x"}, host="0.0.0.0").host == "0.0.0.0"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SERVER_PORT": "abc"}, "SERVER_PORT"),
        ({"OPENVIDU_WEBHOOK": "maybe"}, "OPENVIDU_WEBHOOK"),
        ({"OPENVIDU_WEBHOOK": "true"}, "OPENVIDU_WEBHOOK_ENDPOINT"),
        ({"OPENVIDU_WEBHOOK_HEADERS": '["NoColon"]'}, "OPENVIDU_WEBHOOK_HEADERS"),
        ({"OPENVIDU_WEBHOOK_EVENTS": '["nope"]'}, "OPENVIDU_WEBHOOK_EVENTS"),
        ({"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC": "AV1"}, "FORCED_VIDEO_CODEC"),
        ({"VIDHUB_STORE": "redis"}, "VIDHUB_REDIS_URL"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_webhook_settings_parse() -> None:
    cfg = Config.from_env(
        {
            "OPENVIDU_WEBHOOK": "true",
            "OPENVIDU_WEBHOOK_ENDPOINT": "http://127.0.0.1:9/hook",
            "OPENVIDU_WEBHOOK_HEADERS": '["Authorization: Basic abc"]',
            "OPENVIDU_WEBHOOK_EVENTS": '["sessionCreated"]',
        }
    )
    assert cfg.webhook.enabled
    assert cfg.webhook.headers == (("Authorization", "Basic abc"),)
    assert cfg.webhook.events == ("sessionCreated",)


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.org", False),
    ],
)
def test_is_loopback_host(host: str, loop: bool) -> None:
    assert is_loopback_host(host) is loop


def test_media_workers_default_to_the_usable_cpus_and_zero_keeps_media_in_process() -> None:
    import os

    assert Config.from_env({}).media_workers == len(os.sched_getaffinity(0))
    assert Config.from_env({"VIDHUB_MEDIA_WORKERS": "0"}).media_workers == 0
    assert Config.from_env({"VIDHUB_MEDIA_WORKERS": "3"}, media_workers=2).media_workers == 2
    assert Config().media_workers == 0  # embedding and tests: in-process unless asked
    with pytest.raises(ConfigError, match="VIDHUB_MEDIA_WORKERS"):
        Config.from_env({"VIDHUB_MEDIA_WORKERS": "-1"})
    with pytest.raises(ConfigError, match="VIDHUB_MEDIA_WORKERS"):
        Config.from_env({"VIDHUB_MEDIA_WORKERS": "two"})
