# Shared by the bench scripts (source it after setting WORK, the run's scratch directory):
# process cleanup on exit, free loopback ports, readiness and CPU probes.
#
#   PIDS+=("$!")            processes to stop (SIGTERM, then wait) when the script exits
#   KEEP_WORK=1             keep $WORK instead of removing it
#   free_port               a TCP port on 127.0.0.1 that was free a moment ago ($PYTHON or python3)
#   wait_port PORT [PID]    until something listens on PORT (gives up early if PID died);
#                           WAIT_PORT_TRIES × 50 ms (default 200: 10 s)
#   cpu_ticks PID, $HZ      utime + stime of a process in clock ticks, ticks per second

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
