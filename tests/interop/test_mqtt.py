"""MQTT mirror end to end (CONTRACT §5, §7 "MQTT"): the daemon publishes to a real mosquitto
broker, a paho-mqtt subscriber checks every topic row, `ocpp` package chargers and a c104
master drive the daemon. Broker outages: messages are buffered and delivered in order."""

from __future__ import annotations

import asyncio
import datetime as dt

import ocpp.v16.call as c16
import pytest

import asdu as A
from broker import Broker
from conftest import CHARGERS, SITE
from mqtt_sub import MqttSubscriber, in_order_at_least_once
from ocpp_client import V16, run_async
from test_site import site_charger

CP1 = CHARGERS[0]["id"]
CP1_BASE = CHARGERS[0]["ioa_base"]
CP1_MAX_KW = CHARGERS[0]["max_kw"]
PREFIX = "ocpp809/interop"
STATUS = f"{PREFIX}/status"
SITE_TOPIC = f"{PREFIX}/site"
CP1_STATE = f"{PREFIX}/chargers/{CP1}/state"
CP1_METER = f"{PREFIX}/chargers/{CP1}/meter"
CP1_EVENTS = f"{PREFIX}/chargers/{CP1}/events"
COMMANDS = f"{PREFIX}/commands"


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.fixture
def subscriber(broker):
    with MqttSubscriber(broker.port, "ocpp809/#") as sub:
        yield sub


def mqtt_daemon(make_daemon, broker, **kw):
    return make_daemon(extra={"mqtt": {"enabled": True, "url": broker.url,
                                       "topic_prefix": "ocpp809"}}, **kw)


def rfc3339_utc(ts: str) -> dt.datetime:
    assert ts.endswith("Z"), f"timestamps are RFC 3339 UTC with Z: {ts!r}"
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def meter_values(values: list[tuple[str, str, str]], ts: dt.datetime | None = None):
    ts = ts or dt.datetime.now(dt.timezone.utc)
    return c16.MeterValues(connector_id=1, meter_value=[{
        "timestamp": ts.isoformat().replace("+00:00", "Z"),
        "sampled_value": [{"value": v, "measurand": m, "unit": u} for (m, v, u) in values]}])


def test_status_is_online_retained_and_offline_after_shutdown(make_daemon, broker, subscriber):
    d = mqtt_daemon(make_daemon, broker)
    subscriber.wait_for(lambda m: m.topic == STATUS and m.text == "online", 15)
    # A late subscriber gets the retained status, site and charger state.
    with MqttSubscriber(broker.port, "ocpp809/#") as late:
        late.wait_for(lambda m: m.topic == STATUS and m.retain and m.text == "online")
        site = late.wait_for(lambda m: m.topic == SITE_TOPIC and m.retain).json()
        assert set(site) == {"power_kw", "energy_wh", "limit_kw", "failsafe",
                             "chargers_online", "ts"}, site
        assert site["chargers_online"] == 0 and site["failsafe"] is False
        assert site["limit_kw"] is None, "no site limit configured: null"
        rfc3339_utc(site["ts"])
        state = late.wait_for(lambda m: m.topic == CP1_STATE and m.retain).json()
        assert state["online"] is False and state["limit_kw"] is None
        assert set(state["connectors"]) == {"1", "2"}
    d.stop()
    subscriber.wait_for(lambda m: m.topic == STATUS and m.text == "offline", 5)
    with MqttSubscriber(broker.port, STATUS) as after:
        last = after.wait_for(lambda m: m.topic == STATUS and m.retain)
        assert last.text == "offline"


@run_async
async def test_meter_samples_state_and_events_follow_the_charger(make_daemon, broker, subscriber):
    d = mqtt_daemon(make_daemon, broker)
    d.wait_ocpp_listening()
    sample_ts = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=5)
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await cp.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                            status="Charging"))
        await cp.req(meter_values([("Power.Active.Import", "14.4kW", "W"),
                                   ("Energy.Active.Import.Register", "n/a", "Wh"),
                                   ("Current.Import", "20,5", "A")], sample_ts))
        power = await asyncio.to_thread(subscriber.wait_for, lambda m: m.topic == CP1_METER
                                        and m.json()["measurand"] == "Power.Active.Import")
        p = power.json()
        assert set(p) == {"connector", "ts", "measurand", "value", "unit", "valid"}, p
        assert (p["connector"], p["value"], p["unit"], p["valid"]) == (1, 14400.0, "W", True), p
        assert not power.retain
        assert rfc3339_utc(p["ts"]) == sample_ts, "ts is the sample's timestamp"
        energy = subscriber.wait_for(lambda m: m.topic == CP1_METER
                                     and m.json()["measurand"].startswith("Energy")).json()
        assert energy["valid"] is False and energy["value"] is None, \
            f"an unparseable value is invalid, never 0: {energy}"
        current = subscriber.wait_for(lambda m: m.topic == CP1_METER
                                      and m.json()["measurand"] == "Current.Import").json()
        assert (current["value"], current["unit"]) == (20.5, "A")

        state = await asyncio.to_thread(
            subscriber.wait_for, lambda m: m.topic == CP1_STATE and m.json()["online"]
            and m.json()["power_kw"] is not None, 10)
        s = state.json()
        assert abs(s["power_kw"] - 14.4) < 1e-3, s
        assert s["connectors"]["1"]["status"] == "Charging", s
        assert abs(s["connectors"]["1"]["power_kw"] - 14.4) < 1e-3, s
        site = subscriber.wait_for(lambda m: m.topic == SITE_TOPIC
                                   and m.json()["chargers_online"] == 1, 10).json()
        assert site["power_kw"] is not None and abs(site["power_kw"] - 14.4) < 1e-3, site

        kinds = [m.json()["type"] for m in subscriber.messages(CP1_EVENTS)]
        assert "connected" in kinds and "status" in kinds, kinds
        status = next(m.json() for m in subscriber.messages(CP1_EVENTS)
                      if m.json()["type"] == "status")
        assert (status["connector"], status["status"]) == (1, "Charging"), status
        coercions = [m.json() for m in subscriber.messages(CP1_EVENTS)
                     if m.json()["type"] == "coercion"]
        assert coercions, "sanitizer coercions are events too"
    subscriber.wait_for(lambda m: m.topic == CP1_EVENTS and m.json()["type"] == "disconnected")
    subscriber.wait_for(lambda m: m.topic == CP1_STATE and m.json()["online"] is False, 10)


