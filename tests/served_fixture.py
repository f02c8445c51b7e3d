"""Real servers for the served-model tests: llama-cpp-python's server on the embedded GGUF
(promptsearch.testing.LlamaServer), and a tiny stdlib HTTP server that misbehaves on purpose (HTTP 500,
garbage, silence) for the fault tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from promptsearch.testing import LlamaServer, free_port  # noqa: F401


class FakeServer:
    """A real HTTP server on 127.0.0.1 whose /v1/models lists ``models`` and whose other answers follow
    ``mode``: "500" (always HTTP 500), "garbage" (200 with a body that is not JSON), "sleep" (never in time),
    "nonsense" (200 with JSON lacking every expected field). Records each request's headers and body."""

    def __init__(self, mode: str, models=("fake-model",), sleep: float = 5.0):
        self.mode, self.models, self.sleep = mode, list(models), sleep
        self.requests: list[tuple[str, dict, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting (the timeout test)
                    pass

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers), {}))
                if self.path.endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "fake"} for m in outer.models]
                    return self._send(200, json.dumps({"object": "list", "data": data}).encode())
                self._send(404, b'{"error": {"message": "no such path"}}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append((self.path, dict(self.headers), body))
                if outer.mode == "500":
                    return self._send(500, b'{"error": {"message": "internal failure"}}')
                if outer.mode == "garbage":
                    return self._send(200, b"<html>surprise</html>")
                if outer.mode == "sleep":
                    time.sleep(outer.sleep)
                    return self._send(200, b"{}")
                self._send(200, b'{"choices": [{"index": 0}]}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
