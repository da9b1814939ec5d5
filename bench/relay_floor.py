"""The least a relay on chatui's stack can cost: the floor ``bench_api.py --floor`` measures.

A bare ASGI app on uvicorn (the same server and keep-alive settings as chatui's
``server.web_server``) with the two routes the bench calls:

- ``POST /api/v1/chats/new`` answers ``{"id": "floor"}``;
- ``POST /api/v1/chats/{id}/stream`` asks the model server for ``max_tokens`` tokens
  through one shared ``httpx.AsyncClient`` (as chatui's client does) and sends each
  token on as ``event: delta`` with its text, JSON-decoded and encoded again.

No framework, no middleware, no store, no conversation tree, no thread: what
any Python relay of these answers pays for uvicorn, h11, httpx and ``json``
alone. chatui over the same model server cannot cost less; how far above this
floor it is, is what chatui itself costs.

    .venv/bin/python bench/relay_floor.py --port 8123 --backend http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chatui.client import MAX_IDLE_CONNECTIONS  # noqa: E402
from chatui.server import KEEP_ALIVE_SECONDS  # noqa: E402

Scope = dict[str, Any]


def relay_app(backend: str) -> Any:
    client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(
        max_connections=None, max_keepalive_connections=MAX_IDLE_CONNECTIONS))

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/stream"):
            await _stream(json.loads(body), send)
        else:
            await _answer(send, b'{"id": "floor"}', b"application/json")

    async def _stream(request: dict[str, Any], send: Any) -> None:
        upstream = {"model": "synthetic", "stream": True,
                    "max_tokens": request.get("max_tokens"),
                    "messages": [{"role": "user", "content": request.get("content", "")}]}
        async with client.stream("POST", f"{backend}/chat/completions", json=upstream) as reply:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            rest = ""
            async for piece in reply.aiter_text():
                out = []
                *lines, rest = (rest + piece).split("\n")
                for line in lines:
                    if line.startswith("data: {"):
                        delta = json.loads(line[6:])["choices"][0]["delta"]
                        if delta.get("content"):
                            out.append("event: delta\ndata: "
                                       + json.dumps({"content": delta["content"]}) + "\n\n")
                if out:
                    await send({"type": "http.response.body", "body": "".join(out).encode(),
                                "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def _answer(send: Any, body: bytes, kind: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    uvicorn.run(relay_app(args.backend), host="127.0.0.1", port=args.port, log_level="warning",
                timeout_keep_alive=KEEP_ALIVE_SECONDS, access_log=False)


if __name__ == "__main__":
    main()
