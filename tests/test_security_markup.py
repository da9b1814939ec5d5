"""Markup from outside loads nothing and forges nothing (issue 9, items 3 to 5).

- Images in answers, reasoning and document passages are not fetched by the browser
  (a prompt-injected document could otherwise send the chat to any server), unless
  their host is in ``--allowed-image-hosts``.
- The model server's error text is shown as text in the toast and the notice.
- Ids from outside are checked (an import with a hostile message id is refused whole),
  and the page's HTML escapes them anyway.

The browser tests serve the real app on a scripted model server and start a tiny
HTTP server that counts every request it gets: the images point at it.
"""

from __future__ import annotations

import html
import json
import re
import warnings
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from markdown_it import MarkdownIt

from chatui import tree
from chatui.config import parse_config
from chatui.embedded import free_port
from chatui.errors import InvalidRequest
from chatui.runtime import Runtime
from chatui.ui import actions
from chatui.ui.render import BAR, render_message, split_bars
from chatui.ui.screen import Screen, View
from chatui.ui.wiring import updates
from tests.apiharness import open_test_runtime, running_api
from tests.conftest import serve_app
from tests.fakebackend import DEFAULT_MODEL, FakeBackend, Script
from tests.polling import wait_until

HOSTILE_ID = 'z"><img src=x onerror=alert(1)>'
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


