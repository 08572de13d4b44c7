"""A TCP proxy that can go silent (a frozen peer: bytes accepted, nothing forwarded, no FIN)
and then reset its connections: the half-open link of DESIGN.md's failure modes."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading


class SilentProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = int(self.listener.getsockname()[1])
        self.frozen = threading.Event()
        self._freeze_on: bytes | None = None
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SilentProxy:
        self._thread.start()
        return self

    def freeze(self) -> None:
        """Stop forwarding in both directions; connections stay open (like SIGSTOP)."""
        self.frozen.set()

    def freeze_on(self, pattern: bytes) -> None:
        """Freeze at the first bytes from a client that contain ``pattern``, those bytes
        held back too: the link cut at a chosen step of a conversation (a statement of a
        transaction, say), not wherever the clock happens to be."""
        self._freeze_on = pattern

    def reset(self) -> None:
        """Drop every connection with RST and work normally again."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
        self.frozen.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)  # first: a pair it accepts meanwhile would escape reset()
        self.reset()
        self.listener.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        self.listener.setblocking(False)
        sel.register(self.listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        clients: set[socket.socket] = set()

        def forget_closed() -> None:
            """Sockets reset() closed from another thread: their numbers may come back."""
            for s in [s for s in list(peers) if s.fileno() == -1]:
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(s)
                peers.pop(s, None)
                clients.discard(s)

        while not self._stop.is_set():
            try:
                events = sel.select(0.05)
            except (OSError, ValueError):
                break
            for key, _ in events:
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self.listener:
                    try:
                        client, _ = self.listener.accept()
                    except OSError:
                        continue
                    try:
                        upstream = socket.create_connection(("127.0.0.1", self.target_port))
                    except OSError:
                        client.close()  # the target is down: the client sees its link end
                        continue
                    forget_closed()  # else a reused descriptor is "already registered"
                    peers[client], peers[upstream] = upstream, client
                    clients.add(client)
                    with self._lock:
                        self._pairs.append((client, upstream))
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(upstream, selectors.EVENT_READ)
                    continue
                if self.frozen.is_set():
                    continue  # leave the bytes in the kernel buffers: a silent peer
                try:
                    data = s.recv(65536)
                    if data:
                        pattern = self._freeze_on
                        if pattern is not None and s in clients and pattern in data:
                            self._freeze_on = None
                            self.frozen.set()
                            continue  # never forwarded: the link died before they left
                        peers[s].sendall(data)
                        continue
                except OSError:
                    pass
                for x in (s, peers.get(s)):
                    if x is not None:
                        with contextlib.suppress(KeyError, ValueError, OSError):
                            sel.unregister(x)
                        with contextlib.suppress(OSError):
                            x.close()
            forget_closed()
