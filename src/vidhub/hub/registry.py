"""The subscription registry: who subscribed to what, indexed so publishing stays cheap.

Each registration is keyed by (session, subscriber id) (eventhub.md §5.1: ids are scoped per
connection). Registrations whose expression pins the topic to exact values (``topic=a``,
``topic=a and ...``, ``topic=a or topic=b``) live in one bucket per topic; all others (wildcards,
``not``, no topic condition) live in a fallback bucket that every publish scans. Inside a
bucket a second index by subscriber-metadata ``id`` serves targeted events (``id=<hub id>``,
the form every reply takes), so a reply costs O(1) however many hubs are connected.

A publish therefore scans only the registrations that could possibly match it: those for its
exact topic plus the fallback ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidhub.protocol.expression import Expression

if TYPE_CHECKING:
    from vidhub.hub.session import HubSession

__all__ = ["Registration", "Registry"]

_Key = tuple[int, str]


@dataclass(slots=True, eq=False)
class Registration:
    """One subscriber of one session: its metadata and compiled subscription."""

    session: HubSession
    subscriber_id: str
    metadata: dict[str, Any]
    expression: Expression

    @property
    def key(self) -> _Key:
        return (self.session.serial, self.subscriber_id)


class _Bucket:
    __slots__ = ("all", "by_id")

    def __init__(self) -> None:
        self.all: dict[_Key, Registration] = {}
        self.by_id: dict[str, dict[_Key, Registration]] = {}

    def add(self, reg: Registration) -> None:
        self.all[reg.key] = reg
        self.by_id.setdefault(reg.subscriber_id, {})[reg.key] = reg

    def remove(self, reg: Registration) -> None:
        self.all.pop(reg.key, None)
        same = self.by_id.get(reg.subscriber_id)
        if same is not None:
            same.pop(reg.key, None)
            if not same:
                del self.by_id[reg.subscriber_id]

    def candidates(self, ids: frozenset[str] | None) -> Iterable[Registration]:
        if ids is None:
            return self.all.values()
        if len(ids) == 1:
            (only,) = ids
            return self.by_id.get(only, {}).values()
        return [reg for i in ids for reg in self.by_id.get(i, {}).values()]


class Registry:
    """All registrations of all sessions, indexed by exact topic and subscriber id."""

    def __init__(self) -> None:
        self._by_topic: dict[str, _Bucket] = {}
        self._fallback = _Bucket()
        self._count = 0
        #: Called (synchronously) whenever :meth:`interest` changes: a topic gains its first
        #: registration or loses its last, or the fallback bucket becomes (non-)empty.
        self.on_interest_change: Callable[[], None] | None = None

    def __len__(self) -> int:
        return self._count

    def interest(self) -> tuple[frozenset[str], bool]:
        """What events any registration may want: ``(exact topics, any other topic?)``.

        The second item is true when some registration does not pin its topic (wildcards,
        ``not``, no topic condition): then any event may match.
        """
        return frozenset(self._by_topic), bool(self._fallback.all)

    def _changed(self) -> None:
        if self.on_interest_change is not None:
            self.on_interest_change()

    def add(self, reg: Registration) -> None:
        """Index ``reg`` (the caller has removed any previous one with the same key)."""
        topics = reg.expression.topics
        changed = False
        if topics is None:
            changed = not self._fallback.all
            self._fallback.add(reg)
        else:
            for topic in topics:
                bucket = self._by_topic.get(topic)
                if bucket is None:
                    bucket = self._by_topic[topic] = _Bucket()
                    changed = True
                bucket.add(reg)
        self._count += 1
        if changed:
            self._changed()

    def remove(self, reg: Registration) -> None:
        """Drop ``reg`` from every index it is in."""
        topics = reg.expression.topics
        changed = False
        if topics is None:
            self._fallback.remove(reg)
            changed = not self._fallback.all
        else:
            for topic in topics:
                bucket = self._by_topic.get(topic)
                if bucket is not None:
                    bucket.remove(reg)
                    if not bucket.all:
                        del self._by_topic[topic]
                        changed = True
        self._count -= 1
        if changed:
            self._changed()

    def candidates(self, topic: Any, target_ids: frozenset[str] | None) -> Iterator[Registration]:
        """Registrations that may match an event with ``topic`` and a target needing an id.

        A registration pinned to several topics can appear once per bucket only, so each is
        yielded at most once.
        """
        if isinstance(topic, str):
            bucket = self._by_topic.get(topic)
            if bucket is not None:
                yield from bucket.candidates(target_ids)
        yield from self._fallback.candidates(target_ids)
