"""The socket to the agent: one JSON object per line, calls matched to replies by id.

Reads happen on a thread of their own, so a call made synchronously from the event loop's
thread (the original ``MonitoringClient`` methods are plain functions) can wait for its
reply without blocking the reading of that reply.
"""

import concurrent.futures
import itertools
import json
import socket
import threading

MAX_LINE_BYTES = 16 * 1024 * 1024


class ProtocolError(Exception):
    """The agent sent something this helper cannot read."""


class CallError(Exception):
    """The agent refused a call; the message says why."""


class ConnectionLost(ConnectionError):
    """The agent closed the connection (it stopped, or it was killed)."""


class Connection:
    def __init__(self, path):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._rfile = self._sock.makefile("rb")
        self._write_lock = threading.Lock()
        self._pending = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._lost = False

    def send(self, message):
        """Sends one message. Raises ValueError if it is not JSON or too long."""
        try:
            text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
        except ValueError as exc:
            raise ValueError(f"cannot send to the agent, the data is not valid JSON: {exc}") from None
        data = text.encode("utf-8") + b"\n"
        if len(data) > MAX_LINE_BYTES:
            raise ValueError(f"cannot send {len(data)} bytes to the agent: the limit is {MAX_LINE_BYTES} per message")
        with self._write_lock:
            self._sock.sendall(data)

    def read_message(self):
        """Blocks for the next message; None when the agent closed the connection."""
        line = self._rfile.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        if not line.endswith(b"\n") and len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"the agent sent a line longer than {MAX_LINE_BYTES} bytes")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"the agent sent a line that is not JSON ({exc}): {line[:200]!r}") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"the agent sent a line that is not a JSON object: {line[:200]!r}")
        return message

    def start_reader(self, deliver):
        """Reads on a thread from now on: replies settle their calls, every other message
        goes to ``deliver(message)``, and ``deliver(None)`` says the connection is gone."""

        def read_forever():
            reason = "the agent closed the connection"
            try:
                while True:
                    message = self.read_message()
                    if message is None:
                        break
                    if message.get("type") == "reply":
                        self._settle(message)
                    else:
                        deliver(message)
            except (OSError, ProtocolError) as exc:
                reason = f"the connection to the agent broke: {exc}"
            self._lost = True
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            for future in pending.values():
                future.set_exception(ConnectionLost(reason))
            deliver(None)

        threading.Thread(target=read_forever, name="armada-worker-reader", daemon=True).start()

    def _settle(self, reply):
        with self._pending_lock:
            future = self._pending.pop(reply.get("id"), None)
        if future is not None:
            future.set_result(reply)

    def call(self, method, params):
        """Sends a call and blocks until the agent replies; returns its result or raises
        CallError. Safe from any thread."""
        if self._lost:
            raise ConnectionLost(f"cannot call {method}: the connection to the agent is gone")
        call_id = next(self._ids)
        future = concurrent.futures.Future()
        with self._pending_lock:
            self._pending[call_id] = future
        try:
            self.send({"type": "call", "id": call_id, "method": method, "params": params})
        except BaseException:
            with self._pending_lock:
                self._pending.pop(call_id, None)
            raise
        reply = future.result()
        if reply.get("ok"):
            return reply.get("result")
        raise CallError(f"{method}: {reply.get('error') or 'refused by the agent'}")

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
