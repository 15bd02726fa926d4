"""TLS on both sides (issue 9): OCPP security profiles 2 and 3 (OCPP 2.0.1 Security
whitepaper) and IEC 104 over TLS with mutual authentication (IEC 62351-3), against real
peers: the ``ocpp`` library and ``websockets`` over Python's ``ssl`` (OpenSSL) for chargers,
a raw IEC 104 link (rawlink.py) over ``ssl`` for SCADA masters. Certificates are made per
test session with the ``openssl`` command line.

Why not c104 for the masters: c104 2.2.1's TLS client (mbedTLS 3.6) fails every handshake
with -0x5D80 (MBEDTLS_ERR_SSL_CERTIFICATE_VERIFICATION_WITHOUT_HOSTNAME: lib60870 never sets
an expected host name, which mbedTLS 3.6 requires whenever it verifies the server), against
our station and against c104's own TLS server alike, with validate=True or False. OpenSSL
is an independent TLS implementation, so the raw link over it is still a real peer.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import asdu as A
from conftest import CHARGERS, SITE
from daemon import LOOPBACK, free_port
from ocpp_client import V16, V201, boot, charger, handshake, open_ws, run_async
from points import gi_expected, layout
from rawlink import Closed, RawLink

PASSWORD = "0123456789abcdef"
CP1, CP2 = CHARGERS[0]["id"], CHARGERS[1]["id"]


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

class Pki:
    """A CA, a second (untrusted) CA, server and client certificates, all EC P-256."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca", "ocpp809 interop CA")
        self.rogue_ca = self._ca("rogue-ca", "some other CA")

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def _key(self, name: str) -> str:
        key = self.path(f"{name}.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", key], check=True,
                       capture_output=True)
        return key

    def _ca(self, name: str, cn: str) -> str:
        key = self._key(name)
        crt = self.path(f"{name}.crt")
        subprocess.run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", f"/CN={cn}",
                        "-days", "30", "-out", crt,
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                       check=True, capture_output=True)
        return crt

    def leaf(self, name: str, cn: str, *, server: bool = False, ca: str = "ca") -> tuple[str, str]:
        """(certificate, key) signed by ``ca``; servers get SAN IP:127.0.0.1."""
        key = self._key(name)
        csr, crt, ext = (self.path(f"{name}.csr"), self.path(f"{name}.crt"),
                         self.path(f"{name}.ext"))
        subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr],
                       check=True, capture_output=True)
        usage = ("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" if server
                 else "extendedKeyUsage=clientAuth\n")
        Path(ext).write_text("basicConstraints=CA:FALSE\n" + usage)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.path(f"{ca}.crt"),
                        "-CAkey", self.path(f"{ca}.key"), "-CAcreateserial", "-days", "30",
                        "-extfile", ext, "-out", crt], check=True, capture_output=True)
        return crt, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    p = Pki(tmp_path_factory.mktemp("pki"))
    p.server = p.leaf("server", "127.0.0.1", server=True)
    p.server2 = p.leaf("server2", "127.0.0.1", server=True)
    p.cp1 = p.leaf("cp1", CP1)
    p.cp2 = p.leaf("cp2", CP2)
    p.cp1_rogue = p.leaf("cp1-rogue", CP1, ca="rogue-ca")
    p.master_a = p.leaf("master-a", "scada-a")
    p.master_b = p.leaf("master-b", "scada-b")
    p.master_rogue = p.leaf("master-rogue", "scada-a", ca="rogue-ca")
    return p


def client_context(pki: Pki, cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """Verifies the station against our CA (and its IP SAN); presents ``cert`` if given."""
    ctx = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(path: str) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(Path(path).read_text()))


def server_fingerprint(pki: Pki, port: int) -> str:
    """SHA-256 of the certificate a new TLS connection to ``port`` is shown."""
    ctx = client_context(pki, pki.cp1)
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=LOOPBACK) as tls:
            return fingerprint(tls.getpeercert(binary_form=True))


def security_lines(d, event: str) -> list[str]:
    return [line for line in d.log_text().splitlines()
            if "ocpp809::security" in line and event in line]


def wait_security_line(d, event: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = security_lines(d, event)
        if lines:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"no security event {event!r} in the daemon log\n{d.log_tail(30)}")


# ---------------------------------------------------------------------------
# OCPP
# ---------------------------------------------------------------------------

def ocpp_tls(pki: Pki, *, client_ca: bool = False, cert=None) -> dict:
    cert, key = cert or pki.server
    return {"enabled": True, "listen": f"{LOOPBACK}:{free_port()}", "cert": cert, "key": key,
            "client_ca": pki.ca if client_ca else ""}


