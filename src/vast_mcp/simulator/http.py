"""The HTTP transport: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with exact Content-Length.

Kept apart from the endpoints so a handler can do what a real network does to
clients: answer late, or close the connection without answering at all.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .wire import Request, Response, text_response

#: How long stop() waits for in-flight handler threads.
JOIN_SECONDS = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VastSim/1.0"
    # Headers and body go out in two writes; with Nagle on, each keep-alive answer waits ~40 ms.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the simulator records requests itself."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        raw = self._read_body()
        parts = urlsplit(self.path)
        body: Any = None
        is_json = True
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body, is_json = text, False
        req = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            base_url=self.server.base_url,
            body_is_json=is_json,
        )
        try:
            resp = self.server.app(req)
        except Exception as exc:  # a simulator bug must still answer something parseable
            resp = text_response(500, f"simulator error: {exc!r}")
        if resp.delay > 0 and self.server.stopping.wait(resp.delay):
            resp.drop = True  # shutting down while a slow answer waits
        if resp.drop:
            self.close_connection = True
            return
        self.send_response(resp.status)
        if resp.content_type is not None:
            self.send_header("Content-Type", resp.content_type)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class SimHTTPServer(ThreadingHTTPServer):
    """Serves ``app`` on a daemon thread; ``stop()`` leaves no thread or socket behind."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: Callable[[Request], Response]) -> None:
        super().__init__(address, _Handler)
        self.app = app
        host, port = self.socket.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        self.stopping = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, name="vast-sim-http", daemon=True
        )
        self._thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name="vast-sim-conn", daemon=True
        )
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(JOIN_SECONDS)
        # Wake handler threads blocked on idle keep-alive connections, then wait for them.
        with self._conns_lock:
            conns = dict(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in conns.values():
            thread.join(JOIN_SECONDS)
        self.server_close()
