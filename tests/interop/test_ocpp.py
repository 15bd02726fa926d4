"""OCPP interoperability of the ocpp809 central system (CSMS, WebSocket server).

Peers: the Mobility House ``ocpp`` 2.1.0 ChargePoint (1.6J and 2.0.1) as charger simulator,
which validates every CALLRESULT it gets against the official JSON schemas, and a raw
``websockets`` client for the non-conforming input real chargers send (the library refuses
to). The IEC 104 side is watched with the c104 master of master.py.

Behaviour under test: CONTRACT.md §2 ``[ocpp]``, §3 (online point, chargers online, NT,
IV), §4 (endpoint, lenient/strict, CALLERRORs, binary frames, replacement) and §1 (SIGTERM
closes sessions with 1001); MAPPING.md's "14.4kW" field failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import ocpp.v16.call as c16
import ocpp.v201.call as c201
import pytest
from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed

import asdu as A
from conftest import CHARGERS, SITE
from ocpp_client import (CALLERROR, CALLRESULT, V16, V201, RawCharger, assert_callerror,
                         assert_callresult, assert_recent, boot, charger, closed_by_server,
                         handshake, now_iso, run_async, validate_call)
from points import CHARGER_MONITOR, CONNECTOR_MONITOR

CP1, CP2 = CHARGERS[0]["id"], CHARGERS[1]["id"]          # CP001 @1000 (2 conn), CP002 @1100
CP1_BASE, CP2_BASE = CHARGERS[0]["ioa_base"], CHARGERS[1]["ioa_base"]
ONLINE_CP1, ONLINE_CP2 = CP1_BASE, CP2_BASE                # offset 0: charger online
CP1_C1_POWER = CP1_BASE + 13                               # connector 1 active power, kW
SITE_ONLINE = SITE["ioa_base"] + 4                         # site: chargers online (count)

# 1.6 CALLERROR codes (OCPP-J 1.6 §4.2.3) and 2.0.1 (Part 4 §4.3).
ERRORS_16 = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError",
             "SecurityError", "FormationViolation", "PropertyConstraintViolation",
             "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError"}
ERRORS_201 = {"FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported",
              "NotImplemented", "NotSupported", "OccurrenceConstraintViolation",
              "OccurenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
              "RpcFrameworkError", "SecurityError", "TypeConstraintViolation"}
ERRORS = {V16: ERRORS_16, V201: ERRORS_201}


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------

@pytest.fixture
def station(daemon):
    """The standard station (conftest: CP001, CP002, default [ocpp]) with OCPP listening."""
    daemon.wait_ocpp_listening()
    return daemon


def started(make_daemon, **ocpp_cfg):
    d = make_daemon(ocpp=ocpp_cfg)
    d.wait_ocpp_listening()
    return d


def mv16(value, *, measurand="Power.Active.Import", unit=None, connector=1, ts=None, **extra):
    """A 1.6 MeterValues payload with one sampled value (written by hand, may be invalid)."""
    sv = {"value": value, "measurand": measurand, **extra}
    if unit is not None:
        sv["unit"] = unit
    return {"connectorId": connector,
            "meterValue": [{"timestamp": ts or now_iso(), "sampledValue": [sv]}]}


def mv201_sample(value, measurand="Power.Active.Import", unit="W", **extra):
    return {"value": value, "measurand": measurand, "unitOfMeasure": {"unit": unit}, **extra}


async def in_thread(fn, *args, **kw):
    """Blocking helpers (c104 waits, daemon stop) off the event loop, so the charger
    simulators keep answering while we wait."""
    return await asyncio.to_thread(fn, *args, **kw)


def wait_spontaneous_value(master, ioa: int, want, since: int, timeout: float = 5.0,
                           tol: float = 1e-3):
    """The first spontaneous object for ``ioa`` after ``since`` whose value == want
    (floats within ``tol``), with its ASDU; fails listing what was seen instead."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        a = master.spontaneous_asdu(ioa, since, deadline - time.monotonic())
        if a is None:
            break
        o = next(o for o in a.objects if o.ioa == ioa)
        seen.append((a.type_id, o.value, f"q=0x{o.quality or 0:02x}"))
        if o.value is not None and abs(o.value - want) <= tol:
            return a, o
        since = master.index_after(a)
    raise AssertionError(f"no spontaneous value {want} for IOA {ioa} within {timeout}s; "
                         f"saw (type, value, quality) {seen}")


def gi_objects(master) -> dict[int, A.InfoObject]:
    res = master.gi()
    assert res.actcon is not None and not res.actcon.negative and res.actterm is not None, \
        f"GI not answered: {res.frames[-5:]}"
    return {ioa: o for ioa, (_, o) in res.objects.items()}


def assert_recent_tag(o: A.InfoObject) -> None:
    assert o.time is not None and not o.time.invalid, f"IOA {o.ioa}: bad time tag {o.time}"
    now = dt.datetime.now(dt.timezone.utc)
    assert abs((o.time.to_datetime() - now).total_seconds()) < 60, \
        f"IOA {o.ioa}: time tag {o.time} far from {now}"


def cp1_gi_points(chargers=CHARGERS) -> set[int]:
    """CP001's monitor points that a GI answers (counters come by CI)."""
    ch = chargers[0]
    out = {ch["ioa_base"] + off for off, t in CHARGER_MONITOR.items() if t != A.M_IT_TB_1}
    for n in range(1, ch["connectors"] + 1):
        out |= {ch["ioa_base"] + 10 * n + sub for sub, t in CONNECTOR_MONITOR.items()
                if t != A.M_IT_TB_1}
    return out


# ---------------------------------------------------------------------------
# harness self-check: the simulator really validates what the CSMS answers
# ---------------------------------------------------------------------------

