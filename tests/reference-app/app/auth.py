"""Users from the environment, password check, JWT (HS256) issue and verification."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from app.config import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True)
class User:
    username: str
    role: str  # "admin" or "user"
    salt: bytes
    password_hash: bytes


@dataclass(frozen=True)
class Principal:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class UserStore:
    """The two users seeded at startup: ADMIN_USERNAME (admin) and SMOKE_USERNAME (user)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._users: dict[str, User] = {}
        for username, password, role in (
            (settings.admin_username, settings.admin_password, "admin"),
            (settings.smoke_username, settings.smoke_password, "user"),
        ):
            salt = secrets.token_bytes(16)
            self._users[username] = User(username, role, salt, _hash(password, salt))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self._users.get(username)
        if user is None:
            _hash(password, b"0" * 16)  # same cost for unknown users
            return None
        if hmac.compare_digest(_hash(password, user.salt), user.password_hash):
            return user
        return None

    def issue_token(self, user: User) -> tuple[str, int]:
        now = int(time.time())
        ttl = self._settings.jwt_expire_minutes * 60
        claims = {"sub": user.username, "role": user.role, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._settings.jwt_secret_key, algorithm=ALGORITHM), ttl

    def verify(self, token: str) -> Principal | None:
        try:
            claims = jwt.decode(
                token,
                self._settings.jwt_secret_key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "role", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("sub") not in self._users:
            return None
        return Principal(username=str(claims["sub"]), role=str(claims["role"]))


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _sep, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
