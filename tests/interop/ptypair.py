"""Pseudo-terminal pairs for the IEC 101 tests: ``socat`` joins two PTYs back to back.

    pair = SerialPair(tmp_path / "line0").start()
    pair.a   # path of one end (the test's master opens it)
    pair.b   # path of the other end (the daemon's [[iec101]] device)
    pair.stop()

socat is started as ``socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B`` (PEERS.md);
the links live in the test's own directory. A side that closes its end and reopens it
(daemon restart) keeps the pair working: socat only ends when we stop it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional


class SerialPairError(AssertionError):
    pass


class SerialPair:
    def __init__(self, workdir: Path, name: str = "tty"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.a = str(self.workdir / f"{name}-A")
        self.b = str(self.workdir / f"{name}-B")
        self.log_path = self.workdir / f"{name}-socat.log"
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    def start(self, timeout: float = 5.0) -> "SerialPair":
        socat = shutil.which("socat")
        if socat is None:
            raise SerialPairError("socat not found (tests/run.sh installs it: apt-get install socat)")
        for p in (self.a, self.b):
            if os.path.lexists(p):
                os.unlink(p)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [socat, "-d", "-d", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SerialPairError(f"socat exited with {self.proc.returncode}\n" + self.log_text())
            if os.path.exists(self.a) and os.path.exists(self.b):
                return self
            time.sleep(0.02)
        self.stop()
        raise SerialPairError(f"socat did not create {self.a} and {self.b} within {timeout}s\n"
                              + self.log_text())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "SerialPair":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
