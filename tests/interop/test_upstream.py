"""ocpp809 as an OCPP local controller (issue 10, docs/upstream.md): chargers relayed to an
upstream CSMS while SCADA keeps seeing everything.

Peers: the Mobility House ``ocpp`` 2.1.0 package on both sides. The upstream CSMS is its
``ChargePoint`` (1.6 and 2.0.1) as server-side handlers behind ``websockets.serve``; it
validates every CALL it receives against the official schemas (a schema-invalid CALL is
answered with a CALLERROR and never reaches a handler) and records every frame it gets. The
chargers are the same package's client ``ChargePoint`` (validating every answer they get),
or hand-written frames for the non-conforming "14.4kW" input. SCADA is the c104 master.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import ocpp.v16
import ocpp.v16.call as c16
import ocpp.v16.call_result as r16
import ocpp.v201
import ocpp.v201.call as c201
import ocpp.v201.call_result as r201
import pytest
from ocpp.routing import on
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

import sim_charger
from conftest import CHARGERS
from daemon import LOOPBACK, free_port
from test_observe import metrics
import ocpp_client
from ocpp_client import (CALL, CALLRESULT, V16, V201, RawCharger, _Sim, boot, now_iso,
                         run_async)

CP1, CP2 = CHARGERS[0]["id"], CHARGERS[1]["id"]
CP1_C1_POWER = CHARGERS[0]["ioa_base"] + 13        # connector 1 active power, kW
UPSTREAM_INTERVAL = 77                              # heartbeat interval only the upstream gives
UPSTREAM_TIME = "2031-01-01T00:00:00.000Z"          # currentTime only the upstream gives
FIRST_UPSTREAM_TX = 9001
PASSWORD = "upstream-secret-0123"


# ---------------------------------------------------------------------------
# the upstream CSMS
# ---------------------------------------------------------------------------

class _Recording:
    """Records every frame the upstream receives (parsed), before the library handles it."""

    upstream: "Upstream"

    async def route_message(self, raw_msg):
        self.upstream.frames.append((self.id, json.loads(raw_msg)))
        return await super().route_message(raw_msg)


class Csms16(_Recording, ocpp.v16.ChargePoint):
    @on("BootNotification")
    def boot_notification(self, **_):
        return r16.BootNotification(current_time=UPSTREAM_TIME, interval=UPSTREAM_INTERVAL,
                                    status="Accepted")

    @on("Heartbeat")
    def heartbeat(self):
        return r16.Heartbeat(current_time=UPSTREAM_TIME)

    @on("StatusNotification")
    def status_notification(self, **_):
        return r16.StatusNotification()

    @on("Authorize")
    def authorize(self, id_tag):
        return r16.Authorize(id_tag_info={"status": self.upstream.verdict(id_tag)})

    @on("StartTransaction")
    def start_transaction(self, id_tag, **_):
        return r16.StartTransaction(transaction_id=self.upstream.next_tx(),
                                    id_tag_info={"status": self.upstream.verdict(id_tag)})

    @on("MeterValues")
    def meter_values(self, **_):
        return r16.MeterValues()

    @on("StopTransaction")
    def stop_transaction(self, **_):
        return r16.StopTransaction()


class Csms201(_Recording, ocpp.v201.ChargePoint):
    @on("BootNotification")
    def boot_notification(self, **_):
        return r201.BootNotification(current_time=UPSTREAM_TIME, interval=UPSTREAM_INTERVAL,
                                     status="Accepted")

    @on("Heartbeat")
    def heartbeat(self):
        return r201.Heartbeat(current_time=UPSTREAM_TIME)

    @on("StatusNotification")
    def status_notification(self, **_):
        return r201.StatusNotification()

    @on("Authorize")
    def authorize(self, id_token, **_):
        return r201.Authorize(id_token_info={"status": self.upstream.verdict(id_token["id_token"])})

    @on("TransactionEvent")
    def transaction_event(self, id_token=None, **_):
        if id_token is None:
            return r201.TransactionEvent()
        return r201.TransactionEvent(
            id_token_info={"status": self.upstream.verdict(id_token["id_token"])})

    @on("MeterValues")
    def meter_values(self, **_):
        return r201.MeterValues()


class Upstream:
    """The upstream CSMS on 127.0.0.1:port; ``frames`` is every (charge point id, frame)
    received, in order; ``connections`` the charge points connected now."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.frames: list[tuple[str, list]] = []
        self.connections: dict[str, Any] = {}
        self.handshakes: list[dict] = []
        self._tx = itertools.count(FIRST_UPSTREAM_TX)
        self._server = None

    @property
    def url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/csms"

    def verdict(self, tag: str) -> str:
        return "Blocked" if tag.startswith("BLOCK") else "Accepted"

    def next_tx(self) -> int:
        return next(self._tx)

    async def start(self) -> "Upstream":
        self._server = await serve(self._serve, LOOPBACK, self.port,
                                   subprotocols=["ocpp1.6", "ocpp2.0.1"], ping_interval=None)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        self.connections.clear()

    async def _serve(self, ws) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        self.handshakes.append({"id": cp_id, "path": ws.request.path,
                                "subprotocol": ws.subprotocol,
                                "authorization": ws.request.headers.get("Authorization")})
        cls = Csms16 if ws.subprotocol == "ocpp1.6" else Csms201
        cp = cls(cp_id, ws, response_timeout=10)
        cp.upstream = self
        self.connections[cp_id] = cp
        with contextlib.suppress(ConnectionClosed):
            await cp.start()
        if self.connections.get(cp_id) is cp:
            del self.connections[cp_id]

    def calls(self, cp_id: str, action: Optional[str] = None) -> list[list]:
        """CALLs received from ``cp_id`` (of ``action``), in order."""
        return [f for who, f in self.frames
                if who == cp_id and f[0] == CALL and (action is None or f[2] == action)]

    async def wait_connected(self, cp_id: str, timeout: float = 40.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cp_id in self.connections:
                return self.connections[cp_id]
            await asyncio.sleep(0.05)
        raise AssertionError(f"{cp_id} did not connect to the upstream within {timeout}s; "
                             f"handshakes {self.handshakes}")



# ---------------------------------------------------------------------------
# chargers: the library ChargePoint that answers commands (sim_charger) and records its ids
# ---------------------------------------------------------------------------

class _Sent:
    """Records every frame the charger sends (parsed) in ``sent``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list = []

    async def _send(self, message):
        self.sent.append(json.loads(message))
        return await super()._send(message)


class Charger16(_Sent, _Sim, sim_charger.Sim16):
    version = V16


class Charger201(_Sent, _Sim, sim_charger.Sim201):
    version = V201


def charger(url: str, cp_id: str, version: str, classes: Optional[dict] = None):
    """``ocpp_client.charger`` with chargers that answer commands (sim_charger) and record
    what they send."""
    return ocpp_client.charger(url, cp_id, version, response_timeout=15,
                               classes=classes or {V16: Charger16, V201: Charger201})


def relayed(upstream: Upstream, **upstream_cfg) -> dict:
    return {"upstream": {"enabled": True, "url": upstream.url, "answer_timeout_s": 5,
                         **upstream_cfg}}


async def in_thread(fn, *args, **kw):
    return await asyncio.to_thread(fn, *args, **kw)


def daemon_for(make_daemon, upstream: Upstream, *, http: bool = False, **upstream_cfg):
    extra = relayed(upstream, **upstream_cfg)
    if http:
        port = free_port()
        extra["http"] = {"enabled": True, "listen": f"{LOOPBACK}:{port}"}
    d = make_daemon(extra=extra)
    d.http = f"http://{LOOPBACK}:{port}" if http else None
    d.wait_ocpp_listening()
    return d


# ---------------------------------------------------------------------------
# 1. live relay, both versions
# ---------------------------------------------------------------------------

@run_async
async def test_v16_messages_reach_the_upstream_with_their_ids_and_its_answers_come_back(
        make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream, password=PASSWORD)
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await upstream.wait_connected(CP1)
            shake = upstream.handshakes[-1]
            assert shake["subprotocol"] == "ocpp1.6" and shake["path"] == f"/csms/{CP1}", shake
            assert shake["authorization"] == "Basic " + base64.b64encode(
                f"{CP1}:{PASSWORD}".encode()).decode(), "Basic auth with the charge point id"

            b = await boot(cp)
            assert b.interval == UPSTREAM_INTERVAL, "the upstream's BootNotification answer"
            hb = await cp.req(c16.Heartbeat())
            assert hb.current_time == UPSTREAM_TIME
            auth = await cp.req(c16.Authorize(id_tag="BLOCK-7"))
            assert auth.id_tag_info["status"] == "Blocked", "the upstream decides"
            start = await cp.req(c16.StartTransaction(connector_id=1, id_tag="TAG-1",
                                                      meter_start=100, timestamp=now_iso()))
            assert start.transaction_id == FIRST_UPSTREAM_TX, "the upstream's transaction id"
            await cp.req(c16.MeterValues(connector_id=1, transaction_id=start.transaction_id,
                                         meter_value=[{"timestamp": now_iso(), "sampledValue": [
                                             {"value": "7200", "measurand":
                                              "Power.Active.Import", "unit": "W"}]}]))
            await cp.req(c16.StopTransaction(meter_stop=900, timestamp=now_iso(),
                                             transaction_id=start.transaction_id))
            calls = upstream.calls(CP1)
            assert [c[2] for c in calls] == ["BootNotification", "Heartbeat", "Authorize",
                                             "StartTransaction", "MeterValues",
                                             "StopTransaction"]
            assert [c[1] for c in calls] == [f[1] for f in cp.sent if f[0] == CALL], \
                "MessageIds preserved"
            assert calls[4][3]["transactionId"] == FIRST_UPSTREAM_TX
            assert calls[5][3]["transactionId"] == FIRST_UPSTREAM_TX
    finally:
        await upstream.stop()


@run_async
async def test_v201_messages_reach_the_upstream_with_their_ids_and_its_answers_come_back(
        make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream)
        async with charger(d.ocpp_url(CP2), CP2, V201) as cp:
            await upstream.wait_connected(CP2)
            assert upstream.handshakes[-1]["subprotocol"] == "ocpp2.0.1"
            assert upstream.handshakes[-1]["authorization"] is None, "no password configured"
            b = await boot(cp)
            assert b.interval == UPSTREAM_INTERVAL
            hb = await cp.req(c201.Heartbeat())
            assert hb.current_time == UPSTREAM_TIME
            auth = await cp.req(c201.Authorize(id_token={"idToken": "BLOCK-9",
                                                          "type": "ISO14443"}))
            assert auth.id_token_info["status"] == "Blocked"
            tx = {"transactionId": "T-201"}
            for n, (event, trigger) in enumerate([("Started", "Authorized"),
                                                  ("Updated", "MeterValuePeriodic"),
                                                  ("Ended", "EVCommunicationLost")]):
                kw = {}
                if event == "Started":
                    kw["id_token"] = {"idToken": "TAG-2", "type": "ISO14443"}
                r = await cp.req(c201.TransactionEvent(
                    event_type=event, timestamp=now_iso(), trigger_reason=trigger, seq_no=n,
                    transaction_info=tx, evse={"id": 1, "connectorId": 1},
                    meter_value=[{"timestamp": now_iso(), "sampledValue": [
                        {"value": 7200.0, "measurand": "Power.Active.Import"}]}], **kw))
                if event == "Started":
                    assert r.id_token_info["status"] == "Accepted"
            calls = upstream.calls(CP2)
            assert [c[2] for c in calls] == ["BootNotification", "Heartbeat", "Authorize",
                                             "TransactionEvent", "TransactionEvent",
                                             "TransactionEvent"]
            assert [c[1] for c in calls] == [f[1] for f in cp.sent if f[0] == CALL]
            assert [c[3]["eventType"] for c in calls[3:]] == ["Started", "Updated", "Ended"]
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# 2. sanitized forwarding: the upstream gets a schema-valid payload, SCADA the same value
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_non_conforming_meter_values_reach_the_upstream_sanitized(make_daemon,
                                                                        make_master, version):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream)
        master = await in_thread(make_master, d.port)
        async with RawCharger.connect(d.ocpp_url(CP1), version) as raw:
            await upstream.wait_connected(CP1)
            await raw.boot()
            if version == V16:
                payload = {"connectorId": "1", "meterValue": [{
                    "timestamp": now_iso(),
                    "sampledValue": [{"value": "14.4kW", "measurand": "power.active.import"}]}]}
            else:
                payload = {"evseId": 1, "meterValue": [{
                    "timestamp": now_iso(),
                    "sampledValue": [{"value": "14.4kW", "measurand": "Power.Active.Import",
                                      "unitOfMeasure": {"unit": "kW"}}]}]}
            uid = await raw.send_call("MeterValues", payload)
            answer = await raw.response(uid)
            assert answer[0] == CALLRESULT, f"the upstream accepted the sanitized payload: {answer}"
            got = upstream.calls(CP1, "MeterValues")[-1]
            assert got[1] == uid
            sv = got[3]["meterValue"][0]["sampledValue"][0]
            if version == V16:
                assert got[3]["connectorId"] == 1
                assert (sv["value"], sv["unit"], sv["measurand"]) == ("14400", "W",
                                                                      "Power.Active.Import")
            else:
                assert sv["value"] == 14400 and sv["unitOfMeasure"]["unit"] == "W", sv

        def scada_power():
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                res = master.gi()
                o = res.objects.get(CP1_C1_POWER)
                if o is not None and o[1].value is not None and abs(o[1].value - 14.4) < 1e-3:
                    return o[1].value
                time.sleep(0.2)
            raise AssertionError(f"SCADA did not see 14.4 kW at IOA {CP1_C1_POWER}")

        assert abs(await in_thread(scada_power) - 14.4) < 1e-3
    finally:
        await upstream.stop()


@run_async
async def test_forward_original_passes_the_chargers_payload_unchanged(make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream, forward="original")
        async with RawCharger.connect(d.ocpp_url(CP2), V201) as raw:
            await upstream.wait_connected(CP2)
            await raw.boot()
            payload = {"evseId": 1, "meterValue": [{"timestamp": now_iso(), "sampledValue": [
                {"value": "14.4kW", "measurand": "Power.Active.Import"}]}]}
            uid = await raw.send_call("MeterValues", payload)
            answer = await raw.response(uid)
            got = upstream.frames[-1][1]
            assert got == [CALL, uid, "MeterValues", payload], "exactly what the charger sent"
            assert answer[0] == 4, f"the upstream's own CALLERROR reaches the charger: {answer}"
    finally:
        await upstream.stop()


@run_async
async def test_a_charger_opted_out_is_not_relayed(make_daemon):
    upstream = await Upstream().start()
    try:
        chargers = [dict(CHARGERS[0]), dict(CHARGERS[1], upstream=False)]
        d = make_daemon(chargers=chargers, extra=relayed(upstream))
        await in_thread(d.wait_ocpp_listening)
        async with charger(d.ocpp_url(CP2), CP2, V201) as cp:
            b = await boot(cp)
            assert b.interval != UPSTREAM_INTERVAL, "answered by ocpp809"
            await asyncio.sleep(1.0)
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await upstream.wait_connected(CP1)
        assert [h["id"] for h in upstream.handshakes] == [CP1]
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# 3. upstream → charger
# ---------------------------------------------------------------------------

@run_async
async def test_upstream_commands_reach_the_charger_and_its_answers_go_back(make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream)
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            csms = await upstream.wait_connected(CP1)
            await boot(cp)
            conf = await csms.call(c16.GetConfiguration(key=["HeartbeatInterval"]),
                                   suppress=False)
            assert conf.configuration_key == [{"key": "HeartbeatInterval", "readonly": False,
                                               "value": "sim-HeartbeatInterval"}]
            start = await csms.call(c16.RemoteStartTransaction(id_tag="TAG-R", connector_id=1),
                                    suppress=False)
            assert start.status == "Accepted"
        async with charger(d.ocpp_url(CP2), CP2, V201) as cp:
            csms = await upstream.wait_connected(CP2)
            await boot(cp)
            r = await csms.call(c201.RequestStartTransaction(
                id_token={"idToken": "TAG-R", "type": "ISO14443"}, remote_start_id=1),
                suppress=False)
            assert r.status == "Accepted"
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# 4. outage: local answers, cache, durable queue, replay in order with mapped ids
# ---------------------------------------------------------------------------

async def v16_offline_transaction(cp) -> int:
    """Authorize (cached Blocked, unknown Invalid), then a whole transaction; returns the
    local transaction id."""
    blocked = await cp.req(c16.Authorize(id_tag="BLOCK-1"))
    assert blocked.id_tag_info["status"] == "Blocked", "from the cache"
    unknown = await cp.req(c16.Authorize(id_tag="NEVER-SEEN"))
    assert unknown.id_tag_info["status"] == "Invalid", "offline_authorization = cache"
    hb = await cp.req(c16.Heartbeat())
    assert hb.current_time != UPSTREAM_TIME, "answered locally"
    start = await cp.req(c16.StartTransaction(connector_id=1, id_tag="TAG-OK",
                                              meter_start=0, timestamp=now_iso()))
    assert start.id_tag_info["status"] == "Accepted", "learned from the upstream"
    local_tx = start.transaction_id
    assert local_tx < FIRST_UPSTREAM_TX
    for i in range(3):
        await cp.req(c16.MeterValues(connector_id=1, transaction_id=local_tx, meter_value=[{
            "timestamp": now_iso(), "sampledValue": [
                {"value": str(1000 * i), "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"}]}]))
    await cp.req(c16.StopTransaction(meter_stop=3000, timestamp=now_iso(),
                                     transaction_id=local_tx))
    return local_tx


async def wait_frames(upstream: Upstream, cp_id: str, since: int, n: int,
                      timeout: float = 20.0) -> None:
    """Until ``n`` CALLs from ``cp_id`` arrived after frame ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len([f for who, f in upstream.frames[since:] if who == cp_id and f[0] == CALL]) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} CALLs from {cp_id} reached the upstream: "
                         f"{upstream.frames[since:]}")


