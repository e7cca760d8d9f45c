"""The vidhub Python SDK: OpenVidu, EventHub, Websocket, Participant. Speaks only the wire."""
