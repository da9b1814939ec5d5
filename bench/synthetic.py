"""The synthetic OpenAI-compatible model server that bench_api.py and bench_rss.py measure against.

It streams ``max_tokens`` tokens "t0 t1 ..." (default 1000) at ``rate`` per
second on a fixed schedule, so any shortfall is the client's. The benches run
it in a child process (their ``--synthetic-port`` mode) so it gets its own GIL.

It runs on one asyncio loop with one clock for every stream, as a batching
model server (llama-server with ``--parallel``, vLLM) emits a token of each
running answer per step: at each tick every stream gets the tokens its
schedule has made due. So the source stays cheap and on time with 50 streams
at once. (It used a thread per connection before: on 2 cores those threads
fell behind the schedule, and a request on a kept-alive connection waited
100-200 ms for its thread, so the direct baseline swung 3x between runs.)
"""

from __future__ import annotations

import asyncio
import json
import time

TICK_SECONDS = 0.001


class _Stream:
    def __init__(self, writer: asyncio.StreamWriter, tokens: int, rate: float) -> None:
        self.writer = writer
        self.tokens = tokens
        self.rate = rate
        self.sent = 0
        self.started = time.monotonic()
        self.done = asyncio.get_running_loop().create_future()

    def catch_up(self, now: float) -> None:
        """Write every token due by ``now`` (one write), and the end after the last."""
        due = min(self.tokens, int((now - self.started) * self.rate) + 1)
        if due <= self.sent:
            return
        pieces = [_chunk(json.dumps({"model": "synthetic", "choices": [
            {"index": 0, "delta": {"content": f"t{number} "}, "finish_reason": None}]}))
            for number in range(self.sent, due)]
        self.sent = due
        if due == self.tokens:
            pieces.append(_chunk(json.dumps({"model": "synthetic", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}]})))
            pieces.append(_chunk("[DONE]"))
            pieces.append(b"0\r\n\r\n")
        self.writer.write(b"".join(pieces))
        if due == self.tokens and not self.done.done():
            self.done.set_result(None)


def _chunk(data: str) -> bytes:
    event = f"data: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(event), event)


class _Clock:
    """One ticker for every stream: a tick every ``TICK_SECONDS`` while any runs."""

    def __init__(self) -> None:
        self.streams: set[_Stream] = set()
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            if not self.streams:
                self.wake.clear()
                await self.wake.wait()
            now = time.monotonic()
            for stream in list(self.streams):
                if stream.writer.is_closing():
                    self.streams.discard(stream)
                    if not stream.done.done():
                        stream.done.set_result(None)
                    continue
                stream.catch_up(now)
                if stream.done.done():
                    self.streams.discard(stream)
            await asyncio.sleep(TICK_SECONDS)

    def add(self, stream: _Stream) -> None:
        self.streams.add(stream)
        stream.catch_up(time.monotonic())  # the first token at once, as its schedule says
        if stream.done.done():
            self.streams.discard(stream)
        self.wake.set()


async def _serve(port: int, rate: float, default_tokens: int) -> None:
    clock = _Clock()
    asyncio.get_running_loop().create_task(clock.run())

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method = head.split(b" ", 1)[0]
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                if method == b"GET":
                    data = json.dumps({"object": "list", "data": [{"id": "synthetic"}]}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
                    continue
                request = json.loads(body or b"{}")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                stream = _Stream(writer, int(request.get("max_tokens") or default_tokens), rate)
                clock.add(stream)
                await stream.done
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def serve_synthetic(port: int, rate: float, default_tokens: int = 1000) -> None:
    """Stream ``max_tokens`` tokens (else ``default_tokens``) at ``rate`` per second, on a
    fixed schedule, until killed."""
    asyncio.run(_serve(port, rate, default_tokens))
