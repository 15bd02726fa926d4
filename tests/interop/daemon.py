"""Start/stop the ocpp809 daemon under test with a generated TOML config."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# TOML writer (tomllib reads only); just what our configs need
# --------------------------------------------------------------------------

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # inline table, e.g. [[meter]] register = [{...}, ...]
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: dict[str, Any]) -> str:
    """Tables (dict) and arrays of tables (list of dict) one level deep."""
    lines: list[str] = []
    for name, body in cfg.items():
        if isinstance(body, dict):
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
            lines.append("")
        elif isinstance(body, list):
            for item in body:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
                lines.append("")
        else:
            raise TypeError(f"top-level {name} must be a table")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Daemon
# --------------------------------------------------------------------------

class DaemonError(AssertionError):
    pass


class Daemon:
    """One ocpp809 process: config in ``workdir``, log in ``workdir/ocpp809.log``."""

    def __init__(self, binary: str, workdir: Path, *, iec104: Optional[dict] = None,
                 site: Optional[dict] = None, chargers: Optional[list[dict]] = None,
                 extra: Optional[dict] = None, name: str = "ocpp809",
                 ocpp: Optional[dict] = None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.ocpp_port = free_port()
        while self.ocpp_port == self.port:
            self.ocpp_port = free_port()
        self.state_dir = self.workdir / "state"
        self.config_path = self.workdir / "ocpp809.toml"
        self.log_path = self.workdir / "ocpp809.log"
        cfg: dict[str, Any] = {
            "station": {"name": "interop", "state_dir": str(self.state_dir)},
            "iec104": {"listen": f"{LOOPBACK}:{self.port}", **(iec104 or {})},
            "ocpp": {"listen": f"{LOOPBACK}:{self.ocpp_port}", **(ocpp or {})},
            "mqtt": {"enabled": False},
            "http": {"enabled": False},
            "site": {"ioa_base": 1, **(site or {})},
        }
        for k, v in (extra or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        if chargers:
            cfg["charger"] = chargers
        self.config = cfg
        self.config_path.write_text(to_toml(cfg))
        self.proc: Optional[subprocess.Popen] = None
        # Extra environment of the daemon process (e.g. NOTIFY_SOCKET for the systemd tests).
        self.env: dict[str, str] = {}
        self._log = None
        self.starts = 0
        self.exit_codes: list[int] = []

    # ---- lifecycle ----
    def start(self, timeout: float = 20.0) -> "Daemon":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "ab")
        self.starts += 1
        self._log.write(f"===== start #{self.starts}: {self.binary} run --config "
                        f"{self.config_path}\n".encode())
        self._log.flush()
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("RUST_LOG", os.environ.get("OCPP809_TEST_LOG", "debug"))
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log file
        self.proc = subprocess.Popen(
            [self.binary, "run", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            cwd=self.workdir, env=env)
        self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float) -> None:
        self._wait_accepting(self.port, "", timeout)

    def wait_ocpp_listening(self, timeout: float = 10.0) -> None:
        """Wait until the OCPP WebSocket endpoint accepts TCP (it may bind after IEC 104)."""
        self._wait_accepting(self.ocpp_port, "the OCPP port ", timeout)

    def _wait_accepting(self, port: int, what: str, timeout: float) -> None:
        """Until the daemon accepts TCP on ``port``. The probe connection half-closes and waits
        (up to 1 s) for the daemon to close its side, so that when this returns the probe no
        longer counts anywhere (connection gauges, per-address caps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise DaemonError(f"ocpp809 exited with {self.proc and self.proc.returncode} "
                                  f"during start-up\n" + self.log_tail())
            try:
                with socket.create_connection((LOOPBACK, port), timeout=0.5) as probe:
                    probe.shutdown(socket.SHUT_WR)
                    probe.settimeout(1.0)
                    with contextlib.suppress(OSError):
                        while probe.recv(4096):
                            pass
                    return
            except OSError:
                time.sleep(0.1)
        raise DaemonError(f"ocpp809 did not accept TCP on {what}{LOOPBACK}:{port} within "
                          f"{timeout}s\n" + self.log_tail())

    def ocpp_url(self, charge_point_id: str, prefix: str = "/ocpp") -> str:
        """ws://127.0.0.1:{ocpp_port}{prefix}/{charge_point_id} (CONTRACT §2)."""
        return f"ws://{LOOPBACK}:{self.ocpp_port}{prefix.rstrip('/')}/{charge_point_id}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM; returns the exit code (CONTRACT §1: 0 within 5 s). Kills on timeout."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._close_log()
                self.exit_codes.append(-999)
                raise DaemonError(f"ocpp809 did not exit within {timeout}s of SIGTERM "
                                  "(killed)\n" + self.log_tail())
        code = self.proc.returncode
        self.exit_codes.append(code)
        self._close_log()
        return code

    def restart(self, timeout: float = 20.0) -> "Daemon":
        code = self.stop()
        if code != 0:
            raise DaemonError(f"ocpp809 exited with {code} on SIGTERM during restart\n"
                              + self.log_tail())
        return self.start(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # ---- log ----
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 200) -> str:
        text = self.log_text().splitlines()
        return "\n".join(text[-lines:])
