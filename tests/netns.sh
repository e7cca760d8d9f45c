#!/bin/sh
# Run a command in a private network namespace with only loopback up, so nothing a test
# starts (vidhub, Chromium, aiortc) can reach any other network.
#   tests/netns.sh .venv/bin/python -m pytest tests/browser
set -eu
exec unshare --map-root-user --net sh -c 'ip link set lo up && exec "$@"' netns "$@"
