#!/usr/bin/env bash
# Soak test (see BENCHMARKS.md, "Soak"): mosquitto + the release daemon with CHARGERS
# [[charger]] blocks (ioa_base 1000 + 100·k, one connector, MQTT enabled, HTTP off) and
# examples/soak.rs driving TRANSACTIONS transactions through them (mixed OCPP 1.6 legacy
# strings / 2.0.1 TransactionEvent), an IEC 104 master sending setpoints, an MQTT
# subscriber, RSS sampling of the daemon. Writes the result between the soak-bench markers
# of BENCHMARKS.md.
#
# Environment: TRANSACTIONS (default 1000000), CHARGERS (200), METER_VALUES (5), INTERVAL
# (s between meter values, 0 = back to back), SHARE_16 (0.5), SETPOINT_EVERY (2),
# RSS_BOUND_KB (32768), RSS_WARMUP (30), NO_WRITE=1, BENCHMARKS_MD, SKIP_BUILD=1,
# CARGO_TARGET_DIR.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TRANSACTIONS="${TRANSACTIONS:-1000000}"
CHARGERS="${CHARGERS:-200}"
METER_VALUES="${METER_VALUES:-5}"
INTERVAL="${INTERVAL:-0}"
SHARE_16="${SHARE_16:-0.5}"
SETPOINT_EVERY="${SETPOINT_EVERY:-2}"
RSS_BOUND_KB="${RSS_BOUND_KB:-32768}"
RSS_WARMUP="${RSS_WARMUP:-30}"
BENCHMARKS_MD="${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d "${TMPDIR:-/tmp}/soak-bench.XXXXXX")"
# Shared helpers: cleanup of $PIDS and $WORK, say, free_port, wait_port, cpu_ticks/$HZ.
. "$ROOT/bench/lib.sh"

if [ -z "${SKIP_BUILD:-}" ]; then
    say "building release daemon and example"
    cargo build --release --quiet --bin ocpp809 --example soak
fi
# Private copies: a concurrent build must not swap the binaries under a long run.
cp "$TARGET_DIR/release/ocpp809" "$WORK/ocpp809"
cp "$TARGET_DIR/release/examples/soak" "$WORK/soak"

# ---------------------------------------------------------------------------- broker
MQTT_PORT="$(free_port)"
mkdir -p "$WORK/mosquitto"
{
    echo "listener $MQTT_PORT 127.0.0.1"
    echo "allow_anonymous true"
    echo "max_queued_messages 1000000"
    [ "$(id -u)" = 0 ] && echo "user root"
} >"$WORK/mosquitto/mosquitto.conf"
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
"$MOSQUITTO" -c "$WORK/mosquitto/mosquitto.conf" >"$WORK/mosquitto/log" 2>&1 &
PIDS+=("$!")
wait_port "$MQTT_PORT"

# ---------------------------------------------------------------------------- daemon
OCPP_PORT="$(free_port)"
IEC_PORT="$(free_port)"
mkdir -p "$WORK/state"
CONFIG="$WORK/ocpp809.toml"
{
    cat <<EOF_CONFIG
[station]
name = "soak"
state_dir = "$WORK/state"

[iec104]
listen = "127.0.0.1:$IEC_PORT"

$(ocpp_load_table "$OCPP_PORT" false)

[mqtt]
enabled = true
url = "mqtt://127.0.0.1:$MQTT_PORT"
topic_prefix = "ocpp809"

[http]
enabled = false
EOF_CONFIG
    for k in $(seq 0 $((CHARGERS - 1))); do
        printf '\n[[charger]]\nid = "SOAK%d"\nioa_base = %d\nconnectors = 1\n' "$k" $((1000 + 100 * k))
    done
} >"$CONFIG"
"$WORK/ocpp809" check-config "$CONFIG" >/dev/null

say "daemon: OCPP 127.0.0.1:$OCPP_PORT, IEC 104 127.0.0.1:$IEC_PORT, MQTT 127.0.0.1:$MQTT_PORT, $CHARGERS chargers"
RUST_LOG="${RUST_LOG:-warn}" "$WORK/ocpp809" run --config "$CONFIG" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
PIDS+=("$DAEMON_PID")
wait_port "$OCPP_PORT"
wait_port "$IEC_PORT"

ARGS=(--chargers "$CHARGERS" --transactions "$TRANSACTIONS" --meter-values "$METER_VALUES"
    --interval "$INTERVAL" --share-16 "$SHARE_16" --setpoint-every "$SETPOINT_EVERY"
    --rss-warmup "$RSS_WARMUP" --rss-growth-max-kb "$RSS_BOUND_KB" --rss-every 5)
