"""The synthetic OpenAI-compatible model server that bench_api.py and bench_ui.py measure against.

It streams ``max_tokens`` tokens "t0 t1 ..." (default 1000) at ``rate`` per
second on a fixed schedule, so any shortfall is the client's. The benches run
it in a child process (their ``--synthetic-port`` mode) so it gets its own GIL.
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_synthetic(port: int, rate: float, default_tokens: int = 1000) -> None:
    """Stream ``max_tokens`` tokens (else ``default_tokens``) at ``rate`` per second, on a
    fixed schedule."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"object": "list", "data": [{"id": "synthetic"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            tokens = int(request.get("max_tokens") or default_tokens)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            started = time.monotonic()
            try:
                for number in range(tokens):
                    delay = started + number / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    chunk = {"model": "synthetic", "choices": [
                        {"index": 0, "delta": {"content": f"t{number} "}, "finish_reason": None}]}
                    self._write(f"data: {json.dumps(chunk)}\n\n")
                end = {"model": "synthetic", "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self._write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _write(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # the default 5 drops connections when 50 arrive at once

    Server(("127.0.0.1", port), Handler).serve_forever()