def tls_port(d, section: str = "ocpp") -> int:
    return int(d.config[section]["tls"]["listen"].rsplit(":", 1)[1])


def wss_url(d, cp_id: str, password: str | None = None) -> str:
    login = f"{cp_id}:{password}@" if password is not None else ""
    return f"wss://{login}{LOOPBACK}:{tls_port(d)}/ocpp/{cp_id}"


def ws_url(d, cp_id: str, password: str | None = None) -> str:
    login = f"{cp_id}:{password}@" if password is not None else ""
    return f"ws://{login}{LOOPBACK}:{d.ocpp_port}/ocpp/{cp_id}"


async def outcome(url: str, ctx: ssl.SSLContext | None) -> int | str:
    """HTTP status of the WebSocket handshake (101 = accepted), or 'failed' when the
    connection broke before any HTTP answer (TLS refused, plain text on the TLS port)."""
    try:
        status, _ = await handshake(url, [V16], ssl=ctx)
        return status
    except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
        return f"failed ({type(e).__name__})"
    except Exception as e:  # websockets' InvalidMessage / ConnectionClosed on a broken stream
        return f"failed ({type(e).__name__}: {e})"


@run_async
async def test_profile_2_needs_wss_and_basic_auth(make_daemon, pki):
    chargers = [{**CHARGERS[0], "password": PASSWORD, "security_profile": 2}, CHARGERS[1]]
    http = f"{LOOPBACK}:{free_port()}"
    d = make_daemon(chargers=chargers, ocpp={"tls": ocpp_tls(pki)},
                    extra={"http": {"enabled": True, "listen": http}})
    ctx = client_context(pki)
    async with charger(wss_url(d, CP1, PASSWORD), CP1, V201, ssl=ctx) as cp:
        await boot(cp)
    assert await outcome(wss_url(d, CP1, "wrong-password-00"), ctx) == 401
    assert await outcome(wss_url(d, CP1), ctx) == 401
    # The same charger, right password, over ws://: a downgrade, refused and logged.
    assert await outcome(ws_url(d, CP1, PASSWORD), None) == 403
    line = wait_security_line(d, "profile_downgrade")[-1]
    assert CP1 in line and "wss://" in line, line
    # A profile-0 charger may still use ws:// next to it.
    assert await outcome(ws_url(d, CP2), None) == 101
    metrics = await asyncio.to_thread(
        lambda: urllib.request.urlopen(f"http://{http}/metrics", timeout=5).read().decode())
    assert 'ocpp809_security_events_total{event="profile_downgrade"} 1\n' in metrics, metrics
    assert 'ocpp809_security_events_total{event="auth_failed"} 2\n' in metrics, metrics
    log = d.log_text()
    assert PASSWORD not in log and "wrong-password" not in log, "secrets never reach the log"
    assert d.alive()


@run_async
async def test_profile_3_needs_a_client_certificate_naming_the_charger(make_daemon, pki):
    chargers = [{**CHARGERS[0], "security_profile": 3}, CHARGERS[1]]
    d = make_daemon(chargers=chargers, ocpp={"tls": ocpp_tls(pki, client_ca=True)})
    async with charger(wss_url(d, CP1), CP1, V16, ssl=client_context(pki, pki.cp1)) as cp:
        await boot(cp)
    # Another charger's certificate, none at all, one from a CA we do not trust.
    assert await outcome(wss_url(d, CP1), client_context(pki, pki.cp2)) == 403
    wait_security_line(d, "client_cert_mismatch")
    assert await outcome(wss_url(d, CP1), client_context(pki)) == 403
    wait_security_line(d, "client_cert_missing")
    rogue = await outcome(wss_url(d, CP1), client_context(pki, pki.cp1_rogue))
    assert str(rogue).startswith("failed"), rogue
    wait_security_line(d, "tls_handshake_failed")
    # Profile 3 over ws:// is a downgrade.
    assert await outcome(ws_url(d, CP1), None) == 403
    # A certificate is also checked for a profile-0 charger: CP2 must not show CP1's.
    assert await outcome(wss_url(d, CP2), client_context(pki, pki.cp1)) == 403
    assert await outcome(wss_url(d, CP2), client_context(pki, pki.cp2)) == 101
    assert d.alive()