TRANSACTION_16 = ("StartTransaction", "MeterValues", "StopTransaction")


def assert_replayed(upstream: Upstream, cp, since: int, upstream_tx: int) -> None:
    """After frame ``since``: the charger's last BootNotification came first (a new upstream
    connection is told, under ocpp809's own id), then the transaction messages in order with
    the charger's ids and the 1.6 transaction id the upstream assigned."""
    got = [f for who, f in upstream.frames[since:] if who == CP1 and f[0] == CALL]
    assert got and got[0][2] == "BootNotification" and got[0][1].startswith("ocpp809-"), got
    got = [f for f in got if f[2] in TRANSACTION_16]
    sent = [f for f in cp.sent if f[0] == CALL and f[2] in TRANSACTION_16]
    assert [(f[1], f[2]) for f in got] == [(f[1], f[2]) for f in sent], \
        "queued messages replayed in order with their ids"
    for f in got[1:]:
        assert f[3]["transactionId"] == upstream_tx, f


@run_async
async def test_outage_queues_transactions_and_replays_them_in_order(make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream, http=True)
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await upstream.wait_connected(CP1)
            await boot(cp)
            # The upstream's verdicts are cached while it is reachable.
            assert (await cp.req(c16.Authorize(id_tag="BLOCK-1"))).id_tag_info["status"] \
                == "Blocked"
            assert (await cp.req(c16.Authorize(id_tag="TAG-OK"))).id_tag_info["status"] \
                == "Accepted"
            await upstream.stop()
            await asyncio.sleep(0.5)
            cp.sent.clear()
            await v16_offline_transaction(cp)
            since = len(upstream.frames)
            await upstream.start()
            await upstream.wait_connected(CP1)
            await wait_frames(upstream, CP1, since, 6)
            assert_replayed(upstream, cp, since, FIRST_UPSTREAM_TX)
            # Live again once the queue is delivered.
            deadline = time.monotonic() + 10
            while (await cp.req(c16.Heartbeat())).current_time != UPSTREAM_TIME:
                assert time.monotonic() < deadline, "heartbeats never reached the upstream again"
                await asyncio.sleep(0.2)
            m = await in_thread(metrics, d)
            counted = {e: m[f'ocpp809_upstream_messages_total{{event="{e}"}}']
                       for e in ("queued", "replayed", "dropped")}
            assert counted == {"queued": 5, "replayed": 5, "dropped": 0}, counted
            assert m["ocpp809_upstreams_connected"] == 1
    finally:
        await upstream.stop()


