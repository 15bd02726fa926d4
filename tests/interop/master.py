"""IEC 104 master peer for the interop tests, built on c104 (lib60870-C).

c104 handles the link layer (STARTDT, k/w, t1-t3, reconnect); every frame the
station sends is also captured raw through ``Connection.on_receive_raw`` and
decoded with ``asdu.py``, so tests can assert on the exact COT, P/N bit, type,
quality and time tag on the wire rather than on c104's interpretation.
"""

# No `from __future__ import annotations` here: c104 checks the callbacks' annotations
# as real types and rejects the string form.

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import c104

import asdu as A

TICK_RATE_MS = 50  # c104 2.2.1 refuses anything below 50
OPEN = c104.ConnectionState.OPEN
OPEN_MUTED = c104.ConnectionState.OPEN_MUTED

_C104_TYPES = {
    A.C_SC_NA_1: c104.Type.C_SC_NA_1,
    A.C_SE_NB_1: c104.Type.C_SE_NB_1,
    A.C_SE_NC_1: c104.Type.C_SE_NC_1,
    51: c104.Type.C_BO_NA_1,
}

_COT = {
    A.COT_ACTIVATION: c104.Cot.ACTIVATION,
    A.COT_DEACTIVATION: c104.Cot.DEACTIVATION,
    A.COT_SPONTANEOUS: c104.Cot.SPONTANEOUS,
    A.COT_REQUEST: c104.Cot.REQUEST,
}


@dataclass
class Received:
    t: float
    apdu: A.Apdu
    asdu: Optional[A.Asdu]


@dataclass
class InterrogationResult:
    """Everything the station sent for one GI / counter interrogation."""
    actcon: Optional[A.Asdu]
    actterm: Optional[A.Asdu]
    data: list[A.Asdu]
    frames: list[A.Asdu]  # all ASDUs in between, in order

    @property
    def objects(self) -> dict[int, tuple[int, A.InfoObject]]:
        """ioa -> (type id, object). Duplicate IOAs raise."""
        out: dict[int, tuple[int, A.InfoObject]] = {}
        for a in self.data:
            for o in a.objects:
                assert o.ioa not in out, f"IOA {o.ioa} sent twice in one interrogation"
                out[o.ioa] = (a.type_id, o)
        return out


@dataclass
class CommandResult:
    type_id: int
    ioa: int
    ca: int
    transmit_ok: bool
    responses: list[A.Asdu] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # what c104 put on the wire meanwhile

    def with_cot(self, cot: int) -> list[A.Asdu]:
        return [a for a in self.responses if a.cot == cot]

    @property
    def confirmations(self) -> list[A.Asdu]:
        return self.with_cot(A.COT_ACTCON)

    @property
    def terminations(self) -> list[A.Asdu]:
        return self.with_cot(A.COT_ACTTERM)

    @property
    def positive(self) -> bool:
        """Every confirmation positive, at least one, and terminated."""
        c = self.confirmations
        return bool(c) and not any(a.negative for a in c) and bool(self.terminations)

    def describe(self) -> str:
        sent = [A.parse_apdu(b) for b in self.sent]
        return (f"command t={self.type_id} ioa={self.ioa} ca={self.ca} "
                f"(c104 transmit -> {self.transmit_ok}): received {self.responses!r}; "
                f"c104 sent {sent!r}")


