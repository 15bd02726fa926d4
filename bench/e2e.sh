#!/usr/bin/env bash
# End-to-end latency benchmark (see BENCHMARKS.md, "End-to-end latency"): MeterValues sent
# by a charger → I-frame with the new value received by an IEC 60870-5-104 master.
#
# Writes a temporary configuration with CHARGERS [[charger]] blocks (ioa_base 1000 + 100·k,
# one connector), [mqtt] enabled = false, a temporary state_dir and loopback ports picked
# free; runs the release daemon and examples/e2e_latency.rs (N OCPP 1.6 chargers at 1
# MeterValues/s each + a raw IEC 104 master on the same daemon), then the criterion
# benchmark benches/engine.rs (engine throughput). Prints a Markdown report and writes it
# into BENCHMARKS.md between the e2e-bench markers.
#
# Environment: CHARGERS (default 1000), WARMUP (s, default 5), MEASURE (s, default 20),
# SKIP_CRITERION=1, NO_WRITE=1 (do not touch BENCHMARKS.md), BENCHMARKS_MD, SKIP_BUILD=1.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHARGERS="${CHARGERS:-1000}"
WARMUP="${WARMUP:-5}"
MEASURE="${MEASURE:-20}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DAEMON_BIN="$TARGET_DIR/release/ocpp809"
E2E_BIN="$TARGET_DIR/release/examples/e2e_latency"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/e2e-bench.XXXXXX")"
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"

if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release daemon and example"
    cargo build --release --quiet --bin ocpp809 --example e2e_latency
fi

# ---------------------------------------------------------------------------- daemon
OCPP_PORT="$(free_port)"
IEC_PORT="$(free_port)"
mkdir -p "$WORK/state"
CONFIG="$WORK/ocpp809.toml"
{
    cat <<EOF_CONFIG
[station]
state_dir = "$WORK/state"

[iec104]
listen = "127.0.0.1:$IEC_PORT"

$(ocpp_load_table "$OCPP_PORT" false)

[mqtt]
enabled = false
EOF_CONFIG
    for k in $(seq 0 $((CHARGERS - 1))); do
        printf '\n[[charger]]\nid = "E2E%d"\nioa_base = %d\nconnectors = 1\n' "$k" $((1000 + 100 * k))
    done
} >"$CONFIG"
"$DAEMON_BIN" check-config "$CONFIG" >/dev/null

say "daemon: OCPP 127.0.0.1:$OCPP_PORT, IEC 104 127.0.0.1:$IEC_PORT, $CHARGERS chargers"
"$DAEMON_BIN" run --config "$CONFIG" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
wait_port "$OCPP_PORT"
wait_port "$IEC_PORT"

CMD="e2e_latency --url ws://127.0.0.1:PORT/ocpp --iec104 127.0.0.1:PORT --chargers $CHARGERS --rate 1 --warmup $WARMUP --seconds $MEASURE --w 8"
say "$CMD"
rc=0
timeout $((WARMUP + MEASURE + 90)) "$E2E_BIN" --url "ws://127.0.0.1:$OCPP_PORT/ocpp" \
    --iec104 "127.0.0.1:$IEC_PORT" --chargers "$CHARGERS" --rate 1 \
    --warmup "$WARMUP" --seconds "$MEASURE" --w 8 \
    >"$WORK/e2e.json" 2>"$WORK/e2e.log" &
E2E_PID=$!
PIDS+=("$E2E_PID")
wait "$E2E_PID" || rc=$?
kill "$DAEMON_PID" 2>/dev/null || true
wait "$DAEMON_PID" 2>/dev/null || true
if [ "$rc" != 0 ]; then
    echo "e2e_latency failed ($rc):" >&2
    cat "$WORK/e2e.log" >&2
    tail -20 "$WORK/daemon.log" >&2
    exit 1
fi
cat "$WORK/e2e.json" >&2
get() { jq -r "$1" "$WORK/e2e.json"; }

# ------------------------------------------------------------------------- criterion
CRIT="$WORK/criterion.txt"
if [ -z "${SKIP_CRITERION:-}" ]; then
    say "criterion: benches/engine.rs"
    cargo bench --quiet --bench engine -- --warm-up-time 1 --measurement-time 4 2>&1 | tee "$CRIT" >&2
fi

# ---------------------------------------------------------------------------- report
machine_facts

REPORT="$WORK/report.md"
{
    echo "## End-to-end latency — latest run of \`bench/e2e.sh\`"
    echo
    echo "- Date: $(date -u +'%Y-%m-%d %H:%M UTC'), commit $COMMIT"
    echo "- Machine: $CPU, $CORES cores, ${MEM_GB} GB RAM, Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2)"
    echo "- Loopback; chargers, master and daemon share the $CORES cores. Daemon: release build, $CHARGERS \`[[charger]]\` blocks (ioa_base 1000 + 100·k, 1 connector), \`accept_unknown = false\`, \`[mqtt] enabled = false\`, temporary \`state_dir\`, IEC 104 k = 12, w = 8, default log level."
    echo "- Each charger: OCPP 1.6, BootNotification, StatusNotification Charging, then MeterValues (Power.Active.Import stepping 300 W per message through 20 values + energy register) once a second, spread evenly over the second. Master: raw APCI (STARTDT, S-frame every 8 I-frames), decodes every ASDU; latency = MeterValues CALL written → I-frame carrying connector 1's new power (IOA base + 13) read, same clock."
    echo "- ${WARMUP} s warm-up, then ${MEASURE} s window; a send in the window whose I-frame did not come within 2 s after the window is unmatched."
    echo
    echo "Command (ports picked free):"
    echo
    echo '```'
    echo "$CMD"
    echo '```'
    echo
    echo "| chargers | MeterValues in window | matched | unmatched | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | I-frames | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$(get .sessions_established)" "$(get .sent_in_window)" "$(get .matched)" "$(get .unmatched)" \
        "$(get .p50_ms)" "$(get .p90_ms)" "$(get .p99_ms)" "$(get .p999_ms)" "$(get .max_ms)" \
        "$(get .iframes)" \
        "$(jq -r '[.errors | to_entries[] | select(.value > 0) | "\(.key) \(.value)"] | join(", ") | if . == "" then "0" else . end' "$WORK/e2e.json")"
    echo
    echo "Target (issue): p99 < 5 ms at 1,000 chargers × 1 MeterValues/s."
    if [ -s "$CRIT" ]; then
        echo
        echo "Engine throughput (\`cargo bench --bench engine\`, criterion, \`Engine::handle\` alone, 1,000 configured chargers, connector 1 charging; MeterValues = power + energy register + 3 phase currents, all beyond their deadbands):"
        echo
        echo "| case | time per event | events/s |"
        echo "|---|---|---|"
        awk '
            /^engine\// { name = substr($0, 8); sub(/[ \t]+time:.*/, "", name); pending = 1 }
            pending && /time:/ { t = $0; sub(/.*time: *\[/, "", t); sub(/\].*/, "", t); split(t, a, " "); time = a[3] " " a[4] }
            pending && /thrpt:/ { r = $0; sub(/.*thrpt: *\[/, "", r); sub(/\].*/, "", r); split(r, b, " "); printf "| %s | %s | %s %s |\n", name, time, b[3], b[4]; pending = 0 }
        ' "$CRIT"
    fi
} >"$REPORT"

cat "$REPORT"

write_report_block e2e-bench "$REPORT"