@run_async
async def test_v201_outage_queues_transaction_events_and_replays_them(make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream)
        async with charger(d.ocpp_url(CP2), CP2, V201) as cp:
            await upstream.wait_connected(CP2)
            await boot(cp)
            token = {"idToken": "BLOCK-201", "type": "ISO14443"}
            assert (await cp.req(c201.Authorize(id_token=token))).id_token_info["status"] \
                == "Blocked"
            await upstream.stop()
            await asyncio.sleep(0.5)
            cp.sent.clear()
            offline = await cp.req(c201.Authorize(id_token=token))
            assert offline.id_token_info["status"] == "Blocked", "from the cache"
            for n, (event, trigger) in enumerate([("Started", "Authorized"),
                                                  ("Updated", "MeterValuePeriodic"),
                                                  ("Ended", "StopAuthorized")]):
                await cp.req(c201.TransactionEvent(
                    event_type=event, timestamp=now_iso(), trigger_reason=trigger, seq_no=n,
                    transaction_info={"transactionId": "T-OFF"}, evse={"id": 1,
                                                                      "connectorId": 1}))
            since = len(upstream.frames)
            await upstream.start()
            await upstream.wait_connected(CP2)
            await wait_frames(upstream, CP2, since, 4)
            got = [f for who, f in upstream.frames[since:] if who == CP2 and f[0] == CALL]
            assert got[0][2] == "BootNotification" and got[0][1].startswith("ocpp809-")
            sent = [f for f in cp.sent if f[0] == CALL and f[2] == "TransactionEvent"]
            assert [(f[1], f[3]["eventType"]) for f in got[1:]] == \
                [(f[1], f[3]["eventType"]) for f in sent], "in order, with the charger's ids"
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# 5. nothing lost across a daemon restart
# ---------------------------------------------------------------------------

