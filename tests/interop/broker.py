"""A mosquitto broker for the MQTT interop tests, on a free 127.0.0.1 port.

    broker = Broker(tmp_path / "mosquitto")   # or the ``mosquitto`` fixture below
    broker.start()
    ...                                       # broker.port, broker.url ("mqtt://127.0.0.1:PORT")
    broker.stop()                             # SIGTERM: sessions and retained messages are saved
    broker.start()                            # again, on the same port, with the saved state
    broker.restart()                          # both

Persistence is on, so a subscriber with a persistent session (``clean_session=False``) gets
the QoS 1 messages published while the broker was down once both are back. Requires the
``mosquitto`` binary (Debian package ``mosquitto``); without it the test fails with a message
saying so, it is not skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from daemon import LOOPBACK, free_port


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        pytest.fail("the MQTT tests need the mosquitto broker: apt-get install -y mosquitto "
                    "(tests/run.sh installs it)", pytrace=False)
    return path


class Broker:
    def __init__(self, workdir: Path, port: Optional[int] = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.proc: Optional[subprocess.Popen] = None
        lines = [
            f"listener {self.port} {LOOPBACK}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto would switch to the "mosquitto" user, which cannot write here.
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> "Broker":
        if self.running:
            return self
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.config_path)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n"
                                     + self.log_tail())
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"mosquitto does not listen on {self.port}:\n"
                                         + self.log_tail())
                time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (mosquitto saves its state), SIGKILL after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 50) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[Broker]:
    """A started broker on a free port, stopped after the test."""
    broker = Broker(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.stop()
