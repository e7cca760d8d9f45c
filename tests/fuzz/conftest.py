"""Hypothesis profiles for the fuzz suite.

``ci`` (the default, what ``make test`` runs): a few seconds per parser, so the whole fuzz
suite stays well under a minute of CPU. ``long`` (``make fuzz``, ``VIDHUB_FUZZ=long``): a
hundred times the examples, for a run of many minutes. Both print the seed of a failure
(``--hypothesis-seed`` replays it); a failing input worth keeping goes into ``corpus/``,
which :mod:`tests.fuzz.test_corpus` replays on every run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("VIDHUB_FUZZ") == "long"

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("long" if LONG else "ci")


def examples(ci: int) -> int:
    """Examples for a test whose single example is expensive (a live server round)."""
    return ci * 100 if LONG else ci