def test_harness_ocpp_library_validates_csms_responses():
    """Guards every "schema-valid CALLRESULT" below: ocpp 2.1.0 rejects an invalid
    BootNotification response (1.6: interval must be an integer) and accepts a valid one."""
    from ocpp.messages import CallResult, _validate_payload
    good = CallResult("1", {"status": "Accepted", "currentTime": now_iso(), "interval": 300})
    good.action = "BootNotification"
    _validate_payload(good, "1.6")
    bad = CallResult("1", {"status": "Accepted", "currentTime": now_iso(), "interval": "300"})
    bad.action = "BootNotification"
    with pytest.raises(OCPPError):
        _validate_payload(bad, "1.6")
    bad201 = CallResult("1", {"currentTime": now_iso(), "interval": 300, "status": "OK"})
    bad201.action = "BootNotification"
    with pytest.raises(OCPPError):
        _validate_payload(bad201, "2.0.1")


# ---------------------------------------------------------------------------
# endpoint: subprotocols, ids, replacement, shutdown
# ---------------------------------------------------------------------------

@run_async
async def test_subprotocol_negotiation_follows_the_server_preference(station):
    url = station.ocpp_url(CP1)
    cases = [([V16, V201], V201), ([V201, V16], V201), ([V16], V16), ([V201], V201),
             (["ocpp1.5", V16], V16), (["ocpp2.1-draft", V201, "ocpp1.5"], V201)]
    got = [(offer, await handshake(url, offer)) for offer, _ in cases]
    want = [(offer, (101, chosen)) for offer, chosen in cases]
    assert got == want


@run_async
async def test_subprotocol_preference_order_comes_from_config(make_daemon):
    d = started(make_daemon, versions=[V16, V201])
    url = d.ocpp_url(CP1)
    assert await handshake(url, [V201, V16]) == (101, V16)
    assert await handshake(url, [V201]) == (101, V201)


@run_async
async def test_no_common_subprotocol_is_refused_with_http_400(station):
    url = station.ocpp_url(CP1)
    assert (await handshake(url, ["ocpp1.5"]))[0] == 400
    assert (await handshake(url, None))[0] == 400, "no Sec-WebSocket-Protocol at all"
    assert (await handshake(url, ["ocpp2.0", "json"]))[0] == 400
    # the refusals leave the endpoint working
    async with charger(url, CP1, V201) as cp:
        await boot(cp)


@run_async
async def test_a_version_not_configured_is_refused(make_daemon):
    d = started(make_daemon, versions=[V16])
    url = d.ocpp_url(CP1)
    assert (await handshake(url, [V201]))[0] == 400
    assert await handshake(url, [V201, V16]) == (101, V16)


@run_async
async def test_unknown_charge_point_id_refused_with_404_when_accept_unknown_is_false(
        make_daemon):
    d = started(make_daemon, accept_unknown=False)
    assert (await handshake(d.ocpp_url("NOT-CONFIGURED"), [V16]))[0] == 404
    assert (await handshake(d.ocpp_url("NOT-CONFIGURED", "/x/y"), [V201, V16]))[0] == 404
    assert await handshake(d.ocpp_url(CP1), [V16]) == (101, V16)
    async with charger(d.ocpp_url(CP2), CP2, V201) as cp:
        await boot(cp)


@run_async
async def test_unknown_charge_point_id_accepted_by_default(station):
    async with charger(station.ocpp_url("NEWCOMER-7"), "NEWCOMER-7", V201) as cp:
        r = await boot(cp)
        assert r.interval == 300
    async with charger(station.ocpp_url("NEWCOMER-8"), "NEWCOMER-8", V16) as cp:
        await boot(cp)


@run_async
async def test_charge_point_id_is_the_last_path_segment_on_any_prefix(station, master):
    m = master.mark()
    url = station.ocpp_url(CP2, prefix="/some/deep/prefix")
    assert url.endswith("/some/deep/prefix/CP002")
    async with charger(url, CP2, V201) as cp:
        await boot(cp)
        a, o = await in_thread(wait_spontaneous_value, master, ONLINE_CP2, 1, m)
        assert a.type_id == A.M_SP_TB_1 and a.cot == A.COT_SPONTANEOUS
        # ... and not CP001's point
        assert await in_thread(master.spontaneous_asdu, ONLINE_CP1, m, 0.2) is None


@run_async
async def test_second_connection_with_the_same_id_replaces_the_first(station, master):
    url = station.ocpp_url(CP1)
    async with charger(url, CP1, V16) as first:
        await boot(first)
        m = master.mark()
        async with charger(url, CP1, V201) as second:
            code, reason = await closed_by_server(first)
            assert code == 1008, f"replaced connection closed with {code} {reason!r}, want 1008"
            # the new session is fully served
            await boot(second)
            hb = await second.req(c201.Heartbeat())
            assert_recent(hb.current_time)
            # the replaced session's end must not take the charger offline (IEC online point)
            await asyncio.sleep(1.0)
            objs = await in_thread(gi_objects, master)
            assert objs[ONLINE_CP1].value == 1, \
                f"CP001 online point {objs[ONLINE_CP1]} after replacement; spontaneous " \
                f"since: {[a for a in master.asdus(m) if ONLINE_CP1 in a.ioas]}"
            assert objs[SITE_ONLINE].value == 1.0, f"chargers online {objs[SITE_ONLINE]}"


@run_async
async def test_sigterm_closes_every_session_with_1001(station):
    async with charger(station.ocpp_url(CP1), CP1, V16) as a, \
            charger(station.ocpp_url(CP2), CP2, V201) as b:
        await boot(a)
        await boot(b)
        code = await in_thread(station.stop, 5.0)
        assert code == 0, f"exit status {code} on SIGTERM"
        for cp in (a, b):
            got, reason = await closed_by_server(cp, timeout=1.0)
            assert got == 1001, f"{cp.id} closed with {got} {reason!r}, want 1001 (going away)"


# ---------------------------------------------------------------------------
# OCPP 1.6J: every charger→CSMS message answered with a schema-valid CALLRESULT
# ---------------------------------------------------------------------------

@run_async
async def test_v16_boot_notification_and_heartbeat(station):
    async with charger(station.ocpp_url(CP1), CP1, V16) as cp:
        r = await boot(cp)
        assert r.interval == 300, f"interval {r.interval}, want heartbeat_interval_s = 300"
        assert_recent(r.current_time)
        hb = await cp.req(c16.Heartbeat())
        assert_recent(hb.current_time)


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_boot_interval_is_heartbeat_interval_s(make_daemon, version):
    d = started(make_daemon, heartbeat_interval_s=77)
    async with charger(d.ocpp_url(CP1), CP1, version) as cp:
        r = await boot(cp)
        assert r.interval == 77


