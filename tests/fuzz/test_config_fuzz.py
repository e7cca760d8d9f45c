"""The operator's configuration is a trust boundary too: any environment gives a Config or
one ConfigError naming the setting, never another exception (a traceback at start-up)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from vidhub.config import WEBHOOK_EVENTS, Config, ConfigError

NAMES = [
    "OPENVIDU_WEBHOOK", "OPENVIDU_WEBHOOK_ENDPOINT", "OPENVIDU_WEBHOOK_HEADERS",
    "OPENVIDU_WEBHOOK_EVENTS", "VIDHUB_WEBHOOK_SIGNING_KEY", "OPENVIDU_WEBRTC_ICE_SERVERS",
    "VIDHUB_HEADER_TIMEOUT", "VIDHUB_JOIN_TIMEOUT", "VIDHUB_MAX_SESSIONS",
    "VIDHUB_MAX_WEBSOCKETS_PER_IP", "VIDHUB_SHED_BUDGET_MS", "VIDHUB_HUB_RATE", "SERVER_PORT",
]  # fmt: skip
json_text = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
).map(json.dumps)
values = st.one_of(
    st.text(max_size=30),
    json_text,
    st.sampled_from(["true", "false", "http://127.0.0.1:1/hook", "-1", "1e999", "nan", "0"]),
    st.lists(st.sampled_from([*WEBHOOK_EVENTS, "X: y", "bad", "Authorization: Basic x"])).map(
        json.dumps
    ),
)


@given(st.dictionaries(st.sampled_from(NAMES), values, max_size=6))
def test_any_environment_gives_a_config_or_a_config_error(env: dict[str, str]) -> None:
    try:
        cfg = Config.from_env(env)
    except ConfigError as exc:
        assert str(exc)
        return
    assert set(cfg.webhook.events) <= set(WEBHOOK_EVENTS)  # [] is valid: no events
