#!/usr/bin/env bash
# Scale test (see BENCHMARKS.md, "Scale"): the release daemon with CHARGERS (default 10000)
# [[charger]] blocks (ioa_base 1000 + 100·k, one connector: the highest IOA is
# 1000 + 100·9999 + 94 = 1,000,994, far inside the 3-octet IOA range), MQTT off, HTTP off,
# and examples/soak.rs with CHARGERS concurrent OCPP 1.6 sessions, each running one
# transaction of METER_VALUES (default 60) MeterValues at 1 per second (legacy "12.3kW" /
# "1234,5" strings), spread evenly over the second, plus the IEC 104 master (setpoints,
# latency matching, counter interrogation at the end). Reports the daemon's CPU over the
# load window (/proc/PID/stat), RSS per session, p50/p99 latency charger → IEC 104 frame, and
# writes it between the scale-bench markers of BENCHMARKS.md.
#
# Environment: CHARGERS, METER_VALUES, INTERVAL (1), SETPOINT_EVERY (2), RSS_BOUND_KB (65536),
# RSS_WARMUP (20), NO_WRITE=1, BENCHMARKS_MD, SKIP_BUILD=1, KEEP_WORK=1, CARGO_TARGET_DIR,
# NOTE (a remark on the machine's load for the report).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHARGERS="${CHARGERS:-10000}"
TRANSACTIONS="$CHARGERS"
METER_VALUES="${METER_VALUES:-60}"
INTERVAL="${INTERVAL:-1}"
SHARE_16=1
SETPOINT_EVERY="${SETPOINT_EVERY:-2}"
RSS_BOUND_KB="${RSS_BOUND_KB:-65536}"
RSS_WARMUP="${RSS_WARMUP:-20}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/scale-bench.XXXXXX")"
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"

if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release daemon and example"
    cargo build --release --quiet --bin ocpp809 --example soak
fi
# Private copies: a concurrent build must not swap the binaries under a long run.
cp "$TARGET_DIR/release/ocpp809" "$WORK/ocpp809"
cp "$TARGET_DIR/release/examples/soak" "$WORK/soak"

# ---------------------------------------------------------------------------- daemon
OCPP_PORT="$(free_port)"
IEC_PORT="$(free_port)"
mkdir -p "$WORK/state"
CONFIG="$WORK/ocpp809.toml"
{
    cat <<EOF_CONFIG
[station]
name = "scale"
state_dir = "$WORK/state"

[iec104]
listen = "127.0.0.1:$IEC_PORT"

$(ocpp_load_table "$OCPP_PORT" false)

[mqtt]
enabled = false

[http]
enabled = false
EOF_CONFIG
    for k in $(seq 0 $((CHARGERS - 1))); do
        printf '\n[[charger]]\nid = "SOAK%d"\nioa_base = %d\nconnectors = 1\n' "$k" $((1000 + 100 * k))
    done
} >"$CONFIG"
"$WORK/ocpp809" check-config "$CONFIG" >/dev/null

say "daemon: OCPP 127.0.0.1:$OCPP_PORT, IEC 104 127.0.0.1:$IEC_PORT, $CHARGERS chargers"
RUST_LOG="${RUST_LOG:-warn}" "$WORK/ocpp809" run --config "$CONFIG" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
wait_port "$OCPP_PORT"
wait_port "$IEC_PORT"

ARGS=(--chargers "$CHARGERS" --transactions "$TRANSACTIONS" --meter-values "$METER_VALUES"
    --interval "$INTERVAL" --share-16 "$SHARE_16" --setpoint-every "$SETPOINT_EVERY"
    --rss-warmup "$RSS_WARMUP" --rss-growth-max-kb "$RSS_BOUND_KB" --rss-every 5 --connect-timeout 120)
CMD="soak --url ws://127.0.0.1:PORT/ocpp --iec104 127.0.0.1:PORT --pid DAEMON_PID ${ARGS[*]}"
say "$CMD"
rc=0
STARTED="$(date +%s)"
"$WORK/soak" --url "ws://127.0.0.1:$OCPP_PORT/ocpp" --iec104 "127.0.0.1:$IEC_PORT" \
    --pid "$DAEMON_PID" "${ARGS[@]}" \
    >"$WORK/soak.json" 2> >(tee "$WORK/soak.log" >&2) || rc=$?
ELAPSED=$(($(date +%s) - STARTED))
cat "$WORK/soak.json" >&2
if [ ! -s "$WORK/soak.json" ]; then
    echo "soak produced no result (exit $rc)" >&2
    tail -30 "$WORK/daemon.log" >&2
    exit 1
fi
kill "$DAEMON_PID" 2>/dev/null || true
DAEMON_RC=0
wait "$DAEMON_PID" 2>/dev/null || DAEMON_RC=$?
get() { jq -r "$1" "$WORK/soak.json"; }

