"""An equivalent of the openvidu-basic-python application server (tutorials v2.32.1).

Two Flask endpoints over the OpenVidu REST API, written the way the tutorial writes them
(``requests`` with Basic auth, 409 -> reuse the custom id, the token read from ``["token"]``),
so that a test can run the tutorial unchanged against vidhub. Configuration is passed to
:func:`make_app` instead of being read from the environment.
"""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask, request
from flask_cors import CORS

__all__ = ["make_app"]


def make_app(openvidu_url: str, openvidu_secret: str) -> Flask:
    """The tutorial app; ``openvidu_url`` ends with ``/`` as in the tutorial's ``.env``."""
    app = Flask(__name__)
    CORS(app, resources={r"/*": {"origins": "*"}})

    @app.route("/api/sessions", methods=["POST"])
    def initialize_session() -> Any:
        try:
            body = request.json if request.data else {}
            response = requests.post(
                openvidu_url + "openvidu/api/sessions",
                verify=False,
                auth=("OPENVIDUAPP", openvidu_secret),
                headers={"Content-type": "application/json"},
                json=body,
                timeout=10,
            )
            response.raise_for_status()
            return response.json()["sessionId"]
        except requests.exceptions.HTTPError as err:
            if err.response is not None and err.response.status_code == 409:
                # Session already exists in OpenVidu
                return request.json["customSessionId"] if request.json else ""
            # the tutorial returns the exception object itself, which Flask turns into a 500
            return str(err), 500

    @app.route("/api/sessions/<session_id>/connections", methods=["POST"])
    def create_connection(session_id: str) -> Any:
        body = request.json if request.data else {}
        return requests.post(
            openvidu_url + "openvidu/api/sessions/" + session_id + "/connection",
            verify=False,
            auth=("OPENVIDUAPP", openvidu_secret),
            headers={"Content-type": "application/json"},
            json=body,
            timeout=10,
        ).json()["token"]

    return app
