"""Security (issue 9, first increment): OCPP security profile 1 with per-charger passwords
and brute-force protection of HTTP Basic authentication — a real `websockets` client against
the daemon."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from websockets.exceptions import InvalidMessage

from conftest import CHARGERS
from ocpp_client import V16, RawCharger, handshake, run_async

PASSWORD = "0123456789abcdef"


def with_password(charger: dict) -> dict:
    return {**charger, "password": PASSWORD}


def url_with(d, cp_id: str, password: str) -> str:
    plain = d.ocpp_url(cp_id)
    return plain.replace("ws://", f"ws://{cp_id}:{password}@", 1)


@run_async
async def test_basic_auth_is_required_and_guessing_is_throttled(make_daemon):
    cp1, cp2 = CHARGERS[0]["id"], CHARGERS[1]["id"]
    d = make_daemon(chargers=[with_password(CHARGERS[0]), with_password(CHARGERS[1])])
    d.wait_ocpp_listening()
    assert await handshake(d.ocpp_url(cp1), [V16]) == (401, None), "no credentials: 401"
    assert await handshake(url_with(d, cp1, PASSWORD), [V16]) == (101, V16)
    # Five wrong guesses are answered 401; from then on this id is refused (429) from this
    # address for the window, even with the right password.
    statuses = [(await handshake(url_with(d, cp1, f"guess{n}"), [V16]))[0] for n in range(5)]
    assert statuses == [401] * 5, statuses
    assert (await handshake(url_with(d, cp1, "guess5"), [V16]))[0] == 429
    assert (await handshake(url_with(d, cp1, PASSWORD), [V16]))[0] == 429
    # Another charger from the same address is not affected.
    assert await handshake(url_with(d, cp2, PASSWORD), [V16]) == (101, V16)
    log = d.log_text()
    assert "repeated HTTP Basic authentication failures" in log, d.log_tail(20)
    assert PASSWORD not in log and "guess" not in log, "secrets never reach the log"
    assert d.alive()


def _connection_is_closed(sock: socket.socket, wait_s: float) -> bool:
    """True when the daemon closed `sock` (EOF or reset) within `wait_s`."""
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@run_async
async def test_connections_per_address_are_capped(make_daemon):
    d = make_daemon(ocpp={"max_connections_per_ip": 3})
    d.wait_ocpp_listening()
    host, port = "127.0.0.1", d.ocpp_port
    # The daemon has closed the readiness probe's connection; its per-address slot is given
    # back just after, as the connection task ends.
    await asyncio.sleep(0.5)
    # Three connections that never finish the upgrade request hold this address's slots.
    held = [socket.create_connection((host, port)) for _ in range(3)]
    try:
        await asyncio.sleep(0.3)
        for s in held:
            assert not _connection_is_closed(s, 0.1), "a connection within the cap was closed"
        fourth = socket.create_connection((host, port))
        assert _connection_is_closed(fourth, 5.0), "the fourth connection from one address was kept"
        fourth.close()
        try:
            status = (await handshake(d.ocpp_url(CHARGERS[0]["id"]), [V16]))[0]
        except (OSError, InvalidMessage):
            status = None  # closed before any HTTP answer: the expected refusal
        assert status is None, f"a charger from the capped address got HTTP {status}"
        # A freed slot is usable again.
        held.pop().close()
        await asyncio.sleep(0.3)
        assert await handshake(d.ocpp_url(CHARGERS[0]["id"]), [V16]) == (101, V16)
    finally:
        for s in held:
            s.close()
    log = d.log_text()
    assert 'event="per_ip_connection_cap"' in log or "event=per_ip_connection_cap" in log, d.log_tail(20)
    assert d.alive()


@run_async
async def test_a_flooding_charger_is_slowed_not_dropped(make_daemon):
    rate = 10.0  # burst: five seconds' worth = 50 messages
    flood = 100
    d = make_daemon(ocpp={"max_messages_per_s": rate})
    d.wait_ocpp_listening()
    cp = CHARGERS[0]["id"]
    async with RawCharger.connect(d.ocpp_url(cp), V16) as raw:
        started = time.monotonic()
        ids = [raw.new_id() for _ in range(flood)]
        # All at once, without waiting for answers: what a broken charger does.
        for uid in ids:
            await raw.send_text(json.dumps([2, uid, "Heartbeat", {}]))
        answered = []
        for uid in ids:
            msg = await raw.response(uid, timeout=30.0)
            assert msg[0] == 3, f"Heartbeat {uid} answered {msg!r}"
            answered.append(msg[1])
        elapsed = time.monotonic() - started
    assert answered == ids, "every message answered, in order"
    # 50 pass as the burst; the other 50 at 10/s need at least ~5 s. (A lower bound only:
    # the limit can make the exchange slower, never faster.)
    assert elapsed >= 4.0, f"{flood} messages answered in {elapsed:.1f}s despite {rate}/s"
    log = d.log_text()
    assert log.count("charger exceeds its message rate") == 1, \
        "one log line per episode, not one per message"
    assert d.alive()
