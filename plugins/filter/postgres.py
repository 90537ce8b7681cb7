# Copyright (c) ablage.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""postgres_url: the database URL of Ablage-System, its user and password fully percent-encoded.

Jinja's ``urlencode`` leaves ``/`` alone, so a password with a ``/`` broke the URL for libpq (which then
read the start of the password as the port and printed it). Here the user and password are
encoded with nothing kept safe, so libpq, SQLAlchemy and ablage.ops.alembic_migrate read the same values.
"""

from __future__ import annotations

import re
import typing as t
import urllib.parse

from ansible.errors import AnsibleFilterError

_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?$")
# SQLAlchemy does not decode the database part of a URL and libpq does, so only names that need no encoding.
_DATABASE = re.compile(r"^[A-Za-z0-9_.$-]+$")


def _part(value: t.Any) -> str:
    return urllib.parse.quote(str(value), safe="")


def postgres_url(connection: t.Mapping[str, t.Any]) -> str:
    """``scheme://user:password@host:port/database`` from a dict with those keys (all but database optional)."""
    if not isinstance(connection, t.Mapping):
        raise AnsibleFilterError("postgres_url takes a dict with user, password, host, port and database")
    scheme = str(connection.get("scheme") or "postgresql")
    if not _SCHEME.fullmatch(scheme):
        raise AnsibleFilterError(f"postgres_url: scheme {scheme!r} is not postgresql or postgresql+<driver>")
    database = str(connection.get("database") or "")
    if not _DATABASE.fullmatch(database):
        raise AnsibleFilterError(
            f"postgres_url: the database name {database!r} is missing or holds characters other than letters, "
            "digits, '_', '.', '$' and '-' (SQLAlchemy and libpq would read such a name differently)"
        )
    user, password = connection.get("user"), connection.get("password")
    userinfo = ""
    if user not in (None, ""):
        userinfo = _part(user) + (f":{_part(password)}" if password not in (None, "") else "") + "@"
    host = str(connection.get("host") or "")
    query = ""
    if host.startswith("/"):  # a Unix socket directory goes into the query, as libpq and SQLAlchemy expect
        query, host = "?host=" + _part(host), ""
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = connection.get("port")
    if port not in (None, ""):
        if not str(port).isdigit():
            raise AnsibleFilterError(f"postgres_url: port {port!r} is not a number")
        host += f":{int(port)}"
    return f"{scheme}://{userinfo}{host}/{database}{query}"


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"postgres_url": postgres_url}
