"""socket.io 0.9 packet codec and sans-I/O protocol (eventhub.md §2)."""

from __future__ import annotations

import pytest

from vidhub.protocol.socketio09 import (
    Ack,
    Code,
    Connected,
    Disconnected,
    ErrorReceived,
    EventReceived,
    Heartbeat,
    Packet,
    PacketError,
    SocketIoProtocol,
    decode,
    decode_ack_data,
    encode,
    encode_ack,
    encode_event,
    handshake_body,
    parse_handshake_body,
)


@pytest.mark.parametrize(
    ("text", "packet"),
    [
        ("0::", Packet(Code.DISCONNECT)),
        ("1::", Packet(Code.CONNECT)),
        ("2::", Packet(Code.HEARTBEAT)),
        ("2:::", Packet(Code.HEARTBEAT, data="")),
        ("2", Packet(Code.HEARTBEAT)),
        ('5:7+::{"a":1}', Packet(Code.EVENT, 7, True, "", '{"a":1}')),
        ('5:::{"x":"a:b"}', Packet(Code.EVENT, data='{"x":"a:b"}')),
        ('6:::7+[{"success":true}]', Packet(Code.ACK, data='7+[{"success":true}]')),
        ("7::/ep:reason+advice", Packet(Code.ERROR, endpoint="/ep", data="reason+advice")),
    ],
)
def test_decode_and_encode_are_inverse(text: str, packet: Packet) -> None:
    assert decode(text) == packet
    if text != "2":  # the 1-field form re-encodes as the canonical "2::"
        assert encode(packet) == text


@pytest.mark.parametrize("bad", ["", "2:", "9::", "x::", "5:x::{}", "5:+::{}", "10::", "\uff15::"])
def test_bad_packets_raise_packet_error(bad: str) -> None:
    with pytest.raises(PacketError):
        decode(bad)


def test_ack_shape_is_exactly_what_the_python_client_survives() -> None:
    assert encode_ack(7, {"success": True}) == '6:::7+[{"success":true}]'
    nack = encode_ack(3, {"success": False, "message": "no"})
    assert nack == '6:::3+[{"success":false,"message":"no"}]'
    assert decode_ack_data("7+[1]") == (7, [1])
    assert decode_ack_data("7") == (7, [])
    for bad in ("x7", "7+", "7+{}", "", None):
        with pytest.raises(PacketError):
            decode_ack_data(bad)


def test_event_encoding() -> None:
    assert (
        encode_event("ftrack.event", [{"é": 1}]) == '5:::{"name":"ftrack.event","args":[{"é":1}]}'
    )
    assert encode_event("n", [], ack_id=4).startswith("5:4+::")


def test_handshake_body() -> None:
    assert handshake_body("abc", 60, 60) == "abc:60:60:websocket"
    assert parse_handshake_body("abc:15:10:websocket,xhr-polling") == (
        "abc",
        15,
        10,
        ["websocket", "xhr-polling"],
    )
    with pytest.raises(ValueError):
        handshake_body("a:b", 1, 1)
    for bad in ("abc:60:60", "abc:x:60:websocket"):
        with pytest.raises(PacketError):
            parse_handshake_body(bad)


def test_protocol_events_and_heartbeat_replies() -> None:
    client = SocketIoProtocol(client=True)
    assert client.receive_text("1::") == [Connected()]
    assert client.receive_text("2::") == [Heartbeat()]
    assert client.data_to_send() == ["2:::"]
    assert client.receive_text('5:::{"name":"ftrack.event","args":[{}]}') == [
        EventReceived("ftrack.event", [{}], None)
    ]
    assert client.receive_text('6:::1+[{"success":true}]') == [Ack(1, [{"success": True}])]
    assert client.receive_text("7:::oops") == [ErrorReceived("oops")]
    assert client.receive_text("0::") == [Disconnected()]
    assert client.receive_text("8::") == []
    assert client.send_event("ftrack.event", [], want_ack=True) == 1
    assert client.send_event("ftrack.event", [], want_ack=True) == 2
    assert len(client.data_to_send()) == 2
    server = SocketIoProtocol(client=False)
    server.receive_text("2:::")
    assert server.data_to_send() == []
    server.send_connect()
    server.send_heartbeat()
    server.send_ack(5, {"success": True})
    server.send_raw("5:::{}")
    server.send_disconnect()
    assert server.data_to_send() == ["1::", "2::", '6:::5+[{"success":true}]', "5:::{}", "0::"]


@pytest.mark.parametrize(
    "bad",
    ["5:1+::", "5:1+::not json", "5:1+::[1]", '5:1+::{"name":1}', '5:::{"name":"a","args":{}}'],
)
def test_bad_event_data_raises_packet_error(bad: str) -> None:
    with pytest.raises(PacketError):
        SocketIoProtocol(client=False).receive_text(bad)