@run_async
async def test_plain_text_on_the_tls_port_fails_and_the_daemon_keeps_serving(make_daemon, pki):
    d = make_daemon(ocpp={"tls": ocpp_tls(pki)})
    plain_to_tls = f"ws://{LOOPBACK}:{tls_port(d)}/ocpp/{CP1}"
    result = await outcome(plain_to_tls, None)
    assert str(result).startswith("failed"), result
    # Raw bytes that are not a ClientHello.
    with socket.create_connection((LOOPBACK, tls_port(d)), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert b"HTTP/1.1 101" not in answer
    wait_security_line(d, "tls_handshake_failed")
    assert await outcome(wss_url(d, CP1), client_context(pki)) == 101
    assert await outcome(ws_url(d, CP2), None) == 101
    assert d.alive()


@run_async
async def test_plain_false_serves_wss_only(make_daemon, pki):
    d = make_daemon(ocpp={"plain": False, "tls": ocpp_tls(pki)})
    deadline = time.monotonic() + 5
    while await outcome(wss_url(d, CP1), client_context(pki)) != 101:
        assert time.monotonic() < deadline, d.log_tail(30)
        await asyncio.sleep(0.1)
    with pytest.raises(OSError):
        socket.create_connection((LOOPBACK, d.ocpp_port), timeout=2).close()
    assert d.alive()


@run_async
async def test_sighup_reloads_the_certificate_and_keeps_sessions(make_daemon, pki, tmp_path):
    cert, key = tmp_path / "ocpp.crt", tmp_path / "ocpp.key"
    shutil.copy(pki.server[0], cert)
    shutil.copy(pki.server[1], key)
    d = make_daemon(ocpp={"tls": ocpp_tls(pki, cert=(str(cert), str(key)))})
    port = tls_port(d)
    assert server_fingerprint(pki, port) == pem_fingerprint(pki.server[0])
    async with charger(wss_url(d, CP1), CP1, V201, ssl=client_context(pki)) as cp:
        await boot(cp)
        shutil.copy(pki.server2[0], cert)
        shutil.copy(pki.server2[1], key)
        d.proc.send_signal(signal.SIGHUP)
        new = pem_fingerprint(pki.server2[0])
        deadline = time.monotonic() + 5
        while server_fingerprint(pki, port) != new:
            assert time.monotonic() < deadline, "the new certificate is not served\n" + \
                d.log_tail(30)
            await asyncio.sleep(0.1)
        assert new in d.log_text(), "the reload logs the new certificate's fingerprint"
        # The session opened before the reload is unaffected.
        await boot(cp)
        # A broken file set is refused and the certificate in force stays.
        Path(key).write_text("not a key\n")
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "not reloaded" not in d.log_text():
            assert time.monotonic() < deadline, d.log_tail(30)
            await asyncio.sleep(0.1)
        assert server_fingerprint(pki, port) == new
        await boot(cp)
    assert d.alive()
    for secret in (Path(pki.server[1]).read_text(), Path(pki.server2[1]).read_text()):
        body = "".join(secret.splitlines()[1:-1])
        assert body[:40] not in d.log_text(), "no key material in the log"


def test_sighup_does_not_end_a_daemon_without_tls(make_daemon):
    d = make_daemon()
    d.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert d.alive(), d.log_tail(20)
    assert "SIGHUP" in d.log_text()


# ---------------------------------------------------------------------------
# IEC 104 over TLS (IEC 62351-3)
# ---------------------------------------------------------------------------

STD = layout(SITE["ioa_base"], CHARGERS)


class TlsRawLink(RawLink):
    """The raw IEC 104 link (rawlink.py) over a TLS client connection (OpenSSL)."""

    def __init__(self, port: int, ctx: ssl.SSLContext, **kwargs):
        super().__init__(port, **kwargs)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=LOOPBACK)


def iec104_tls(pki: Pki, allowed: list[str] | None = None) -> dict:
    cert, key = pki.server
    return {"enabled": True, "listen": f"{LOOPBACK}:{free_port()}", "cert": cert, "key": key,
            "ca": pki.ca, "allowed_masters": allowed or []}


def general_interrogation(link: RawLink) -> set[int]:
    """STARTDT, GI; the IOAs answered between ACTCON and ACTTERM."""
    link.auto_ack = True
    link.startdt()
    link.send_asdu(A.gi_asdu(ca=1))
    link.expect(lambda ap: ap.kind == "I" and A.parse_asdu(ap.asdu).type_id == A.C_IC_NA_1
                and A.parse_asdu(ap.asdu).cot == A.COT_ACTTERM, timeout=10)
    ioas = set()
    for a in link.asdus():
        if a.type_id != A.C_IC_NA_1 and a.cot == A.COT_INROGEN:
            ioas.update(o.ioa for o in a.objects)
    return ioas


