"""systemd integration (CONTRACT §6, issue 7): the daemon speaks sd_notify(3) to a socket this
test reads, exactly as systemd would with Type=notify and WatchdogSec= — READY=1 once the
listeners are bound, WATCHDOG=1 while every task turns, STATUS= summaries, STOPPING=1 on
shutdown — and withholds the watchdog pings when one task stops turning."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest


class NotifySocket:
    """The AF_UNIX datagram socket systemd offers as $NOTIFY_SOCKET."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[tuple[float, str]] = []

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            for line in data.decode().splitlines():
                self.received.append((time.monotonic(), line))

    def wait_for(self, line: str, timeout: float) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for at, got in self.received:
                if got == line:
                    return at
            self.pump(0.2)
        raise AssertionError(f"no {line!r} within {timeout} s; got {self.received[-20:]}")

    def pings(self, since: float = 0.0) -> list[float]:
        return [at for at, line in self.received if line == "WATCHDOG=1" and at >= since]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def under_systemd(make_daemon, notify_socket, watchdog_s: float = 3.0, **env):
    d = make_daemon(start=False)
    d.env.update({"NOTIFY_SOCKET": str(notify_socket.path),
                  "WATCHDOG_USEC": str(int(watchdog_s * 1_000_000)), **env})
    d.start()
    return d


def test_ready_status_watchdog_and_stopping(make_daemon, notify_socket, make_master):
    d = under_systemd(make_daemon, notify_socket)
    ready = notify_socket.wait_for("READY=1", 10)
    notify_socket.pump(4.0)
    pings = notify_socket.pings(ready)
    assert len(pings) >= 3, f"a ping per third of WatchdogSec expected: {notify_socket.received}"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 3.0, f"pings further apart than WatchdogSec: {gaps}"
    statuses = [line for _, line in notify_socket.received if line.startswith("STATUS=")]
    assert any("masters 0" in s and "chargers online 0" in s for s in statuses), statuses
    master = make_master(d.port)
    assert master.is_open
    notify_socket.pump(3.0)
    statuses = [line for _, line in notify_socket.received if line.startswith("STATUS=")]
    assert any("masters 1" in s for s in statuses), f"STATUS follows the masters: {statuses}"
    d.stop()
    notify_socket.wait_for("STOPPING=1", 5)


def test_a_stuck_task_stops_the_watchdog_pings(make_daemon, notify_socket):
    """OCPP809_TEST_STALL makes the application task stop turning after 2 s (as a deadlock
    would): within the 5 s grace the pings stop, so systemd would restart the daemon."""
    d = under_systemd(make_daemon, notify_socket, OCPP809_TEST_STALL="application:2")
    ready = notify_socket.wait_for("READY=1", 10)
    notify_socket.pump(2.0)
    assert notify_socket.pings(ready), "pings while every task is healthy"
    notify_socket.pump(8.0)                  # stall at 2 s + 5 s grace + one ping period
    last_ping = max(notify_socket.pings(ready))
    notify_socket.pump(4.0)
    assert not notify_socket.pings(last_ping + 0.01), \
        f"pings must stop while a task is stuck: {notify_socket.received[-10:]}"
    assert last_ping - ready < 9.0, "the pings stopped soon after the stall"
    log = d.log_text()
    assert "task stuck" in log and "application" in log, d.log_tail(30)


def test_the_units_command_lines_work_with_this_binary(tmp_path):
    """ExecStartPre/ExecStart of systemd/ocpp809.service, run with this build's binary and
    the shipped default config (as installed at /etc/ocpp809/ocpp809.toml): check-config
    accepts it, and `run` starts — systemd-analyze verify cannot catch a wrong argument."""
    import os
    import shlex
    import subprocess

    unit = Path(__file__).resolve().parents[2] / "systemd" / "ocpp809.service"
    binary = os.environ["OCPP809_BIN"]
    config = tmp_path / "ocpp809.toml"
    config.write_text(subprocess.run([binary, "default-config"], check=True,
                                     capture_output=True, text=True).stdout)
    lines = {k: v for k, v in (line.split("=", 1) for line in unit.read_text().splitlines()
                               if line.startswith(("ExecStartPre=", "ExecStart=")))}
    assert set(lines) == {"ExecStartPre", "ExecStart"}, lines

    def argv(key: str) -> list[str]:
        args = shlex.split(lines[key])
        assert args[0] == "/usr/bin/ocpp809", args
        return [binary] + [str(config) if a == "/etc/ocpp809/ocpp809.toml" else a
                           for a in args[1:]]

    check = subprocess.run(argv("ExecStartPre"), capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"{lines['ExecStartPre']}: {check.stderr}"
    run = argv("ExecStart")
    assert run[1] == "run" and "--config" in run, run
    # `run --config FILE` is accepted (a wrong argument exits with clap's status 2 at once).
    probe = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, probe.stderr
