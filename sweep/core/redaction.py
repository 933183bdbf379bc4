"""Passwords kept out of everything sweep prints, logs or stores: storage URLs, MLflow
URIs, and the error texts that echo them (drivers', MLflow's). No TensorFlow here."""

from __future__ import annotations

import os
from urllib.parse import quote, quote_plus

PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"  # MLflow's own basic auth, with ..._USERNAME
_HIDDEN = "***"


def _secret_key(key: str) -> bool:
    key = key.lower()
    return "pass" in key or key in ("pwd", "secret", "token")


def secrets(url: str) -> list[str]:
    """The passwords in a storage URL (user info and query string), as SQLAlchemy reads it,
    with their URL-encoded forms, longest first."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return []
    found = [parsed.password or ""]
    if parsed.host and "@" in parsed.host:  # an unencoded '@' in the password
        found.append(f"{parsed.password or ''}@{parsed.host.rsplit('@', 1)[0]}")
    for key, value in parsed.query.items():
        if _secret_key(key):
            found.extend([value] if isinstance(value, str) else list(value))
    forms = {form for s in found if s for form in (s, quote(s, safe=""), quote_plus(s))}
    return sorted(forms, key=len, reverse=True)


def redact(url: str) -> str:
    """A storage URL with its passwords hidden: ``postgresql://u:***@host/db``.

    Parsed by SQLAlchemy, as the storage itself will be: a password in the user info
    (with or without a user name, any characters), and query-string passwords
    (``?password=...``). Text that is not a URL is shown without what looks like
    user info.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        scheme, sep, rest = url.rpartition("://")
        return f"{scheme}{sep}{_HIDDEN}@{rest.rsplit('@', 1)[1]}" if "@" in rest else url
    if parsed.host and "@" in parsed.host:
        parsed = parsed.set(host=parsed.host.rsplit("@", 1)[1], password=_HIDDEN)
    query = {k: (_HIDDEN if _secret_key(k) else v) for k, v in parsed.query.items()}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace(quote_plus(_HIDDEN), _HIDDEN)


def redact_text(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with every password of ``url`` hidden:
    drivers' error messages may echo the URL or the password itself."""
    text = text.replace(url, redact(url))
    for secret in secrets(url):
        text = text.replace(secret, _HIDDEN)
    return text


def stored_uri(uri: str) -> str:
    """``uri`` as the study stores it (for ``sweep worker``): without a password, and a
    server's without its user info (the worker's MLflow takes MLFLOW_TRACKING_USERNAME /
    MLFLOW_TRACKING_PASSWORD from its own environment)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(uri)
    except Exception:
        return uri
    if parsed.password is None and "@" not in (parsed.host or ""):
        return uri
    server = parsed.drivername in ("http", "https")
    host = (parsed.host or "").rsplit("@", 1)[-1]
    # URL.set ignores None: _replace (a NamedTuple's) clears them
    parsed = parsed._replace(host=host, password=None, username=None if server else parsed.username)
    return str(parsed.render_as_string(hide_password=False))


def hide_secrets(text: str, uri: str) -> str:
    """``text`` (MLflow's exception text, a link) with every password of ``uri`` and of
    MLFLOW_TRACKING_PASSWORD hidden, as storage URLs are (``redact``)."""
    text = redact_text(text, uri)
    password = os.environ.get(PASSWORD_ENV, "")
    return text.replace(password, "***") if password else text