CMD="soak --url ws://127.0.0.1:PORT/ocpp --iec104 127.0.0.1:PORT --mqtt 127.0.0.1:PORT --mqtt-prefix ocpp809/soak --pid DAEMON_PID ${ARGS[*]}"
say "$CMD"
rc=0
STARTED="$(date +%s)"
"$WORK/soak" --url "ws://127.0.0.1:$OCPP_PORT/ocpp" --iec104 "127.0.0.1:$IEC_PORT" \
    --mqtt "127.0.0.1:$MQTT_PORT" --mqtt-prefix ocpp809/soak --pid "$DAEMON_PID" "${ARGS[@]}" \
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
    echo "## Soak — latest run of \`bench/soak.sh\`"
    echo
    echo "- Date: $(date -u +'%Y-%m-%d %H:%M UTC'), commit $COMMIT; wall time ${ELAPSED} s"
    echo "- Machine: $CPU, $CORES cores (\`nproc\`), ${MEM_GB} GB RAM, Linux $(uname -r); daemon, mosquitto and load generator share the cores$( [ -n "${NOTE:-}" ] && echo "; $NOTE")."
    echo "- Daemon: release build, $CHARGERS \`[[charger]]\` blocks (ioa_base 1000 + 100·k, 1 connector), \`accept_unknown = false\`, MQTT to a local mosquitto, \`[http] enabled = false\`, log level \`${RUST_LOG:-warn}\`."
    echo "- Load: $(get .chargers_16) chargers OCPP 1.6 (StartTransaction, MeterValues with \`\"12.3kW\"\` and \`\"1234,5\"\` Wh strings, StopTransaction), $(get .chargers_201) chargers OCPP 2.0.1 (TransactionEvent Started/Updated/Ended with meterValue); $METER_VALUES meter values per transaction, interval ${INTERVAL} s (0 = next one as soon as the previous is answered). IEC 104 master: C_SE_NC_1 to a random charger every ${SETPOINT_EVERY} s, counter interrogation at the end. MQTT subscriber on \`chargers/+/meter\`, retained \`chargers/+/state\` read at the end."
    echo
    echo "Command:"
    echo
    echo '```sh'
    echo "TRANSACTIONS=$TRANSACTIONS CHARGERS=$CHARGERS METER_VALUES=$METER_VALUES INTERVAL=$INTERVAL bench/soak.sh"
    echo '```'
    echo
    echo "which runs (ports picked free):"
    echo
    echo '```'
    echo "$CMD"
    echo '```'
    echo
    echo "| result | transactions | OCPP calls | load s | transactions/s | calls/s | setpoints sent / confirmed / negative / unanswered | energy Σ reported = Σ SCADA CI = Σ MQTT meter = Σ MQTT state (Wh) | mismatches CI / MQTT meter / MQTT state | latency charger → IEC 104 p50 / p99 / max ms | daemon CPU % of one core |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '| %s | %s / %s | %s | %s | %s | %s | %s / %s / %s / %s | %s / %s / %s / %s | %s / %s / %s | %s / %s / %s | %s |\n' \
        "$(jq -r 'if .ok then "ok" else "FAILED: " + (.failures | join("; ")) end' "$WORK/soak.json")" \
        "$(get .transactions)" "$(get .transactions_planned)" "$(get .ocpp_calls)" "$(get .load_s)" \
        "$(get .transactions_per_s)" "$(get .ocpp_calls_per_s)" \
        "$(get .setpoints.sent)" "$(get .setpoints.confirmed)" "$(get .setpoints.negative)" "$(get .setpoints.unanswered)" \
        "$(get .energy.sum_reported_wh)" "$(get .energy.sum_scada_ci_wh)" "$(get .energy.sum_mqtt_meter_wh)" "$(get .energy.sum_mqtt_state_wh)" \
        "$(get .energy.mismatch_scada_ci)" "$(get .energy.mismatch_mqtt_meter)" "$(get .energy.mismatch_mqtt_state)" \
        "$(get .latency_charger_to_iec104_ms.p50)" "$(get .latency_charger_to_iec104_ms.p99)" "$(get .latency_charger_to_iec104_ms.max)" \
        "$(get .daemon.cpu_percent_of_one_core)"
    echo
    echo "Daemon VmRSS (kB, sampled every 5 s): before sessions $(get .daemon.rss_kb.before_sessions), sessions up $(get .daemon.rss_kb.sessions_up), min $(get .daemon.rss_kb.min), max $(get .daemon.rss_kb.max), reference ${RSS_WARMUP} s after sessions up $(get .daemon.rss_kb.reference_after_warmup), max after it $(get .daemon.rss_kb.max_after_warmup) (growth $(get .daemon.rss_kb.growth_after_warmup) kB, bound $RSS_BOUND_KB kB), end $(get .daemon.rss_kb.end); $(get .daemon.rss_kb.samples) samples. Daemon alive at the end: $(get .daemon.alive); exit status on SIGTERM: $DAEMON_RC. MQTT meter messages received: $(get .mqtt.meter_messages) ($(get .mqtt.energy_messages) energy). IEC 104 I-frames: $(get .iec104.iframes), spontaneous charger total counters: $(get .iec104.spontaneous_counters); latency samples $(get .latency_charger_to_iec104_ms.matched)."
    echo
    echo "Full JSON of the run:"
    echo
    echo '```json'
    jq -c 'del(.energy.examples)' "$WORK/soak.json"
    echo '```'
} >"$REPORT"
cat "$REPORT"

write_report_block soak-bench "$REPORT"
[ "$rc" = 0 ] && [ "$DAEMON_RC" = 0 ]
