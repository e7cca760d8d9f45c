"""The compositor's pure parts: the BEST_FIT grid and the audio mix."""

from __future__ import annotations

from array import array

from vidhub.recording.composer import best_fit, mix_s16


def test_best_fit_grids() -> None:
    assert best_fit(0, 1280, 720) == []
    assert best_fit(1, 1280, 720) == [(0, 0, 1280, 720)]
    assert best_fit(2, 1280, 720) == [(0, 0, 640, 720), (640, 0, 640, 720)]
    four = best_fit(4, 1280, 720)
    assert four == [(0, 0, 640, 360), (640, 0, 640, 360), (0, 360, 640, 360), (640, 360, 640, 360)]
    three = best_fit(3, 1280, 720)  # the short last row is centred
    assert three[2] == (320, 360, 640, 360)
    for n in range(1, 17):
        tiles = best_fit(n, 1280, 720)
        assert len(tiles) == n
        assert all(x % 2 == y % 2 == w % 2 == h % 2 == 0 for x, y, w, h in tiles)
        assert all(x + w <= 1280 and y + h <= 720 for x, y, w, h in tiles)


def test_mix_sums_and_clips() -> None:
    a = array("h", [1000, -1000, 30000, -30000]).tobytes()
    b = array("h", [24, 1000, 10000, -10000]).tobytes()
    assert array("h", mix_s16(a, b)).tolist() == [1024, 0, 32767, -32768]
