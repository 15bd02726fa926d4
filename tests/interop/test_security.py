"""Security (issue 9, first increment): OCPP security profile 1 with per-charger passwords
and brute-force protection of HTTP Basic authentication — a real `websockets` client against
the daemon."""

from __future__ import annotations

from conftest import CHARGERS
from ocpp_client import V16, handshake, run_async

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