def refused(port: int, ctx: ssl.SSLContext | None) -> bool:
    """True when a master (TLS with ``ctx``, else plain) cannot get STARTDT confirmed."""
    try:
        link = TlsRawLink(port, ctx) if ctx is not None else RawLink(port)
    except (OSError, ssl.SSLError):
        return True
    with link:
        try:
            link.send_u(A.STARTDT_ACT)
            return link.wait_closed(3.0) and not any(
                ap.kind == "U" and ap.ufunc == A.STARTDT_CON for _, ap in link.received)
        except (OSError, ssl.SSLError, Closed, A.ProtocolError):
            return True  # ProtocolError: a plain master reads the TLS alert as garbage


def start_with_tls_104(make_daemon, pki: Pki, **iec104) -> tuple:
    d = make_daemon(iec104=iec104, start=False)
    d.start()
    return d, tls_port(d, "iec104")


def test_iec104_over_tls_answers_a_general_interrogation(make_daemon, pki):
    d, port = start_with_tls_104(make_daemon, pki, tls=iec104_tls(pki))
    with TlsRawLink(port, client_context(pki, pki.master_a)) as link:
        assert link.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert general_interrogation(link) == set(gi_expected(STD)), "GI over TLS"
    # The plain port still serves (plain = true).
    with RawLink(d.port) as plain:
        assert general_interrogation(plain) == set(gi_expected(STD))
    assert d.alive()


def test_iec104_tls_refuses_masters_without_an_allowed_certificate(make_daemon, pki):
    d, port = start_with_tls_104(make_daemon, pki, tls=iec104_tls(pki, [pki.master_a[0]]))
    assert not refused(port, client_context(pki, pki.master_a)), "the listed master"
    assert refused(port, client_context(pki, pki.master_b)), "a master not in allowed_masters"
    line = wait_security_line(d, "master_cert_not_allowed")[-1]
    assert pem_fingerprint(pki.master_b[0]) in line, line
    assert refused(port, client_context(pki)), "a master without a certificate"
    assert refused(port, client_context(pki, pki.master_rogue)), "a certificate of another CA"
    wait_security_line(d, "tls_handshake_failed")
    assert refused(port, None), "plain IEC 104 on the TLS port"
    with TlsRawLink(port, client_context(pki, pki.master_a)) as link:
        assert general_interrogation(link) == set(gi_expected(STD)), "still serving"
    assert d.alive()


def test_sighup_rereads_the_allowed_master_certificates(make_daemon, pki, tmp_path):
    allowed = tmp_path / "allowed-master.crt"
    shutil.copy(pki.master_a[0], allowed)
    d, port = start_with_tls_104(make_daemon, pki, tls=iec104_tls(pki, [str(allowed)]))
    with TlsRawLink(port, client_context(pki, pki.master_a)) as kept:
        kept.auto_ack = True
        kept.startdt()
        assert refused(port, client_context(pki, pki.master_b))
        shutil.copy(pki.master_b[0], allowed)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while refused(port, client_context(pki, pki.master_b)):
            assert time.monotonic() < deadline, "master b not admitted after the reload\n" + \
                d.log_tail(30)
        assert refused(port, client_context(pki, pki.master_a)), "master a is no longer listed"
        # The connection made before the reload is still served.
        assert general_interrogation(kept) == set(gi_expected(STD))
    assert d.alive()


def test_check_config_names_a_bad_tls_file(make_daemon, pki, tmp_path):
    d = make_daemon(ocpp={"tls": {**ocpp_tls(pki), "key": str(tmp_path / "missing.key")}},
                    start=False)
    run = subprocess.run([d.binary, "check-config", str(d.config_path)], capture_output=True,
                         text=True, timeout=10)
    assert run.returncode == 2, run
    assert "ocpp.tls.key" in run.stderr and "missing.key" in run.stderr, run.stderr


def test_iec104_plain_false_serves_tls_only(make_daemon, pki):
    d = make_daemon(iec104={"plain": False, "tls": iec104_tls(pki)}, start=False)
    plain_port = d.port
    d.port = tls_port(d, "iec104")  # the daemon's readiness probe waits on the TLS port
    d.start()
    with pytest.raises(OSError):
        socket.create_connection((LOOPBACK, plain_port), timeout=2).close()
    with TlsRawLink(d.port, client_context(pki, pki.master_a)) as link:
        assert general_interrogation(link) == set(gi_expected(STD))
    assert d.alive()