@run_async
async def test_queued_messages_survive_a_daemon_restart(make_daemon):
    upstream = Upstream()             # not running: the daemon starts without its upstream
    d = await in_thread(daemon_for, make_daemon, upstream)
    try:
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await boot(cp)
            start = await cp.req(c16.StartTransaction(connector_id=1, id_tag="TAG-1",
                                                      meter_start=0, timestamp=now_iso()))
            for i in range(2):
                await cp.req(c16.MeterValues(connector_id=1, transaction_id=start.transaction_id,
                                             meter_value=[{"timestamp": now_iso(),
                                                           "sampledValue": [{"value": str(i)}]}]))
            sent_before = list(cp.sent)
        assert await in_thread(d.stop) == 0
        await in_thread(d.start)
        await in_thread(d.wait_ocpp_listening)
        await upstream.start()
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await upstream.wait_connected(CP1)
            await cp.req(c16.StopTransaction(meter_stop=10, timestamp=now_iso(),
                                             transaction_id=start.transaction_id))
            cp.sent = [f for f in sent_before if f[0] == CALL and f[2] != "BootNotification"] \
                + [f for f in cp.sent if f[0] == CALL]
            await wait_frames(upstream, CP1, 0, 5)
            assert_replayed(upstream, cp, 0, FIRST_UPSTREAM_TX)
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# wss:// and mutual TLS (security profiles 2 and 3) with openssl-made certificates
# ---------------------------------------------------------------------------

