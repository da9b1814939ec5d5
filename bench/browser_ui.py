"""``bench_ui.py --browser``: the stream as a person sees it, in a real Chromium.

For an app already running at ``url`` over the synthetic server (2,000 tokens
"t0 … t1999" at ``rate`` tokens/s), in a fresh chat and in the stored
``--history``-message chat, idle and with two CPU hogs (``python -c 'while 1:
pass'`` x 2, killed at the end):

- first token: from the click on Send to "t0" in the page's DOM;
- last token: from the click to "t1999" in the DOM, beside the stream's own
  duration (2,000 / rate); target <= 1.2 x duration + 100 ms;
- Stop: from the click on Stop (0.3 s into the answer) to the chat's last DOM
  change; target <= 300 ms.

Times are taken in the page (``performance.now()`` in a MutationObserver), so
Playwright's own round trips do not count. ``--app-root`` runs another copy of
the code (e.g. the previous commit exported to /tmp with ``git archive``) for
the baseline figures of the same run: ``bench_ui.py`` waits until both apps
are idle (the embedding model loads after start) and alternates them run by
run, so that other work on a shared machine weighs on both alike.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKENS = 2000  # the synthetic server's answer (no max_tokens is sent): 2 s at 1,000 tokens/s
QUIET_MS = 1500  # no DOM change for this long after Stop: it is over

OBSERVER = """() => {
  const state = {first: null, last: null, change: null};
  window.__bench = state;
  const chat = document.querySelector('#chatui-chat');
  new MutationObserver(() => {
    const now = performance.now();
    state.change = now;
    if (state.clicked === undefined) return;  // what the page showed before the click
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    const text = bots.length > state.base ? bots[bots.length - 1].textContent : '';
    if (state.first === null && /\\bt0\\b/.test(text)) state.first = now;
    if (state.last === null && /\\bt1999\\b/.test(text)) state.last = now;
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""  # t1999: the last of TOKENS

CLICK = """(selector) => {
  const bots = document.querySelectorAll('#chatui-chat [data-testid="bot"]').length;
  if (window.__bench.base === undefined) window.__bench.base = bots;
  window.__bench.clicked = performance.now();
  document.querySelector(selector).click();
  return window.__bench.clicked;
}"""


@dataclass(frozen=True, slots=True)
class Seen:
    first_ms: float  # click -> first token in the DOM
    last_ms: float | None  # click -> last token in the DOM (None: stopped)
    stop_ms: float | None = None  # Stop click -> last DOM change of the chat


@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _open(browser: Any, url: str, history: bool) -> Any:
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url)
    box = page.locator("#chatui-message textarea")
    box.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(500)  # the page's load events settle (not measured)
    if history:
        page.locator("#chatui-conversations").get_by_text("Long history").first.click()
        page.locator('#chatui-chat [data-testid="bot"]').first.wait_for(timeout=60_000)
    else:
        page.locator("#chatui-new-chat").click()
        page.locator('#chatui-chat [data-testid="bot"]').first.wait_for(state="detached",
                                                                        timeout=60_000)
    page.wait_for_timeout(500)
    box.click()
    page.keyboard.type("Count for me")
    page.evaluate(OBSERVER)
    return page


def one_answer(browser: Any, url: str, history: bool, stop_after_ms: float | None) -> Seen:
    page = _open(browser, url, history)
    try:
        clicked = page.evaluate(CLICK, "#chatui-send")
        page.wait_for_function("() => window.__bench.first !== null", timeout=120_000)
        if stop_after_ms is None:
            page.wait_for_function("() => window.__bench.last !== null", timeout=120_000)
            state = page.evaluate("() => window.__bench")
            return Seen(state["first"] - clicked, state["last"] - clicked)
        page.wait_for_timeout(stop_after_ms)
        page.locator("#chatui-stop").wait_for(state="visible", timeout=60_000)
        stopped = page.evaluate(CLICK, "#chatui-stop")
        page.wait_for_function(
            f"() => performance.now() - Math.max(window.__bench.change, window.__bench.clicked)"
            f" > {QUIET_MS}", timeout=120_000, polling=100)
        state = page.evaluate("() => window.__bench")
        return Seen(state["first"] - clicked, None, max(0.0, state["change"] - stopped))
    finally:
        page.close()


def _tried(browser: Any, url: str, history: bool, stop_after_ms: float | None) -> Seen | None:
    """One run; None (counted as "timed out" in the report) when the page did not get there."""
    from playwright.sync_api import Error

    try:
        return one_answer(browser, url, history, stop_after_ms)
    except Error as error:
        print(f"  (a run gave up: {str(error).splitlines()[0]})", file=sys.stderr)
        return None


def measure(url: str, rate: float, runs: int, hogs: int) -> dict[str, list[Seen | None]]:
    """Every figure of the module docstring, ``runs`` times each."""
    from playwright.sync_api import sync_playwright

    results: dict[str, list[Seen | None]] = {}
    with sync_playwright() as playwright, cpu_hogs(hogs):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            _tried(browser, url, False, None)  # warm up
            for history in (False, True):
                key = "200 msgs" if history else "fresh"
                results[key] = [_tried(browser, url, history, None) for _ in range(runs)]
            results["stop"] = [_tried(browser, url, False, 300.0) for _ in range(runs)]
        finally:
            browser.close()
    return results


def report(label: str, results: dict[str, list[Seen | None]], rate: float,
           baseline: dict[str, list[Seen | None]] | None = None) -> None:
    duration = TOKENS / rate * 1000
    print(f"\n{label}: click to visible in Chromium (median of {len(results['stop'])}; "
          f"stream {duration:.0f} ms, target last <= {1.2 * duration + 100:.0f} ms, "
          f"Stop <= 300 ms)")

    def med(seen: list[Seen | None], field: str) -> float:
        """The median over the runs; a run that gave up counts as infinitely slow."""
        values = [float("inf") if s is None else getattr(s, field) for s in seen]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")

    def worst(seen: list[Seen | None]) -> str:
        lasts = [float("inf") if s is None else s.last_ms or 0.0 for s in seen]
        return f"{max(lasts):.0f}" if lasts else "-"

    for key in ("fresh", "200 msgs"):
        line = (f"  {key:9s} first token {med(results[key], 'first_ms'):7.0f} ms   "
                f"last token {med(results[key], 'last_ms'):7.0f} ms (worst {worst(results[key])})")
        if baseline is not None:
            line += (f"   (before: {med(baseline[key], 'first_ms'):7.0f} / "
                     f"{med(baseline[key], 'last_ms'):7.0f} ms, worst {worst(baseline[key])})")
        print(line)
    line = f"  Stop      click to last DOM change {med(results['stop'], 'stop_ms'):7.0f} ms"
    if baseline is not None:
        line += f"   (before: {med(baseline['stop'], 'stop_ms'):7.0f} ms)"
    print(line)
