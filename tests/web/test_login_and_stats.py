"""Pure parts of the web edge: dashboard sign-in rules and the stats source's rendering."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vidhub.server.stats import StatsSource
from vidhub.server.web.login import FAILURE_WINDOW_S, MAX_FAILURES, SESSION_TTL_S, Logins


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sign_in_sessions_expire_and_log_out() -> None:
    clock = Clock()
    logins = Logins("s3cret", now=clock)
    ok = logins.login("10.0.0.1", "s3cret")
    assert ok.outcome == "ok" and len(ok.session) >= 40 and "s3cret" not in ok.session
    assert logins.valid(ok.session) and not logins.valid("forged") and not logins.valid(None)
    clock.t += SESSION_TTL_S
    assert not logins.valid(ok.session)
    again = logins.login("10.0.0.1", "s3cret").session
    logins.logout(again)
    assert not logins.valid(again)


def test_wrong_secrets_are_limited_per_address_for_the_window() -> None:
    clock = Clock()
    logins = Logins("s3cret", now=clock)
    for _ in range(MAX_FAILURES):
        assert logins.login("10.0.0.1", "guess").outcome == "wrong"
    limited = logins.login("10.0.0.1", "s3cret")  # even the right secret waits
    assert limited.outcome == "limited" and 1 <= limited.retry_after_s <= FAILURE_WINDOW_S + 1
    assert logins.login("10.0.0.2", "s3cret").outcome == "ok"  # other addresses are not
    clock.t += FAILURE_WINDOW_S
    assert logins.login("10.0.0.1", "s3cret").outcome == "ok"


class NoSessions:
    async def list_sessions(self) -> list[object]:
        return []


async def test_registered_metrics_render_and_a_failing_reader_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = StatsSource(NoSessions())  # type: ignore[arg-type]
    source.add_metric(
        "vidhub_door_refused_total",
        'refused "at" the door',
        lambda: {"tcp": 3, 'a"b\\c': 1},
        label="reason",
    )
    source.add_metric("vidhub_broken_total", "raises", lambda: 1 / 0)
    with caplog.at_level(logging.ERROR):
        text = StatsSource.render_prometheus(await source.collect())
    assert "metric vidhub_broken_total failed" in caplog.text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "vidhub_broken" not in families
    door = {s.labels["reason"]: s.value for s in families["vidhub_door_refused"].samples}
    assert door == {"tcp": 3.0, 'a"b\\c': 1.0}
    assert families["vidhub_sessions"].samples[0].value == 0
