"""OpenVidu REST API handlers under ``/openvidu/api``."""
