"""A TCP proxy in front of PostgreSQL whose line a test can cut, to make the server unreachable
without stopping it (other tests share it)."""

from __future__ import annotations

import selectors
import socket
import struct
import threading


class CuttableProxy:
    """A TCP proxy in front of PostgreSQL whose line can be cut: while cut, it resets every open
    connection and every new one, so the server is unreachable from the writer."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._control = threading.Condition()
        self._cut = False
        self._generation = 0  # of set_cut() calls
        self._applied = 0  # the generation the proxy thread acts on
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pg-proxy", daemon=True)
        self._thread.start()

    def set_cut(self, cut: bool) -> None:
        """Cut (or restore) the line; returns once the proxy acts on it."""
        with self._control:
            self._cut = cut
            self._generation += 1
            generation = self._generation
            assert self._control.wait_for(lambda: self._applied >= generation, 10), "proxy not running"

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=10)
        for sock in [*self._peers, self._listener]:
            sock.close()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for s in (sock, peer):
            if s is not None:
                self._peers.pop(s, None)
                self._selector.unregister(s)
                self._reset(s)

    def _run(self) -> None:
        while not self._stop:
            with self._control:
                cut, generation = self._cut, self._generation
            if cut:
                for open_sock in list(self._peers):
                    if open_sock in self._peers:
                        self._drop(open_sock)
            with self._control:
                self._applied = generation
                self._control.notify_all()
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                if not isinstance(sock, socket.socket):
                    continue
                if sock is self._listener:
                    client, _ = self._listener.accept()
                    if cut:
                        self._reset(client)
                        continue
                    server = socket.create_connection(("127.0.0.1", self._target_port))
                    for s in (client, server):
                        s.setblocking(True)
                        self._selector.register(s, selectors.EVENT_READ)
                    self._peers[client], self._peers[server] = server, client
                elif sock in self._peers:
                    if cut:
                        self._drop(sock)
                        continue
                    try:
                        data = sock.recv(65536)
                        if data:
                            self._peers[sock].sendall(data)
                            continue
                    except OSError:
                        pass
                    self._drop(sock)
