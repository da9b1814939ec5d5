"""Continue on the real embedded model: the true prefix fill against resending the history.

For each mode (``completions``: the GGUF's own template on /v1/completions;
``resend``: the history ending in the answer, as chatui did before), the same
stopped answer ("1, 2, ..., 10,") is continued N times at temperature 0, and this
prints the time to the first new token, the whole continuation, and whether the
stored answer is one list in order (the point of the feature). Also the one-off
cost chatui pays at start to read the chat template from the GGUF header.

    .venv/bin/python bench/bench_continue.py [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

from chatui.client import BackendClient
from chatui.embedded import MODEL_ALIAS, EmbeddedServer
from chatui.memstore import MemoryStore
from chatui.serverinfo import ContinueMode, ServerFeatures
from chatui.service import ChatService
from chatui.template import chat_template_of
from chatui.tree import Settings

QUESTION = "List the numbers 1 to 50 separated by commas."


def _in_order(text: str) -> bool:
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    return numbers == list(range(1, len(numbers) + 1))


def run(server: EmbeddedServer, mode: ContinueMode, runs: int) -> None:
    template = chat_template_of(server.model_path) if mode == "completions" else None
    firsts, totals, good = [], [], 0
    with BackendClient(server.base_url) as client:
        service = ChatService(MemoryStore(), client, default_model=MODEL_ALIAS,
                              features=ServerFeatures(client, mode, template),
                              defaults=Settings(temperature=0.0, seed=1, max_tokens=300))
        for _ in range(runs):
            chat = service.create("local")
            answer = service.start_send(chat.id, QUESTION, owner="local")
            for step in answer.events():
                if "10," in step.message.content:
                    answer.stop()
            assert answer.result is not None
            began = time.perf_counter()
            first = None
            more = service.start_continue(chat.id, answer.result.message.id, owner="local")
            for step in more.events():
                if first is None and step.content_delta:
                    first = time.perf_counter() - began
            totals.append(time.perf_counter() - began)
            firsts.append(first or 0.0)
            assert more.result is not None
            good += _in_order(more.result.message.content)
    print(f"{mode:12s} first new token {statistics.median(firsts) * 1000:7.0f} ms   "
          f"whole continuation {statistics.median(totals) * 1000:7.0f} ms   "
          f"one list in order: {good}/{runs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with EmbeddedServer(context=2048) as server:
        began = time.perf_counter()
        chat_template_of(server.model_path)
        print(f"reading the chat template from the GGUF header: "
              f"{(time.perf_counter() - began) * 1000:.0f} ms (once per start)")
        for mode in ("resend", "completions"):
            run(server, mode, args.runs)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