# ---------------------------------------------------------------------------- report
machine_facts
REPORT="$WORK/report.md"
{
    echo "## Scale — latest run of \`bench/scale.sh\`"
    echo
    echo "- Date: $(date -u +'%Y-%m-%d %H:%M UTC'), commit $COMMIT; wall time ${ELAPSED} s"
    echo "- Machine: $CPU, $CORES cores (\`nproc\`), ${MEM_GB} GB RAM, Linux $(uname -r); daemon and load generator (chargers + IEC 104 master, one process) share the cores$( [ -n "${NOTE:-}" ] && echo "; $NOTE")."
    echo "- Daemon: release build, $CHARGERS \`[[charger]]\` blocks (ioa_base 1000 + 100·k, 1 connector; highest IOA 1,000,994 < 2^24), \`accept_unknown = false\`, \`[mqtt] enabled = false\`, \`[http] enabled = false\`, log level \`${RUST_LOG:-warn}\`, IEC 104 k = 12, w = 8."
    echo "- Load: $CHARGERS concurrent OCPP 1.6 sessions (BootNotification, StatusNotification, StartTransaction, then $METER_VALUES MeterValues at one per ${INTERVAL} s with \`\"12.3kW\"\` power and \`\"1234,5\"\` Wh register strings, first samples spread evenly over the interval, StopTransaction). IEC 104 master: C_SE_NC_1 to a random charger every ${SETPOINT_EVERY} s, counter interrogation at the end."
    echo "- Latency = register sent by the charger (before the WebSocket write) → the master reads the spontaneous M_IT_TB_1 of that charger's total energy (offset 2) with that value; same clock. CPU = daemon utime + stime (\`/proc/PID/stat\`) over the load window ÷ window. RSS per session = (VmRSS with all sessions up − VmRSS before the first connection) ÷ sessions."
    echo
    echo "Command:"
    echo
    echo '```sh'
    echo "bench/scale.sh    # CHARGERS=$CHARGERS METER_VALUES=$METER_VALUES INTERVAL=$INTERVAL"
    echo '```'
    echo
    echo "which runs (ports picked free):"
    echo
    echo '```'
    echo "$CMD"
    echo '```'
    echo
    echo "| result | sessions | MeterValues | load s | OCPP calls/s | daemon CPU % of one core | RSS per session KB | latency p50 / p90 / p99 / p99.9 / max ms (samples) | setpoints sent / confirmed | energy Σ reported = Σ SCADA CI (Wh), mismatches |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '| %s | %s / %s | %s | %s | %s | %s | %s | %s / %s / %s / %s / %s (%s) | %s / %s | %s = %s, %s |\n' \
        "$(jq -r 'if .ok then "ok" else "FAILED: " + (.failures | join("; ")) end' "$WORK/soak.json")" \
        "$(get .sessions_established)" "$(get .chargers)" "$(get .meter_samples)" "$(get .load_s)" \
        "$(get .ocpp_calls_per_s)" "$(get .daemon.cpu_percent_of_one_core)" "$(get .daemon.rss_per_session_kb)" \
        "$(get .latency_charger_to_iec104_ms.p50)" "$(get .latency_charger_to_iec104_ms.p90)" "$(get .latency_charger_to_iec104_ms.p99)" \
        "$(get .latency_charger_to_iec104_ms.p999)" "$(get .latency_charger_to_iec104_ms.max)" "$(get .latency_charger_to_iec104_ms.matched)" \
        "$(get .setpoints.sent)" "$(get .setpoints.confirmed)" \
        "$(get .energy.sum_reported_wh)" "$(get .energy.sum_scada_ci_wh)" "$(get .energy.mismatch_scada_ci)"
    echo
    echo "Daemon VmRSS (kB): before sessions $(get .daemon.rss_kb.before_sessions), sessions up $(get .daemon.rss_kb.sessions_up), max $(get .daemon.rss_kb.max), ${RSS_WARMUP} s after sessions up $(get .daemon.rss_kb.reference_after_warmup), max after it $(get .daemon.rss_kb.max_after_warmup) (growth $(get .daemon.rss_kb.growth_after_warmup) kB), end $(get .daemon.rss_kb.end). Session set-up $(get .connect_s) s. Daemon CPU $(get .daemon.cpu_s) s over $(get .load_s) s. IEC 104 I-frames $(get .iec104.iframes) ($(get .iec104.objects) objects). Exit status on SIGTERM: $DAEMON_RC."
    echo
    echo "Full JSON of the run:"
    echo
    echo '```json'
    jq -c 'del(.energy.examples)' "$WORK/soak.json"
    echo '```'
} >"$REPORT"
cat "$REPORT"

write_report_block scale-bench "$REPORT"
[ "$rc" = 0 ] && [ "$DAEMON_RC" = 0 ]
