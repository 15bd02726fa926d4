"""A charger simulator for tests/ocpp_commands.rs: the Mobility House ``ocpp`` ChargePoint
(1.6J or 2.0.1) that boots and answers every CSMS command positively.

    sim_charger.py --url ws://127.0.0.1:PORT/ocpp/SIM1 --version 1.6|2.0.1

stdout, one JSON object per line (flushed):

* ``{"event": "connected", "subprotocol": ...}`` once the WebSocket is up;
* ``{"event": "booted", "status": ...}`` after the BootNotification answer;
* ``{"action": ..., "payload": ...}`` for every CALL received from the CSMS, the payload as
  it came over the wire (camelCase), printed before the library validates it;
* ``{"event": "closed"}`` when the connection ends.

The library validates every incoming CALL and every CALLRESULT it sends against the official
JSON schemas it ships (validation is left on): a schema-invalid command is answered with a
CALLERROR, which the Rust test sees as a failed command.

Answers: Accepted (Unlocked for UnlockConnector); GetCompositeSchedule a schedule starting
now with one period of 7000 W; GetConfiguration / GetVariables the value ``"sim-<key>"`` for
every key asked for; DataTransfer Accepted with data ``"pong"``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

import ocpp.v16
import ocpp.v16.call as c16
import ocpp.v16.call_result as r16
import ocpp.v201
import ocpp.v201.call as c201
import ocpp.v201.call_result as r201
from ocpp.routing import on
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

COMPOSITE_LIMIT_W = 7000.0


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def now_iso() -> str:
    t = dt.datetime.now(dt.timezone.utc)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


class _Print:
    """Prints every CALL from the CSMS (before validation), then lets the library handle it."""

    async def _handle_call(self, msg):
        emit({"action": msg.action, "payload": msg.payload})
        return await super()._handle_call(msg)


class Sim16(_Print, ocpp.v16.ChargePoint):
    @on("SetChargingProfile")
    def set_charging_profile(self, **_):
        return r16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def clear_charging_profile(self, **_):
        return r16.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def get_composite_schedule(self, connector_id, duration, charging_rate_unit="W", **_):
        return r16.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now_iso(),
            charging_schedule={"duration": duration, "chargingRateUnit": "W",
                               "chargingSchedulePeriod": [
                                   {"startPeriod": 0, "limit": COMPOSITE_LIMIT_W}]})

    @on("ChangeAvailability")
    def change_availability(self, **_):
        return r16.ChangeAvailability(status="Accepted")

    @on("Reset")
    def reset(self, **_):
        return r16.Reset(status="Accepted")

    @on("TriggerMessage")
    def trigger_message(self, **_):
        return r16.TriggerMessage(status="Accepted")

    @on("RemoteStartTransaction")
    def remote_start(self, **_):
        return r16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def remote_stop(self, **_):
        return r16.RemoteStopTransaction(status="Accepted")

    @on("GetConfiguration")
    def get_configuration(self, key=None, **_):
        keys = key or ["HeartbeatInterval"]
        return r16.GetConfiguration(configuration_key=[
            {"key": k, "readonly": False, "value": f"sim-{k}"} for k in keys])

    @on("ChangeConfiguration")
    def change_configuration(self, **_):
        return r16.ChangeConfiguration(status="Accepted")

    @on("UnlockConnector")
    def unlock_connector(self, **_):
        return r16.UnlockConnector(status="Unlocked")

    @on("DataTransfer")
    def data_transfer(self, **_):
        return r16.DataTransfer(status="Accepted", data="pong")


def _name(d: dict) -> str:
    return d["name"]


class Sim201(_Print, ocpp.v201.ChargePoint):
    @on("SetChargingProfile")
    def set_charging_profile(self, **_):
        return r201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def clear_charging_profile(self, **_):
        return r201.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def get_composite_schedule(self, duration, evse_id, charging_rate_unit="W", **_):
        return r201.GetCompositeSchedule(status="Accepted", schedule={
            "evseId": evse_id, "duration": duration, "scheduleStart": now_iso(),
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": COMPOSITE_LIMIT_W}]})

    @on("ChangeAvailability")
    def change_availability(self, **_):
        return r201.ChangeAvailability(status="Accepted")

    @on("Reset")
    def reset(self, **_):
        return r201.Reset(status="Accepted")

    @on("TriggerMessage")
    def trigger_message(self, **_):
        return r201.TriggerMessage(status="Accepted")

    @on("RequestStartTransaction")
    def request_start(self, **_):
        return r201.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def request_stop(self, **_):
        return r201.RequestStopTransaction(status="Accepted")

    @on("GetVariables")
    def get_variables(self, get_variable_data, **_):
        # (keys arrive snake_cased; the names inside are values and stay as sent)
        return r201.GetVariables(get_variable_result=[
            {"attributeStatus": "Accepted", "component": {"name": _name(d["component"])},
             "variable": {"name": _name(d["variable"])},
             "attributeValue": f"sim-{_name(d['component'])}.{_name(d['variable'])}"}
            for d in get_variable_data])

    @on("SetVariables")
    def set_variables(self, set_variable_data, **_):
        return r201.SetVariables(set_variable_result=[
            {"attributeStatus": "Accepted", "component": {"name": _name(d["component"])},
             "variable": {"name": _name(d["variable"])}}
            for d in set_variable_data])

    @on("UnlockConnector")
    def unlock_connector(self, **_):
        return r201.UnlockConnector(status="Unlocked")

    @on("DataTransfer")
    def data_transfer(self, **_):
        return r201.DataTransfer(status="Accepted", data="pong")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--version", choices=["1.6", "2.0.1"], required=True)
    args = ap.parse_args()
    subprotocol = "ocpp1.6" if args.version == "1.6" else "ocpp2.0.1"
    cp_id = args.url.rstrip("/").rsplit("/", 1)[-1]
    async with connect(args.url, subprotocols=[subprotocol], proxy=None, open_timeout=10,
                       ping_interval=None, close_timeout=2) as ws:
        emit({"event": "connected", "subprotocol": ws.subprotocol})
        cls = Sim16 if args.version == "1.6" else Sim201
        cp = cls(cp_id, ws, response_timeout=10)
        task = asyncio.create_task(cp.start())
        if args.version == "1.6":
            r = await cp.call(c16.BootNotification(
                charge_point_vendor="interop", charge_point_model="sim16",
                charge_point_serial_number="SN-SIM16", firmware_version="1.0.0"),
                suppress=False)
        else:
            r = await cp.call(c201.BootNotification(
                charging_station={"model": "sim201", "vendorName": "interop",
                                  "serialNumber": "SN-SIM201", "firmwareVersion": "1.0.0"},
                reason="PowerUp"), suppress=False)
        emit({"event": "booted", "status": r.status})
        try:
            await task
        except ConnectionClosed:
            pass
    emit({"event": "closed"})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(0)
