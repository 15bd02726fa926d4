"""Charger passwords (OCPP security profile 1) managed with the command line: `ocpp809
charger set-password / remove-password / hash-password` against a running daemon, checked
with a real `websockets` client doing HTTP Basic auth (ocpp_client.handshake)."""

from __future__ import annotations

import os
import stat
import subprocess
import time

from conftest import CHARGERS
from ocpp_client import V16, handshake, run_async

# The daemon stats the password file at most once a second: after this, the next
# handshake is sure to see a change the command made.
RECHECK_S = 1.2
PLAIN = "plaintext-in-config-1"
HASHED = "hashed-in-config-22"
FIRST = "first-password-333"
SECOND = "second-password-4444"


def url_with(d, cp_id: str, password: str | None) -> str:
    plain = d.ocpp_url(cp_id)
    if password is None:
        return plain
    return plain.replace("ws://", f"ws://{cp_id}:{password}@", 1)


def cli(d, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([d.binary, *args], input=stdin, text=True, capture_output=True,
                          timeout=30, env={**os.environ, "NO_COLOR": "1"})


def set_password(d, cp_id: str, password: str) -> None:
    done = cli(d, "charger", "set-password", cp_id, "--config", str(d.config_path),
               stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    time.sleep(RECHECK_S)


async def status(d, cp_id: str, password: str | None) -> int:
    return (await handshake(url_with(d, cp_id, password), [V16]))[0]


def hash_of(binary: str, password: str) -> str:
    done = subprocess.run([binary, "charger", "hash-password"], input=password + "\n",
                          text=True, capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@run_async
async def test_passwords_set_while_the_daemon_runs_apply_without_restart(make_daemon, ocpp809_bin):
    cp1, cp2 = CHARGERS[0]["id"], CHARGERS[1]["id"]
    cp3 = {"id": "CP003", "ioa_base": 1200}
    phc = hash_of(ocpp809_bin, HASHED)
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), phc
    d = make_daemon(chargers=[CHARGERS[0], {**CHARGERS[1], "password_hash": phc},
                              {**cp3, "password": PLAIN}])
    d.wait_ocpp_listening()

    # Before: no credential for CP001 (profile 0); password_hash and plaintext from the config.
    assert await status(d, cp1, None) == 101
    assert await status(d, cp2, HASHED) == 101, "the hash-password output verifies"
    assert await status(d, cp2, None) == 401
    assert await status(d, "CP003", PLAIN) == 101, "a plaintext password still works"
    assert "plaintext charger password in the configuration" in d.log_text()

    # set-password while running: the file appears with mode 0600; the new password is
    # needed from the next second on.
    set_password(d, cp1, FIRST)
    path = d.state_dir / "charger-passwords.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await status(d, cp1, None) == 401
    assert await status(d, cp1, FIRST) == 101
    assert await status(d, cp1, FIRST) == 101, "a reconnect (cached success)"

    # A new password replaces the old one, which is refused from then on.
    set_password(d, cp1, SECOND)
    assert await status(d, cp1, FIRST) == 401
    assert await status(d, cp1, SECOND) == 101

    # The file comes before the configuration's password_hash and password.
    set_password(d, cp2, FIRST)
    set_password(d, "CP003", FIRST)
    assert await status(d, cp2, HASHED) == 401
    assert await status(d, cp2, FIRST) == 101
    assert await status(d, "CP003", PLAIN) == 401
    assert await status(d, "CP003", FIRST) == 101

    # remove-password: CP001 has no credential left and connects without one; CP003 falls
    # back to its configured plaintext password.
    for cp_id, fallback in ((cp1, "without a password"), ("CP003", "password applies")):
        done = cli(d, "charger", "remove-password", cp_id, "--config", str(d.config_path))
        assert done.returncode == 0 and fallback in done.stderr, done.stderr
    time.sleep(RECHECK_S)
    assert await status(d, cp1, None) == 101
    assert await status(d, "CP003", PLAIN) == 101

    log = d.log_text()
    assert "charger passwords reloaded" in log, d.log_tail(40)
    for secret in (PLAIN, HASHED, FIRST, SECOND):
        assert secret not in log, "secrets never reach the log"
    assert d.alive()


@run_async
async def test_a_generated_password_is_printed_once_and_works(make_daemon):
    d = make_daemon(chargers=[CHARGERS[0]])
    d.wait_ocpp_listening()
    done = cli(d, "charger", "set-password", CHARGERS[0]["id"], "--generate",
               "--config", str(d.config_path))
    assert done.returncode == 0, done.stderr
    generated = done.stdout.strip()
    assert len(generated) == 24 and generated.isalnum(), done.stdout
    assert generated not in done.stderr
    time.sleep(RECHECK_S)
    assert await status(d, CHARGERS[0]["id"], generated) == 101
    assert await status(d, CHARGERS[0]["id"], None) == 401


@run_async
async def test_a_corrupt_file_keeps_the_passwords_in_force_and_stops_a_start(make_daemon):
    cp1 = CHARGERS[0]["id"]
    d = make_daemon(chargers=[CHARGERS[0]])
    d.wait_ocpp_listening()
    set_password(d, cp1, FIRST)
    assert await status(d, cp1, FIRST) == 101, "the daemon has read the good file"
    path = d.state_dir / "charger-passwords.toml"
    path.write_text(path.read_text() + '"CP002" = "not-a-hash"\n')
    time.sleep(RECHECK_S)
    assert await status(d, cp1, FIRST) == 101
    assert await status(d, cp1, None) == 401
    log = d.log_text()
    assert "charger password file not reloaded" in log and f"{path}:6" in log, d.log_tail(20)

    assert d.stop() == 0
    started = subprocess.run([d.binary, "run", "--config", str(d.config_path)],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode != 0
    assert f"{path}:6" in started.stderr, started.stderr


def test_bad_input_exits_2_and_root_gives_the_file_to_the_state_directory_owner(make_daemon):
    d = make_daemon(chargers=[CHARGERS[0]])
    config = str(d.config_path)
    short = cli(d, "charger", "set-password", "CP001", "--config", config, stdin="short\n")
    assert short.returncode == 2 and "16 to 40" in short.stderr, short.stderr
    bad_id = cli(d, "charger", "set-password", "a/b", "--config", config, stdin=FIRST + "\n")
    assert bad_id.returncode == 2, bad_id.stderr
    empty = cli(d, "charger", "hash-password", stdin="")
    assert empty.returncode == 2, empty.stderr
    spaced = cli(d, "charger", "hash-password", stdin="with a space inside\n")
    assert spaced.returncode == 2, spaced.stderr
    missing = cli(d, "charger", "remove-password", "CP009", "--config", config)
    assert missing.returncode == 0 and "nothing removed" in missing.stderr, missing.stderr

    checked = cli(d, "check-config", config)
    assert checked.returncode == 0 and "plaintext" not in checked.stderr, checked.stderr
    plaintext = d.workdir / "plaintext.toml"
    plaintext.write_text(d.config_path.read_text().replace(
        "ioa_base = 1000", f'ioa_base = 1000\npassword = "{PLAIN}"', 1))
    checked = cli(d, "check-config", str(plaintext))
    assert checked.returncode == 0, checked.stderr
    assert ("warning: charger[0].password (CP001): plaintext charger password in the "
            "configuration; store a hash: ocpp809 charger set-password ID or password_hash"
            in checked.stderr), checked.stderr
    assert PLAIN not in checked.stderr + checked.stdout
    text = d.config_path.read_text().replace(
        'ioa_base = 1000', 'ioa_base = 1000\npassword_hash = "$argon2id$v=19$m=1024,t=1,p=1$'
        'c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"', 1)
    weak = d.workdir / "weak.toml"
    weak.write_text(text)
    checked = cli(d, "check-config", str(weak))
    assert checked.returncode == 2 and "charger[0].password_hash" in checked.stderr, \
        checked.stderr
    assert "weaker than the OWASP minimum" in checked.stderr, checked.stderr

    if os.geteuid() != 0:
        return
    # Root runs the command, the daemon runs as the owner of the state directory.
    nobody = 65534
    os.chown(d.state_dir, nobody, nobody)
    done = cli(d, "charger", "set-password", "CP001", "--config", config, stdin=FIRST + "\n")
    assert done.returncode == 0, done.stderr
    info = (d.state_dir / "charger-passwords.toml").stat()
    assert (info.st_uid, info.st_gid) == (nobody, nobody)
    assert stat.S_IMODE(info.st_mode) == 0o600


def on_terminal(binary: str, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Runs the command with a pseudo-terminal as its controlling terminal and standard
    input, answering each password prompt in turn; (exit code, what the terminal showed)."""
    import pty
    import select
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary, [binary, *args])
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
        if pending and shown.rstrip().endswith(b":"):
            # Answer once the command has turned echo off, as a person typing would.
            while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(fd, pending.pop(0).encode() + b"\r")
    _, code = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(code), shown.decode(errors="replace")


def test_on_a_terminal_the_password_is_asked_twice_without_echo(make_daemon):
    d = make_daemon(chargers=[CHARGERS[0]], start=False)
    d.state_dir.mkdir(parents=True)
    args = ["charger", "set-password", "CP001", "--config", str(d.config_path)]
    code, shown = on_terminal(d.binary, args, [FIRST, SECOND])
    assert code == 2 and "the two passwords differ" in shown, shown
    code, shown = on_terminal(d.binary, args, [FIRST, FIRST])
    assert code == 0, shown
    assert "New password" in shown and "Again" in shown, shown
    assert FIRST not in shown, "no echo"
    assert '"CP001" = "$argon2id$' in (d.state_dir / "charger-passwords.toml").read_text()