class Master:
    """One c104 client with one connection to the station under test."""

    def __init__(self, port: int, host: str = "127.0.0.1", ca: int = 1,
                 init=c104.Init.NONE, command_timeout_ms: int = 3000, name: str = "master",
                 w: Optional[int] = None, t2_s: Optional[int] = None):
        self.name = name
        self.host = host
        self.port = port
        self.ca = ca
        self.frames: list[Received] = []
        self.states: list[tuple[float, c104.ConnectionState]] = []
        self.sent: list[tuple[float, bytes]] = []
        self._cond = threading.Condition()
        self.client = c104.Client(tick_rate_ms=TICK_RATE_MS, command_timeout_ms=command_timeout_ms)
        self.client.on_new_station(callable=self._on_new_station)
        self.client.on_new_point(callable=self._on_new_point)
        self.conn = self.client.add_connection(ip=host, port=port, init=init)
        assert self.conn is not None, "c104 refused add_connection"
        # c104 2.2.1 defaults: k 12, w 8, t1 15 s, t2 10 s. Against a station configured
        # with a short t1, the master must acknowledge sooner (w = 1: at once).
        if w is not None:
            self.conn.protocol_parameters.receive_window_size = w
        if t2_s is not None:
            self.conn.protocol_parameters.confirm_interval = t2_s
        self.conn.on_receive_raw(callable=self._on_raw)
        self.conn.on_send_raw(callable=self._on_send_raw)
        self.conn.on_state_change(callable=self._on_state)
        self.station = self.conn.add_station(common_address=ca)
        self._started = False

    # ---- c104 callbacks (exact type annotations are required by c104) ----
    def _on_raw(self, connection: c104.Connection, data: bytes) -> None:
        try:
            ap = A.parse_apdu(bytes(data))
            asd = A.parse_asdu(ap.asdu) if ap.kind == "I" else None
        except Exception as e:  # keep the frame, let the test see it
            ap = A.Apdu("?", bytes(data))
            asd = None
            print(f"[{self.name}] undecodable frame {bytes(data).hex()}: {e}")
        with self._cond:
            self.frames.append(Received(time.monotonic(), ap, asd))
            self._cond.notify_all()

    def _on_send_raw(self, connection: c104.Connection, data: bytes) -> None:
        with self._cond:
            self.sent.append((time.monotonic(), bytes(data)))

    def _on_state(self, connection: c104.Connection, state: c104.ConnectionState) -> None:
        with self._cond:
            self.states.append((time.monotonic(), state))
            self._cond.notify_all()

    def _on_new_station(self, client: c104.Client, connection: c104.Connection,
                        common_address: int) -> None:
        connection.add_station(common_address=common_address)

    def _on_new_point(self, client: c104.Client, station: c104.Station, io_address: int,
                      point_type: c104.Type) -> None:
        station.add_point(io_address=io_address, type=point_type)

    # ---- connection ----
    def start(self, timeout: float = 10.0) -> "Master":
        if not self._started:
            self.client.start()
            self._started = True
        self.wait_open(timeout)
        return self

    def start_nowait(self) -> None:
        if not self._started:
            self.client.start()
            self._started = True

    def wait_open(self, timeout: float = 10.0) -> None:
        """Wait for OPEN; unmute (send STARTDT) if c104 stays OPEN_MUTED (PEERS.md quirk)."""
        if not self.wait_until(lambda: self.conn.state == OPEN, timeout):
            raise AssertionError(f"[{self.name}] connection to {self.host}:{self.port} not OPEN "
                                 f"after {timeout}s (state {self.conn.state})")

    def wait_until(self, cond: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll ``cond`` until true (True) or timeout (False), unmuting a stuck OPEN_MUTED."""
        deadline = time.monotonic() + timeout
        muted_since: Optional[float] = None
        while time.monotonic() < deadline:
            if cond():
                return True
            st = self.conn.state
            if st == OPEN_MUTED:
                now = time.monotonic()
                if muted_since is None:
                    muted_since = now
                elif now - muted_since > 0.5:
                    self.conn.unmute()
                    muted_since = now
            else:
                muted_since = None
            time.sleep(0.05)
        return cond()

    @property
    def is_open(self) -> bool:
        return self.conn.state == OPEN

    def state_mark(self) -> int:
        with self._cond:
            return len(self.states)

    def wait_reconnected(self, since: int, timeout: float = 20.0) -> None:
        """Wait until the connection dropped after state mark ``since`` and is OPEN again."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(s not in (OPEN, OPEN_MUTED) for _, s in self.states[since:]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"[{self.name}] connection never dropped; states "
                                         f"{[s for _, s in self.states[since:]]}")
                self._cond.wait(left)
        self.wait_open(max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        try:
            self.client.stop()
        except Exception as e:
            print(f"[{self.name}] stop: {e}")

    # ---- captured frames ----
    def mark(self) -> int:
        with self._cond:
            return len(self.frames)

    def asdus(self, since: int = 0) -> list[A.Asdu]:
        with self._cond:
            return [r.asdu for r in self.frames[since:] if r.asdu is not None]

    def wait_for(self, pred: Callable[[A.Asdu], bool], since: int = 0,
                 timeout: float = 5.0) -> Optional[A.Asdu]:
        """First ASDU after ``since`` that satisfies pred, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.frames):
                    a = self.frames[i].asdu
                    i += 1
                    if a is not None and pred(a):
                        return a
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def index_after(self, target: A.Asdu) -> int:
        """Mark just after a received ASDU (for waiting on what follows it)."""
        with self._cond:
            for i, r in enumerate(self.frames):
                if r.asdu is target:
                    return i + 1
            return len(self.frames)

    def spontaneous(self, ioa: int, since: int = 0, timeout: float = 5.0) -> Optional[A.InfoObject]:
        a = self.wait_for(lambda a: a.cot == A.COT_SPONTANEOUS and ioa in a.ioas, since, timeout)
        if a is None:
            return None
        return next(o for o in a.objects if o.ioa == ioa)

    def spontaneous_asdu(self, ioa: int, since: int = 0, timeout: float = 5.0) -> Optional[A.Asdu]:
        return self.wait_for(lambda a: a.cot == A.COT_SPONTANEOUS and ioa in a.ioas, since, timeout)

    # ---- interrogations ----
    def _interrogation(self, type_id: int, send: Callable[[], object], ca: int,
                       timeout: float) -> InterrogationResult:
        m = self.mark()
        send()

        def done(a: A.Asdu) -> bool:
            return a.type_id == type_id and (
                a.cot == A.COT_ACTTERM or (a.cot == A.COT_ACTCON and a.negative)
                or a.cot in (A.COT_UNKNOWN_TYPE, A.COT_UNKNOWN_COT, A.COT_UNKNOWN_CA,
                             A.COT_UNKNOWN_IOA))

        end = self.wait_for(done, m, timeout)
        frames = self.asdus(m)
        if end is not None:
            frames = frames[: frames.index(end) + 1]
        actcon = next((a for a in frames if a.type_id == type_id and a.cot == A.COT_ACTCON), None)
        actterm = next((a for a in frames if a.type_id == type_id and a.cot == A.COT_ACTTERM), None)
        data_cot = A.COT_INROGEN if type_id == A.C_IC_NA_1 else A.COT_REQCOGEN
        data = [a for a in frames if a.cot == data_cot and a.type_id != type_id]
        return InterrogationResult(actcon, actterm, data, frames)

    def gi(self, ca: Optional[int] = None, timeout: float = 10.0,
           cause: int = A.COT_ACTIVATION) -> InterrogationResult:
        ca = self.ca if ca is None else ca
        return self._interrogation(
            A.C_IC_NA_1,
            lambda: self.conn.interrogation(common_address=ca, cause=_COT[cause],
                                            qualifier=c104.Qoi.STATION, wait_for_response=False),
            ca, timeout)

    def ci(self, ca: Optional[int] = None, timeout: float = 10.0) -> InterrogationResult:
        ca = self.ca if ca is None else ca
        return self._interrogation(
            A.C_CI_NA_1,
            lambda: self.conn.counter_interrogation(common_address=ca, cause=c104.Cot.ACTIVATION,
                                                    qualifier=c104.Rqt.GENERAL,
                                                    freeze=c104.Frz.READ,
                                                    wait_for_response=False),
            ca, timeout)

    def clock_sync(self, ca: Optional[int] = None, timeout: float = 5.0) -> Optional[A.Asdu]:
        ca = self.ca if ca is None else ca
        m = self.mark()
        self.conn.clock_sync(common_address=ca, wait_for_response=False)
        return self.wait_for(lambda a: a.type_id == A.C_CS_NA_1 and a.cot != A.COT_ACTIVATION,
                             m, timeout)

    # ---- commands ----
    def _execute_seen(self, sent_since: int, recv_since: int, type_id: int, ioa: int,
                      wait: float = 0.5) -> bool:
        """Did c104 send the execute (judged by its sent frames or an execute
        confirmation from the station)? Polls ``wait`` s for late callbacks."""
        deadline = time.monotonic() + wait
        while True:
            if self._sent_execute(sent_since, type_id, ioa):
                return True
            if any(a.type_id == type_id and ioa in a.ioas and a.cot in (A.COT_ACTCON,
                                                                       A.COT_ACTTERM)
                   and not a.objects[0].select for a in self.asdus(recv_since)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _sent_execute(self, since: int, type_id: int, ioa: int) -> bool:
        with self._cond:
            frames = [b for _, b in self.sent[since:]]
        for b in frames:
            ap = A.parse_apdu(b)
            if ap.kind != "I":
                continue
            a = A.parse_asdu(ap.asdu)
            if a.type_id == type_id and a.ioas == [ioa] and not a.objects[0].select:
                return True
        return False

    def command(self, type_id: int, ioa: int, value, select: bool = False,
                ca: Optional[int] = None, cause: int = A.COT_ACTIVATION,
                settle: float = 0.5, term_timeout: float = 5.0) -> CommandResult:
        """Send one command through c104 (select + execute when ``select``).

        Returns every response the station sent for that type and IOA. After the
        last confirmation we wait ``term_timeout`` for the activation termination
        if the execute was confirmed positively, else ``settle`` for stray frames.
        """
        ca = self.ca if ca is None else ca
        station = self.conn.get_station(common_address=ca) or self.conn.add_station(common_address=ca)
        point = station.get_point(io_address=ioa)
        if point is None or point.type != _C104_TYPES[type_id]:
            if point is not None:
                station.remove_point(io_address=ioa)
            point = station.add_point(io_address=ioa, type=_C104_TYPES[type_id])
        point.command_mode = (c104.CommandMode.SELECT_AND_EXECUTE if select
                              else c104.CommandMode.DIRECT)
        if type_id == A.C_SE_NB_1:
            point.value = c104.Int16(int(value))
        elif type_id == A.C_SE_NC_1:
            point.value = float(value)
        elif type_id == A.C_SC_NA_1:
            point.value = bool(value)
        else:
            point.value = value
        m = self.mark()
        with self._cond:
            s0 = len(self.sent)
        ok = bool(point.transmit(cause=_COT[cause]))
        if select and not self._execute_seen(s0, m, type_id, ioa):
            # c104 2.2.1 race (Connection::awaitCommandSuccess waits on its condition
            # variable without checking the predicate first): when the station confirms
            # the select before c104 starts waiting, the wake-up is lost, transmit()
            # times out and the execute is never sent. If the station did confirm the
            # select positively, send the execute ourselves: same type, IOA and value.
            sel_ok = self.wait_for(lambda a: a.type_id == type_id and ioa in a.ioas
                                   and a.cot == A.COT_ACTCON and not a.negative
                                   and a.objects[0].select, m, 0.1)
            if sel_ok is not None:
                point.command_mode = c104.CommandMode.DIRECT
                ok = bool(point.transmit(cause=_COT[cause]))

        def mine(a: A.Asdu) -> bool:
            return a.type_id == type_id and ioa in a.ioas and a.cot != cause

        def finished() -> bool:
            rs = [a for a in self.asdus(m) if mine(a)]
            if any(a.cot == A.COT_ACTTERM for a in rs):
                return True
            if any(a.negative or a.cot >= A.COT_UNKNOWN_TYPE for a in rs):
                return True
            return False

        deadline = time.monotonic() + term_timeout
        while time.monotonic() < deadline and not finished():
            self.wait_for(mine, self.mark(), 0.1)
        time.sleep(settle)  # catch a late duplicate or stray confirmation
        with self._cond:
            sent = [b for _, b in self.sent[s0:]]
        return CommandResult(type_id, ioa, ca, ok, [a for a in self.asdus(m) if mine(a)], sent)
