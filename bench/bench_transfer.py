"""How long reading an import takes, per format, beside the REST import's old reader.

    .venv/bin/python bench/bench_transfer.py                   # 200 and 5,000 messages
    .venv/bin/python bench/bench_transfer.py --messages 20000

One branched chat (each question answered twice, the second answer continued)
is written in each format the import reads: chatui's JSON export, llama.cpp web
UI's JSONL session, Open WebUI's chat export. Each file is read with
``transfer.read_chats`` (parse, detect, check the tree, build the conversation),
best of ``--repeat``. The baseline is what ``POST /chats/import`` did before:
the pydantic ``ChatImport`` model over the same chatui JSON, then
``codec.conversation_from_dict`` and ``codec.tree_problem``. Nothing is stored:
saving is the store's cost (``bench_store.py``), the same for every format.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chatui import codec, transfer
from chatui.api.schemas import ChatImport


def branched(messages: int) -> tuple[dict[str, Any], bytes, bytes]:
    """The same tree as chatui JSON (dict), llama.cpp JSONL and Open WebUI JSON (bytes)."""
    rows: list[tuple[str, str | None, str, str]] = []  # id, parent, role, content
    parent: str | None = None
    while len(rows) < messages:
        n = len(rows)
        question = f"q{n}"
        rows.append((question, parent, "user", f"Question {n} about llamas " * 5))
        rows.append((f"a{n}", question, "assistant", f"First answer {n} " * 20))
        rows.append((f"b{n}", question, "assistant", f"Second answer {n} " * 20))
        parent = f"b{n}"
    rows = rows[:messages]
    leaf = rows[-1][0]
    native = {
        "title": "Bench", "created_at": 1.0, "updated_at": 2.0, "current_leaf_id": leaf,
        "settings": {}, "messages": [
            {"id": i, "parent_id": p, "role": r, "content": c, "created_at": 1.0 + k}
            for k, (i, p, r, c) in enumerate(rows)],
    }
    session = {"type": "session", "harness": "llama.app", "id": "c", "name": "Bench",
               "currNode": leaf, "lastModified": 2000}
    llama = "\n".join([json.dumps(session)] + [json.dumps({"type": "message", "message": {
        "id": i, "convId": "c", "type": "text", "timestamp": 1000 + k, "role": r,
        "content": c, "parent": p, "children": []}}) for k, (i, p, r, c) in enumerate(rows)])
    openwebui = [{"id": "x", "title": "Bench", "created_at": 1, "updated_at": 2, "chat": {
        "title": "Bench", "history": {"currentId": leaf, "messages": {
            i: {"id": i, "parentId": p, "childrenIds": [], "role": r, "content": c,
                "timestamp": 1 + k} for k, (i, p, r, c) in enumerate(rows)}}}}]
    return native, llama.encode(), json.dumps(openwebui).encode()


def best(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def old_reader(raw: bytes) -> None:
    body = ChatImport.model_validate_json(raw)
    data = body.conversation_dict()
    conversation = codec.conversation_from_dict(data)
    assert codec.tree_problem(replace(conversation, id="import")) is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"ms to read one chat (best of {args.repeat}); the machine is shared with other work")
    print(f"{'messages':>9} {'bytes':>10} {'format':<24} {'ms':>9}")
    for size in args.messages:
        native, llama, openwebui = branched(size)
        raw = json.dumps(native).encode()
        cases: list[tuple[str, bytes, Callable[[], object]]] = [
            ("before: ChatImport+codec", raw, lambda raw=raw: old_reader(raw)),
            ("chatui JSON", raw, lambda raw=raw: transfer.read_chats(raw, "me")),
            ("llama.cpp JSONL", llama, lambda llama=llama: transfer.read_chats(llama, "me")),
            ("Open WebUI JSON", openwebui, lambda data=openwebui: transfer.read_chats(data, "me")),
        ]
        for name, data, action in cases:
            print(f"{size:>9,} {len(data):>10,} {name:<24} {best(action, args.repeat):>9.1f}")


if __name__ == "__main__":
    main()