def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(dir_: Path, name: str = "ca") -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all EC P-256."""
    dir_.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=dir_)
    for leaf, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (dir_ / f"{leaf}.ext").write_text("basicConstraints=CA:FALSE\n" + ext)
        openssl("req", *ec, "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr",
                "-subj", f"/CN=ocpp809-{leaf}", cwd=dir_)
        openssl("x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{name}.pem", "-CAkey",
                f"{name}.key", "-CAcreateserial", "-out", f"{leaf}.pem", "-days", "2",
                "-extfile", f"{leaf}.ext", cwd=dir_)
    return {k: dir_ / f"{v}" for k, v in {"ca": f"{name}.pem", "server": "server.pem",
                                          "server_key": "server.key", "client": "client.pem",
                                          "client_key": "client.key"}.items()}


class TlsUpstream(Upstream):
    """The upstream behind TLS that requires a client certificate signed by its CA."""

    def __init__(self, pki: dict[str, Path]):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["server"], pki["server_key"])
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx.load_verify_locations(pki["ca"])
        self.peers: list[Any] = []

    @property
    def url(self) -> str:
        return f"wss://{LOOPBACK}:{self.port}/csms"

    async def start(self) -> "Upstream":
        self._server = await serve(self._serve, LOOPBACK, self.port, ssl=self.ctx,
                                   subprotocols=["ocpp1.6", "ocpp2.0.1"], ping_interval=None)
        return self

    async def _serve(self, ws) -> None:
        self.peers.append(ws.transport.get_extra_info("peercert"))
        await super()._serve(ws)


@run_async
async def test_wss_upstream_with_mutual_tls(make_daemon, tmp_path):
    pki = await in_thread(make_pki, tmp_path / "pki")
    upstream = await TlsUpstream(pki).start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream, ca_file=str(pki["ca"]),
                            client_cert=str(pki["client"]), client_key=str(pki["client_key"]))
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            await upstream.wait_connected(CP1, timeout=15)
            subject = dict(x[0] for x in upstream.peers[-1]["subject"])
            assert subject["commonName"] == "ocpp809-client", "profile 3: our client certificate"
            b = await boot(cp)
            assert b.interval == UPSTREAM_INTERVAL, "answered by the upstream over TLS"
    finally:
        await upstream.stop()


@run_async
async def test_an_upstream_with_an_untrusted_certificate_is_not_used(make_daemon, tmp_path):
    pki = await in_thread(make_pki, tmp_path / "pki")
    other = await in_thread(make_pki, tmp_path / "other", "other-ca")
    upstream = await TlsUpstream(pki).start()
    try:
        d = await in_thread(daemon_for, make_daemon, upstream, ca_file=str(other["ca"]),
                            client_cert=str(pki["client"]), client_key=str(pki["client_key"]))
        async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
            b = await boot(cp)
            assert b.interval != UPSTREAM_INTERVAL, "answered by ocpp809 itself"
            await asyncio.sleep(1.5)
            assert CP1 not in upstream.connections and not upstream.frames
        log = d.log_path.read_text(errors="replace")
        assert "upstream CSMS unreachable" in log and "certificate" in log.lower(), log[-3000:]
    finally:
        await upstream.stop()


# ---------------------------------------------------------------------------
# 7. power authority: upstream charging profiles clipped to the grid limit
# ---------------------------------------------------------------------------

class _Inbox:
    """Records every CALL the charger receives (action, payload) in ``inbox`` before
    handling it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inbox: list = []

    async def _handle_call(self, msg):
        self.inbox.append((msg.action, msg.payload))
        return await super()._handle_call(msg)


