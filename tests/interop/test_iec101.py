"""IEC 60870-5-101 interop (CONTRACT §2 `[[iec101]]`, §3, §7): ocpp809 as the controlled
station on a serial line, lib60870-C's CS101 master (tests/interop/iec101/master.c through
iec101_master.py) as the controlling station, joined by a socat pseudo-terminal pair.

The daemon opens one end (``[[iec101]] device``), the master the other. Sizes as in the
CONTRACT example: link address 1 octet, COT 1, CA 1, IOA 2 — the standard test layout
(site base 1, CP001 at 1000 with 2 connectors, CP002 at 1100) fits in 2-octet IOAs.
Parity "even" on a pseudo-terminal may be refused by the OS; the daemon only warns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import ocpp.v16.call as c16
import pytest

import iec101_master as M
import points as P
from conftest import CA, CHARGERS, SITE
from ocpp_client import V16, run_async
from test_iec104 import SITE_KNOWN_AT_START
from test_site import site_charger

CP1 = CHARGERS[0]["id"]
CP1_BASE = CHARGERS[0]["ioa_base"]
CONN1_POWER = CP1_BASE + 13        # connector 1 active power (10n+3)
CP1_LIMIT_IN_FORCE = CP1_BASE + 3
CP1_POWER_SETPOINT = CP1_BASE + 90
LINK_ADDRESS = 1

LAYOUT = P.layout(SITE["ioa_base"], CHARGERS)


def line(device: str, **over) -> dict:
    """One ``[[iec101]]`` table (CONTRACT §2 example values)."""
    cfg = {"device": device, "baud": 9600, "parity": "even", "mode": "unbalanced",
           "link_address": LINK_ADDRESS, "link_address_size": 1, "common_address": CA,
           "cot_size": 1, "ca_size": 1, "ioa_size": 2}
    cfg.update(over)
    return cfg


@pytest.fixture
def station(make_daemon, serial_pair, make_iec101_master):
    """Daemon with one unbalanced 101 line, and a polling lib60870 master with the link up."""
    d = make_daemon(extra={"iec101": [line(serial_pair.b)]})
    m = make_iec101_master(serial_pair.a, mode="unbalanced", link_address=LINK_ADDRESS,
                           link_address_size=1, trace=True)
    m.wait_link("available", 20)
    return d, m


def gi_types(res: M.InterrogationResult) -> dict[int, int]:
    return {ioa: t for ioa, (t, _) in res.objects.items()}


def assert_complete_gi(res: M.InterrogationResult, what: str = "GI") -> None:
    assert res.actcon is not None and not res.actcon.negative, \
        f"{what}: positive ACTCON expected: {res.describe()}"
    assert res.actterm is not None, f"{what}: no ACTTERM: {res.describe()}"
    assert res.actcon.index < res.actterm.index
    assert all(res.actcon.index < a.index < res.actterm.index for a in res.data), \
        f"{what}: COT 20 data outside ACTCON..ACTTERM: {res.describe()}"
    got, want = gi_types(res), P.gi_expected(LAYOUT, with_time=True)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = {i: (got[i], want[i]) for i in set(got) & set(want) if got[i] != want[i]}
    assert not missing and not extra and not wrong, \
        f"{what}: missing {missing}, unexpected {extra}, wrong type (got, want) {wrong}"
    assert all(a.ca == CA for a in res.frames), f"{what}: wrong CA in {res.frames}"


def meter_values_14_4kw():
    return c16.MeterValues(connector_id=1, meter_value=[{
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
        "sampled_value": [{"value": "14400", "measurand": "Power.Active.Import",
                           "unit": "W"}]}])


# ---------------------------------------------------------------- (a) unbalanced, GI, class 2

def test_unbalanced_link_comes_up_and_gi_returns_every_point_as_class_1(station):
    """Link reset by the polling master, then GI: ACTCON, every configured monitor point with
    COT 20 (same IOAs and types as IEC 104, gi_with_time), ACTTERM — all class 1 data."""
    d, m = station
    res = m.gi()
    assert_complete_gi(res)
    classes = {m.request_class_of(a) for a in [res.actcon, *res.data, res.actterm]}
    assert classes == {M.FC_REQUEST_CLASS_1}, \
        f"GI answers must be class 1 data (FC 10 requests), answered requests: {classes}"
    # initial quality as on 104: online point 0/good, everything else IV until it has a value
    objs = {ioa: o for ioa, (_, o) in res.objects.items()}
    online = {p.ioa for p in LAYOUT.values() if p.is_online_point}
    for ioa in online:
        assert objs[ioa]["value"] == 0 and objs[ioa]["quality"] == 0, (ioa, objs[ioa])
    for ioa, value in SITE_KNOWN_AT_START.items():
        assert objs[ioa]["value"] == value and objs[ioa]["quality"] == 0, (ioa, objs[ioa])
    known = online | set(SITE_KNOWN_AT_START)
    not_iv = sorted(i for i, o in objs.items() if i not in known and not o["quality"] & 0x80)
    assert not not_iv, f"points without a value yet must carry IV (as on 104): {not_iv}"
    assert d.alive()


@run_async
async def test_unbalanced_measured_value_change_arrives_as_class_2_data(station):
    d, m = station
    d.wait_ocpp_listening()
    mk = m.mark()
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await cp.req(meter_values_14_4kw())
        o = await asyncio.to_thread(
            m.spontaneous, CONN1_POWER, mk, 15,
            lambda o: o.get("value") is not None and abs(o["value"] - 14.4) < 1e-3)
        assert o is not None, f"no spontaneous 14.4 kW on IOA {CONN1_POWER}:\n{m.transcript(60)}"
        assert o["quality"] == 0, o
        assert o["time"] is not None and abs(o["time"] / 1000 - time.time()) < 120, o
        a = m.wait_for(lambda a: a.cot == M.COT_SPONTANEOUS and CONN1_POWER in a.ioas
                       and abs(a.obj(CONN1_POWER)["value"] - 14.4) < 1e-3, mk, 1)
        assert a.type_id == M.M_ME_TF_1, a
        assert m.request_class_of(a) == M.FC_REQUEST_CLASS_2, \
            f"measured value updates are class 2 data; it answered FC {m.request_class_of(a)}"
    assert d.alive()


# ---------------------------------------------------------------- (b) setpoint

@run_async
async def test_power_setpoint_over_101_reaches_the_charger_and_is_confirmed(station):
    """C_SE_NC_1 at charger offset 90 → SetChargingProfile (W) → positive ACTCON, ACTTERM."""
    d, m = station
    d.wait_ocpp_listening()
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        mk = m.mark()
        res = await asyncio.to_thread(m.setpoint_float, CP1_POWER_SETPOINT, 11.0)
        assert res.confirmations and not res.confirmations[-1].negative, res.describe()
        assert res.terminations, res.describe()
        assert res.confirmations[0].index < res.terminations[0].index, res.describe()
        assert cp.limits() == [("set", 11000.0)], cp.limits()
        connector, profile, unit = cp.details
        assert (connector, profile["charging_profile_id"], unit) == (0, 809, "W")
        o = await asyncio.to_thread(
            m.spontaneous, CP1_LIMIT_IN_FORCE, mk, 10,
            lambda o: o.get("value") is not None and abs(o["value"] - 11.0) < 1e-3)
        assert o is not None, f"limit in force (IOA {CP1_LIMIT_IN_FORCE}) not 11.0 on 101"


def test_setpoint_zero_is_confirmed_negatively(station):
    d, m = station
    res = m.setpoint_float(CP1_POWER_SETPOINT, 0.0)
    assert res.confirmations and res.confirmations[-1].negative, res.describe()
    assert not res.terminations, res.describe()


# ---------------------------------------------------------------- (c) counter interrogation

def test_counter_interrogation_answers_every_integrated_total(station):
    d, m = station
    res = m.ci()
    assert res.actcon is not None and not res.actcon.negative, res.describe()
    assert res.actterm is not None, res.describe()
    got = {ioa: t for ioa, (t, _) in res.objects.items()}
    assert got == P.ci_expected(LAYOUT, with_time=True), (got, res.describe())


def test_clock_sync_is_confirmed(station):
    d, m = station
    a = m.clock_sync()
    assert a is not None and a.cot == M.COT_ACTCON and not a.negative, a


# ---------------------------------------------------------------- (d) balanced

@pytest.mark.parametrize("las", [1, 0], ids=["address-1-octet", "no-address"])
def test_balanced_link_and_gi(make_daemon, serial_pair, make_iec101_master, las):
    d = make_daemon(extra={"iec101": [line(serial_pair.b, mode="balanced",
                                           link_address_size=las)]})
    m = make_iec101_master(serial_pair.a, mode="balanced", link_address=LINK_ADDRESS,
                           link_address_size=las)
    m.wait_link("available", 20)
    assert_complete_gi(m.gi(), f"balanced GI (link address size {las})")
    assert d.alive()


# ---------------------------------------------------------------- (e) noise

NOISE = [
    "ff00aa55e5e5ff",                                  # garbage and stray single-char ACKs
    "105b015d16",                                      # fixed frame, wrong checksum (5c)
    "687373686801",                                    # L octets differ, frame cut off
    "6809096873016401060100001400f516",                # one octet more than L says
    "68090968730164010601000014f516",                  # GI frame, wrong checksum (f4)
    "680c0c6873016401060100001416",                    # L = 12 but 9 octets follow
    "68090968730164010601000014f4",                    # GI frame without the 0x16 end
    "105b025d16",                                      # valid frame, other link address
    "10",                                              # lone start octet
]


def test_noise_on_the_line_does_not_disturb_the_station(station):
    d, m = station
    assert_complete_gi(m.gi(), "GI before noise")
    for junk in NOISE:
        m.raw(junk)
        time.sleep(0.3)
        assert d.alive(), f"daemon died after {junk}\n{d.log_tail(80)}"
    # the station keeps answering: the link recovers (it may be reset) and GI still works
    time.sleep(1.0)
    m.wait_link("available", 20)
    assert_complete_gi(m.gi(timeout=30), "GI after noise")
    a = m.clock_sync()
    assert a is not None and not a.negative, a
    assert d.alive()


# ---------------------------------------------------------------- (f) two lines

@run_async
async def test_a_101_line_and_a_104_master_receive_the_same_value(make_daemon, serial_pair,
                                                                 make_iec101_master,
                                                                 make_master):
    d = make_daemon(extra={"iec101": [line(serial_pair.b)]})
    m101 = make_iec101_master(serial_pair.a, mode="unbalanced", link_address=LINK_ADDRESS)
    await asyncio.to_thread(m101.wait_link, "available", 20)
    m104 = make_master(d.port)
    d.wait_ocpp_listening()
    mk101, mk104 = m101.mark(), m104.mark()
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await cp.req(meter_values_14_4kw())
        o101 = await asyncio.to_thread(
            m101.spontaneous, CONN1_POWER, mk101, 15,
            lambda o: o.get("value") is not None and abs(o["value"] - 14.4) < 1e-3)
        a104 = await asyncio.to_thread(
            m104.wait_for, lambda a: a.cot == M.COT_SPONTANEOUS and any(
                o.ioa == CONN1_POWER and o.value is not None and abs(o.value - 14.4) < 1e-3
                for o in a.objects), mk104, 15)
    assert o101 is not None, f"101: no 14.4 kW on {CONN1_POWER}\n{m101.transcript(60)}"
    assert a104 is not None, f"104: no 14.4 kW on {CONN1_POWER}: {m104.asdus(mk104)!r}"
    o104 = next(o for o in a104.objects if o.ioa == CONN1_POWER)
    # the same sample: the same time tag on both lines (CP56Time2a, UTC, ms)
    if o104.time is not None and o101.get("time") is not None:
        t104 = o104.time.to_datetime().replace(tzinfo=dt.timezone.utc).timestamp() * 1000
        assert abs(t104 - o101["time"]) <= 1, (o104.time, o101["time"])


def test_two_101_lines_with_their_own_common_address_serve_the_same_points(
        make_daemon, make_serial_pair, make_iec101_master):
    """CONTRACT §2: each [[iec101]] line serves the same IOAs and types under its own CA."""
    p1, p2 = make_serial_pair("line1"), make_serial_pair("line2")
    d = make_daemon(extra={"iec101": [line(p1.b), line(p2.b, common_address=7)]})
    m1 = make_iec101_master(p1.a, link_address=LINK_ADDRESS, ca=CA)
    m2 = make_iec101_master(p2.a, link_address=LINK_ADDRESS, ca=7)
    m1.wait_link("available", 20)
    m2.wait_link("available", 20)
    r1, r2 = m1.gi(), m2.gi()
    assert_complete_gi(r1, "line 1 GI")
    assert r2.actterm is not None and all(a.ca == 7 for a in r2.frames), r2.describe()
    assert gi_types(r2) == gi_types(r1)
    assert d.alive()


# ---------------------------------------------------------------- (g) device disappears

def test_the_line_is_reopened_after_the_device_disappears(make_daemon, serial_pair,
                                                          make_iec101_master):
    """A USB adapter unplugged: the port fails, the daemon logs it and reopens the device with
    backoff once it is back — no crash, and the master gets a complete GI again."""
    d = make_daemon(extra={"iec101": [line(serial_pair.b)]})
    m = make_iec101_master(serial_pair.a, mode="unbalanced", link_address=LINK_ADDRESS,
                           link_address_size=1)
    m.wait_link("available", 20)
    m.stop()
    serial_pair.stop()                      # both pseudo-terminals vanish
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "reopening" not in d.log_text():
        time.sleep(0.1)
    assert "reopening" in d.log_text(), d.log_tail(40)
    time.sleep(1.5)                          # a retry or two against the missing device
    assert d.alive(), d.log_tail(40)
    serial_pair.start()
    m2 = make_iec101_master(serial_pair.a, mode="unbalanced", link_address=LINK_ADDRESS,
                            link_address_size=1)
    m2.wait_link("available", 40)
    assert_complete_gi(m2.gi(), "GI after the device came back")
    assert d.alive()
