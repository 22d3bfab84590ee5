"""Bearer JWT authentication, turned into the principal the access-control layer uses, and
a demo authenticator for ``/api/_login``."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from persisty.errors import Unauthorized, ValidationError
from persisty.layers import Principal

ANONYMOUS_SUBJECT = "anonymous"
"""The subject of requests without credentials (its one scope is ``anonymous``)."""


def make_principal(subject: str, scopes: Iterable[str]) -> Principal:
    """A ``persisty.layers.Principal``."""
    return Principal(subject, scopes)


class JWTAuth:
    """Verifies ``Authorization: Bearer <jwt>`` and yields the caller's subject and scopes.

    HS256 with a shared ``secret``, or RS256 (ES256 …) with a ``public_key`` (PEM). The
    subject is the ``sub`` claim; scopes come from ``scope`` (space-separated, OAuth style)
    or ``scopes`` (a list). ``exp`` is required; ``audience``/``issuer`` are checked when given.

    Example::

        auth = JWTAuth(secret="a long random secret of 32+ bytes")
        token = auth.issue("ann", scopes=["user"])      # HS256 only
        app = persisty.serve.app(db, [Note], auth=auth, policies={Note: Policy.owner()})
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        public_key: str | bytes | None = None,
        algorithm: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 0,
        expires_in: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        if (secret is None) == (public_key is None):
            raise ValidationError(
                "JWTAuth takes either a secret (HS256) or a public_key (RS256)", field="auth"
            )
        self.secret = secret
        self.public_key = public_key
        self.algorithm = algorithm or ("HS256" if secret is not None else "RS256")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.expires_in = expires_in

    def verify(self, token: str) -> tuple[str, frozenset[str]]:
        """(subject, scopes) of a valid token; ``Unauthorized`` for anything else."""
        key = self.secret if self.secret is not None else self.public_key
        assert key is not None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or sub == ANONYMOUS_SUBJECT:
            raise Unauthorized("invalid token: bad subject")
        raw = claims.get("scope", claims.get("scopes"))
        if raw is None:  # no scope claim: a principal with no scopes
            scopes: frozenset[str] = frozenset()
        elif isinstance(raw, str):
            scopes = frozenset(raw.split())
        elif isinstance(raw, list) and all(isinstance(s, str) for s in raw):
            scopes = frozenset(raw)
        else:
            raise Unauthorized("invalid token: bad scopes")
        return sub, scopes

    def issue(
        self,
        subject: str,
        scopes: Iterable[str] = (),
        *,
        expires_in: dt.timedelta | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for ``subject`` (needs the ``secret``; tests and demos use this).

        Example::

            headers = {"Authorization": "Bearer " + auth.issue("ann", ["user"])}
        """
        if self.secret is None:
            raise ValidationError(
                "issuing tokens needs the secret (this auth only has a public key)", field="auth"
            )
        now = dt.datetime.now(dt.UTC)
        payload: dict[str, Any] = {
            "sub": subject,
            "scope": " ".join(sorted(scopes)),
            "iat": now,
            "exp": now + (expires_in or self.expires_in),
            **claims,
        }
        if self.audience:
            payload.setdefault("aud", self.audience)
        if self.issuer:
            payload.setdefault("iss", self.issuer)
        return jwt.encode(payload, self.secret, algorithm=self.algorithm)


class DemoAuthenticator:
    """Username/password pairs for demos and tests; enables ``POST /api/_login``, which
    answers ``{"access_token", "token_type": "bearer"}``. Not for production: passwords
    are held in memory in clear.

    Example::

        login = DemoAuthenticator({"ann": ("secret", ["user"]), "root": ("pw", ["admin"])})
        auth = JWTAuth(secret="a long random secret of 32+ bytes")
        app = persisty.serve.app(db, [Note], auth=auth, login=login)
    """

    def __init__(self, users: Mapping[str, tuple[str, Iterable[str]]]) -> None:
        self.users = {u: (pw, frozenset(scopes)) for u, (pw, scopes) in users.items()}

    def authenticate(self, username: str, password: str) -> frozenset[str]:
        """The scopes of a user whose password matches; ``Unauthorized`` otherwise."""
        found = self.users.get(username)
        if found is None or not hmac.compare_digest(found[0].encode(), password.encode()):
            raise Unauthorized("unknown user or wrong password")
        return found[1]
