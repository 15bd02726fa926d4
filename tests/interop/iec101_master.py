"""IEC 60870-5-101 master peer for the interop tests: drives ``iec101-master`` (lib60870-C's
CS101_Master, tests/interop/iec101/master.c) over a pseudo-terminal.

The binary comes from ``IEC101_MASTER_BIN`` (tests/run.sh sets it after running
tests/interop/iec101/build.sh), default ``tests/.work/lib60870/iec101-master``.

The C master prints one JSON object per line; every line is kept in ``events`` (in order)
and tests wait on them. Commands are numbered 1, 2, ... in the order written; the C side
queues them and hands the next one to lib60870 only when the link layer has no message
pending (PEERS.md: the unbalanced master holds one outgoing message at a time), so the
wrapper may write commands back to back. ``{"event":"ok","id":N}`` means "handed to the
link layer", ``done`` (unbalanced only) means "the link layer let go of it (ACK or gave up)";
the application answers (ACTCON/ACTTERM/data) arrive as ``asdu`` events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "tests" / ".work" / "lib60870" / "iec101-master"

# type ids
M_SP_NA_1, M_DP_NA_1, M_ME_NC_1, M_IT_NA_1 = 1, 3, 13, 15
M_SP_TB_1, M_DP_TB_1, M_ME_TF_1, M_IT_TB_1 = 30, 31, 36, 37
C_SC_NA_1, C_DC_NA_1, C_SE_NB_1, C_SE_NC_1 = 45, 46, 49, 50
C_SC_TA_1, C_SE_TB_1, C_SE_TC_1 = 58, 62, 63
M_EI_NA_1, C_IC_NA_1, C_CI_NA_1, C_RD_NA_1, C_CS_NA_1 = 70, 100, 101, 102, 103
# causes of transmission
COT_SPONTANEOUS, COT_REQUEST, COT_ACTIVATION, COT_ACTCON, COT_ACTTERM = 3, 5, 6, 7, 10
COT_INROGEN, COT_REQCOGEN = 20, 37
COT_UNKNOWN_TYPE, COT_UNKNOWN_COT, COT_UNKNOWN_CA, COT_UNKNOWN_IOA = 44, 45, 46, 47
# link layer function codes (primary -> secondary)
FC_REQUEST_CLASS_1, FC_REQUEST_CLASS_2 = 10, 11


def binary() -> str:
    return os.environ.get("IEC101_MASTER_BIN") or str(DEFAULT_BIN)


class Iec101Error(AssertionError):
    pass


@dataclass
class Asdu:
    """One ``{"event":"asdu"}`` line."""
    type_id: int
    cot: int
    negative: bool
    ca: int
    objects: list[dict[str, Any]]
    raw: dict[str, Any]
    index: int  # position in Iec101Master.events

    @property
    def ioas(self) -> list[int]:
        return [o["ioa"] for o in self.objects]

    def obj(self, ioa: int) -> Optional[dict[str, Any]]:
        return next((o for o in self.objects if o["ioa"] == ioa), None)

    def __repr__(self) -> str:
        objs = ", ".join(f"{o.get('ioa')}={o.get('value')!r}/q{o.get('quality', '-')}"
                         for o in self.objects[:6])
        more = f" +{len(self.objects) - 6}" if len(self.objects) > 6 else ""
        return (f"<ASDU t={self.type_id} cot={self.cot}{' NEG' if self.negative else ''} "
                f"ca={self.ca} [{objs}{more}]>")


@dataclass
class InterrogationResult:
    actcon: Optional[Asdu]
    actterm: Optional[Asdu]
    data: list[Asdu]
    frames: list[Asdu]

    @property
    def objects(self) -> dict[int, tuple[int, dict[str, Any]]]:
        """ioa -> (type id, object). Duplicate IOAs raise."""
        out: dict[int, tuple[int, dict[str, Any]]] = {}
        for a in self.data:
            for o in a.objects:
                assert o["ioa"] not in out, f"IOA {o['ioa']} sent twice in one interrogation"
                out[o["ioa"]] = (a.type_id, o)
        return out

    def describe(self) -> str:
        return f"actcon={self.actcon!r} actterm={self.actterm!r} frames={self.frames!r}"


@dataclass
class CommandResult:
    type_id: int
    ioa: int
    responses: list[Asdu] = field(default_factory=list)

    def with_cot(self, cot: int) -> list[Asdu]:
        return [a for a in self.responses if a.cot == cot]

    @property
    def confirmations(self) -> list[Asdu]:
        return self.with_cot(COT_ACTCON)

    @property
    def terminations(self) -> list[Asdu]:
        return self.with_cot(COT_ACTTERM)

    @property
    def positive(self) -> bool:
        c = self.confirmations
        return bool(c) and not any(a.negative for a in c) and bool(self.terminations)

    def describe(self) -> str:
        return f"command t={self.type_id} ioa={self.ioa}: received {self.responses!r}"


class Iec101Master:
    """One iec101-master process on one end of a serial line."""

    def __init__(self, device: str, *, mode: str = "unbalanced", link_address: int = 1,
                 link_address_size: int = 1, own_address: Optional[int] = None, ca: int = 1,
                 ca_size: int = 1, cot_size: int = 1, ioa_size: int = 2, baud: int = 9600,
                 parity: str = "E", poll: bool = True, poll_interval_ms: int = 20,
                 ack_timeout_ms: int = 500, repeat_timeout_ms: int = 2000,
                 trace: bool = False, name: str = "iec101", workdir: Optional[Path] = None,
                 extra_args: Optional[list[str]] = None):
        self.device = device
        self.mode = mode
        self.ca = ca
        self.name = name
        self.poll = poll and mode == "unbalanced"
        self.args = [binary(), "--device", device, "--mode", mode,
                     "--baud", str(baud), "--parity", parity[:1].upper(),
                     "--link-address", str(link_address),
                     "--link-address-size", str(link_address_size),
                     # balanced: lib60870 ignores the address of frames it receives and
                     # answers with its own; by default use the station's address both ways.
                     "--own-address", str(link_address if own_address is None else own_address),
                     "--ca-size", str(ca_size), "--cot-size", str(cot_size),
                     "--ioa-size", str(ioa_size),
                     "--poll-interval-ms", str(poll_interval_ms),
                     "--ack-timeout-ms", str(ack_timeout_ms),
                     "--repeat-timeout-ms", str(repeat_timeout_ms)]
        if self.poll:
            self.args.append("--poll")
        if trace:
            self.args.append("--trace")
        self.args += extra_args or []
        self.workdir = Path(workdir) if workdir else None
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._next_id = 0
        self._write_lock = threading.Lock()
        self.proc: Optional[subprocess.Popen] = None
        self._stderr = None
        self._reader: Optional[threading.Thread] = None

    # ---- process ----
    def start(self) -> "Iec101Master":
        b = self.args[0]
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            raise Iec101Error(f"{b} not found: run tests/interop/iec101/build.sh "
                              "or set IEC101_MASTER_BIN")
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._stderr = open(self.workdir / f"{self.name}.stderr", "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr or subprocess.DEVNULL,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-reader",
                                        daemon=True)
        self._reader.start()
        time.sleep(0.05)
        if self.proc.poll() is not None:
            raise Iec101Error(f"iec101-master exited with {self.proc.returncode}: "
                              f"{' '.join(self.args)}\n{self.stderr_text()}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "unparsed", "line": line}
            ev["t"] = time.monotonic()
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self.events.append({"event": "exit", "t": time.monotonic()})
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._write("quit")
            except Exception:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(2)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except Exception:
                pass
        if self._reader is not None:
            self._reader.join(2)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_text(self) -> str:
        if self.workdir is None:
            return ""
        try:
            return (self.workdir / f"{self.name}.stderr").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def transcript(self, last: int = 200) -> str:
        with self._cond:
            evs = [e for e in self.events if e.get("event") != "raw"][-last:]
        return "\n".join(json.dumps({k: v for k, v in e.items() if k != "t"}) for e in evs)

    # ---- commands ----
    def _write(self, line: str) -> int:
        assert self.proc is not None and self.proc.stdin is not None, "not started"
        with self._write_lock:
            self._next_id += 1
            cid = self._next_id
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        return cid

    def send(self, line: str, timeout: float = 20.0) -> dict[str, Any]:
        """Write one command and wait until the C master took it (ok) or refused it (error).
        Raises on error or timeout."""
        m = self.mark()
        cid = self._write(line)
        ev = self.wait_event(lambda e: e.get("event") in ("ok", "error") and e.get("id") == cid,
                             m, timeout)
        if ev is None:
            raise Iec101Error(f"[{self.name}] command {line!r} (id {cid}) not taken within "
                              f"{timeout}s\n{self.transcript(40)}")
        if ev["event"] == "error":
            raise Iec101Error(f"[{self.name}] command {line!r} refused: {ev.get('error')}")
        return ev

    def raw(self, data: bytes | str) -> None:
        """Write raw bytes onto the line (between the master's own frames)."""
        hexstr = data.hex() if isinstance(data, (bytes, bytearray)) else data.replace(" ", "")
        self.send(f"raw {hexstr}")

    def start_polling(self) -> None:
        self.send("poll")

    def stop_polling(self) -> None:
        self.send("stop-poll")

    # ---- events ----
    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_event(self, pred: Callable[[dict[str, Any]], bool], since: int = 0,
                   timeout: float = 10.0) -> Optional[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def _asdu(self, i: int, e: dict[str, Any]) -> Asdu:
        return Asdu(e["type"], e["cot"], bool(e["negative"]), e["ca"], e.get("objects", []),
                    e, i)

    def asdus(self, since: int = 0) -> list[Asdu]:
        with self._cond:
            return [self._asdu(i, e) for i, e in enumerate(self.events)
                    if i >= since and e.get("event") == "asdu"]

    def wait_for(self, pred: Callable[[Asdu], bool], since: int = 0,
                 timeout: float = 10.0) -> Optional[Asdu]:
        """First ASDU after event mark ``since`` that satisfies ``pred``, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    if e.get("event") == "asdu":
                        a = self._asdu(i, e)
                        if pred(a):
                            return a
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def link_state(self) -> Optional[str]:
        with self._cond:
            for e in reversed(self.events):
                if e.get("event") == "link":
                    return e["state"]
        return None

    def wait_link(self, state: str = "available", timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.link_state() == state:
                return
            m = self.mark()
            self.wait_event(lambda e: e.get("event") in ("link", "exit"), m,
                            max(0.05, min(0.5, deadline - time.monotonic())))
            if not self.alive():
                break
        raise Iec101Error(f"[{self.name}] link not {state} within {timeout}s (now "
                          f"{self.link_state()})\n{self.transcript(40)}")

    def spontaneous(self, ioa: int, since: int = 0, timeout: float = 10.0,
                    pred: Callable[[dict[str, Any]], bool] = lambda o: True
                    ) -> Optional[dict[str, Any]]:
        a = self.wait_for(lambda a: a.cot == COT_SPONTANEOUS and any(
            o["ioa"] == ioa and pred(o) for o in a.objects), since, timeout)
        return None if a is None else next(o for o in a.objects if o["ioa"] == ioa and pred(o))

    def request_class_of(self, asdu: Asdu) -> Optional[int]:
        """With ``trace=True``: the function code of the master's request (10 = class 1,
        11 = class 2, 3 = user data...) that the frame carrying ``asdu`` answered: the last
        frame the master sent before the received frame that carried it."""
        with self._cond:
            evs = self.events[: asdu.index]
        rx = None
        for j in range(len(evs) - 1, -1, -1):
            e = evs[j]
            if e.get("event") == "raw" and e.get("dir") == "rx" and rx is None:
                rx = j
            elif rx is not None and e.get("event") == "raw" and e.get("dir") == "tx":
                b = bytes.fromhex(e["hex"])
                if b[:1] == b"\x10" and len(b) >= 2:
                    return b[1] & 0x0F
                if b[:1] == b"\x68" and len(b) >= 5:
                    return b[4] & 0x0F
                return None
        return None

    # ---- application services ----
    def _interrogation(self, line: str, type_id: int, data_cot: int,
                       timeout: float) -> InterrogationResult:
        m = self.mark()
        self.send(line)

        def done(a: Asdu) -> bool:
            return a.type_id == type_id and (
                a.cot == COT_ACTTERM or (a.cot == COT_ACTCON and a.negative)
                or a.cot in (COT_UNKNOWN_TYPE, COT_UNKNOWN_COT, COT_UNKNOWN_CA, COT_UNKNOWN_IOA))

        end = self.wait_for(done, m, timeout)
        frames = self.asdus(m)
        if end is not None:
            frames = [a for a in frames if a.index <= end.index]
        actcon = next((a for a in frames if a.type_id == type_id and a.cot == COT_ACTCON), None)
        actterm = next((a for a in frames if a.type_id == type_id and a.cot == COT_ACTTERM), None)
        data = [a for a in frames if a.cot == data_cot and a.type_id != type_id]
        return InterrogationResult(actcon, actterm, data, frames)

    def gi(self, ca: Optional[int] = None, qoi: int = 20, timeout: float = 20.0
           ) -> InterrogationResult:
        ca = self.ca if ca is None else ca
        return self._interrogation(f"gi {ca} {qoi}", C_IC_NA_1, qoi, timeout)

    def ci(self, ca: Optional[int] = None, qcc: int = 5, timeout: float = 20.0
           ) -> InterrogationResult:
        ca = self.ca if ca is None else ca
        rqt = qcc & 0x3F  # 5 general -> COT 37; group 1-4 -> COT 38-41
        data_cot = COT_REQCOGEN + rqt if rqt in (1, 2, 3, 4) else COT_REQCOGEN
        return self._interrogation(f"ci {ca} {qcc}", C_CI_NA_1, data_cot, timeout)

    def clock_sync(self, ca: Optional[int] = None, timeout: float = 10.0) -> Optional[Asdu]:
        ca = self.ca if ca is None else ca
        m = self.mark()
        self.send(f"clock {ca}")
        return self.wait_for(lambda a: a.type_id == C_CS_NA_1 and a.cot != COT_ACTIVATION,
                             m, timeout)

    def read(self, ioa: int, ca: Optional[int] = None, timeout: float = 10.0) -> Optional[Asdu]:
        ca = self.ca if ca is None else ca
        m = self.mark()
        self.send(f"read {ca} {ioa}")
        return self.wait_for(lambda a: ioa in a.ioas and a.cot in (
            COT_REQUEST, COT_UNKNOWN_TYPE, COT_UNKNOWN_COT, COT_UNKNOWN_CA, COT_UNKNOWN_IOA)
            or (a.type_id == C_RD_NA_1 and a.cot != COT_ACTIVATION), m, timeout)

    def command(self, kind: str, ioa: int, value, select: bool = False,
                ca: Optional[int] = None, with_time: bool = False,
                term_timeout: float = 15.0, settle: float = 0.3) -> CommandResult:
        """``kind``: sc | setpoint-float | setpoint-scaled. With ``select``: select, wait for
        its positive ACTCON, then execute (same type, IOA, value)."""
        ca = self.ca if ca is None else ca
        type_id = {"sc": C_SC_TA_1 if with_time else C_SC_NA_1,
                   "setpoint-float": C_SE_TC_1 if with_time else C_SE_NC_1,
                   "setpoint-scaled": C_SE_TB_1 if with_time else C_SE_NB_1}[kind]
        if kind == "sc":
            v = "1" if value else "0"
        elif kind == "setpoint-scaled":
            v = str(int(value))
        else:
            v = repr(float(value))
        suffix = " time" if with_time else ""
        m = self.mark()

        def mine(a: Asdu) -> bool:
            return a.type_id == type_id and ioa in a.ioas and a.cot != COT_ACTIVATION

        if select:
            self.send(f"{kind} {ca} {ioa} {v} select{suffix}")
            sel = self.wait_for(lambda a: mine(a) and a.cot != COT_ACTTERM, m, term_timeout)
            if sel is None or sel.negative or sel.cot != COT_ACTCON:
                time.sleep(settle)
                return CommandResult(type_id, ioa, [a for a in self.asdus(m) if mine(a)])
        self.send(f"{kind} {ca} {ioa} {v}{suffix}")

        def finished() -> bool:
            rs = [a for a in self.asdus(m) if mine(a)]
            execs = [a for a in rs if not a.objects or not a.objects[0].get("select")]
            return any(a.cot == COT_ACTTERM for a in execs) or any(
                a.negative or a.cot >= COT_UNKNOWN_TYPE for a in execs)

        deadline = time.monotonic() + term_timeout
        while time.monotonic() < deadline and not finished():
            self.wait_for(mine, self.mark(), 0.1)
        time.sleep(settle)
        return CommandResult(type_id, ioa, [a for a in self.asdus(m) if mine(a)])

    def single_command(self, ioa: int, on: bool, **kw) -> CommandResult:
        return self.command("sc", ioa, on, **kw)

    def setpoint_float(self, ioa: int, value: float, **kw) -> CommandResult:
        return self.command("setpoint-float", ioa, value, **kw)

    def setpoint_scaled(self, ioa: int, value: int, **kw) -> CommandResult:
        return self.command("setpoint-scaled", ioa, value, **kw)
