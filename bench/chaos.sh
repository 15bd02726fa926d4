#!/usr/bin/env bash
# Chaos runs, long variants (issue "Chaos tests"; the short variants run in CI through
# tests/run.sh as tests/interop/test_chaos.py):
#
#   bench/chaos.sh [PYTEST_ARGS...]          e.g. bench/chaos.sh -k broker
#
# runs tests/interop/test_chaos.py with CHAOS_LONG=1:
#   - kill -9 under load (20 chargers, 1.6 + 2.0.1): 10 kill/restart cycles, 10 s of load each
#   - MQTT broker down for 10 minutes while 4 chargers stream meter values
#   - SCADA master away (clean close / TCP cut with unacknowledged I-frames)
#   - a charger flapping its connection every second for 5 minutes
#   - 1,000 slowloris WebSocket clients
#   - 10,000 handshakes with bad subprotocols
# Expect about 20 minutes in all. Each knob can be overridden on its own:
#   CHAOS_KILL_CYCLES, CHAOS_KILL_LOAD_S, CHAOS_BROKER_DOWN_S, CHAOS_FLAP_S,
#   CHAOS_SLOWLORIS, CHAOS_BAD_HANDSHAKES
# e.g. CHAOS_BROKER_DOWN_S=60 bench/chaos.sh -k broker.
#
# Needs: the daemon binary (OCPP809_BIN, default target/release/ocpp809 if built, else
# target/debug/ocpp809; BUILD=1 runs `cargo build --release --bin ocpp809` first), the test
# venv tests/.venv (tests/run.sh creates it) and mosquitto (apt-get install -y mosquitto).
# Prints each scenario's measurements and a summary; the full output is kept in
# $CHAOS_LOG (default: a file under ${TMPDIR:-/tmp}, named at the end).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/tests/.venv"

if [ "${BUILD:-0}" = 1 ]; then
    cargo build --release --bin ocpp809
fi
if [ -z "${OCPP809_BIN:-}" ]; then
    if [ -x "$TARGET_DIR/release/ocpp809" ]; then
        OCPP809_BIN="$TARGET_DIR/release/ocpp809"
    else
        OCPP809_BIN="$TARGET_DIR/debug/ocpp809"
    fi
fi
if [ ! -x "$OCPP809_BIN" ]; then
    echo "error: no daemon binary at $OCPP809_BIN (cargo build --bin ocpp809, or BUILD=1)" >&2
    exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "error: no test venv at $VENV (tests/run.sh creates it)" >&2
    exit 2
fi
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || {
    echo "error: mosquitto is not installed (apt-get install -y mosquitto)" >&2
    exit 2
}

# 1,000 slowloris sockets in the test process and as many in the daemon.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

CHAOS_LOG="${CHAOS_LOG:-$(mktemp "${TMPDIR:-/tmp}/ocpp809-chaos.XXXXXX.log")}"
export OCPP809_BIN CHAOS_LONG=1
# The daemons log at info: debug logging of 10,000 handshakes only slows the run down.
export OCPP809_TEST_LOG="${OCPP809_TEST_LOG:-info}"

echo "ocpp809 chaos (long variants): $OCPP809_BIN, $(date -u +%FT%TZ)"
start=$(date +%s)
set +e
(cd tests/interop && "$VENV/bin/python" -m pytest test_chaos.py -s -p no:cacheprovider \
    -o timeout=1200 --durations=0 -rA "$@") 2>&1 | tee "$CHAOS_LOG"
status=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

echo
echo "==================== chaos summary ===================="
# The measurement lines each test prints (-s), then pytest's per-test outcome and timing.
grep -oE '(cycle [0-9]+:|sessions per charger|broker down|clean_close:|tcp_cut_with|[0-9]+ flaps|[0-9]+ slowloris|[0-9]+ bad handshakes).*' \
    "$CHAOS_LOG" || true
grep -E '^(PASSED|FAILED|ERROR) ' "$CHAOS_LOG" || true
grep -E '^[0-9.]+s call ' "$CHAOS_LOG" || true
echo "total ${elapsed} s, exit status ${status}; full output: $CHAOS_LOG"
exit "$status"
