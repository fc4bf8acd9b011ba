"""Who is asking, with which role, and whether a state-changing request is theirs. Pure.

Three ways in, checked in this order:

- ``Authorization: Bearer <token>``: scripts. A browser never attaches this header
  to a cross-site request on its own, so these requests need no CSRF token.
- the session cookie, set by ``/login`` with a user's token: ``name|role|expires_ms|mac``,
  HMAC-SHA256 under the console's secret, ``HttpOnly; SameSite=Strict``.
- the reverse proxy's identity header (``SWARM_CONSOLE_IDENTITY_HEADER``), when set.

Cookie and proxy requests that change state carry a CSRF token (a form field or the
``X-CSRF-Token`` header): an HMAC of the session (or the proxied identity), so a page
of another site, which cannot read our pages, cannot forge it. SameSite=Strict is a
second wall, not the only one (a proxied identity has no cookie at all).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from swarmstream.streams.console.settings import ConsoleSettings, Role

COOKIE = "swarm_console"


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    role: Role
    via: str  # bearer | cookie | proxy
    session: str = ""  # what the CSRF token is bound to

    @property
    def may_decide(self) -> bool:
        return self.role == "reviewer"


class Access:
    def __init__(self, settings: ConsoleSettings, secret: bytes) -> None:
        self._settings = settings
        self._secret = secret
        self._tokens = {user.token.get_secret_value().encode(): (name, user.role)
                        for name, user in settings.users.items()}

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def by_token(self, token: str) -> tuple[str, Role] | None:
        """The user a token belongs to; every configured token is compared in constant time."""
        found = None
        for known, user in self._tokens.items():
            if hmac.compare_digest(known, token.encode()):
                found = user
        return found

    def session_cookie(self, name: str, role: Role, now_ms: int) -> str:
        body = f"{name}|{role}|{now_ms + self._settings.session_s * 1000}"
        return f"{body}|{self._mac('session|' + body)}"

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str], now_ms: int) -> Identity | None:
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            user = self.by_token(auth.removeprefix("Bearer ").strip())
            return None if user is None else Identity(user[0], user[1], "bearer")
        cookie = cookies.get(COOKIE)
        if cookie:
            identity = self._from_cookie(cookie, now_ms)
            if identity is not None:
                return identity
        header = self._settings.identity_header
        if header and headers.get(header):
            name = headers[header].strip()
            role: Role = "reviewer" if name in self._settings.proxy_reviewers else "viewer"
            return Identity(name, role, "proxy", session=f"proxy|{name}")
        return None

    def _from_cookie(self, cookie: str, now_ms: int) -> Identity | None:
        body, _, mac = cookie.rpartition("|")
        if not hmac.compare_digest(mac, self._mac("session|" + body)):
            return None
        name, role, expires = body.rsplit("|", 2)
        if not expires.isdigit() or int(expires) < now_ms or role not in ("viewer", "reviewer"):
            return None
        # a user removed from SWARM_CONSOLE_USERS (or whose role changed) loses the old session's role
        user = self._settings.users.get(name)
        if user is None or user.role != role:
            return None
        return Identity(name, role, "cookie", session=cookie)  # type: ignore[arg-type]

    def csrf_token(self, identity: Identity) -> str:
        return self._mac("csrf|" + identity.session) if identity.session else ""

    def csrf_ok(self, identity: Identity, offered: str | None) -> bool:
        if identity.via == "bearer":
            return True  # see the module docstring
        return bool(offered) and hmac.compare_digest(offered or "", self.csrf_token(identity))
