"""INDIVIDUAL recording at the router: a real aiortc publisher, the file opened with PyAV.

Runs on both engines (``conftest.py``): a media worker writes the file itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import av
import pytest
from tests.sfu.bots import PublisherBot, wait_for
from tests.sfu.engines import AnyRouter, MakeRouter

from vidhub.errors import Conflict, NotFound

CONNECT_S = 10.0


async def _published(router: AnyRouter, producer_id: str = "pub", **kw: bool) -> PublisherBot:
    pub = PublisherBot(router, producer_id, **kw)
    await pub.start()
    await wait_for(pub.connected, CONNECT_S)
    return pub


def _files(path: str) -> tuple[bool, bool, int]:
    """(final file exists, .part exists, final size)."""
    final, part = Path(path), Path(path + ".part")
    return final.exists(), part.exists(), final.stat().st_size if final.exists() else -1


def _probe(path: str) -> dict[str, object]:
    with av.open(path) as c:
        out: dict[str, object] = {"duration": (c.duration or 0) / 1e6}
        for s in c.streams:
            out[s.type] = s.codec_context.name
            if s.type == "video":
                out["size"] = (s.codec_context.width, s.codec_context.height)
        counts = {"video": 0, "audio": 0}
        for pkt in c.demux():
            if pkt.size:
                counts[pkt.stream.type] += 1
        out["counts"] = counts
        decoded = 0
        c.seek(0)
        for _ in c.decode(video=0):
            decoded += 1
        out["decoded"] = decoded
    return out


async def test_records_vp8_and_opus_into_webm_without_transcoding(
    router: AnyRouter, tmp_path: Path
) -> None:
    pub = await _published(router)
    path = await router.start_recording("rec1", "pub", str(tmp_path / "pub"))
    assert path == str(tmp_path / "pub.webm")
    # record about two seconds of media, measured on the media itself
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(2.0)  # the recording's length is the point of the test, not a sync
    rec = await router.stop_recording("rec1")
    elapsed = loop.time() - t0
    await pub.close()
    assert rec is not None and rec.file.error is None
    info = _probe(path)
    assert info["video"] == "vp8" and info["audio"] == "opus"
    assert info["size"] == (640, 480)
    assert abs(float(info["duration"]) - elapsed) <= 0.15 * elapsed, (info, elapsed)
    counts = info["counts"]
    assert isinstance(counts, dict)
    # aiortc's encoder in this process drops below 30 fps when the machine is busy; the
    # file must hold every frame the recorder wrote and at least half the nominal rate
    assert counts["video"] == rec.file.video_frames >= 0.5 * 30 * elapsed
    assert counts["audio"] == rec.file.audio_frames >= 0.8 * 50 * elapsed
    assert info["decoded"] == counts["video"]
    assert _files(path) == (True, False, rec.file.size)
    assert await router.stop_recording("rec1") is None


async def test_producer_close_finishes_the_file(router: AnyRouter, tmp_path: Path) -> None:
    pub = await _published(router, audio=False)
    path = await router.start_recording("r", "pub", str(tmp_path / "v"))
    with pytest.raises(Conflict):
        await router.start_recording("r", "pub", str(tmp_path / "w"))
    with pytest.raises(NotFound):
        await router.start_recording("x", "nope", str(tmp_path / "w"))
    await asyncio.sleep(1.0)
    await router.close_producer("pub")
    rec = await router.stop_recording("r")
    await pub.close()
    assert rec is not None and rec.file.has_video and not rec.file.has_audio
    assert _files(path)[:2] == (True, False)


async def test_unwritable_path_fails_without_raising(router: AnyRouter, tmp_path: Path) -> None:
    pub = await _published(router)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    await router.start_recording("r", "pub", str(blocker / "sub" / "x"))
    rec = await router.stop_recording("r")
    await pub.close()
    assert rec is not None and rec.file.error is not None


async def test_h264_goes_into_mp4(make_router: MakeRouter, tmp_path: Path) -> None:
    router = make_router(forced_video_codec="H264")
    try:
        pub = await _published(router, audio=True)
        path = await router.start_recording("r", "pub", str(tmp_path / "h"))
        assert path.endswith(".mp4")
        await asyncio.sleep(1.5)
        rec = await router.stop_recording("r")
        await pub.close()
    finally:
        await router.close()
    assert rec is not None and rec.file.error is None, rec
    info = _probe(path)
    assert info["video"] == "h264" and info["audio"] == "opus"
    assert info["size"] == (640, 480)
    assert info["decoded"] == rec.file.video_frames > 20


async def test_feed_sends_whole_frames_to_a_composer_socket(
    router: AnyRouter, tmp_path: Path
) -> None:
    """COMPOSED's feed: whole frames over SOCK_SEQPACKET, starting on a keyframe; a composer
    that stops reading does not hold the router up."""
    import json
    import socket
    import tempfile

    from vidhub.sfu.feed import HEADER, KIND_HELLO, KIND_VIDEO

    pub = await _published(router)
    sock_dir = tempfile.mkdtemp(prefix="vidhub-feed-test-")
    path = f"{sock_dir}/s"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(1)
    loop = asyncio.get_running_loop()
    try:
        await router.start_feed("f", "pub", path, audio=False)
        conn, _ = await asyncio.wait_for(loop.run_in_executor(None, listener.accept), 10)
        conn.settimeout(10)
        first = await loop.run_in_executor(None, conn.recv, 1 << 20)
        assert first[0] == KIND_HELLO
        assert json.loads(first[HEADER.size :]) == {"stream": "pub", "video": "VP8", "audio": False}
        kind, flags, _pts = HEADER.unpack_from(await loop.run_in_executor(None, conn.recv, 1 << 22))
        assert (kind, flags & 1) == (KIND_VIDEO, 1)  # starts on a keyframe
        # not reading any more: sends never wait for it
        await asyncio.sleep(1.5)
        rec = await router.stop_recording("f")
        assert rec is not None and rec.file.error is None and rec.file.video_frames > 10
        conn.close()
    finally:
        listener.close()
        await pub.close()


async def test_lost_packets_are_repaired_by_nacks_before_they_reach_the_file(
    tmp_path: Path,
) -> None:
    """Every 10th video packet from the publisher is dropped on arrival (injected loss: the
    loopback never loses). The publisher leg NACKs, the RTX answers are unwrapped and reach
    the recorder, which waits for them: the file has every frame, in order."""
    from vidhub.sfu.router import Router

    router = Router(host_addresses=["127.0.0.1"])
    try:
        pub = await _published(router, audio=False)  # type: ignore[arg-type]
        producer = router._publishers["pub"].producers["video"]
        receiver: Any = producer.receiver
        hooked = receiver._handle_rtp_packet
        seen = 0

        def lossy(packet: Any, arrival_time_ms: int) -> Any:
            nonlocal seen
            if packet.payload_type == producer._pt:
                seen += 1
                if seen % 10 == 0:
                    return asyncio.sleep(0)  # lost on the way
            return hooked(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = lossy
        path = await router.start_recording("r", "pub", str(tmp_path / "lossy"))
        tap = router._recorders["r"]._taps[0]
        await asyncio.sleep(2.0)  # the recording's length
        rec = await router.stop_recording("r")
        await pub.close()
    finally:
        await router.close()
    assert rec is not None and rec.file.error is None
    assert seen >= 40 and producer.rtx_recovered >= seen // 10 // 2
    assert tap.assembler.gaps == 0, "a lost packet was not repaired in time"
    info = _probe(path)
    assert info["decoded"] == rec.file.video_frames > 30
