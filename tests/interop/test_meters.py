"""Modbus meters end to end (CONTRACT §2 `[[meter]]`, §3 "Meter points", §7 "Modbus"): a
pymodbus server (tests/interop/modbus_meter_sim.py) is the meter, over TCP and over a socat
pseudo-terminal (RTU); its values must appear on IEC 104 (c104 master) and on MQTT
(mosquitto + paho). Exceptions and timeouts give IV with the last value, silence NT, and the
grid meter takes the other loads out of the chargers' site budget."""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import ocpp.v16.call as c16
import pytest

import asdu as A
from broker import Broker
from conftest import CHARGERS
from mqtt_sub import MqttSubscriber
from ocpp_client import V16, run_async
from test_site import site_charger

HERE = Path(__file__).resolve().parent
METER_BASE = 900
POWER, ENERGY, CURRENT, VOLTAGE, COMMUNICATING = (METER_BASE + k for k in range(5))
METER_TOPIC = "ocpp809/interop/meters/grid"
CP1 = CHARGERS[0]["id"]


def f32_words(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


# An Eastron SDM630-style map (docs/meters.md): f32, high word first, input registers.
REGISTERS = [
    {"measurand": "Voltage", "address": 0, "type": "f32", "unit": "V"},
    {"measurand": "Current.Import", "address": 6, "type": "f32", "unit": "A"},
    {"measurand": "Power.Active.Import", "address": 52, "type": "f32", "unit": "W"},
    {"measurand": "Energy.Active.Import.Register", "address": 72, "type": "f32", "unit": "kWh"},
]


def words(power_w: float) -> dict:
    return {"input": {"0": f32_words(230.5), "6": f32_words(31.5),
                      "52": f32_words(power_w), "72": f32_words(1234.5678)}}


class MeterSim:
    """modbus_meter_sim.py in a subprocess, switched through its stdin."""

    def __init__(self, workdir: Path, power_w: float, *, rtu: str | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        regs = workdir / "registers.json"
        regs.write_text(json.dumps(words(power_w)))
        where = ["--rtu", rtu] if rtu else ["--tcp", "127.0.0.1:0"]
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "modbus_meter_sim.py"), *where, "--registers", str(regs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        banner = self.proc.stdout.readline().strip()
        assert banner.startswith(("LISTENING", "READY")), f"meter simulator: {banner!r}"
        self.port = int(banner.split()[1]) if banner.startswith("LISTENING") else None

    def command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ack = self.proc.stdout.readline().strip()
        assert ack == f"OK {line}", f"meter simulator answered {ack!r} to {line!r}"

    def set_power(self, watts: float) -> None:
        hi, lo = f32_words(watts)
        self.command(f"set input 52 {hi} {lo}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def make_meter(tmp_path):
    sims: list[MeterSim] = []

    def make(power_w: float = 21_750.0, rtu: str | None = None) -> MeterSim:
        sim = MeterSim(tmp_path / f"meter{len(sims)}", power_w, rtu=rtu)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "mosquitto").start()
    yield b
    b.stop()


def meter_block(**where) -> dict:
    return {"name": "grid", "unit_id": 1, "poll_ms": 200, "ioa_base": METER_BASE,
            "register": REGISTERS, **where}


def meter_daemon(make_daemon, broker, block, site=None):
    extra = {"meter": [block]}
    if broker is not None:
        extra["mqtt"] = {"enabled": True, "url": broker.url, "topic_prefix": "ocpp809"}
    return make_daemon(extra=extra, **({"site": site} if site else {}))


def value_of(master, ioa: int, pred, mark: int = 0, timeout: float = 10.0):
    """The first object of ``ioa`` satisfying ``pred``: spontaneous since ``mark``, or, for a
    value that reached the image before the master connected, in a GI answer."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        for a in master.asdus(mark):
            for o in a.objects:
                if o.ioa == ioa and a.cot == A.COT_SPONTANEOUS:
                    if pred(o):
                        return o
                    seen.append(o)
        if mark == 0:
            for a in master.gi().data:
                for o in a.objects:
                    if o.ioa == ioa and pred(o):
                        return o
        time.sleep(0.2)
    raise AssertionError(f"no matching object on IOA {ioa} within {timeout} s: {seen[-5:]}")


def close(a: float, b: float, tol: float = 1e-3) -> bool:
    return a is not None and abs(a - b) < tol


def test_tcp_meter_values_reach_iec104_and_mqtt(make_daemon, make_master, make_meter, broker):
    sim = make_meter(21_750.0)
    with MqttSubscriber(broker.port, "ocpp809/#") as sub:
        d = meter_daemon(make_daemon, broker, meter_block(tcp=f"127.0.0.1:{sim.port}"))
        master = make_master(d.port)
        value_of(master, POWER, lambda o: close(o.value, 21.75) and not o.iv)
        value_of(master, CURRENT, lambda o: close(o.value, 31.5))
        value_of(master, VOLTAGE, lambda o: close(o.value, 230.5))
        value_of(master, COMMUNICATING, lambda o: o.value is True or o.value == 1)
        gi = master.gi()
        objs = {o.ioa: o for a in gi.data for o in a.objects}
        # Counters answer counter interrogation, not GI.
        assert {POWER, CURRENT, VOLTAGE, COMMUNICATING} <= set(objs), sorted(objs)
        assert not any(objs[i].iv for i in (POWER, CURRENT, VOLTAGE)), objs
        ci = master.ci()
        counters = {o.ioa: o for a in ci.data for o in a.objects}
        assert counters[ENERGY].value == 1_234_568, "kWh → Wh, rounded (CONTRACT §7)"
        state = sub.wait_for(lambda m: m.topic == METER_TOPIC and m.json()["valid"]).json()
        assert set(state) == {"power_kw", "energy_wh", "current_a", "voltage_v", "valid", "ts"}
        assert close(state["power_kw"], 21.75) and close(state["voltage_v"], 230.5), state
        assert close(state["energy_wh"], 1_234_567.8, 0.2), state
        sim.set_power(5_000.0)
        value_of(master, POWER, lambda o: close(o.value, 5.0))
    with MqttSubscriber(broker.port, METER_TOPIC) as late:
        assert late.wait_for(lambda m: m.retain).json()["valid"] is True


def test_exception_and_timeout_give_iv_with_the_last_value(make_daemon, make_master, make_meter,
                                                           broker):
    sim = make_meter(21_750.0)
    with MqttSubscriber(broker.port, METER_TOPIC) as sub:
        d = meter_daemon(make_daemon, broker, meter_block(tcp=f"127.0.0.1:{sim.port}"))
        master = make_master(d.port)
        value_of(master, POWER, lambda o: close(o.value, 21.75) and not o.iv)
        mark = master.mark()
        sim.command("exception")
        bad = value_of(master, POWER, lambda o: o.iv, mark)
        assert close(bad.value, 21.75), f"IV keeps the last value, never 0: {bad}"
        comm = value_of(master, COMMUNICATING, lambda o: o.value in (False, 0), mark)
        assert not comm.iv and not comm.nt, "the communicating point is always good quality"
        invalid = sub.wait_for(lambda m: m.json()["valid"] is False).json()
        assert close(invalid["power_kw"], 21.75), f"meters/{{name}} keeps the last values: {invalid}"
        mark = master.mark()
        sim.command("normal")
        value_of(master, POWER, lambda o: not o.iv and not o.nt, mark)
        value_of(master, COMMUNICATING, lambda o: o.value in (True, 1), mark)
        # A meter that stops answering: timeout → IV, three intervals → NT as well.
        mark = master.mark()
        sim.command("silent")
        silent = value_of(master, POWER, lambda o: o.iv and o.nt, mark)
        assert close(silent.value, 21.75), silent
    assert d.alive()


def test_rtu_meter_over_a_serial_line(make_daemon, make_master, make_meter, serial_pair):
    sim = make_meter(11_000.0, rtu=serial_pair.a)
    d = meter_daemon(make_daemon, None, meter_block(rtu=serial_pair.b, baud=9600,
                                                    parity="none", poll_ms=300))
    master = make_master(d.port)
    value_of(master, POWER, lambda o: close(o.value, 11.0) and not o.iv, timeout=15)
    value_of(master, VOLTAGE, lambda o: close(o.value, 230.5))
    sim.command("exception")
    value_of(master, POWER, lambda o: o.iv, master.mark())
    assert d.alive()


@run_async
async def test_the_grid_meter_takes_other_loads_out_of_the_site_budget(make_daemon, make_meter):
    """Site limit 30 kW; the grid meter sees 35 kW of which the charger draws 10 kW: 25 kW of
    other load leaves the chargers 5 kW (CONTRACT §7). When the other load falls to 5 kW the
    charger may draw again (up to its demand)."""
    sim = make_meter(35_000.0)
    d = meter_daemon(make_daemon, None,
                     meter_block(tcp=f"127.0.0.1:{sim.port}", grid_meter=True),
                     site={"ioa_base": 1, "limit_kw": 30.0})
    d.wait_ocpp_listening()

    async def last_share_until(cp, done, timeout: float = 30.0) -> list[float]:
        deadline = time.monotonic() + timeout
        while True:
            await cp.req(c16.MeterValues(connector_id=1, meter_value=[{
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sampled_value": [{"value": "10000", "measurand": "Power.Active.Import",
                                   "unit": "W"}]}]))
            sets = [float(limit) for (kind, limit) in cp.limits() if kind == "set"]
            if (sets and done(sets[-1])) or time.monotonic() > deadline:
                return sets
            await asyncio.sleep(1.0)

    async with site_charger(d.ocpp_url(CP1), CP1, V16) as cp:
        await cp.req(c16.StatusNotification(connector_id=1, error_code="NoError",
                                            status="Charging"))
        sets = await last_share_until(cp, lambda w: abs(w - 5_000.0) < 300)
        assert sets and abs(sets[-1] - 5_000.0) < 300, \
            f"expected a share of 5 kW (30 − (35 − 10)), profiles sent: {cp.limits()}"
        sim.set_power(15_000.0)
        sets = await last_share_until(cp, lambda w: w > 10_000.0)
        assert sets[-1] > 10_000.0, f"other load gone, the share must grow: {cp.limits()}"
    assert d.alive()
