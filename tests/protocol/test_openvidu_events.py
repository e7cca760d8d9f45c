"""Lifecycle events render to OpenVidu's webhook JSON in one place, in OpenVidu's field order."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.events import sample_event
from vidhub.core import events as ev
from vidhub.protocol.openvidu_events import EVENT_NAMES, HUB_TOPICS, WIRE_FIELDS, hub_topic

TYPED = {
    cls.name: cls
    for cls in vars(ev).values()
    if isinstance(cls, type)
    and issubclass(cls, ev.LifecycleEvent)
    and not cls.__name__.startswith("_")
    and cls is not ev.LifecycleEvent
}


def test_every_name_has_one_typed_event_a_field_table_and_a_topic() -> None:
    assert set(TYPED) == set(EVENT_NAMES) == set(WIRE_FIELDS) == set(HUB_TOPICS)
    assert len(set(HUB_TOPICS.values())) == len(EVENT_NAMES)
    assert hub_topic("somethingNew") == "vidhub.event.somethingNew"


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_each_table_names_only_attributes_of_its_event(name: str) -> None:
    attrs = {f.name for f in dataclasses.fields(TYPED[name])}
    for f in WIRE_FIELDS[name]:
        assert f.attr in attrs, f
        assert f.when in (None, "set") or f.when in attrs, f


def test_participant_left_in_openvidu_order() -> None:
    body = sample_event("participantLeft").to_webhook_json()
    assert list(body) == [
        "sessionId",
        "uniqueSessionId",
        "timestamp",
        "participantId",
        "connectionId",
        "location",
        "ip",
        "platform",
        "clientData",
        "serverData",
        "startTime",
        "duration",
        "reason",
        "event",
    ]


def test_webrtc_fields_follow_the_media() -> None:
    outbound = sample_event("webrtcConnectionCreated")
    assert list(outbound.to_webhook_json()) == [
        "sessionId",
        "uniqueSessionId",
        "timestamp",
        "streamId",
        "participantId",
        "connectionId",
        "connection",
        "videoSource",
        "videoFramerate",
        "videoDimensions",
        "audioEnabled",
        "videoEnabled",
        "event",
    ]
    audio_only = dataclasses.replace(
        outbound, connection="INBOUND", receiving_from="con_B", video_enabled=False
    )
    body = audio_only.to_webhook_json()
    assert body["receivingFrom"] == "con_B" and body["connection"] == "INBOUND"
    assert "videoSource" not in body and body["videoEnabled"] is False


def test_signal_sent_keeps_a_null_sender_and_renders_recipients_as_a_list() -> None:
    body = sample_event("signalSent").to_webhook_json()
    assert body["from"] is None and body["to"] == ["con_A"]
    assert list(body)[-5:] == ["from", "to", "type", "data", "event"]


def test_recording_status_layout_fields_only_for_composed_video() -> None:
    rec = sample_event("recordingStatusChanged")
    body = rec.to_webhook_json()
    assert body["name"] == "abc" and body["outputMode"] == "INDIVIDUAL"
    assert "resolution" not in body and "reason" not in body
    composed = dataclasses.replace(
        rec,
        output_mode="COMPOSED",
        composed_video=True,
        resolution="1280x720",
        frame_rate=25,
        recording_layout="BEST_FIT",
        reason="recordingStoppedByServer",
        status="stopped",
    )
    assert list(composed.to_webhook_json()) == [
        "sessionId",
        "uniqueSessionId",
        "timestamp",
        "startTime",
        "reason",
        "id",
        "name",
        "outputMode",
        "resolution",
        "frameRate",
        "recordingLayout",
        "hasAudio",
        "hasVideo",
        "size",
        "duration",
        "status",
        "event",
    ]


def test_fields_is_the_body_without_the_event_name() -> None:
    e = sample_event("sessionDestroyed")
    assert e.fields == {k: v for k, v in e.to_webhook_json().items() if k != "event"}