@run_async
async def test_commands_and_clamps_are_published(make_daemon, make_master, broker, subscriber):
    d = mqtt_daemon(make_daemon, broker)
    d.wait_ocpp_listening()
    master = make_master(d.port)
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await asyncio.to_thread(master.command, A.C_SE_NC_1, CP1_BASE + 90,
                                CP1_MAX_KW + 10.0, True)
        report = await asyncio.to_thread(subscriber.wait_for, lambda m: m.topic == COMMANDS)
        r = report.json()
        assert (r["ioa"], r["type_id"], r["positive"]) == (CP1_BASE + 90, 50, True), r
        assert r["charger"] == CP1 and abs(r["value"] - (CP1_MAX_KW + 10.0)) < 1e-3, r
        clamp = subscriber.wait_for(lambda m: m.topic == CP1_EVENTS
                                    and m.json()["type"] == "limit_clamped").json()
        assert clamp["applied_kw"] == CP1_MAX_KW, clamp
        assert cp.limits() == [("set", CP1_MAX_KW * 1000)]
        subscriber.wait_for(lambda m: m.topic == CP1_STATE
                            and m.json()["limit_kw"] == CP1_MAX_KW, 10)
        subscriber.clear()
        await asyncio.to_thread(master.command, A.C_SE_NC_1, CP1_BASE + 90, 0.0)
        refused = subscriber.wait_for(lambda m: m.topic == COMMANDS).json()
        assert refused["positive"] is False and refused["reason"], refused


@run_async
async def test_meter_messages_survive_a_broker_outage_in_order(make_daemon, broker, tmp_path):
    """Broker stopped under load from two chargers (1.6 and 2.0.1 dialects alike end up in
    the same topics): the daemon buffers the meter messages and delivers every one, in order
    per charger, after the broker is back (at least once: duplicates allowed)."""
    d = mqtt_daemon(make_daemon, broker)
    d.wait_ocpp_listening()
    cp2 = CHARGERS[1]["id"]
    topics = {CP1: CP1_METER, cp2: f"{PREFIX}/chargers/{cp2}/meter"}
    # A persistent session: the broker keeps QoS 1 messages for it while it is away.
    sub = MqttSubscriber(broker.port, f"{PREFIX}/chargers/+/meter", client_id="outage-sub",
                         persistent=True).start()
    sent: dict[str, list[float]] = {CP1: [], cp2: []}
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as one, \
            site_charger(d.ocpp_url(cp2), cp2, V16) as two:
        async def send(cp, cp_id: str, n: int) -> None:
            await cp.req(meter_values([("Energy.Active.Import.Register", str(1000 + n), "Wh")]))
            sent[cp_id].append(float(1000 + n))

        async def burst(first: int, last: int) -> None:
            for n in range(first, last):
                await asyncio.gather(send(one, CP1, n), send(two, cp2, n))

        await burst(0, 20)
        await asyncio.to_thread(sub.wait_until, lambda ms: len(ms) >= 40, 10)
        broker.stop()
        await burst(20, 220)
        await asyncio.sleep(1.0)
        broker.start()
        await burst(220, 240)

        def complete(ms) -> bool:
            return all({m.json()["value"] for m in ms if m.topic == topics[c]} >= set(sent[c])
                       for c in topics)

        got = await asyncio.to_thread(sub.wait_until, complete, 60)
    sub.stop()
    for cp_id, topic in topics.items():
        values = [m.json()["value"] for m in got if m.topic == topic]
        # At least once: duplicates allowed, gaps and reordering not.
        deduped, late = in_order_at_least_once(values)
        assert late is None and deduped == sent[cp_id], \
            f"{cp_id}: meter messages out of order or missing: {values[:10]}...{values[-10:]}"
    assert d.alive()
