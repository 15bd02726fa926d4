#!/usr/bin/env python3
"""c104 (lib60870-C) master for the IEC 104 throughput benchmark (bench/iec104.sh).

Connects to the station, starts data transfer, and counts the I-frames (ASDUs) and
information objects it receives through ``Connection.on_receive_raw`` over a measurement
window that starts ``--warmup`` seconds after the connection is OPEN. lib60870 does the
link layer (k/w acknowledgements, t1-t3). Prints one JSON line:
``{"master": "c104", "asdus_per_s": .., "objects_per_s": .., "seconds": .., ...}``.

``--count wire`` registers no Python callback at all and instead reads the bytes the
master's socket received from ``ss -ti`` (iproute2) at the window's edges; with
``--frame-len`` (23 octets for an M_SP_TB_1 I-frame) that gives ASDUs/s without the cost of
calling into Python per frame, i.e. the ceiling of lib60870-C itself.

Usage: iec104_c104_master.py --connect 127.0.0.1:PORT [--warmup 2] [--seconds 8]
                             [--count raw|wire] [--frame-len 23]
"""

# No `from __future__ import annotations`: c104 checks the callback annotations as real
# types and rejects the string form.

import argparse
import json
import re
import subprocess
import sys
import threading
import time

import c104

OPEN = c104.ConnectionState.OPEN
OPEN_MUTED = c104.ConnectionState.OPEN_MUTED


class Counter:
    """Counts I-frames; the window flag is flipped by the main thread."""

    def __init__(self) -> None:
        self.counting = False
        self.asdus = 0
        self.objects = 0
        self.asdus_total = 0
        self.lock = threading.Lock()

    # Exact annotations are required by c104 2.2.1 (help(c104.Connection.on_receive_raw)).
    def on_raw(self, connection: c104.Connection, data: bytes) -> None:
        # APCI: 0x68 L CF1..CF4; I-format when bit 0 of CF1 is 0. ASDU octet 2 is the VSQ.
        if len(data) > 7 and not data[2] & 1:
            self.asdus_total += 1
            if self.counting:
                self.asdus += 1
                self.objects += data[7] & 0x7F


def socket_bytes_received(port: int) -> int:
    """bytes_received of the established TCP socket(s) whose remote port is ``port``."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( dport = :{port} )"],
        check=True, capture_output=True, text=True).stdout
    return sum(int(m) for m in re.findall(r"bytes_received:(\d+)", out))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connect", required=True, help="HOST:PORT of the station")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--w", type=int, default=8)
    ap.add_argument("--ca", type=int, default=1)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--count", choices=["raw", "wire"], default="raw",
                    help="raw: on_receive_raw callback (default); wire: socket byte count")
    ap.add_argument("--frame-len", type=int, default=23,
                    help="--count wire: octets per I-frame (23 = M_SP_TB_1)")
    args = ap.parse_args()
    host, port = args.connect.rsplit(":", 1)

    counter = Counter()
    client = c104.Client(tick_rate_ms=50, command_timeout_ms=3000)
    conn = client.add_connection(ip=host, port=int(port), init=c104.Init.NONE)
    if conn is None:
        print("c104 refused add_connection", file=sys.stderr)
        return 2
    params = conn.protocol_parameters
    params.send_window_size = args.k
    params.receive_window_size = args.w
    if args.count == "raw":
        conn.on_receive_raw(callable=counter.on_raw)
    # Objects of points the master does not know are parsed by lib60870 and then ignored.
    conn.add_station(common_address=args.ca)
    client.start()

    # Wait for OPEN; c104 sometimes stays OPEN_MUTED (see /work/shared/PEERS.md): unmute.
    deadline = time.monotonic() + args.connect_timeout
    muted_since = None
    while conn.state != OPEN:
        now = time.monotonic()
        if now > deadline:
            print(f"connection not OPEN after {args.connect_timeout}s: {conn.state}",
                  file=sys.stderr)
            client.stop()
            return 1
        if conn.state == OPEN_MUTED:
            if muted_since is None:
                muted_since = now
            elif now - muted_since > 0.3:
                conn.unmute()
                muted_since = now
        else:
            muted_since = None
        time.sleep(0.02)

    time.sleep(args.warmup)
    if args.count == "wire":
        b0 = socket_bytes_received(int(port))
    counter.counting = True
    t0 = time.monotonic()
    time.sleep(args.seconds)
    counter.counting = False
    elapsed = time.monotonic() - t0
    result = {"master": "c104" if args.count == "raw" else "c104-wire"}
    if args.count == "wire":
        received = socket_bytes_received(int(port)) - b0
        counter.asdus = counter.objects = received // args.frame_len
        result["bytes_per_s"] = round(received / elapsed)
    state = conn.state
    client.stop()
    result.update({
        "asdus_per_s": round(counter.asdus / elapsed),
        "objects_per_s": round(counter.objects / elapsed),
        "seconds": round(elapsed, 3),
        "asdus": counter.asdus,
        "objects": counter.objects,
        "asdus_total": counter.asdus_total,
        "state_at_end": state.name if hasattr(state, "name") else str(state),
    })
    print(json.dumps(result))
    return 0 if state == OPEN else 1


if __name__ == "__main__":
    sys.exit(main())
