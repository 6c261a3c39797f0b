"""What the Google and Microsoft stand-ins share: a threaded HTTP(S) server, JSON answers, recorded
requests, outages on demand, and an OAuth 2.0 authorization server (codes with PKCE, refresh tokens that
can be revoked or expire, bearer access tokens that can be expired).

The authorization endpoint approves at once: it redirects to `redirect_uri` with a code and the `state`,
as the provider does after the person clicks "Allow". TLS (`tls=True`) uses a self-signed certificate
for localhost and 127.0.0.1 written to `ca_file`, because msal accepts only https authorities.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON or form, or None


@dataclass
class Grant:
    """A refresh token and what it was granted for."""

    client_id: str
    account: str
    scope: str
    revoked: bool = False


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    method: str
    nonce: str
    account: str


@dataclass
class _Outage:
    remaining: int
    status: int
    prefix: str


@dataclass
class Answer:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT whose signature nobody checks: clients read ID tokens received straight from the token
    endpoint over TLS without verifying them (OpenID Connect Core 3.1.3.7, point 6)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 'standin'})}.{part(claims)}.{part({'sig': 'x'})}"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost / 127.0.0.1 that is its own CA; (certificate, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "standin.crt", directory / "standin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class OAuthStandIn:
    """The shared server; subclasses add `route()` for their API and name their token error shapes."""

    name = "oauth"

    def __init__(self, *, host: str = "localhost", port: int = 0, tls: bool = False) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.client_id = "standin-client-id"
        self.client_secret = "standin-client-secret"  # noqa: S105 - a stand-in's fixed test secret
        self.account = "owner@example.com"  # who "signs in" at the authorization endpoint
        self.access_ttl = 3600
        self.requests: list[Recorded] = []
        self.grants: dict[str, Grant] = {}  # refresh token -> grant
        self.access_tokens: dict[str, tuple[str, float]] = {}  # access token -> (refresh token, expiry)
        self._codes: dict[str, _Code] = {}
        self._outages: list[_Outage] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file = ""

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> Self:
        handler = type("Handler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.name}-standin-")
            cert, key = self_signed_certificate(Path(self._tmp.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.ca_file = str(cert)
        self._server = server
        self.port = server.server_address[1]
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-standin",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests do -------------------------------------------------------------------
    def outage(self, times: int = 1, *, status: int = 503, prefix: str = "") -> None:
        """The next `times` requests whose path starts with `prefix` fail with `status`."""
        with self.lock:
            self._outages.append(_Outage(times, status, prefix))

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens = {token: (refresh, 0.0) for token, (refresh, _) in self.access_tokens.items()}

    def revoke_grants(self) -> None:
        """The person revoked access (or the grant expired): refreshing now answers invalid_grant."""
        with self.lock:
            for grant in self.grants.values():
                grant.revoked = True
            self.access_tokens.clear()

    def live_grants(self) -> list[Grant]:
        with self.lock:
            return [grant for grant in self.grants.values() if not grant.revoked]

    # --- the authorization server ---------------------------------------------------------
    def authorize(self, query: dict[str, str]) -> Answer:
        if query.get("client_id") != self.client_id:
            return Answer(400, {"error": "invalid_client"})
        if query.get("response_type") != "code" or not query.get("redirect_uri"):
            return Answer(400, {"error": "invalid_request"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return Answer(400, {"error": "invalid_request", "error_description": "PKCE (S256) is required"})
        code = secrets.token_urlsafe(24)
        with self.lock:
            self._codes[code] = _Code(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                scope=query.get("scope", ""),
                challenge=query["code_challenge"],
                method=query["code_challenge_method"],
                nonce=query.get("nonce", ""),
                account=self.account,
            )
        params = {"code": code, "state": query.get("state", "")}
        return Answer(302, headers={"Location": f"{query['redirect_uri']}?{urlencode(params)}"})

    def token(self, form: dict[str, str]) -> Answer:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Answer(401, {"error": "invalid_client", "error_description": "The client is not known."})
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with self.lock:
                code = self._codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if code is None or code.redirect_uri != form.get("redirect_uri"):
                return self.invalid_grant("The authorization code is unknown, used or for another redirect.")
            if not verifier or pkce_challenge(verifier) != code.challenge:
                return self.invalid_grant("The code verifier does not match the challenge.")
            refresh = secrets.token_urlsafe(32)
            with self.lock:
                self.grants[refresh] = Grant(code.client_id, code.account, code.scope)
            return Answer(200, self.token_response(refresh, code.scope, code.account, code.nonce))
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            with self.lock:
                grant = self.grants.get(refresh)
            if grant is None or grant.revoked:
                return self.invalid_grant("Token has been expired or revoked.")
            return Answer(200, self.token_response(refresh, grant.scope, grant.account, "", refreshed=True))
        return Answer(400, {"error": "unsupported_grant_type"})

    def invalid_grant(self, description: str) -> Answer:
        return Answer(400, {"error": "invalid_grant", "error_description": description})

    def new_access_token(self, refresh: str) -> str:
        access = secrets.token_urlsafe(32)
        with self.lock:
            self.access_tokens[access] = (refresh, time.time() + self.access_ttl)
        return access

    def token_response(
        self, refresh: str, scope: str, account: str, nonce: str, *, refreshed: bool = False
    ) -> dict[str, Any]:
        raise NotImplementedError

    def bearer_account(self, headers: dict[str, str]) -> str | None:
        """The account behind a valid bearer token, None when missing, unknown or expired."""
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            found = self.access_tokens.get(token)
            if found is None or found[1] < time.time():
                return None
            grant = self.grants.get(found[0])
        return None if grant is None or grant.revoked else grant.account

    def route(self, method: str, path: str, request: Recorded) -> Answer:
        raise NotImplementedError

    def _take_outage(self, path: str) -> int | None:
        with self.lock:
            for outage in self._outages:
                if outage.remaining > 0 and path.startswith(outage.prefix):
                    outage.remaining -= 1
                    return outage.status
        return None


class _Handler(BaseHTTPRequestHandler):
    standin: OAuthStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        body: Any = None
        if raw and "json" in headers.get("content-type", ""):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        elif raw:
            body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request = Recorded(method, parts.path, query, headers, body)
        with self.standin.lock:
            self.standin.requests.append(request)
        status = self.standin._take_outage(parts.path)
        if status is not None:
            answer = Answer(
                status, {"error": {"code": status, "message": "The service is currently unavailable."}}
            )
        else:
            try:
                answer = self.standin.route(method, parts.path, request)
            except (KeyError, TypeError, ValueError) as exc:
                answer = Answer(400, {"error": {"code": 400, "message": f"Bad request: {exc}"}})
        data = b"" if answer.payload is None else json.dumps(answer.payload).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
