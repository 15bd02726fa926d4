"""Reference CSMS for bench/compare.sh: the Python `ocpp` package (Mobility House) as an
OCPP 1.6 central system on a `websockets` server.

Answers BootNotification (Accepted, interval 300), Heartbeat and MeterValues; every CALL is
validated against the official JSON schemas by the library (its default). The charge point
id is the last path segment of the request (ocpp_loadgen connects to {url}/LG{i}).

    tests/.venv/bin/python bench/python_csms.py --port PORT

Prints "listening on 127.0.0.1:PORT" on stderr once bound; runs until SIGINT/SIGTERM, then
prints {"calls": N, "sessions": N} on stdout.
"""

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import datetime, timezone

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, RegistrationStatus

COUNTS = {"calls": 0, "sessions": 0}


class ChargePoint(ChargePoint16):
    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor, charge_point_model, **kwargs):
        COUNTS["calls"] += 1
        return call_result.BootNotification(
            current_time=datetime.now(timezone.utc).isoformat(),
            interval=300,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self):
        COUNTS["calls"] += 1
        return call_result.Heartbeat(current_time=datetime.now(timezone.utc).isoformat())

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id, meter_value, **kwargs):
        COUNTS["calls"] += 1
        return call_result.MeterValues()


async def on_connect(websocket):
    if websocket.subprotocol != "ocpp1.6":
        await websocket.close(1002, "subprotocol ocpp1.6 required")
        return
    cp_id = websocket.request.path.rstrip("/").rsplit("/", 1)[-1] or "unknown"
    COUNTS["sessions"] += 1
    try:
        await ChargePoint(cp_id, websocket).start()
    except websockets.exceptions.ConnectionClosed:
        pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The library logs every message at INFO; keep it quiet like the other servers.
    logging.basicConfig(level=logging.WARNING)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with websockets.serve(
        on_connect, args.host, args.port, subprotocols=["ocpp1.6"], max_queue=64
    ):
        print(f"listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
        await stop
    print(json.dumps(COUNTS), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
