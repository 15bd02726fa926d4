#!/usr/bin/env bash
# Self-test of the IEC 101 master harness against lib60870-C's own CS101 slave
# (slave_selftest.c), before/independently of ocpp809. Not run by CI (tests/run.sh).
#
#   tests/interop/iec101/selftest.sh
#
# Uses the same pieces as test_iec101.py: serial.py (socat PTY pair), iec101_master.py
# (wrapper) and iec101-master (master.c). Checks, in unbalanced and balanced mode: link up,
# GI (ACTCON, COT 20 data, ACTTERM), counter interrogation, clock sync, a float setpoint
# (positive ACTCON + ACTTERM, negative ACTCON for a value <= 0), class 2 spontaneous data
# and that raw noise on the line does not stop the exchange.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PY="$ROOT/tests/.venv/bin/python"
[ -x "$PY" ] || PY=python3
"$HERE/build.sh" --selftest >/dev/null
export IEC101_MASTER_BIN="${IEC101_MASTER_BIN:-$ROOT/tests/.work/lib60870/iec101-master}"
export IEC101_SLAVE_BIN="$ROOT/tests/.work/lib60870/iec101-slave-selftest"
cd "$ROOT/tests/interop"
exec "$PY" - <<'PYEOF'
import os, subprocess, sys, tempfile, time
from pathlib import Path
from serial import SerialPair
import iec101_master as M

def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        check.failed = True
check.failed = False

for mode, las in (("unbalanced", 1), ("balanced", 1), ("balanced", 0)):
    print(f"== {mode}, link address size {las}")
    with tempfile.TemporaryDirectory() as td:
        pair = SerialPair(Path(td), "tty").start()
        slave = subprocess.Popen([os.environ["IEC101_SLAVE_BIN"], "--device", pair.b, "--mode",
                                  mode, "--link-address-size", str(las), "--seconds", "60"],
                                 stderr=subprocess.DEVNULL)
        m = M.Iec101Master(pair.a, mode=mode, link_address_size=las, trace=True,
                           workdir=Path(td)).start()
        try:
            m.wait_link("available", 10)
            check(True, "link available")
            r = m.gi()
            objs = r.objects
            check(r.actcon is not None and not r.actcon.negative, f"GI ACTCON {r.actcon}")
            check(r.actterm is not None, f"GI ACTTERM {r.actterm}")
            check({i: t for i, (t, _) in objs.items()} == {1000: 30, 1001: 36},
                  f"GI data COT 20: { {i: (t, o['value']) for i, (t, o) in objs.items()} }")
            if mode == "unbalanced":
                fcs = {m.request_class_of(a) for a in r.data}
                check(fcs == {M.FC_REQUEST_CLASS_1}, f"GI data answered class 1 requests {fcs}")
            c = m.ci()
            check(c.actterm is not None and set(c.objects) == {1002}
                  and c.objects[1002][1]["value"] == 123456, f"CI {c.describe()[:160]}")
            cs = m.clock_sync()
            check(cs is not None and cs.cot == M.COT_ACTCON and not cs.negative, f"clock {cs}")
            mk = m.mark()
            res = m.setpoint_float(1090, 11.5)
            check(res.positive, f"setpoint 11.5: {res.describe()}")
            sp = m.spontaneous(1001, mk, 5, pred=lambda o: abs(o["value"] - 11.5) < 1e-3)
            check(sp is not None, f"spontaneous 1001 = 11.5 after the setpoint: {sp}")
            if mode == "unbalanced" and sp is not None:
                a = m.wait_for(lambda a: a.cot == 3 and 1001 in a.ioas, mk, 1)
                check(m.request_class_of(a) == M.FC_REQUEST_CLASS_2,
                      f"spontaneous answered a class 2 request (fc {m.request_class_of(a)})")
            res = m.setpoint_float(1090, -1.0)
            check(bool(res.confirmations) and res.confirmations[-1].negative,
                  f"setpoint -1 negative: {res.describe()}")
            res = m.setpoint_float(1090, 12.5, select=True)
            check(res.positive, f"select + execute 12.5: {res.describe()}")
            for junk in ("ffff00aa55", "105b015d16", "10 5b 01 00 16",
                         "68 09 09 68 73 01 64 01 06 01 00 00 14 f5 16", "68 0c 09 68 73 01"):
                m.raw(junk)
                time.sleep(0.2)
            r2 = m.gi()
            check(r2.actterm is not None and len(r2.objects) == 2, "GI after noise")
        except Exception as e:
            check(False, f"exception {e}")
        finally:
            m.stop()
            slave.terminate(); slave.wait(5)
            pair.stop()
print("SELFTEST", "FAILED" if check.failed else "PASSED")
sys.exit(1 if check.failed else 0)
PYEOF
