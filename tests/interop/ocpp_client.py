"""OCPP charger peers for the interop tests.

Two kinds of charger:

* ``charger(...)``: the Mobility House ``ocpp`` 2.1.0 ``ChargePoint`` (v16 / v201) on a
  ``websockets`` client connection. The library validates every CALL it sends *and* every
  CALLRESULT it receives against the official JSON schemas it ships; ``SimCharger.req``
  additionally turns a CALLERROR into an exception (``suppress=False``), so a passing
  ``await cp.req(...)`` means "schema-valid CALLRESULT".
* ``RawCharger``: OCPP-J frames written by hand, for the non-conforming input that the
  library refuses to send (legacy "14.4kW" values, garbage frames, binary frames).

Everything here is asyncio; tests run it with ``asyncio.run`` (see ``run_async``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import inspect
import itertools
import json
import uuid
from typing import Any, AsyncIterator, Optional, Sequence

import ocpp.messages
import ocpp.v16
import ocpp.v201
from ocpp.messages import MessageType, get_validator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"
# The version strings the ``ocpp`` library uses for its schema folders.
LIB_VERSION = {V16: "1.6", V201: "2.0.1"}

CALL, CALLRESULT, CALLERROR = 2, 3, 4


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def run_async(fn):
    """Decorator: run an ``async def`` test with ``asyncio.run`` (no pytest-asyncio needed).

    Fixtures still work: pytest reads the wrapped signature via ``__wrapped__``. Blocking
    helpers (daemon start/stop, c104 waits) must go through ``asyncio.to_thread`` inside.
    """
    assert inspect.iscoroutinefunction(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def now_iso(offset_s: float = 0.0) -> str:
    """RFC 3339 UTC with milliseconds and ``Z`` (valid for both schema versions)."""
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_s)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(s: str) -> dt.datetime:
    """An OCPP dateTime; must carry a zone (CSMS currentTime is UTC)."""
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"timestamp without zone: {s!r}"
    return t


def assert_recent(s: str, tolerance_s: float = 60.0) -> None:
    t = parse_time(s)
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((t - now).total_seconds()) < tolerance_s, f"time {s!r} is not close to now ({now})"


def validate_result(version: str, action: str, payload: Any) -> None:
    """Validate a CALLRESULT payload against the official schema shipped by ``ocpp``."""
    get_validator(MessageType.CallResult, action, LIB_VERSION[version]).validate(payload)


def validate_call(version: str, action: str, payload: Any) -> None:
    get_validator(MessageType.Call, action, LIB_VERSION[version]).validate(payload)


async def open_ws(url: str, subprotocols: Optional[Sequence[str]],
                  open_timeout: float = 10.0, ssl=None) -> ClientConnection:
    """A WebSocket client connection; ``subprotocols=None`` sends no Sec-WebSocket-Protocol.
    ``ssl``: an ``ssl.SSLContext`` for wss:// URLs (CA, optional client certificate).

    ``proxy=None``: never route 127.0.0.1 through an HTTP proxy from the environment.
    Client pings off: the daemon pings us (and a raw test must see only OCPP frames).
    """
    return await connect(url, subprotocols=list(subprotocols) if subprotocols else None,
                         ssl=ssl, proxy=None, open_timeout=open_timeout, ping_interval=None,
                         close_timeout=2, max_size=4 * 1024 * 1024)


async def handshake(url: str, subprotocols: Optional[Sequence[str]],
                    ssl=None) -> tuple[int, Optional[str]]:
    """Try a handshake: (101, chosen subprotocol) on success, else (HTTP status, None)."""
    try:
        ws = await open_ws(url, subprotocols, ssl=ssl)
    except InvalidStatus as e:
        return e.response.status_code, None
    try:
        return 101, ws.subprotocol
    finally:
        await ws.close()


# ---------------------------------------------------------------------------
# library charge points
# ---------------------------------------------------------------------------

class _Sim:
    """Mixin for the library ChargePoints: ``req`` = call with CALLERROR raised, and the
    schema validation of request and response left on (the library default)."""

    ws: ClientConnection
    version: str

    async def req(self, payload, timeout: Optional[float] = None):
        # suppress=False: a CALLERROR raises ocpp.exceptions.OCPPError instead of
        # silently returning None; skip_schema_validation=False validates the response.
        if timeout is not None:
            self._response_timeout = timeout
        return await self.call(payload, suppress=False, skip_schema_validation=False)


class Sim16(_Sim, ocpp.v16.ChargePoint):
    version = V16


class Sim201(_Sim, ocpp.v201.ChargePoint):
    version = V201


@contextlib.asynccontextmanager
async def charger(url: str, cp_id: str, version: str,
                  offer: Optional[Sequence[str]] = None,
                  response_timeout: float = 10.0, ssl=None,
                  classes: Optional[dict] = None) -> AsyncIterator[_Sim]:
    """A library charge point connected to ``url`` with subprotocol ``version``; ``classes``
    maps a version to the ChargePoint class to use instead of ``Sim16`` / ``Sim201``.

    ``cp.task`` is the receive loop; it ends (with ConnectionClosed) when the server closes.
    """
    ws = await open_ws(url, offer or [version], ssl=ssl)
    assert ws.subprotocol == version, \
        f"server chose {ws.subprotocol!r}, expected {version!r} (offered {offer or [version]})"
    cls = (classes or {V16: Sim16, V201: Sim201})[version]
    cp = cls(cp_id, ws, response_timeout=response_timeout)
    cp.ws = ws
    cp.task = asyncio.create_task(cp.start(), name=f"charger {cp_id}")
    try:
        yield cp
    finally:
        cp.task.cancel()
        with contextlib.suppress(BaseException):
            await cp.task
        with contextlib.suppress(Exception):
            await ws.close()


async def closed_by_server(cp: _Sim, timeout: float = 5.0) -> tuple[Optional[int], str]:
    """Wait until the server closes a library charge point's connection (its receive loop
    ends); (close code the server sent, reason)."""
    done, _ = await asyncio.wait({cp.task}, timeout=timeout)
    assert done, f"the server did not close {cp.id}'s connection within {timeout}s"
    exc = cp.task.exception() if not cp.task.cancelled() else None
    assert exc is None or isinstance(exc, ConnectionClosed), \
        f"{cp.id}: receive loop failed with {exc!r}, not a closed connection"
    rcvd = cp.ws.protocol.close_rcvd
    if rcvd is None:
        return None, "(no close frame: TCP closed)"
    return rcvd.code, rcvd.reason


def boot16(vendor: str = "interop", model: str = "sim16"):
    return ocpp.v16.call.BootNotification(charge_point_model=model, charge_point_vendor=vendor,
                                          firmware_version="1.0.0",
                                          charge_point_serial_number="SN-16")


def boot201(vendor: str = "interop", model: str = "sim201"):
    return ocpp.v201.call.BootNotification(
        charging_station={"model": model, "vendorName": vendor, "firmwareVersion": "1.0.0",
                          "serialNumber": "SN-201"},
        reason="PowerUp")


async def boot(cp: _Sim):
    """BootNotification (expects Accepted); returns the response."""
    if cp.version == V16:
        r = await cp.req(boot16())
    else:
        r = await cp.req(boot201())
    assert r.status == "Accepted", f"BootNotification answered {r}"
    return r


# ---------------------------------------------------------------------------
# raw OCPP-J
# ---------------------------------------------------------------------------

class RawCharger:
    """Hand-written OCPP-J frames on a plain WebSocket.

    Server CALLs that arrive while we wait for a response are recorded in ``server_calls``
    and answered with a CALLERROR NotImplemented, so the CSMS is never left waiting.
    Every text frame received is kept in ``received`` (parsed when it is JSON).
    """

    def __init__(self, ws: ClientConnection, version: str):
        self.ws = ws
        self.version = version
        self.server_calls: list[list] = []
        self.received: list[Any] = []
        self._ids = itertools.count(1)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, version: str) -> AsyncIterator["RawCharger"]:
        ws = await open_ws(url, [version])
        assert ws.subprotocol == version, f"server chose {ws.subprotocol!r}, offered {version!r}"
        try:
            yield cls(ws, version)
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    def new_id(self) -> str:
        return f"raw-{next(self._ids)}-{uuid.uuid4().hex[:6]}"

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_binary(self, data: bytes) -> None:
        await self.ws.send(data)

    async def send_call(self, action: str, payload: Any, uid: Optional[str] = None) -> str:
        uid = uid or self.new_id()
        await self.ws.send(json.dumps([CALL, uid, action, payload]))
        return uid

    async def next_message(self, timeout: float = 10.0) -> Any:
        """The next frame that is not a server CALL (parsed JSON; raw str/bytes if not JSON)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            raw = await asyncio.wait_for(self.ws.recv(), left)
            try:
                msg = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                msg = raw
            self.received.append(msg)
            if isinstance(msg, list) and len(msg) >= 3 and msg[0] == CALL:
                self.server_calls.append(msg)
                await self.ws.send(json.dumps([CALLERROR, msg[1], "NotImplemented",
                                               "raw test charger", {}]))
                continue
            return msg

    async def response(self, uid: str, timeout: float = 10.0) -> list:
        """The CALLRESULT / CALLERROR whose message id is ``uid``; other frames are kept in
        ``received`` but an unexpected response in between fails the test."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no response to message id {uid!r} within {timeout}s; "
                                     f"received {self.received[-5:]}")
            try:
                msg = await self.next_message(left)
            except asyncio.TimeoutError:
                continue
            assert isinstance(msg, list) and len(msg) >= 2, f"not an OCPP-J frame: {msg!r}"
            if msg[1] == uid:
                return msg
            raise AssertionError(f"waiting for the answer to {uid!r}, got {msg!r}")

    async def call(self, action: str, payload: Any, timeout: float = 10.0) -> list:
        uid = await self.send_call(action, payload)
        return await self.response(uid, timeout)

    async def expect_result(self, action: str, payload: Any, timeout: float = 10.0) -> Any:
        """Send a CALL; require a CALLRESULT with the same id and a schema-valid payload."""
        uid = await self.send_call(action, payload)
        msg = await self.response(uid, timeout)
        assert_callresult(msg, uid)
        validate_result(self.version, action, msg[2])
        return msg[2]

    async def sync(self, timeout: float = 15.0) -> list[Any]:
        """Send a Heartbeat and read until its CALLRESULT: returns every other frame that
        arrived before it (answers to earlier garbage). Fails if the Heartbeat is not
        answered with a schema-valid CALLRESULT."""
        uid = await self.send_call("Heartbeat", {})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        before: list[Any] = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"Heartbeat {uid!r} not answered within {timeout}s; "
                                     f"received meanwhile {before[-5:]}")
            try:
                msg = await self.next_message(left)
            except asyncio.TimeoutError:
                continue
            if isinstance(msg, list) and len(msg) >= 2 and msg[1] == uid:
                assert_callresult(msg, uid)
                validate_result(self.version, "Heartbeat", msg[2])
                assert_recent(msg[2]["currentTime"])
                return before
            before.append(msg)

    async def boot(self) -> Any:
        if self.version == V16:
            p = {"chargePointVendor": "interop", "chargePointModel": "raw16"}
        else:
            p = {"chargingStation": {"model": "raw201", "vendorName": "interop"},
                 "reason": "PowerUp"}
        validate_call(self.version, "BootNotification", p)
        r = await self.expect_result("BootNotification", p)
        assert r["status"] == "Accepted", r
        return r

    async def heartbeat(self, timeout: float = 10.0) -> Any:
        """Proves the session is alive: a Heartbeat answered with a recent currentTime."""
        r = await self.expect_result("Heartbeat", {}, timeout)
        assert_recent(r["currentTime"])
        return r


def assert_callresult(msg: Any, uid: str) -> None:
    assert isinstance(msg, list) and len(msg) == 3 and msg[0] == CALLRESULT and msg[1] == uid \
        and isinstance(msg[2], dict), f"expected CALLRESULT [3, {uid!r}, {{...}}], got {msg!r}"


def assert_callerror(msg: Any, uid: str, codes: Sequence[str]) -> None:
    """A well-formed CALLERROR [4, uid, code, description, details] with code in ``codes``."""
    assert isinstance(msg, list) and len(msg) == 5 and msg[0] == CALLERROR, \
        f"expected CALLERROR [4, {uid!r}, {'|'.join(codes)}, ...], got {msg!r}"
    assert msg[1] == uid, f"CALLERROR for message id {msg[1]!r}, expected {uid!r}: {msg!r}"
    assert msg[2] in codes, f"CALLERROR code {msg[2]!r}, expected one of {list(codes)}: {msg!r}"
    assert isinstance(msg[3], str) and isinstance(msg[4], dict), \
        f"CALLERROR description must be a string and details an object: {msg!r}"