class InboxCharger16(_Inbox, Charger16):
    pass


async def wait_inbox(cp, pred, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for a, p in cp.inbox if pred(a, p)]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no matching CALL reached the charger: {cp.inbox}")


def schedule_limit16(payload) -> float:
    return payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]


@run_async
async def test_upstream_profiles_are_clipped_to_the_grid_limit_and_our_profile_is_protected(
        make_daemon):
    upstream = await Upstream().start()
    try:
        d = await in_thread(lambda: make_daemon(site={"limit_kw": 11.0},
                                                extra=relayed(upstream)))
        await in_thread(d.wait_ocpp_listening)
        async with charger(d.ocpp_url(CP1), CP1, V16, classes={V16: InboxCharger16}) as cp:
            csms = await upstream.wait_connected(CP1)
            await boot(cp)
            await cp.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                                status="Available"))
            # The site limit reaches the charger as ocpp809's own profile (id 809).
            ours = await wait_inbox(cp, lambda a, p: a == "SetChargingProfile" and
                                    p["csChargingProfiles"]["chargingProfileId"] == 809)
            assert schedule_limit16(ours) == pytest.approx(11000.0)

            # An upstream profile of 22 kW is applied as 11 kW, and the upstream is told.
            answer = await csms.call(c16.SetChargingProfile(connector_id=1, cs_charging_profiles={
                "chargingProfileId": 7, "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
                "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 22000.0}]}}), suppress=False)
            assert answer.status == "Accepted"
            theirs = await wait_inbox(cp, lambda a, p: a == "SetChargingProfile" and
                                      p["csChargingProfiles"]["chargingProfileId"] == 7)
            assert schedule_limit16(theirs) == pytest.approx(11000.0)

            def notices(message_id):
                return [f for f in upstream.calls(CP1, "DataTransfer")
                        if f[3].get("vendorId") == "org.ocpp809"
                        and f[3].get("messageId") == message_id]
            deadline = time.monotonic() + 10
            while not notices("ChargingLimitClipped") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # Our own limit, once the charger accepted it, was reported too.
            changed = notices("ChargingLimitChanged")
            assert len(changed) == 1, upstream.frames[-8:]
            assert json.loads(changed[0][3]["data"])["limit"] == {"value": 11000.0, "unit": "W"}
            clipped = notices("ChargingLimitClipped")
            assert len(clipped) == 1, upstream.frames[-8:]
            data = json.loads(clipped[0][3]["data"])  # the JSON text of docs/upstream.md
            assert data["limit"] == {"value": 11000.0, "unit": "W"}
            assert data["chargingProfileId"] == 7 and data["connectorId"] == 1
            assert data["periods"] == [{"startPeriod": 0, "unit": "W", "requested": 22000.0,
                                        "applied": 11000.0}]

            # Our profile is not the upstream's to clear: answered without the charger.
            before = len(cp.inbox)
            cleared = await csms.call(c16.ClearChargingProfile(id=809), suppress=False)
            assert cleared.status == "Unknown"
            await asyncio.sleep(0.5)
            assert not [a for a, _ in cp.inbox[before:] if a == "ClearChargingProfile"]
    finally:
        await upstream.stop()


@run_async
async def test_the_local_list_authorizes_service_cards_while_the_upstream_is_away(make_daemon):
    upstream = Upstream()  # never started: unreachable from the first moment
    d = await in_thread(daemon_for, make_daemon, upstream, offline_authorization="reject",
                        local_list=["SERVICE-01"])
    async with charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await boot(cp)
        ok = await cp.req(c16.Authorize(id_tag="SERVICE-01"))
        assert ok.id_tag_info["status"] == "Accepted"
        other = await cp.req(c16.Authorize(id_tag="STRANGER"))
        assert other.id_tag_info["status"] == "Invalid"
