"""Loopback TCP ports that answer like an SSH server's first line (the banner).

Each instance port is *reserved* from creation: a socket bound to 127.0.0.1 but
not listening, so connecting is refused and the port number stays stable. While
the instance is running the socket listens, and every accepted connection gets
``SSH-2.0-OpenSSH_9.6 VastSim\\r\\n`` (after an optional delay, the ``slow_ssh``
fault). One selector thread serves every port and also calls ``tick`` about ten
times a second, which the simulator uses to open ports for instances that reached
running while nobody was reading.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BANNER = b"SSH-2.0-OpenSSH_9.6 VastSim\r\n"
HOST = "127.0.0.1"
#: How often the loop wakes up (for ticks, delayed banners and idle connections).
TICK_SECONDS = 0.1
#: A client that neither speaks nor hangs up is dropped after this long.
IDLE_SECONDS = 10.0


@dataclass
class _Port:
    sock: socket.socket
    listening: bool = False
    delay: float = 0.0


@dataclass
class _Conn:
    port: int
    sock: socket.socket
    send_at: float
    sent: bool = False
    expires: float = field(default=0.0)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


class BannerHub:
    """Owns every simulated sshd port; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: dict[int, _Port] = {}
        self._conns: list[_Conn] = []
        self._selector = selectors.DefaultSelector()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._tick: Callable[[], None] | None = None

    # ------------------------------------------------------------ reservations

    def reserve(self, port: int = 0) -> int:
        """Bind a (refusing) port; ``port=0`` picks a free one. Raises OSError if taken."""
        sock = _bind(port)
        number = int(sock.getsockname()[1])
        with self._lock:
            self._ports[number] = _Port(sock)
        return number

    def reserve_pair(self) -> int:
        """Reserve two consecutive ports P and P+1 and return P."""
        for _ in range(50):
            first = self.reserve()
            try:
                self.reserve(first + 1)
            except OSError:
                self.release(first)
                continue
            return first
        raise OSError("no two consecutive free loopback ports")

    def reserved(self, port: int) -> bool:
        with self._lock:
            return port in self._ports

    def set_listening(self, port: int, listening: bool, delay: float = 0.0) -> None:
        """Start or stop answering on a reserved port (stopping makes it refuse again)."""
        with self._lock:
            slot = self._ports.get(port)
            if slot is None:
                return
            slot.delay = delay
            if slot.listening == listening:
                return
            if listening:
                slot.sock.listen(16)
                slot.sock.setblocking(False)
                self._selector.register(slot.sock, selectors.EVENT_READ, port)
                slot.listening = True
                return
            # A socket cannot stop listening: close it and bind a fresh, refusing one.
            self._selector.unregister(slot.sock)
            slot.sock.close()
            slot.listening = False
            self._drop_conns(port)
            try:
                slot.sock = _bind(port)
            except OSError:
                del self._ports[port]

    def release(self, port: int) -> None:
        with self._lock:
            slot = self._ports.pop(port, None)
            if slot is None:
                return
            if slot.listening:
                self._selector.unregister(slot.sock)
            slot.sock.close()
            self._drop_conns(port)

    def _drop_conns(self, port: int) -> None:
        """Sessions end with the sshd (instance stopped or destroyed). Caller holds the lock."""
        for conn in self._conns:
            if conn.port == port:
                conn.sock.close()
        self._conns = [c for c in self._conns if c.port != port]

    def release_all(self) -> None:
        with self._lock:
            ports = list(self._ports)
        for port in ports:
            self.release(port)

    def listening_ports(self) -> list[int]:
        with self._lock:
            return sorted(p for p, s in self._ports.items() if s.listening)

    # ------------------------------------------------------------ the loop

    def start(self, tick: Callable[[], None] | None = None) -> None:
        if self._thread is not None:
            return
        self._tick = tick
        self._stop.clear()
        # Written to by stop() so the loop wakes at once instead of at the next tick.
        self._wake = socket.socketpair()
        self._wake[0].setblocking(False)
        self._selector.register(self._wake[0], selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="vast-sim-sshd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, close every connection and every port."""
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._wake is not None:
            self._selector.unregister(self._wake[0])
            for end in self._wake:
                end.close()
            self._wake = None
        with self._lock:
            for conn in self._conns:
                conn.sock.close()
            self._conns.clear()
        self.release_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._tick is not None:
                with contextlib.suppress(Exception):  # a failed tick must not kill the sshd loop
                    self._tick()
            try:
                events = self._selector.select(timeout=TICK_SECONDS)
            except (OSError, ValueError):
                # A port was closed by another thread between select() calls.
                time.sleep(0.01)
                continue
            now = time.monotonic()
            with self._lock:
                for key, _mask in events:
                    if key.data is None:
                        continue  # the stop() wake-up; the loop condition ends it
                    self._accept(key, now)
                self._service(now)

    def _accept(self, key: selectors.SelectorKey, now: float) -> None:
        slot = self._ports.get(key.data)
        if slot is None or not slot.listening or slot.sock is not key.fileobj:
            return
        try:
            conn, _addr = slot.sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._conns.append(_Conn(key.data, conn, now + slot.delay, expires=now + slot.delay + IDLE_SECONDS))

    def _service(self, now: float) -> None:
        alive: list[_Conn] = []
        for conn in self._conns:
            try:
                if not conn.sent and now >= conn.send_at:
                    conn.sock.sendall(BANNER)
                    conn.sent = True
                if conn.sent:
                    # Discard whatever the client says; close when it hangs up.
                    data = conn.sock.recv(4096)
                    if not data:
                        raise ConnectionError
            except BlockingIOError:
                pass
            except OSError:
                conn.sock.close()
                continue
            if now >= conn.expires:
                conn.sock.close()
                continue
            alive.append(conn)
        self._conns = alive
