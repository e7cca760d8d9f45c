"""Accessibility smoke checks and phone width (390x844) for the call page and the dashboard.

Every control has a name a screen reader can announce, Tab reaches every control in order,
a join works from the keyboard alone, no page logs an error, and nothing is wider than a
phone's screen.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.proc import MS, ServerProcess
from tests.web.pages import Pages
from tests.web.test_call_page import wait_playing

WAIT_S = 20_000 * MS

#: JS: visible controls without an accessible name (label, aria-label(ledby), or own text).
UNNAMED = """[...document.querySelectorAll(
    'button, input, select, textarea, a[href], canvas[role=img]')]
  .filter((e) => e.offsetParent !== null && e.type !== 'hidden')
  .filter((e) => {
    const named = (e.labels && e.labels.length) || e.getAttribute('aria-label')
      || e.getAttribute('aria-labelledby') || e.textContent.trim() || e.title;
    return !named;
  }).map((e) => e.outerHTML.slice(0, 80))"""

#: JS: visible, enabled controls (what Tab should reach), as stable descriptions.
CONTROLS = """[...document.querySelectorAll('button, input, select, textarea, a[href], summary')]
  .filter((e) => e.offsetParent !== null && !e.disabled && e.tabIndex >= 0)
  .filter((e) => e.tagName === 'SUMMARY' || !e.closest('details:not([open])'))
  .map((e) => e.id || e.getAttribute('aria-label') || e.textContent.trim())"""

FOCUSED = (
    "(() => { const e = document.activeElement;"
    " return e ? (e.id || e.getAttribute('aria-label') || e.textContent.trim()) : null; })()"
)

#: JS: how far the page sticks out to the right of the viewport (0 = fits).
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


async def tab_through(pages: Pages, page: str, count: int) -> list[str]:
    seen = []
    for _ in range(count):
        await pages.press(page, "Tab")
        seen.append(await pages.eval(page, FOCUSED))
    return seen


async def test_call_page_keyboard_labels_and_phone_width(
    vidhub: ServerProcess, pages: Pages, shots: Path
) -> None:
    await pages.open("phone", f"{vidhub.url}/", width=390, height=844)
    assert await pages.eval("phone", UNNAMED) == []
    # the room field has focus on load; type, Tab, type, Enter: joined, keyboard only
    assert await pages.eval("phone", FOCUSED) == "room"
    await pages.press("phone", "r")
    await pages.press("phone", "9")
    await pages.press("phone", "Tab")
    assert await pages.eval("phone", FOCUSED) == "name"
    for key in "Pat":
        await pages.press("phone", key)
    await pages.press("phone", "Enter")
    await pages.wait("phone", "!document.querySelector('#call').hidden", WAIT_S, "the call")
    await pages.open("desk", f"{vidhub.url}/?room=r9&name=Dee")
    await asyncio.gather(wait_playing(pages, "phone", "Dee"), wait_playing(pages, "desk", "Pat"))
    await pages.wait("phone", "!document.querySelector('#mic').disabled", WAIT_S, "controls")

    assert await pages.eval("phone", UNNAMED) == []
    controls = await pages.eval("phone", CONTROLS)
    reached = await tab_through(pages, "phone", len(controls) + 1)
    assert set(controls) <= set(reached), (controls, reached)
    # toggles are buttons with a pressed state, and Space works on them
    await pages.eval("phone", "document.querySelector('#cam').focus() || true")
    await pages.press("phone", "Space")
    assert await pages.eval("phone", "document.querySelector('#cam').getAttribute('aria-pressed')")

    # phone width: nothing sticks out, tiles stack, the controls stay on screen and tappable
    assert await pages.eval("phone", OVERFLOW) <= 0
    boxes = await pages.eval(
        "phone",
        "[...document.querySelectorAll('.tile')].map((t) => t.getBoundingClientRect().width)",
    )
    assert len(boxes) == 2 and all(w <= 390 for w in boxes)
    sizes = await pages.eval(
        "phone",
        "[...document.querySelectorAll('.toolbar button')].map((b) => {"
        " const r = b.getBoundingClientRect(); return [r.bottom, r.height, r.right]; })",
    )
    assert all(bottom <= 844 and height >= 40 and right <= 390 for bottom, height, right in sizes)
    await pages.screenshot("phone", shots / "call-phone.png")
    assert await pages.errors("phone") == []
    assert await pages.errors("desk") == []


async def test_dashboard_keyboard_labels_and_phone_width(
    vidhub: ServerProcess, pages: Pages, shots: Path
) -> None:
    await pages.open("op", f"{vidhub.url}/dashboard", width=390, height=844)
    assert await pages.eval("op", UNNAMED) == []
    assert await pages.eval("op", FOCUSED) == "secret"  # the sign-in form is ready to type
    for key in vidhub.secret:
        await pages.press("op", key if key != "_" else "Shift+Minus")
    await pages.press("op", "Enter")
    await pages.wait("op", "document.querySelector('#sessions')", WAIT_S, "the dashboard")
    # a session with people in it, from another page
    await pages.open("call", f"{vidhub.url}/?room=ops&name=Ola")
    await pages.wait("op", "document.querySelector('.session-card tbody tr')", WAIT_S, "a session")
    await pages.wait("op", "+document.querySelector('#plot-cpu').dataset.points >= 2", WAIT_S)

    assert await pages.eval("op", UNNAMED) == []
    controls = await pages.eval("op", CONTROLS)
    reached = await tab_through(pages, "op", len(controls) + 1)
    assert set(controls) <= set(reached), (controls, reached)
    assert await pages.eval("op", OVERFLOW) <= 0
    await pages.screenshot("op", shots / "dashboard-phone.png", full_page=True)
    assert await pages.errors("op") == []
    assert await pages.errors("call") == []
