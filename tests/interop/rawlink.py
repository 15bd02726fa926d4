"""A hand-driven IEC 60870-5-104 link over a plain TCP socket.

Used where a test must misbehave on purpose (no acknowledgements, frames before
STARTDT, garbage) or control N(S)/N(R) exactly. Nothing here is automatic
unless asked: ``auto_ack`` sends an S-frame for received I-frames, and TESTFR
act is answered only while ``answer_testfr`` is set.
"""

from __future__ import annotations

import socket
import time
from typing import Optional

import asdu as A


class Closed(Exception):
    """The peer closed (or reset) the connection."""


class RawLink:
    def __init__(self, port: int, host: str = "127.0.0.1", connect_timeout: float = 5.0,
                 auto_ack: bool = False, answer_testfr: bool = True, w: int = 8):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.ns = 0          # next send sequence number
        self.nr = 0          # next expected receive sequence number
        self.unacked = 0     # I-frames received and not yet acknowledged
        self.auto_ack = auto_ack
        self.answer_testfr = answer_testfr
        self.w = w
        self.closed = False
        self.closed_at: Optional[float] = None
        self.received: list[tuple[float, A.Apdu]] = []

    # ---- sending ----
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_u(self, func: int) -> None:
        self.send_raw(A.u_frame(func))

    def send_s(self, nr: Optional[int] = None) -> None:
        self.send_raw(A.s_frame(self.nr if nr is None else nr))
        if nr is None:
            self.unacked = 0

    def send_asdu(self, asdu_bytes: bytes) -> None:
        self.send_raw(A.i_frame(self.ns, self.nr, asdu_bytes))
        self.ns = (self.ns + 1) % 32768
        self.unacked = 0  # our N(R) acknowledges everything received so far

    # ---- receiving ----
    def _fill(self, timeout: float) -> None:
        if self.closed:
            raise Closed()
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            data = b""
        if not data:
            self.closed = True
            self.closed_at = time.monotonic()
            raise Closed()
        self.buf.extend(data)

    def recv(self, timeout: float = 5.0) -> Optional[A.Apdu]:
        """Next APDU, None on timeout; raises Closed when the peer closed."""
        deadline = time.monotonic() + timeout
        while True:
            frames = A.split_apdus(self.buf) if len(self.buf) >= 2 else []
            if frames:
                # put back all but the first
                rest = b"".join(frames[1:])
                self.buf[0:0] = rest
                return self._handle(A.parse_apdu(frames[0]))
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def _handle(self, ap: A.Apdu) -> A.Apdu:
        self.received.append((time.monotonic(), ap))
        if ap.kind == "I":
            self.nr = (ap.ns + 1) % 32768
            self.unacked += 1
            if self.auto_ack and self.unacked >= max(1, self.w // 2):
                self.send_s()
        elif ap.kind == "U" and ap.ufunc == A.TESTFR_ACT and self.answer_testfr:
            self.send_u(A.TESTFR_CON)
        return ap

    def collect(self, duration: float) -> list[A.Apdu]:
        """Everything received within ``duration`` seconds (stops early on close)."""
        out = []
        deadline = time.monotonic() + duration
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ap = self.recv(left)
                if ap is not None:
                    out.append(ap)
        except Closed:
            pass
        if self.auto_ack and self.unacked and not self.closed:
            self.send_s()
        return out

    def expect(self, pred, timeout: float = 5.0) -> A.Apdu:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("expected frame not received in time; got "
                                     f"{[a for _, a in self.received]}")
            ap = self.recv(left)
            if ap is not None and pred(ap):
                return ap

    def startdt(self, timeout: float = 5.0) -> None:
        self.send_u(A.STARTDT_ACT)
        self.expect(lambda a: a.kind == "U" and a.ufunc == A.STARTDT_CON, timeout)

    def wait_closed(self, timeout: float) -> bool:
        """True when the peer closes within ``timeout`` (frames meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.recv(deadline - time.monotonic())
        except Closed:
            return True
        return False

    def asdus(self) -> list[A.Asdu]:
        return [A.parse_asdu(ap.asdu) for _, ap in self.received if ap.kind == "I"]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawLink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
