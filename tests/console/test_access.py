"""Who is asking and whether a state-changing request carries its page's CSRF token (no server)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from swarmstream.streams.console.access import COOKIE, Access
from swarmstream.streams.console.settings import ConsoleSettings

ADA = "ada-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef"


def access(**extra: object) -> Access:
    settings = ConsoleSettings(users={"ada": {"token": ADA, "role": "reviewer"},  # type: ignore[arg-type]
                                      "bob": {"token": BOB, "role": "viewer"}}, **extra)
    return Access(settings, b"k" * 32)


def test_a_bearer_token_names_its_user_and_needs_no_csrf_token() -> None:
    a = access()
    ada = a.identify({"Authorization": f"Bearer {ADA}"}, {}, now_ms=0)
    assert ada is not None and (ada.name, ada.role, ada.may_decide) == ("ada", "reviewer", True)
    assert a.csrf_ok(ada, None)
    assert a.identify({"Authorization": "Bearer nope"}, {}, now_ms=0) is None


def test_a_session_cookie_is_signed_expires_and_binds_the_csrf_token() -> None:
    a = access(session_s=10)
    cookie = a.session_cookie("bob", "viewer", now_ms=1_000)
    bob = a.identify({}, {COOKIE: cookie}, now_ms=2_000)
    assert bob is not None and (bob.name, bob.role, bob.may_decide) == ("bob", "viewer", False)
    token = a.csrf_token(bob)
    assert a.csrf_ok(bob, token)
    assert not a.csrf_ok(bob, None) and not a.csrf_ok(bob, "") and not a.csrf_ok(bob, token[:-1] + "0")
    assert a.identify({}, {COOKIE: cookie}, now_ms=12_000) is None  # expired
    forged = cookie.replace("|viewer|", "|reviewer|")
    assert a.identify({}, {COOKIE: forged}, now_ms=2_000) is None
    other = a.session_cookie("bob", "viewer", now_ms=1_001)
    assert a.csrf_token(a.identify({}, {COOKIE: other}, now_ms=2_000)) != token  # per session


def test_a_proxy_identity_is_trusted_only_when_configured() -> None:
    assert access().identify({"X-Forwarded-User": "carol"}, {}, now_ms=0) is None
    a = access(identity_header="X-Forwarded-User", proxy_reviewers=["carol"])
    carol = a.identify({"X-Forwarded-User": "carol"}, {}, now_ms=0)
    dave = a.identify({"X-Forwarded-User": "dave"}, {}, now_ms=0)
    assert carol is not None and dave is not None
    assert (carol.role, dave.role) == ("reviewer", "viewer")
    assert not a.csrf_ok(carol, None) and a.csrf_ok(carol, a.csrf_token(carol))


def test_a_console_nobody_can_log_in_to_does_not_start() -> None:
    with pytest.raises(ValidationError, match="SWARM_CONSOLE_USERS"):
        ConsoleSettings()
    with pytest.raises(ValidationError):
        ConsoleSettings(users={"ada": {"token": "short", "role": "reviewer"}})  # type: ignore[arg-type]
