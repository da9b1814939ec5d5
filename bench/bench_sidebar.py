"""The sidebar with many chats stored: page ready, list visible, search answered, in Chromium.

For each size (default 10, 1,000 and 10,000 chats) a data folder is filled once
(kept under ``--cache``, reused by later runs), then for each app, this
checkout's and the old one (``--old``: a copy of the code before the sidebar
change, e.g. ``git archive <commit> | tar -x -C /tmp/old``), a fresh ``python
app.py`` serves it (the old app reads the same conversation files and ignores
the new store's catalog) and a real Chromium (Playwright,
/usr/bin/chromium) times, from ``page.goto``:

- ``ready``: the message box is visible and the list shows its first chat;
- ``search``: typing a word found in one old chat's messages only, until the
  list shows that one chat (from the end of the typing);
- ``open``: clicking the second chat in the list until its first question shows.

Also ``start``: process spawned to ``GET /`` answering (the store opening).
A step that does not finish within ``--limit`` seconds is printed as "> limit".
Every figure of the old app is measured in the same run, beside the new one.
The chat model is ``bench/synthetic.py`` (no answer is asked for).

    python bench/bench_sidebar.py --old /tmp/old          # 10, 1000, 10000
    python bench/bench_sidebar.py --old /tmp/old --sizes 10 1000 10000 100000

Nothing passes or fails; the machine may be shared (say so with the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatui.filestore import FileStore  # noqa: E402
from chatui.tree import add_message, make_message, new_conversation  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
NEEDLE = "quetzalcoatl"
DAY = 86400.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fill(folder: Path, size: int) -> None:
    """``size`` chats of two turns, spread over 90 days; the oldest third's middle one
    alone mentions ``NEEDLE``."""
    if (folder / "done").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    needle_at = size - 1 - size // 3
    now = time.time()
    real_fsync = os.fsync
    os.fsync = lambda fd: None  # filling only; the app below syncs as usual
    try:
        with FileStore(folder) as store:
            for number in range(size):
                chat = new_conversation(f"Chat {number}: a question of some length")
                word = NEEDLE if number == needle_at else "ordinary"
                chat = add_message(chat, make_message(
                    "user", f"Question {number}, an {word} one.", None))
                chat = add_message(chat, make_message(
                    "assistant", "An answer of a plausible length. " * 8, chat.current_leaf_id))
                when = now - (number / max(size, 1)) * 90 * DAY
                store.save(replace(chat, created_at=when, updated_at=when))
    finally:
        os.fsync = real_fsync
    (folder / "done").touch()


@contextlib.contextmanager
def serving(app: Path, data: Path, api_base: str, limit: float) -> Iterator[tuple[str, float]]:
    """``app`` serving ``data``; yields its URL and the seconds until ``GET /`` answered."""
    import httpx

    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(app), "--port", str(port), "--data-dir", str(data),
         "--api-base", api_base], cwd=app.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{app} exited with {process.returncode}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > limit:
                raise SystemExit(f"{app} did not answer within {limit} s")
            time.sleep(0.05)
        yield url, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(browser: object, url: str, old: bool, limit: float) -> dict[str, float | None]:
    """Seconds for each step (None: not within ``limit``)."""
    from playwright.sync_api import TimeoutError as Late

    rows = "#chatui-conversations label" if old else "#chatui-conversations li.chatui-chat"
    titles = rows if old else "#chatui-conversations .chatui-chat-title"
    timings: dict[str, float | None] = {"ready": None, "search": None, "open": None}
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    wait_ms = limit * 1000
    try:
        start = time.perf_counter()
        page.goto(url, timeout=wait_ms)
        page.locator("#chatui-message textarea").wait_for(state="visible", timeout=wait_ms)
        page.locator(rows).first.wait_for(state="visible", timeout=wait_ms)
        timings["ready"] = time.perf_counter() - start

        second = page.locator(titles).nth(1)
        wanted = second.inner_text().strip()
        start = time.perf_counter()
        second.click()
        page.locator('#chatui-chat [data-testid="user"]', has_text=wanted.split(":")[0]
                     .replace("Chat", "Question")).first.wait_for(timeout=wait_ms)
        timings["open"] = time.perf_counter() - start

        search = page.locator("#chatui-search textarea, #chatui-search input").first
        search.click()
        page.keyboard.type(NEEDLE)
        start = time.perf_counter()
        page.wait_for_function(
            "([selector, n]) => document.querySelectorAll(selector).length === n",
            arg=[rows, 1], timeout=wait_ms)
        timings["search"] = time.perf_counter() - start
    except Late:
        print(f"  (gave up: {page.locator(rows).count()} chats listed)", file=sys.stderr)
    finally:
        page.close()
    return timings


def shown(value: float | None, limit: float) -> str:
    return f"> {limit:.0f} s" if value is None else f"{value:7.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--old", type=Path, help="a copy of the old code (has app.py)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir())
                        / "chatui-bench-sidebar")
    parser.add_argument("--limit", type=float, default=120.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    synthetic_port = free_port()
    model = subprocess.Popen([sys.executable, "-c",
                              "import sys; sys.path.insert(0, sys.argv[1]);"
                              "from bench.synthetic import serve_synthetic;"
                              f"serve_synthetic({synthetic_port}, 1000.0)", str(ROOT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api_base = f"http://127.0.0.1:{synthetic_port}/v1"
    apps = [("new", ROOT / "app.py")] + ([("old", args.old / "app.py")] if args.old else [])
    print(f"{'chats':>7} {'app':>4} {'start':>9} {'ready':>9} {'open':>9} {'search':>9}")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for size in args.sizes:
                filled = args.cache / f"chats-{size}"
                fill(filled, size)
                for name, app in apps:
                    # Served in place (neither app writes when it only lists, opens and
                    # searches): a copy would give every file a new inode, which the new
                    # store's catalog takes for a changed file and re-reads at start.
                    with serving(app, filled, api_base, args.limit) as (url, start):
                        timings = measure(browser, url, name == "old", args.limit)
                    print(f"{size:>7} {name:>4} {shown(start, args.limit)} "
                          f"{shown(timings['ready'], args.limit)} "
                          f"{shown(timings['open'], args.limit)} "
                          f"{shown(timings['search'], args.limit)}", flush=True)
            browser.close()
    finally:
        model.terminate()
        model.wait()


if __name__ == "__main__":
    main()
