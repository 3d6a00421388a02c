"""A loopback App Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`).

azure-identity's ManagedIdentityCredential calls it exactly as it calls the real one:
`GET <endpoint>?api-version=2019-08-01&resource=<resource>` with header `X-IDENTITY-HEADER`.
Tokens are opaque test values; the Graph simulator checks them through a shared
:class:`TokenAuthority`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from cancel_handler.devtools._server import LoopbackServer, send_json


@dataclass
class TokenAuthority:
    """Issues test tokens and tells which are valid (known, unexpired, not revoked)."""

    lifetime_seconds: int = 3600
    _issued: dict[str, tuple[int, float]] = field(default_factory=dict)
    _revoked_below: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, *, expired: bool = False) -> tuple[str, int]:
        """A new token and its expiry (epoch seconds)."""
        with self._lock:
            serial = len(self._issued) + 1
            token = f"sim-token-{serial}-{secrets.token_hex(8)}"
            expires_on = int(time.time()) + (-60 if expired else self.lifetime_seconds)
            self._issued[token] = (serial, expires_on)
            return token, expires_on

    def is_valid(self, token: str) -> bool:
        """True for a token this authority issued, not expired and not revoked."""
        with self._lock:
            entry = self._issued.get(token)
            return entry is not None and entry[0] > self._revoked_below and entry[1] > time.time()

    def revoke_all(self) -> None:
        """Reject every token issued so far (tokens issued later are valid)."""
        with self._lock:
            self._revoked_below = len(self._issued)


@dataclass
class IdentityFault:
    """One scripted misbehaviour: `status` (e.g. 500), `delay` seconds, or an `expired` token."""

    status: int | None = None
    delay: float = 0.0
    expired: bool = False


class IdentityEndpoint(LoopbackServer):
    """The managed-identity endpoint on loopback; `environment` gives the two variables to set."""

    def __init__(self, authority: TokenAuthority | None = None, port: int = 0) -> None:
        super().__init__(_IdentityHandler, port)
        self.authority = authority or TokenAuthority()
        self.secret = secrets.token_hex(16)
        self.faults: deque[IdentityFault] = deque()
        self.requests = 0
        self.down = False

    @property
    def environment(self) -> dict[str, str]:
        """`IDENTITY_ENDPOINT` and `IDENTITY_HEADER` for azure-identity."""
        return {"IDENTITY_ENDPOINT": f"{self.base_url}/msi/token", "IDENTITY_HEADER": self.secret}


class _IdentityHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        endpoint: IdentityEndpoint = self.server.owner  # type: ignore[attr-defined]
        endpoint.requests += 1
        fault = endpoint.faults.popleft() if endpoint.faults else IdentityFault()
        if fault.delay:
            time.sleep(fault.delay)
        query = parse_qs(urlsplit(self.path).query)
        if endpoint.down or fault.status:
            return self._reply(
                fault.status or 503,
                {"statusCode": fault.status or 503, "message": "identity endpoint unavailable"},
            )
        if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
            return self._reply(401, {"statusCode": 401, "message": "bad X-IDENTITY-HEADER"})
        resource = (query.get("resource") or [""])[0]
        if not resource:
            return self._reply(400, {"statusCode": 400, "message": "resource is required"})
        token, expires_on = endpoint.authority.issue(expired=fault.expired)
        self._reply(
            200,
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": (query.get("client_id") or ["system-assigned"])[0],
            },
        )

    def _reply(self, status: int, payload: dict) -> None:
        send_json(self, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})
