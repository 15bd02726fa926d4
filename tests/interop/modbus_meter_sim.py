"""A Modbus meter simulator for the ocpp809 meter-poller tests (pymodbus 3.11 server).

Serves input registers (function 04) and holding registers (function 03) with values from a
JSON file, over Modbus TCP or Modbus RTU on a serial device (e.g. one end of a socat PTY pair).

    modbus_meter_sim.py --tcp 127.0.0.1:0 --registers regs.json
    modbus_meter_sim.py --rtu /tmp/ptyB --baud 9600 --registers regs.json --units 1,2

regs.json: {"input": {"52": [17254, 32768], ...}, "holding": {"0": [1, 2]}}
(0-based start address -> list of 16-bit words; any address not listed reads as 0).

Prints `LISTENING <port>` (TCP) or `READY` (RTU) on stdout once serving. Reads commands from
stdin, one per line, and acknowledges each with `OK <command>`:
    normal     answer requests
    exception  answer every read with exception 02 (illegal data address)
    silent     accept requests but never answer them (the client times out)
    set <input|holding> <addr> <w1> [w2 ...]   change words
    quit       exit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer


class MeterContext(ModbusDeviceContext):
    """A device whose registers are plain dicts and whose behaviour the test switches."""

    def __init__(self, registers: dict) -> None:
        super().__init__()
        self.words = {"input": {}, "holding": {}}
        for table in ("input", "holding"):
            for start, values in registers.get(table, {}).items():
                self.set(table, int(start, 0), values)
        self.mode = "normal"

    def set(self, table: str, start: int, values: list[int]) -> None:
        for i, word in enumerate(values):
            self.words[table][start + i] = int(word) & 0xFFFF

    async def async_getValues(self, func_code, address, count=1):  # noqa: N802 (pymodbus API)
        while self.mode == "silent":
            await asyncio.sleep(0.02)
        if self.mode == "exception":
            return ExcCodes.ILLEGAL_ADDRESS
        table = {3: "holding", 4: "input"}.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        return [self.words[table].get(address + i, 0) for i in range(count)]


async def commands(device: MeterContext, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            # stdin closed: the test process went away, so do we.
            stop.set()
            return
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        if cmd in ("normal", "exception", "silent"):
            device.mode = cmd
        elif cmd == "set" and len(parts) >= 4:
            device.set(parts[1], int(parts[2], 0), [int(w, 0) for w in parts[3:]])
        elif cmd == "quit":
            print("OK quit", flush=True)
            stop.set()
            return
        else:
            print(f"ERR {line.strip()}", flush=True)
            continue
        print(f"OK {line.strip()}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcp", help="host:port to listen on (port 0: pick a free one)")
    parser.add_argument("--rtu", help="serial device")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--parity", default="N", choices=["N", "E", "O"])
    parser.add_argument("--registers", help="JSON file with the register contents")
    parser.add_argument(
        "--units",
        help="comma-separated unit ids to answer (default: every id); others get no answer",
    )
    args = parser.parse_args()

    registers = {}
    if args.registers:
        with open(args.registers, encoding="utf-8") as f:
            registers = json.load(f)
    device = MeterContext(registers)
    if args.units:
        # One shared register image, answered only under these unit ids: a request for any
        # other id is ignored, like a meter missing from the bus.
        ids = [int(u) for u in args.units.split(",")]
        context = ModbusServerContext(devices={u: device for u in ids}, single=False)
    else:
        context = ModbusServerContext(devices=device, single=True)

    if args.tcp:
        host, port = args.tcp.rsplit(":", 1)
        port = int(port)
        if port == 0:
            # pymodbus does not report the bound port; pick a free one ourselves.
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        server = ModbusTcpServer(
            context,
            framer=FramerType.SOCKET,
            address=(host, port),
            ignore_missing_devices=True,
        )
        banner = f"LISTENING {port}"
    elif args.rtu:
        server = ModbusSerialServer(
            context,
            framer=FramerType.RTU,
            port=args.rtu,
            baudrate=args.baud,
            bytesize=8,
            parity=args.parity,
            stopbits=1,
            # An absent unit stays silent, as on a real bus (not exception 0B).
            ignore_missing_devices=True,
        )
        banner = "READY"
    else:
        parser.error("one of --tcp and --rtu is required")

    stop = asyncio.Event()
    serve = asyncio.create_task(server.serve_forever())
    # serve_forever binds the socket / opens the port first; give it a moment, then announce.
    for _ in range(100):
        await asyncio.sleep(0.02)
        if serve.done():
            serve.result()  # raises the bind/open error
        if args.rtu or _listening(host, port):
            break
    print(banner, flush=True)
    cmd_task = asyncio.create_task(commands(device, stop))
    await stop.wait()
    await server.shutdown()
    cmd_task.cancel()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    asyncio.run(main())
