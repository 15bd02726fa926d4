# Shared by the bench scripts (source it after setting WORK, the run's scratch directory):
# process cleanup on exit, free loopback ports, readiness and CPU probes.
#
#   PIDS+=("$!")            processes to stop (SIGTERM, then wait) when the script exits
#   KEEP_WORK=1             keep $WORK instead of removing it
#   free_port               a TCP port on 127.0.0.1 that was free a moment ago ($PYTHON or python3)
#   wait_port PORT [PID]    until something listens on PORT (gives up early if PID died);
#                           WAIT_PORT_TRIES × 50 ms (default 200: 10 s)
#   cpu_ticks PID, $HZ      utime + stime of a process in clock ticks, ticks per second
#   machine_facts           sets COMMIT (short hash, "+ uncommitted changes" if dirty), CPU,
#                           CORES, MEM_GB for the report
#   ocpp_load_table PORT ACCEPT_UNKNOWN
#                           the daemon's [ocpp] table for a load generator on 127.0.0.1
#   write_report_block TAG FILE
#                           FILE between the TAG markers of $BENCHMARKS_MD (unless NO_WRITE)

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*" >&2; }

free_port() {
    "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port="$1" pid="${2:-}" i
    for i in $(seq 1 "${WAIT_PORT_TRIES:-200}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ]; then kill -0 "$pid" 2>/dev/null || break; fi
        sleep 0.05
    done
    echo "nothing listening on 127.0.0.1:$port" >&2
    return 1
}

# Fields 14 and 15 of /proc/PID/stat; the command name in field 2 of our processes has no spaces.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ="$(getconf CLK_TCK)"

machine_facts() {
    COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        COMMIT="$COMMIT (+ uncommitted changes)"
    fi
    CPU="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    CORES="$(nproc)"
    MEM_GB="$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
}

# Every simulated charger dials from 127.0.0.1 and sends as fast as it is answered: no
# per-address cap and no per-charger rate limit, so the figures are the daemon's.
ocpp_load_table() {
    cat <<EOF
[ocpp]
max_connections_per_ip = 0   # every simulated charger dials from 127.0.0.1
max_messages_per_s = 0       # measure the daemon, not the per-charger rate limit
listen = "127.0.0.1:$1"
accept_unknown = $2
EOF
}

# Replaces what stands between "<!-- TAG:begin" and "<!-- TAG:end -->" in $BENCHMARKS_MD by
# FILE (appends the block the first time); TAG is NAME-bench, written by bench/NAME.sh.
write_report_block() {
    [ -n "${NO_WRITE:-}" ] && return 0
    python3 - "$BENCHMARKS_MD" "$2" "$1" <<'EOF'
import sys
path, report, tag = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
begin = f"<!-- {tag}:begin (written by bench/{tag.split('-')[0]}.sh; edits inside are overwritten) -->"
end = f"<!-- {tag}:end -->"
text = open(path).read()
block = begin + "\n" + report.rstrip("\n") + "\n" + end
i = text.find(f"<!-- {tag}:begin")
j = text.find(end)
if i >= 0 and j > i:
    text = text[:i] + block + text[j + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
EOF
    say "wrote $BENCHMARKS_MD"
}