class ImageServer:
    """A server on 127.0.0.1 that answers every GET with a tiny PNG and counts the paths."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        lock = threading.Lock()
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    try:
        yield server
    finally:
        server.close()


def _rendered_images(markdown: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', MarkdownIt("commonmark").render(markdown))


def _chat_with(answer: tree.Message) -> tuple[tree.Conversation, tree.Message]:
    conversation = tree.new_conversation("t", tree.Settings(), "local")
    question = tree.make_message("user", "hi", None)
    conversation = tree.add_message(conversation, question)
    answer = replace(answer, parent_id=question.id)
    return tree.add_message(conversation, answer), answer


# ----- the page's HTML: ids, footers, titles ---------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_a_hostile_message_id_never_enters_the_message_html() -> None:
    answer = replace(tree.make_message("assistant", "Fine.", None), id=HOSTILE_ID)
    conversation, answer = _chat_with(answer)
    row = render_message(conversation, answer).rows[-1]
    parser = _Tags()
    parser.feed(row["content"]["text"])
    assert row["content"]["text"] == "Fine." and parser.tags == []  # no HTML of the app's
    assert row[BAR]["id"] == HOSTILE_ID  # data for the bar, which draws it as text
    rows, shown = split_bars([row])
    assert BAR not in rows[0] and json.loads(shown)["rows"][0]["id"] == HOSTILE_ID


def test_the_model_name_and_error_stay_out_of_the_message_markdown(
        images: ImageServer) -> None:
    leak = f"\n\n![x]({images.url('/footer')})\n\n$$"
    answer = tree.make_message("assistant", "", None, model=f"m{leak}", status="error",
                               error=f"broke{leak}")
    conversation, answer = _chat_with(answer)
    row = render_message(conversation, answer).rows[-1]
    assert row["content"]["text"] == ""  # nothing of them is Markdown
    assert row[BAR]["facts"] == [f"m{leak}"] and row[BAR]["error"] == f"broke{leak}"


def test_a_tool_name_in_a_block_title_is_plain_text(images: ImageServer) -> None:
    call = tree.ToolCall(id="c1", name=f"![x]({images.url('/tool')}) <img src=x>",
                         arguments="{}")
    answer = tree.make_message("assistant", "", None, tool_calls=(call,))
    conversation, answer = _chat_with(answer)
    title = render_message(conversation, answer).rows[0]["metadata"]["title"]
    rendered = MarkdownIt("commonmark").render(title)
    assert _rendered_images(title) == [] and "<img" not in rendered
    assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).strip() == (
        f"Tool call: ![x]({images.url('/tool')}) <img src=x>")


def test_images_in_answers_reasoning_and_sources_are_links_unless_allowed(
        images: ImageServer) -> None:
    source = tree.Source(number=1, document="a.txt", page=None, score=1.0,
                         snippet=f"Passage ![d]({images.url('/doc')})")
    answer = tree.make_message(
        "assistant", f"Answer ![a]({images.url('/answer')})", None,
        reasoning=f"Think ![r]({images.url('/reasoning')})", sources=(source,))
    conversation, answer = _chat_with(answer)
    texts = [row["content"]["text"] for row in render_message(conversation, answer).rows]
    assert [_rendered_images(text) for text in texts] == [[], [], []]
    assert f"🖼 a ({images.host})" in html.unescape(MarkdownIt().render(texts[2]))
    allowed = render_message(conversation, answer, image_hosts=(images.host,)).rows
    assert [_rendered_images(row["content"]["text"]) for row in allowed] == [
        [images.url("/reasoning")], [images.url("/doc")], [images.url("/answer")]]


def test_the_notice_shows_outside_text_as_text_and_once() -> None:
    said = "HTTP 500: <img src=http://127.0.0.1:9/err> ![e](http://127.0.0.1:9/e) *x*"
    detail = "<script>alert(1)</script> $$ ![d](http://127.0.0.1:9/d)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a toast (gr.Warning outside an event) would raise
        shown = updates(Screen(view=View(), notice=f"{said}\n{detail}"))
    notice = next(value for value in shown if isinstance(value, str) and "⚠️" in value)
    rendered = MarkdownIt("commonmark", {"html": True}).render(notice)
    assert "<img" not in rendered and "<em>" not in rendered and "<script" not in rendered
    assert "$$" not in notice
    words = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert f"⚠️ {said}" in words and "Technical detail" in words and "alert(1)" in words


def test_the_page_cannot_send_a_hostile_message_id_or_model() -> None:
    assert actions.parse(f"regen {HOSTILE_ID} 1") is None
    assert actions.parse("regen abc-DEF_1 1") == actions.Action("regen", "abc-DEF_1")
    assert actions.parse("regen abc 1 " + "m" * 201) is None  # longer than any model name
    assert actions.parse("regen abc 1 bad\x00model") is None
    assert actions.parse("rm abc 1") is None


def test_allowed_image_hosts_come_from_a_flag_or_the_environment() -> None:
    flag = parse_config(["--allowed-image-hosts", "Img.Example, 127.0.0.1:8080,"], environ={})
    assert flag.allowed_image_hosts == ("img.example", "127.0.0.1:8080")
    env = parse_config([], environ={"CHATUI_ALLOWED_IMAGE_HOSTS": "cdn.example"})
    assert env.allowed_image_hosts == ("cdn.example",)
    assert parse_config([], environ={}).allowed_image_hosts == ()


# ----- imports and REST bodies: ids are checked where they enter -----------------------


def _export(message_id: str = "m1", parent: str | None = None,
            leaf: str | None = None) -> dict[str, Any]:
    return {
        "title": "Imported",
        "current_leaf_id": leaf or message_id,
        "messages": [{"id": message_id, "parent_id": parent, "role": "user",
                      "content": "hello", "created_at": 1.0}],
    }


def test_an_import_with_a_hostile_id_is_refused_and_stores_nothing(
        fake_backend: FakeBackend, tmp_path: Path) -> None:
    with running_api(fake_backend.base_url, tmp_path) as api:
        for body in (_export(HOSTILE_ID), _export(leaf=HOSTILE_ID),
                     _export(parent=HOSTILE_ID), _export("a b")):
            response = api.http.post("/chats/import", json=body)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["type"] == "invalid_request"
        assert api.http.get("/chats").json() == []
        assert api.service.store.list() == []  # nobody's
        chat = api.new_chat()
        moved = api.http.post(f"/chats/{chat['id']}/branch", json={"message_id": HOSTILE_ID})
        assert moved.status_code == 422
        good = api.http.post("/chats/import", json=_export("m-1_A"))
        assert good.status_code == 201, good.text  # a plain id still imports


def test_the_store_refuses_a_conversation_with_a_hostile_message_id(
        fake_backend: FakeBackend, tmp_path: Path) -> None:
    answer = replace(tree.make_message("assistant", "x", None), id=HOSTILE_ID)
    conversation, _ = _chat_with(answer)
    with running_api(fake_backend.base_url, tmp_path) as api:
        with pytest.raises(InvalidRequest, match="cannot be a message id"):
            api.service.import_conversation(conversation, "local")
        assert api.service.store.list() == []  # nobody's


# ----- in a real browser ------------------------------------------------------------------

WAIT_MS = 30_000


@contextmanager
def serving(fake_backend: FakeBackend, tmp_path: Path, **config: Any
            ) -> Iterator[tuple[str, Runtime]]:
    with (open_test_runtime(fake_backend.base_url, tmp_path / "data", **config) as runtime,
          serve_app(runtime, free_port()) as url):
        yield url, runtime


def _open(browser: Any, url: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    expect(page.locator("#chatui-message textarea")).to_be_visible(timeout=WAIT_MS)
    return page


def _send(page: Any, text: str) -> None:
    page.locator("#chatui-message textarea").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def _answer_with(reasoning: str, content: str) -> Script:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                "model": DEFAULT_MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    return Script.sse([chunk({"role": "assistant", "reasoning_content": reasoning}),
                       chunk({"content": content}), chunk({}, "stop")])


def _images_from(page: Any, server: ImageServer) -> int:
    return int(page.locator(f'img[src^="http://{server.host}"]').count())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_no_image_from_an_answer_its_reasoning_or_a_document_is_fetched(
    browser: Any, fake_backend: FakeBackend, images: ImageServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with serving(fake_backend, tmp_path) as (url, runtime):
        document = (f"Harbour safety rules. ![doc]({images.url('/leak?d=document')})"
                    "\n\nThe harbour safety rules say: wear a life vest.")
        runtime.library.ingest(document.encode(), "harbour.txt", "local")
        httpx.post(f"{url}/api/v1/chats/new", json={"title": "Rules", "rag_enabled": True})
        fake_backend.enqueue(_answer_with(
            f"I recall ![r]({images.url('/leak?d=reasoning')}) the rules.",
            f"Wear a vest [1]. ![a]({images.url('/leak?d=secret')})"))

        page = _open(browser, url)
        expect(page.locator("#chatui-title input, #chatui-title textarea")).to_have_value(
            "Rules", timeout=WAIT_MS)
        _send(page, "What are the harbour safety rules?")
        rows = page.locator('#chatui-chat [data-testid="bot"]')
        answer = rows.last
        expect(answer).to_contain_text("Wear a vest", timeout=WAIT_MS)
        expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
            "Regenerate", timeout=WAIT_MS)
        for title, words in (("Reasoning", "I recall"), ("Sources", "wear a life vest")):
            block = rows.filter(has_text=title)
            block.get_by_text(title).first.click()  # open the collapsed block
            expect(block).to_contain_text(words, timeout=WAIT_MS)
        assert _images_from(page, images) == 0  # no <img> pointing there: nothing to fetch
        for row, alt in ((answer, "a"), (rows.filter(has_text="Reasoning"), "r"),
                         (rows.filter(has_text="Sources"), "doc")):
            expect(row).to_contain_text(f"🖼 {alt} ({images.host})")  # a link instead
        link = answer.get_by_role("link", name=f"🖼 a ({images.host})")
        expect(link).to_have_attribute("href", images.url("/leak?d=secret"))
        assert images.paths == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_allowed_host_shows_its_images_and_no_other(
    browser: Any, fake_backend: FakeBackend, images: ImageServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    other = ImageServer()  # the same address on another port: not allowed
    try:
        with serving(fake_backend, tmp_path, allowed_image_hosts=(images.host,)) as (url, _):
            fake_backend.enqueue(_answer_with(
                f"See ![r]({images.url('/reasoning.png')})",
                f"Chart: ![ok]({images.url('/ok.png')}) and ![no]({other.url('/no.png')})"))
            page = _open(browser, url)
            _send(page, "Show me the chart")
            answer = page.locator('#chatui-chat [data-testid="bot"]').last
            expect(page.locator("#chatui-chat .chatui-bar-bot").last).to_contain_text(
                "Regenerate", timeout=WAIT_MS)
            expect(answer.locator(f'img[src="{images.url("/ok.png")}"]')).to_have_count(1)
            wait_until(lambda: "/ok.png" in images.paths,
                       message="the allowed image was not fetched")
            assert _images_from(page, other) == 0
            assert other.paths == []
            expect(answer).to_contain_text(f"🖼 no ({other.host})")
    finally:
        other.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_model_servers_error_is_shown_as_text_and_loads_nothing(
    browser: Any, fake_backend: FakeBackend, images: ImageServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    said = (f"<img src={images.url('/err')}> ![e]({images.url('/err-md')}) "
            "the model crashed")
    with serving(fake_backend, tmp_path) as (url, _):
        fake_backend.enqueue(Script.error(500, said))
        page = _open(browser, url)
        _send(page, "Hello?")
        notice = page.locator("#chatui-notice")
        expect(notice).to_contain_text("refused the request (HTTP 500)", timeout=WAIT_MS)
        notice.locator("summary").click()  # the technical detail, folded under the words
        expect(notice).to_contain_text("the model crashed", timeout=WAIT_MS)
        expect(page.get_by_test_id("toast-text")).to_have_count(0)  # told once, no toast
        assert page.locator("#chatui-notice img").count() == 0
        assert _images_from(page, images) == 0
        expect(notice).to_contain_text(said)  # the server's words, as the characters they are
        assert images.paths == []


def test_the_image_policy_names_this_app_and_the_allowed_hosts_only() -> None:
    from chatui.csp import image_policy

    assert image_policy() == "img-src 'self' data: blob:; media-src 'self' data: blob:"
    policy = image_policy(["127.0.0.1:8000", "example.com", "[::1]"])
    assert "img-src 'self' data: blob: 127.0.0.1:8000 example.com:* [::1]:*;" in policy


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_browser_refuses_an_image_that_slipped_past_the_sanitiser(
    browser: Any, fake_backend: FakeBackend, images: ImageServer, tmp_path: Path
) -> None:
    """Defence in depth: an <img> to another server, put in the page however, is not fetched."""
    with serving(fake_backend, tmp_path) as (url, _):
        assert "img-src 'self'" in httpx.get(url).headers["content-security-policy"]
        page = _open(browser, url)
        page.evaluate("""() => {
            window.refused = [];
            document.addEventListener('securitypolicyviolation',
                                      event => window.refused.push(event.blockedURI));
        }""")
        page.evaluate("""src => { const img = document.createElement('img');
                                  img.src = src; document.body.appendChild(img); }""",
                      images.url("/leak?d=slipped"))
        page.wait_for_function("() => window.refused.length > 0", timeout=WAIT_MS)
        assert page.evaluate("() => window.refused")[0].startswith(images.url("/leak"))
        assert images.paths == []