@run_async
async def test_v16_transaction_lifecycle(station):
    async with charger(station.ocpp_url(CP1), CP1, V16) as cp:
        await boot(cp)
        for conn, status in [(0, "Available"), (1, "Available"), (2, "Available"),
                             (1, "Preparing")]:
            await cp.req(c16.StatusNotification(connector_id=conn, error_code="NoError",
                                                status=status, timestamp=now_iso()))
        auth = await cp.req(c16.Authorize(id_tag="TAG-0001"))
        assert auth.id_tag_info["status"] == "Accepted", auth

        start = await cp.req(c16.StartTransaction(connector_id=1, id_tag="TAG-0001",
                                                  meter_start=1000, timestamp=now_iso()))
        tid = start.transaction_id
        assert isinstance(tid, int) and not isinstance(tid, bool), f"transactionId {tid!r}"
        assert start.id_tag_info["status"] == "Accepted", start

        await cp.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                            status="Charging", timestamp=now_iso()))
        for i in range(3):
            await cp.req(c16.MeterValues(connector_id=1, transaction_id=tid, meter_value=[{
                "timestamp": now_iso(),
                "sampledValue": [
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W",
                     "context": "Sample.Periodic"},
                    {"value": str(1000 + 500 * i), "measurand":
                     "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "16.1", "measurand": "Current.Import", "unit": "A",
                     "phase": "L1"},
                ]}]))

        # a second, overlapping transaction on connector 2 gets its own id
        start2 = await cp.req(c16.StartTransaction(connector_id=2, id_tag="TAG-0002",
                                                   meter_start=0, timestamp=now_iso()))
        assert isinstance(start2.transaction_id, int) and start2.transaction_id != tid

        stop = await cp.req(c16.StopTransaction(
            meter_stop=2500, timestamp=now_iso(), transaction_id=tid, reason="Local",
            id_tag="TAG-0001",
            transaction_data=[
                {"timestamp": now_iso(-60), "sampledValue": [
                    {"value": "1000", "context": "Transaction.Begin",
                     "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]},
                {"timestamp": now_iso(), "sampledValue": [
                    {"value": "2500", "context": "Transaction.End",
                     "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]},
            ]))
        if stop.id_tag_info is not None:
            assert stop.id_tag_info["status"] == "Accepted", stop
        await cp.req(c16.StopTransaction(meter_stop=10, timestamp=now_iso(),
                                         transaction_id=start2.transaction_id))
        for status in ("Finishing", "Available"):
            await cp.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                                status=status, timestamp=now_iso()))


V16_ONE_SHOTS = {   # name -> factory (fresh timestamps)
    "StatusNotification-faulted": lambda: c16.StatusNotification(
        connector_id=2, error_code="GroundFailure", status="Faulted", info="RCD tripped",
        vendor_error_code="E42", timestamp=now_iso()),
    "MeterValues-no-transaction": lambda: c16.MeterValues(connector_id=0, meter_value=[{
        "timestamp": now_iso(), "sampledValue": [
            {"value": "123456", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": "L1-N"}]}]),
    "MeterValues-kW-unit": lambda: c16.MeterValues(connector_id=1, meter_value=[{
        "timestamp": now_iso(), "sampledValue": [
            {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"}]}]),
    "DataTransfer": lambda: c16.DataTransfer(vendor_id="com.example.vendor", message_id="Overload",
                                     data='{"active": false}'),
    "FirmwareStatusNotification": lambda: c16.FirmwareStatusNotification(status="Installed"),
    "DiagnosticsStatusNotification": lambda: c16.DiagnosticsStatusNotification(
        status="Uploaded"),
    "Authorize": lambda: c16.Authorize(id_tag="ANY-TAG"),
}


@pytest.mark.parametrize("name", sorted(V16_ONE_SHOTS))
@run_async
async def test_v16_message_answered_with_a_valid_callresult(station, name):
    async with charger(station.ocpp_url(CP1), CP1, V16) as cp:
        await boot(cp)
        r = await cp.req(V16_ONE_SHOTS[name]())   # raises on CALLERROR / invalid response
        assert r is not None
        if name == "Authorize":
            assert r.id_tag_info["status"] == "Accepted"
        hb = await cp.req(c16.Heartbeat())
        assert_recent(hb.current_time)


# ---------------------------------------------------------------------------
# OCPP 2.0.1
# ---------------------------------------------------------------------------

TOKEN = {"idToken": "04A1B2C3D4", "type": "ISO14443"}


@run_async
async def test_v201_boot_notification_and_heartbeat(station):
    async with charger(station.ocpp_url(CP2), CP2, V201) as cp:
        r = await boot(cp)
        assert r.interval == 300
        assert_recent(r.current_time)
        hb = await cp.req(c201.Heartbeat())
        assert_recent(hb.current_time)


@run_async
async def test_v201_transaction_lifecycle(station):
    async with charger(station.ocpp_url(CP2), CP2, V201) as cp:
        await boot(cp)
        await cp.req(c201.StatusNotification(timestamp=now_iso(), connector_status="Available",
                                             evse_id=1, connector_id=1))
        auth = await cp.req(c201.Authorize(id_token=TOKEN))
        assert auth.id_token_info["status"] == "Accepted", auth
        await cp.req(c201.StatusNotification(timestamp=now_iso(), connector_status="Occupied",
                                             evse_id=1, connector_id=1))
        tx = {"transactionId": "tx-interop-1"}
        started_ = await cp.req(c201.TransactionEvent(
            event_type="Started", timestamp=now_iso(), trigger_reason="Authorized", seq_no=0,
            transaction_info={**tx, "chargingState": "EVConnected"}, id_token=TOKEN,
            evse={"id": 1, "connectorId": 1},
            meter_value=[{"timestamp": now_iso(), "sampledValue": [
                mv201_sample(5000.0, "Energy.Active.Import.Register", "Wh",
                             context="Transaction.Begin")]}]))
        if started_.id_token_info is not None:
            assert started_.id_token_info["status"] == "Accepted", started_
        for seq in (1, 2):
            await cp.req(c201.TransactionEvent(
                event_type="Updated", timestamp=now_iso(), trigger_reason="MeterValuePeriodic",
                seq_no=seq, transaction_info={**tx, "chargingState": "Charging"},
                meter_value=[{"timestamp": now_iso(), "sampledValue": [
                    mv201_sample(11000.0),
                    mv201_sample(5000.0 + 100 * seq, "Energy.Active.Import.Register", "Wh"),
                    mv201_sample(16.0, "Current.Import", "A", phase="L1")]}]))
        await cp.req(c201.TransactionEvent(
            event_type="Ended", timestamp=now_iso(), trigger_reason="StopAuthorized", seq_no=3,
            transaction_info={**tx, "stoppedReason": "Local"}, id_token=TOKEN,
            meter_value=[{"timestamp": now_iso(), "sampledValue": [
                mv201_sample(5300.0, "Energy.Active.Import.Register", "Wh",
                             context="Transaction.End")]}]))
        await cp.req(c201.StatusNotification(timestamp=now_iso(), connector_status="Available",
                                             evse_id=1, connector_id=1))


V201_ONE_SHOTS = {  # name -> factory (fresh timestamps)
    "MeterValues": lambda: c201.MeterValues(evse_id=1, meter_value=[{
        "timestamp": now_iso(), "sampledValue": [
            mv201_sample(7400.0), mv201_sample(42000.0, "Energy.Active.Import.Register", "Wh"),
            mv201_sample(7.4, "Power.Active.Import", "kW")]}]),
    "NotifyEvent": lambda: c201.NotifyEvent(generated_at=now_iso(), seq_no=0, event_data=[{
        "eventId": 1, "timestamp": now_iso(), "trigger": "Alerting", "actualValue": "true",
        "eventNotificationType": "HardWiredMonitor",
        "component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Problem"}}]),
    "NotifyReport": lambda: c201.NotifyReport(
        request_id=1, generated_at=now_iso(), seq_no=0, tbc=False, report_data=[{
            "component": {"name": "ChargingStation"}, "variable": {"name": "Model"},
            "variableAttribute": [{"type": "Actual", "value": "sim201"}]}]),
    "SecurityEventNotification": lambda: c201.SecurityEventNotification(
        type="StartupOfTheDevice", timestamp=now_iso(), tech_info="interop"),
    "FirmwareStatusNotification": lambda: c201.FirmwareStatusNotification(status="Installed",
                                                                          request_id=1),
    "LogStatusNotification": lambda: c201.LogStatusNotification(status="Idle"),
    "DataTransfer": lambda: c201.DataTransfer(vendor_id="com.example.vendor", message_id="Ping",
                                      data={"n": 1}),
    "StatusNotification-faulted": lambda: c201.StatusNotification(
        timestamp=now_iso(), connector_status="Faulted", evse_id=1, connector_id=1),
    "Authorize": lambda: c201.Authorize(id_token={"idToken": "ANY", "type": "Central"}),
}


@pytest.mark.parametrize("name", sorted(V201_ONE_SHOTS))
@run_async
async def test_v201_message_answered_with_a_valid_callresult(station, name):
    async with charger(station.ocpp_url(CP2), CP2, V201) as cp:
        await boot(cp)
        r = await cp.req(V201_ONE_SHOTS[name]())  # raises on CALLERROR / invalid response
        assert r is not None
        if name == "Authorize":
            assert r.id_token_info["status"] == "Accepted"
        hb = await cp.req(c201.Heartbeat())
        assert_recent(hb.current_time)


# ---------------------------------------------------------------------------
# non-conforming input (raw frames)
# ---------------------------------------------------------------------------

def _legacy_15_style():
    # OCPP 1.5-era JSON: "values" / "value" instead of "meterValue" / "sampledValue".
    return {"connectorId": 1, "transactionId": 0, "values": [
        {"timestamp": now_iso(), "value": [
            {"value": "14.4kW", "measurand": "Power.Active.Import"}]}]}


LENIENT_16 = {
    "14.4kW": lambda: mv16("14.4kW"),
    "14,4 kW": lambda: mv16("14,4 kW"),
    "14400 W": lambda: mv16("14400 W", unit="W"),
    "suffix-contradicts-unit": lambda: mv16("14.4kW", unit="W"),
    "1.5-style": _legacy_15_style,
    "unparseable-n/a": lambda: mv16("n/a"),
    "lowercase-enum": lambda: mv16("7400", measurand="power.active.import", unit="w"),
    "timestamp-without-zone": lambda: mv16("7400", unit="W", ts=now_iso()[:-1]),
}


@pytest.mark.parametrize("case", list(LENIENT_16))
@run_async
async def test_v16_lenient_meter_values_answered_with_empty_callresult(station, case):
    async with RawCharger.connect(station.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        uid = await raw.send_call("MeterValues", LENIENT_16[case]())
        msg = await raw.response(uid)
        assert msg == [CALLRESULT, uid, {}], f"{case}: got {msg!r}"
        await raw.heartbeat()          # the connection stays open and served
        assert station.alive()


@pytest.mark.parametrize("value", ["14.4kW", "14,4 kW", "n/a"])
@run_async
async def test_v201_meter_value_as_string_answered_with_callresult(station, value):
    """The field failure in 2.0.1 terms: the schema wants a number, legacy firmware sends
    a string with a unit."""
    async with RawCharger.connect(station.ocpp_url(CP2), V201) as raw:
        await raw.boot()
        uid = await raw.send_call("MeterValues", {"evseId": 1, "meterValue": [
            {"timestamp": now_iso(), "sampledValue": [
                {"value": value, "measurand": "Power.Active.Import"}]}]})
        msg = await raw.response(uid)
        assert_callresult(msg, uid)
        assert msg[2] == {}, msg
        await raw.heartbeat()


@run_async
async def test_v16_lenient_status_notification_with_wrong_case_enums(station):
    async with RawCharger.connect(station.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        uid = await raw.send_call("StatusNotification", {"connectorId": 1,
                                                         "errorCode": "noerror",
                                                         "status": "AVAILABLE"})
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        await raw.heartbeat()


@pytest.mark.parametrize("version,code", [(V16, "FormationViolation"),
                                          (V201, "FormatViolation")])
@run_async
async def test_unparseable_frame_gets_format_callerror_with_id_minus_1(station, version, code):
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        await raw.send_text('[2,"1","Heartbeat"')
        msg = await raw.next_message()
        assert_callerror(msg, "-1", [code])
        await raw.heartbeat()


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_unknown_action_gets_not_implemented(station, version):
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        await raw.send_text('[2,"9","FooBar",{}]')
        msg = await raw.response("9")
        assert_callerror(msg, "9", ["NotImplemented"])
        await raw.heartbeat()


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_binary_frames_are_ignored(station, version):
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        await raw.send_binary(b"\x00\xff\x10binary garbage")
        await raw.send_binary(json.dumps([2, "bin-1", "Heartbeat", {}]).encode())
        # nothing may answer the binary frames: the next frame is the Heartbeat's result
        # (RawCharger.response fails on any other frame in between)
        await raw.heartbeat()
        await asyncio.sleep(0.5)
        stray = [m for m in raw.received if isinstance(m, list) and len(m) > 1
                 and m[1] in ("bin-1", "-1")]
        assert not stray, f"binary frames must be ignored, got {stray}"


@run_async
async def test_strict_mode_rejects_a_unit_suffix_with_a_callerror(make_daemon):
    d = started(make_daemon, mode="strict")
    async with RawCharger.connect(d.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        good = mv16("14400", unit="W")
        validate_call(V16, "MeterValues", good)
        uid = await raw.send_call("MeterValues", good)
        assert await raw.response(uid) == [CALLRESULT, uid, {}], "conforming MeterValues"
        uid = await raw.send_call("MeterValues", mv16("14.4kW"))
        msg = await raw.response(uid)
        assert isinstance(msg, list) and msg and msg[0] == CALLERROR, \
            f"strict mode must answer '14.4kW' with a CALLERROR, got {msg!r}"
        # TypeConstraintViolation or FormationViolation expected; any valid 1.6 code passes
        assert_callerror(msg, uid, sorted(ERRORS_16))
        await raw.heartbeat()          # strict rejects the message, never the connection


@run_async
async def test_a_charger_can_be_strict_while_the_rest_stay_lenient(make_daemon):
    """[[charger]] mode overrides ocpp.mode: CP001 strict refuses "14.4kW", CP002 (global
    lenient) coerces it."""
    chargers = [dict(CHARGERS[0], mode="strict"), CHARGERS[1]]
    d = make_daemon(chargers=chargers, ocpp={"mode": "lenient"})
    d.wait_ocpp_listening()
    async with RawCharger.connect(d.ocpp_url(CP1), V16) as strict, \
            RawCharger.connect(d.ocpp_url(CP2), V16) as lenient:
        await strict.boot()
        await lenient.boot()
        uid = await strict.send_call("MeterValues", mv16("14.4kW"))
        msg = await strict.response(uid)
        assert isinstance(msg, list) and msg[0] == CALLERROR, msg
        uid = await lenient.send_call("MeterValues", mv16("14.4kW"))
        assert await lenient.response(uid) == [CALLRESULT, uid, {}]


@run_async
async def test_legacy_meter_values_flood_is_answered_in_full(station):
    """MAPPING.md: the old driver died after ~400 transactions of 1 Hz "14.4kW" MeterValues.
    500 pipelined legacy MeterValues and 50 transactions: every one answered, no crash."""
    async with RawCharger.connect(station.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        ids = []
        answers = {}

        async def send_all():
            for i in range(500):
                v = ["14.4kW", "14,4 kW", "14400 W", "n/a"][i % 4]
                ids.append(await raw.send_call("MeterValues", mv16(v, connector=1 + i % 2)))

        async def read_all():
            while len(answers) < 500:
                msg = await raw.next_message(30)
                assert isinstance(msg, list) and len(msg) >= 2, f"not OCPP-J: {msg!r}"
                answers[msg[1]] = msg

        await asyncio.gather(send_all(), read_all())
        bad = {u: m for u, m in answers.items() if m != [CALLRESULT, u, {}]}
        assert set(answers) == set(ids) and not bad, f"{len(bad)} bad answers, e.g. " \
                                                     f"{list(bad.values())[:3]}"
        tids = set()
        for i in range(50):
            r = await raw.expect_result("StartTransaction", {
                "connectorId": 1, "idTag": "LOAD", "meterStart": i * 10,
                "timestamp": now_iso()})
            tids.add(r["transactionId"])
            await raw.expect_result("MeterValues", {**mv16("14.4kW"),
                                                    "transactionId": r["transactionId"]})
            await raw.expect_result("StopTransaction", {
                "transactionId": r["transactionId"], "meterStop": i * 10 + 5,
                "timestamp": now_iso()})
        assert len(tids) == 50, f"transaction ids not unique: {len(tids)} distinct of 50"
        await raw.heartbeat()
    assert station.alive()


def _garbage_16() -> list[str]:
    big = "x" * 5000
    frames = [
        "", " ", "null", "true", "42", '"text"', "{}", "[]", "[2]", '[2,"a"]',
        '[2,"a","Heartbeat"]', '[2,1,"Heartbeat",{}]', '[2,null,"Heartbeat",{}]',
        '[2,"a",7,{}]', '[2,"a","Heartbeat",[]]', '[2,"a","Heartbeat",null]',
        '[2,"a","Heartbeat",{},"extra"]', '[9,"a","Heartbeat",{}]', '["2","a","Heartbeat",{}]',
        '[3,"never-sent",{}]', '[4,"never-sent","GenericError","",{}]', '[3,"x"]', '[4]',
        f'[2,"{big}","Heartbeat",{{}}]', '[2,"a","' + big + '",{}]',
        "[" * 5000 + "]" * 5000, '{"a":' * 2000 + "1" + "}" * 2000,
        '[2,"a","Heartbeat",{}]]]', '[2,"a","Heartbeat",{}', "\u0000\u0001",
        '[2,"\U0001F4A5","Heartbeat",{}]', '[2,"a","BootNotification",{"chargePointVendor":1}]',
        '[2,"a","BootNotification",{}]',
        '[2,"a","MeterValues",{"connectorId":"one","meterValue":"x"}]',
        '[2,"a","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"yesterday",'
        '"sampledValue":[{"value":"1"}]}]}]',
        '[2,"a","MeterValues",{"connectorId":1,"meterValue":[{"sampledValue":null}]}]',
        '[2,"a","MeterValues",{"connectorId":-1,"meterValue":[]}]',
        '[2,"a","MeterValues",{"connectorId":1180591620717411303424,"meterValue":[]}]',
        '[2,"a","MeterValues",{"connectorId":1e400,"meterValue":[]}]',
        '[2,"a","StartTransaction",{"connectorId":1}]',
        '[2,"a","StopTransaction",{"transactionId":999999999,"meterStop":-5,'
        '"timestamp":"2024-13-45T99:99:99Z"}]',
        '[2,"a","StatusNotification",{"connectorId":99,"errorCode":"NoError",'
        '"status":"Exploded"}]',
        '[2,"a","StatusNotification",{"connectorId":1,"errorCode":"HighTemperature",'
        '"status":"Faulted","timestamp":"not a time"}]',
        '[2,"a","DataTransfer",{"vendorId":"' + big + '"}]',
        '[2,"a","Authorize",{"idTag":{"nested":[1,2,3]}}]',
    ]
    for v in ["1e309", "NaN", "-inf", "inf", "", " ", "kW", "14.4.4kW", "14,4,4",
              "\uff19\uff19", "0x10", "-0", "-14.4kW", "1" * 400, "14.4 MW", "14.4 kWh",
              "12\u00a0345 Wh"]:
        frames.append(json.dumps([2, "a", "MeterValues", mv16(v)]))
    for v in [14400, 14.4, None, True, [], {}]:
        frames.append(json.dumps([2, "a", "MeterValues", mv16(v)]))
    frames.append(json.dumps([2, "a", "MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": now_iso(), "sampledValue": [
            {"value": str(i), "measurand": "Energy.Active.Import.Register"}
            for i in range(2000)]}]}]))
    return frames


def _garbage_201() -> list[str]:
    frames = [
        '[2,"1","Heartbeat"', "[]", '[2,"a","Heartbeat",null]', '[5,"a",{}]',
        '[6,"a","Heartbeat",{}]', '[2,"a","TransactionEvent",{"eventType":"Exploded"}]',
        json.dumps([2, "a", "TransactionEvent", {
            "eventType": "Updated", "timestamp": now_iso(), "triggerReason": "MeterValuePeriodic",
            "seqNo": "zero", "transactionInfo": {"transactionId": "never-started"},
            "meterValue": [{"timestamp": now_iso(), "sampledValue": [
                {"value": "14.4kW", "measurand": "Power.Active.Import"}]}]}]),
        json.dumps([2, "a", "TransactionEvent", {
            "eventType": "Ended", "timestamp": now_iso(), "triggerReason": "StopAuthorized",
            "seqNo": 9, "transactionInfo": {"transactionId": "never-started"}}]),
        '[2,"a","NotifyEvent",{"generatedAt":"x","seqNo":0,"eventData":"nope"}]',
        json.dumps([2, "a", "NotifyEvent", {"generatedAt": now_iso(), "seqNo": 0, "eventData": [
            {"eventId": 1, "timestamp": now_iso(), "trigger": "Alerting", "actualValue": "maybe",
             "eventNotificationType": "HardWiredMonitor", "component": {"name": "EVSE"},
             "variable": {"name": "Overload"}}]}]),
        '[2,"a","MeterValues",{"evseId":1,"meterValue":[{"timestamp":"' + now_iso()
        + '","sampledValue":[{"value":1e400}]}]}]',
        '[2,"a","MeterValues",{"evseId":-7,"meterValue":[{"timestamp":"' + now_iso()
        + '","sampledValue":[{"value":"n/a","unitOfMeasure":{"unit":"kW","multiplier":99}}]}]}]',
        '[2,"a","StatusNotification",{"timestamp":"' + now_iso()
        + '","connectorStatus":"occupied","evseId":1,"connectorId":1}]',
        '[2,"a","BootNotification",{"chargingStation":null,"reason":"PowerUp"}]',
    ]
    return frames


@run_async
async def test_daemon_survives_garbage_and_a_fresh_charger_still_boots(station, master):
    async with RawCharger.connect(station.ocpp_url(CP1), V16) as r16, \
            RawCharger.connect(station.ocpp_url(CP2), V201) as r201:
        await r16.boot()
        await r201.boot()
        for raw, frames in ((r16, _garbage_16()), (r201, _garbage_201())):
            for f in frames:
                await raw.send_text(f)
            await raw.send_binary(b"\x81\x00garbage")
            answers = await raw.sync(timeout=30)   # Heartbeat answered after all of it
            # whatever came back is a well-formed CALLRESULT / CALLERROR (never a crash)
            for msg in answers:
                assert isinstance(msg, list) and len(msg) in (3, 5) \
                    and msg[0] in (CALLRESULT, CALLERROR), f"malformed answer {msg!r}"
                if msg[0] == CALLERROR:
                    assert msg[2] in ERRORS[raw.version], f"unknown error code in {msg!r}"
            assert station.alive(), "ocpp809 died\n" + station.log_tail()

    # invalid UTF-8 in a text frame: RFC 6455 §8.1 lets the server fail that connection,
    # but the daemon must survive it
    async with RawCharger.connect(station.ocpp_url("UTF8-BREAKER"), V16) as bad:
        try:
            await bad.ws.send(b'[2,"a","Heartbeat",{"x":"\xff\xfe"}]', text=True)
            await bad.sync(timeout=3)
        except (ConnectionClosed, AssertionError):
            pass  # failing this one connection is allowed
    # a handshake that is not a WebSocket at all
    rd, wr = await asyncio.open_connection("127.0.0.1", station.ocpp_port)
    try:
        wr.write(b"GET /ocpp/CP001 HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff" * 3)
        await wr.drain()
        await asyncio.wait_for(rd.read(), 15)   # refused / closed by the server
    except (ConnectionError, OSError):
        pass
    finally:
        wr.close()

    assert station.alive(), "ocpp809 died\n" + station.log_tail()
    async with charger(station.ocpp_url("FRESH-201"), "FRESH-201", V201) as cp:
        await boot(cp)
        hb = await cp.req(c201.Heartbeat())
        assert_recent(hb.current_time)
    assert master.is_open, "the IEC 104 master lost its connection during the OCPP garbage"


# ---------------------------------------------------------------------------
# IEC 104 side of a charger session
# ---------------------------------------------------------------------------

@run_async
async def test_online_point_and_chargers_online_follow_the_session(station, master):
    objs = await in_thread(gi_objects, master)
    assert objs[ONLINE_CP1].value == 0 and objs[ONLINE_CP1].quality == 0
    assert objs[SITE_ONLINE].value == 0.0

    m = master.mark()
    async with charger(station.ocpp_url(CP1), CP1, V16) as cp1:
        await boot(cp1)
        a, o = await in_thread(wait_spontaneous_value, master, ONLINE_CP1, 1, m)
        assert a.type_id == A.M_SP_TB_1 and a.cot == A.COT_SPONTANEOUS, a
        assert o.quality == 0, f"online point quality 0x{o.quality:02x}"
        assert_recent_tag(o)
        a, o = await in_thread(wait_spontaneous_value, master, SITE_ONLINE, 1.0, m)
        assert a.type_id == A.M_ME_TF_1 and o.quality == 0, a

        # traffic while online (values for CP001's points; their mapping is checked in
        # test_legacy_kw_string_reaches_scada_in_kw_and_unparseable_marks_iv)
        await cp1.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                             status="Available", timestamp=now_iso()))
        await cp1.req(c16.MeterValues(connector_id=1, meter_value=[{
            "timestamp": now_iso(), "sampledValue": [
                {"value": "7400", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "12345", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"}]}]))

        m2 = master.mark()
        async with charger(station.ocpp_url(CP2), CP2, V201) as cp2:
            await boot(cp2)
            await in_thread(wait_spontaneous_value, master, ONLINE_CP2, 1, m2)
            await in_thread(wait_spontaneous_value, master, SITE_ONLINE, 2.0, m2)
            m3 = master.mark()
        await in_thread(wait_spontaneous_value, master, ONLINE_CP2, 0, m3)
        await in_thread(wait_spontaneous_value, master, SITE_ONLINE, 1.0, m3)
        m4 = master.mark()

    a, o = await in_thread(wait_spontaneous_value, master, ONLINE_CP1, 0, m4)
    assert o.quality == 0, f"offline online point must be 0 with good quality, q=0x{o.quality:02x}"
    await in_thread(wait_spontaneous_value, master, SITE_ONLINE, 0.0, m4)

    objs = await in_thread(gi_objects, master)
    assert objs[ONLINE_CP1].value == 0 and objs[ONLINE_CP1].quality == 0, objs[ONLINE_CP1]
    others = sorted(cp1_gi_points() - {ONLINE_CP1})
    without_nt = [(ioa, f"q=0x{objs[ioa].quality:02x}") for ioa in others if not objs[ioa].nt]
    assert not without_nt, f"offline CP001 points without NT: {without_nt}"
    assert objs[SITE_ONLINE].value == 0.0 and objs[SITE_ONLINE].quality == 0


@run_async
async def test_legacy_kw_string_reaches_scada_in_kw_and_unparseable_marks_iv(station, master):
    """MAPPING.md: "14.4kW" = 14.4 kW on the connector power point; "n/a" sets IV and keeps
    14.4 — never 0; the next good sample clears IV; offline, the last value stays with NT."""
    async with RawCharger.connect(station.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        m = master.mark()
        uid = await raw.send_call("MeterValues", mv16("14.4kW"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        a, o = await in_thread(wait_spontaneous_value, master, CP1_C1_POWER, 14.4, m)
        assert a.type_id == A.M_ME_TF_1 and not o.iv and not o.nt, a
        assert_recent_tag(o)

        uid = await raw.send_call("MeterValues", mv16("n/a"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]

        def iv_in_gi():
            deadline = time.monotonic() + 5
            while True:
                o = gi_objects(master)[CP1_C1_POWER]
                if o.iv or time.monotonic() > deadline:
                    return o
                time.sleep(0.2)

        o = await in_thread(iv_in_gi)
        assert o.iv, f"unparseable 'n/a' must set IV on IOA {CP1_C1_POWER}: {o}"
        assert abs(o.value - 14.4) < 1e-3, f"IV keeps the last good value 14.4, got {o.value}"
        spont = [x for a in master.asdus(m) if a.cot == A.COT_SPONTANEOUS
                 for x in a.objects if x.ioa == CP1_C1_POWER]
        zeros = [x for x in spont if x.value == 0]
        assert not zeros, f"IOA {CP1_C1_POWER} was reported as 0 kW: {zeros}"

        m = master.mark()
        uid = await raw.send_call("MeterValues", mv16("7,4 kW"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        a, o = await in_thread(wait_spontaneous_value, master, CP1_C1_POWER, 7.4, m)
        assert not o.iv, f"a good sample clears IV: q=0x{o.quality:02x}"
        m = master.mark()
    await in_thread(wait_spontaneous_value, master, ONLINE_CP1, 0, m)
    o = (await in_thread(gi_objects, master))[CP1_C1_POWER]
    assert o.nt and abs(o.value - 7.4) < 1e-3, \
        f"offline CP001 keeps its last power 7.4 with NT, got {o.value} q=0x{o.quality:02x}"


@run_async
async def test_connector_status_and_error_codes_reach_scada(station, master):
    """CONTRACT §7: Charging = occupied; Faulted with an errorCode sets connector faulted,
    charger faulted (offset 4) and alarm (offset 5); a later status without the errorCode
    clears the alarm."""
    c1_occupied, c1_faulted = CP1_BASE + 11, CP1_BASE + 12
    faulted, alarm = CP1_BASE + 4, CP1_BASE + 5

    def status(state, error="NoError"):
        return {"connectorId": 1, "status": state, "errorCode": error,
                "timestamp": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")}

    async with RawCharger.connect(station.ocpp_url(CP1), V16) as raw:
        await raw.boot()
        m = master.mark()
        uid = await raw.send_call("StatusNotification", status("Charging"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        await in_thread(wait_spontaneous_value, master, c1_occupied, 1, m)

        m = master.mark()
        uid = await raw.send_call("StatusNotification", status("Faulted", "GroundFailure"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        for ioa in (c1_faulted, faulted, alarm):
            await in_thread(wait_spontaneous_value, master, ioa, 1, m)

        m = master.mark()
        uid = await raw.send_call("StatusNotification", status("Available"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        for ioa in (c1_faulted, faulted, alarm):
            await in_thread(wait_spontaneous_value, master, ioa, 0, m)


# ---------------------------------------------------------------------------
# bad input table: frame size, message ids, stray responses, message types
# (src/ocpp/framing.rs documents each decision; both versions, raw client)
# ---------------------------------------------------------------------------

FORMAT_CODE = {V16: "FormationViolation", V201: "FormatViolation"}


def _big_call(uid: str, size: int) -> str:
    """A well-formed DataTransfer CALL of about ``size`` bytes."""
    text = json.dumps([2, uid, "DataTransfer", {"vendorId": "com.example.big", "data": ""}])
    return json.dumps([2, uid, "DataTransfer",
                       {"vendorId": "com.example.big", "data": "x" * (size - len(text))}])


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_oversized_frame_of_100kb_gets_a_format_callerror_and_the_session_stays(
        station, version):
    """framing.rs row 1: more than 64 KiB is refused before parsing (id "-1", not looked
    for); up to four times that is read and answered, the connection stays open."""
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        frame = _big_call("big-100k", 100 * 1024)
        assert len(frame) == 100 * 1024
        await raw.send_text(frame)
        msg = await raw.next_message()
        assert_callerror(msg, "-1", [FORMAT_CODE[version]])
        await raw.heartbeat()
        assert station.alive()


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_oversized_frame_of_300kb_drops_the_connection_and_the_daemon_stays(
        station, version):
    """Beyond four times the OCPP-J limit (256 KiB) the WebSocket layer drops the connection
    unread; the daemon and other sessions are unaffected."""
    async with RawCharger.connect(station.ocpp_url(CP2), version) as other:
        await other.boot()
        async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
            await raw.boot()
            await raw.send_text(_big_call("big-300k", 300 * 1024))
            with pytest.raises(ConnectionClosed):
                msg = await raw.next_message(timeout=10)
                pytest.fail(f"the connection stayed open after 300 KB; got {msg!r}")
        assert station.alive(), "ocpp809 died\n" + station.log_tail()
        await other.heartbeat()        # the other session is still served
    async with RawCharger.connect(station.ocpp_url(CP1), version) as again:
        await again.boot()             # and the charger can reconnect
        await again.heartbeat()


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_duplicate_message_id_both_calls_answered(station, version):
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        uid = "dup-1"
        await raw.send_call("Heartbeat", {}, uid=uid)
        await raw.send_call("Heartbeat", {}, uid=uid)
        answers = [await raw.next_message(), await raw.next_message()]
        for msg in answers:
            assert_callresult(msg, uid)
            assert_recent(msg[2]["currentTime"])
        await raw.heartbeat()


@pytest.mark.parametrize("version", [V16, V201])
@run_async
async def test_callresult_for_nothing_outstanding_is_ignored(station, version):
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        await raw.send_text(json.dumps([CALLRESULT, "never-sent-1", {}]))
        await raw.send_text(json.dumps([CALLRESULT, "never-sent-2", {"status": "Accepted"}]))
        # nothing answers them: the next frame must be the Heartbeat's CALLRESULT
        # (RawCharger.response fails on any other frame in between)
        await raw.heartbeat()
        await asyncio.sleep(0.3)
        stray = [m for m in raw.received if isinstance(m, list) and len(m) > 1
                 and m[1] in ("never-sent-1", "never-sent-2", "-1")]
        assert not stray, f"a stray CALLRESULT must be ignored, got {stray}"
        assert station.alive()


@pytest.mark.parametrize("version,code", [(V16, "ProtocolError"),
                                          (V201, "MessageTypeNotSupported")])
@run_async
async def test_unknown_message_type_id_gets_a_callerror(station, version, code):
    """framing.rs row 8: [7,"1",{}]: 2.0.1 MessageTypeNotSupported; 1.6 has no such code,
    so ProtocolError."""
    async with RawCharger.connect(station.ocpp_url(CP1), version) as raw:
        await raw.boot()
        await raw.send_text('[7,"1",{}]')
        msg = await raw.next_message()
        assert_callerror(msg, "1", [code])
        await raw.heartbeat()


@run_async
async def test_an_unknown_charger_gets_a_block_that_survives_a_restart(station, master):
    """CONTRACT §7: an unknown charger gets the next free block (auto_ioa_base 10000) at its
    first BootNotification; its points are sent spontaneously; the block is persisted."""
    block = 10000
    m = master.mark()
    async with RawCharger.connect(station.ocpp_url("NEW1"), V16) as raw:
        await raw.boot()
        await in_thread(wait_spontaneous_value, master, block, 1, m)
        uid = await raw.send_call("MeterValues", mv16("7.2kW"))
        assert await raw.response(uid) == [CALLRESULT, uid, {}]
        await in_thread(wait_spontaneous_value, master, block + 13, 7.2, m)
    await asyncio.sleep(1.5)      # durable within 1 s
    sm = master.state_mark()
    await in_thread(station.restart)
    await in_thread(master.wait_reconnected, sm, 20)
    objs = await in_thread(gi_objects, master)
    assert objs[block].value == 0, "the block is back, its charger offline"
    assert block + 13 in objs, "connector points of the persisted block"
