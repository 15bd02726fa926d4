"""Site power management end to end (CONTRACT §7, issue 5): three real processes — ocpp809,
a c104 master and `ocpp` package charger simulators (1.6 and 2.0.1) that accept every
charging profile and record it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import Any, AsyncIterator

import ocpp.v16.call as c16
import ocpp.v16.call_result as r16
import ocpp.v201.call_result as r201
from ocpp.routing import on

import asdu as A
from conftest import CHARGERS, SITE
from ocpp_client import V16, V201, Sim16, Sim201, boot, open_ws, run_async

CP1, CP2 = CHARGERS[0]["id"], CHARGERS[1]["id"]
SITE_BASE = SITE["ioa_base"]
SITE_LIMIT_IOA, SITE_FAILSAFE_IOA, SITE_CMD_IOA = SITE_BASE + 2, SITE_BASE + 3, SITE_BASE + 10


class _Records:
    """Keeps every charging-profile command the CSMS sent, as (action, limit in W or None)."""

    profiles: list[tuple[str, Any]]

    def limits(self) -> list[tuple[str, Any]]:
        return list(self.profiles)


class Site16(_Records, Sim16):
    reject = False

    @on("SetChargingProfile")
    async def set_profile(self, connector_id, cs_charging_profiles, **_):
        schedule = cs_charging_profiles["charging_schedule"]
        period = schedule["charging_schedule_period"][0]
        self.profiles.append(("set", period["limit"]))
        self.details = (connector_id, cs_charging_profiles, schedule["charging_rate_unit"])
        return r16.SetChargingProfile(status="Rejected" if self.reject else "Accepted")

    @on("ClearChargingProfile")
    async def clear_profile(self, **_):
        self.profiles.append(("clear", None))
        return r16.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    async def composite_schedule(self, connector_id, duration, charging_rate_unit=None, **_):
        self.profiles.append(("read", connector_id))
        start = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return r16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id,
            schedule_start=start.replace("+00:00", "Z"),
            charging_schedule={"duration": duration, "chargingRateUnit": "W",
                               "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000.0}]})


class Site201(_Records, Sim201):
    @on("SetChargingProfile")
    async def set_profile(self, evse_id, charging_profile, **_):
        period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        self.profiles.append(("set", period["limit"]))
        return r201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    async def clear_profile(self, **_):
        self.profiles.append(("clear", None))
        return r201.ClearChargingProfile(status="Accepted")


@contextlib.asynccontextmanager
async def site_charger(url: str, cp_id: str, version: str,
                       reject: bool = False) -> AsyncIterator[_Records]:
    ws = await open_ws(url, [version])
    cls = Site16 if version == V16 else Site201
    cp = cls(cp_id, ws, response_timeout=10)
    cp.ws = ws
    cp.profiles = []
    cp.reject = reject
    task = asyncio.create_task(cp.start())
    try:
        await boot(cp)
        yield cp
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await ws.close()


async def wait_for(predicate, timeout: float = 8.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@run_async
async def test_the_site_limit_is_split_between_two_chargers(daemon, make_master):
    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    async with site_charger(daemon.ocpp_url(CP1), CP1, V16) as a, \
            site_charger(daemon.ocpp_url(CP2), CP2, V201) as b:
        res = await asyncio.to_thread(master.command, A.C_SE_NC_1, SITE_CMD_IOA, 20.0,
                                      select=True)
        conf = res.confirmations
        assert conf and not any(x.negative for x in conf), res.describe()
        assert res.terminations, f"ACTTERM after the chargers accepted: {res.describe()}"
        # Both idle: equal shares of 20 kW, in W.
        assert a.limits() == [("set", 10000.0)], a.limits()
        assert b.limits() == [("set", 10000.0)], b.limits()

        # Lifting the site limit clears both profiles.
        res = await asyncio.to_thread(master.command, A.C_SE_NC_1, SITE_CMD_IOA, 0.0)
        assert res.confirmations and not res.confirmations[-1].negative, res.describe()
        await wait_for(lambda: a.limits()[-1:] == [("clear", None)]
                       and b.limits()[-1:] == [("clear", None)], what="cleared profiles")


@run_async
async def test_failsafe_applies_when_the_master_disappears_and_lifts_when_it_returns(
        make_daemon, make_master):
    d = make_daemon(site={**SITE, "failsafe_limit_kw": 8.0, "scada_loss_timeout_s": 2})
    d.wait_ocpp_listening()
    first = make_master(d.port)
    async with site_charger(d.ocpp_url(CP1), CP1, V16) as a, \
            site_charger(d.ocpp_url(CP2), CP2, V201) as b:
        await asyncio.sleep(3)        # SCADA present: no failsafe
        assert a.limits() == [] and b.limits() == [], (a.limits(), b.limits())
        await asyncio.to_thread(first.stop)
        await wait_for(lambda: a.limits() == [("set", 4000.0)] and b.limits() == [("set", 4000.0)],
                       timeout=10, what="failsafe shares of 8 kW")
        second = make_master(d.port)
        await wait_for(lambda: a.limits()[-1:] == [("clear", None)]
                       and b.limits()[-1:] == [("clear", None)], what="failsafe lifted")
        # The failsafe point's changes were buffered and reach the returning master in order.
        changes = [o.value for x in second.asdus() if x.cot == A.COT_SPONTANEOUS
                   for o in x.objects if o.ioa == SITE_FAILSAFE_IOA]
        assert changes == [1, 0], changes
        gi = second.gi()
        assert gi.objects[SITE_FAILSAFE_IOA][1].value == 0


@run_async
async def test_a_power_setpoint_reaches_the_charger_in_watts_and_is_confirmed(daemon,
                                                                             make_master):
    """CONTRACT §3: C_SE_NC_1 on charger offset 90 → SetChargingProfile (1.6
    ChargePointMaxProfile, connector 0, id 809, stack level 0, unit W, kW × 1000); ACTCON
    only after Accepted, then ACTTERM; the limit in force (offset 3) follows."""
    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    cp1_base = CHARGERS[0]["ioa_base"]
    async with site_charger(daemon.ocpp_url(CP1), CP1, V16) as a:
        m = master.mark()
        res = await asyncio.to_thread(master.command, A.C_SE_NC_1, cp1_base + 90, 11.0)
        assert res.confirmations and not res.confirmations[-1].negative, res.describe()
        assert res.terminations, res.describe()
        assert a.limits() == [("set", 11000.0)], a.limits()
        connector, profile, unit = a.details
        assert (connector, profile["charging_profile_id"], profile["stack_level"], unit) == \
            (0, 809, 0, "W")
        assert profile["charging_profile_purpose"] == "ChargePointMaxProfile"
        limit = [o.value for x in master.asdus(m) if x.cot == A.COT_SPONTANEOUS
                 for o in x.objects if o.ioa == cp1_base + 3]
        assert limit and abs(limit[-1] - 11.0) < 1e-3, limit


@run_async
async def test_a_charger_that_rejects_gives_a_negative_confirmation(daemon, make_master):
    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    cp1_base = CHARGERS[0]["ioa_base"]
    async with site_charger(daemon.ocpp_url(CP1), CP1, V16, reject=True) as a:
        res = await asyncio.to_thread(master.command, A.C_SE_NC_1, cp1_base + 90, 11.0)
        assert res.confirmations and res.confirmations[-1].negative, res.describe()
        assert not res.terminations, res.describe()
        assert a.limits() == [("set", 11000.0)]


@run_async
async def test_energy_counters_survive_kill_9(daemon, make_master):
    """Issue 5: counters after a kill -9 and restart equal those before (durable within 1 s),
    served with NT until the charger refreshes them."""
    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    cp1_base = CHARGERS[0]["ioa_base"]
    async with site_charger(daemon.ocpp_url(CP1), CP1, V16) as a:
        sample = {"timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                  "sampled_value": [{"value": "123456",
                                     "measurand": "Energy.Active.Import.Register",
                                     "unit": "Wh"}]}
        await a.req(c16.MeterValues(connector_id=1, meter_value=[sample]))
        await asyncio.sleep(1.5)
    sm = master.state_mark()
    await asyncio.to_thread(daemon.kill)
    await asyncio.to_thread(daemon.start)
    await asyncio.to_thread(master.wait_reconnected, sm, 20)
    res = await asyncio.to_thread(master.ci)
    counters = {ioa: o for ioa, (_, o) in res.objects.items()}
    for ioa in (cp1_base + 14, cp1_base + 2):
        assert counters[ioa].value == 123456, (ioa, counters[ioa])


@run_async
async def test_reading_the_limit_in_force_asks_the_charger(daemon, make_master):
    """CONTRACT §7: C_RD_NA_1 on charger offset 3 → GetCompositeSchedule (connector 0), the
    answer (COT 5) carries the limit of the period in force, in kW."""
    import c104

    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    limit_ioa = CHARGERS[0]["ioa_base"] + 3
    async with site_charger(daemon.ocpp_url(CP1), CP1, V16) as a:
        station = master.conn.get_station(common_address=1) or \
            master.conn.add_station(common_address=1)
        point = station.get_point(io_address=limit_ioa) or \
            station.add_point(io_address=limit_ioa, type=c104.Type.M_ME_TF_1)
        ok = await asyncio.to_thread(point.read)
        assert ok, "read not answered"
        assert a.limits() == [("read", 0)], a.limits()
        await wait_for(lambda: abs(point.value - 7.0) < 1e-3, what=f"7.0 kW, got {point.value}")


@run_async
async def test_site_totals_follow_the_chargers(daemon, make_master):
    """CONTRACT §3 site offsets 0/1: total power of the online chargers, total energy."""
    daemon.wait_ocpp_listening()
    master = make_master(daemon.port)
    ts = dt.datetime.now(dt.timezone.utc).isoformat()

    def values(kw, wh):
        return [{"timestamp": ts, "sampled_value": [
            {"value": str(kw * 1000), "measurand": "Power.Active.Import", "unit": "W"},
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]

    async with site_charger(daemon.ocpp_url(CP1), CP1, V16) as a, \
            site_charger(daemon.ocpp_url(CP2), CP2, V16) as b:
        await a.req(c16.MeterValues(connector_id=1, meter_value=values(7.0, 1000)))
        await b.req(c16.MeterValues(connector_id=1, meter_value=values(11.0, 2500)))

        def totals():
            res = master.gi()
            objs = {ioa: o for ioa, (_, o) in res.objects.items()}
            ci = {ioa: o for ioa, (_, o) in master.ci().objects.items()}
            return objs[SITE_BASE].value, ci[SITE_BASE + 1].value

        deadline = time.monotonic() + 5
        got = None
        while time.monotonic() < deadline:
            got = await asyncio.to_thread(totals)
            if abs(got[0] - 18.0) < 1e-3 and got[1] == 3500:
                break
            await asyncio.sleep(0.2)
        assert got is not None and abs(got[0] - 18.0) < 1e-3 and got[1] == 3500, got
