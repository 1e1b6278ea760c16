"""Remove credentials from anything chaosrec writes: reports, summaries, state files, logs.

One function, :func:`redact`, recursive over strings, bytes, mappings and sequences. It
replaces with :data:`MARKER` (``"***"``):

* in a URL (anywhere in a string): the user information (``http://user:pass@host`` ->
  ``http://***@host``) and the values of query or fragment parameters whose names look
  secret (``?api_key=abc`` -> ``?api_key=***``);
* in a mapping: the value of every key that looks secret (a nested mapping too), and the
  ``value`` of a ``{"name": <secret-looking>, "value": ...}`` entry (Allure parameters,
  Kubernetes environment variables); in a ``(name, value)`` tuple (header lists, pytest
  user properties): the value when the name looks secret;
* in free text: ``NAME=VALUE``, ``NAME: VALUE`` and ``"NAME": "VALUE"`` where NAME looks
  secret (``Authorization: Bearer abc`` -> ``Authorization: ***``).

A name looks secret when it contains, in any case, one of :data:`SECRET_WORDS` (so
``X-Api-Key``, ``chaosrec_admin_token`` and ``JSESSIONID`` do). The match is a substring
on purpose: hiding ``monkey: 3`` costs less than showing ``db_passwd_2: hunter2``.
Everything else is returned unchanged, character for character, and ``redact`` is
idempotent. Numbers, booleans, ``None`` and other objects pass through untouched (turn
objects into dicts first).

:class:`RedactingFilter` applies the same to log records (httpx logs every request's
URL, ``user:pass@`` included, at INFO).

Example::

    >>> redact({"gateway_url": "http://drill:s3cr3t@gw:8080/", "api_token": "abc", "n": 3})
    {'gateway_url': 'http://***@gw:8080/', 'api_token': '***', 'n': 3}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import unquote_plus

__all__ = [
    "MARKER",
    "REDACTED_LOGGERS",
    "SECRET_WORDS",
    "RedactingFilter",
    "install_log_filter",
    "is_secret_name",
    "redact",
    "redact_text",
    "redact_url",
    "remove_log_filter",
]

#: what a removed secret is replaced with
MARKER = "***"

#: a name (mapping key, query parameter, header) holding any of these looks secret
SECRET_WORDS = (
    "token",
    "password",
    "passwd",
    "secret",
    "key",
    "api_key",
    "apikey",
    "authorization",
    "auth",
    "credential",
    "private",
    "session",
    "cookie",
)

_T = TypeVar("_T")

_WORD = "|".join(re.escape(word) for word in SECRET_WORDS)
_SECRET_NAME = re.compile(_WORD, re.IGNORECASE)

# scheme://, then everything up to whitespace, a quote or an angle bracket
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]*")
# one name=value of a query string or fragment (separators & and ;)
_PARAM = re.compile(r"(?P<name>[^&;=#]*)=(?P<value>[^&;#]*)")

_NAME_CHAR = r"A-Za-z0-9_.\-"
# NAME=VALUE, NAME: VALUE, "NAME": "VALUE", 'NAME': 'VALUE', Authorization: Bearer VALUE
_ASSIGNMENT = re.compile(
    rf"(?<![{_NAME_CHAR}])"
    rf"(?P<name>[{_NAME_CHAR}]*(?:{_WORD})[{_NAME_CHAR}]*)"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|(?:(?:bearer|basic|digest|token|negotiate)[ \t]+)?[^\s,;&\"'<>()\[\]{}]+)",
    re.IGNORECASE,
)
# a replacement can expose a new match (a URL's authority grows when a value inside it
# goes); a few passes reach the fixed point
_MAX_PASSES = 4


def is_secret_name(name: str) -> bool:
    """True when ``name`` (a key, parameter or header name) looks like it holds a secret."""
    return _SECRET_NAME.search(name) is not None


def _redact_params(part: str) -> str:
    def one(match: re.Match[str]) -> str:
        name, value = match["name"], match["value"]
        if value and is_secret_name(unquote_plus(name)):
            return f"{name}={MARKER}"
        return match[0]

    return _PARAM.sub(one, part)


def redact_url(url: str) -> str:
    """``url`` without its user information and the values of secret-looking query and
    fragment parameters; everything else is kept as written (no re-encoding)."""
    head, sep, rest = url.partition("://")
    if sep:
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority = rest[:end]
        userinfo, at, host = authority.rpartition("@")
        if at and userinfo:
            rest = f"{MARKER}@{host}{rest[end:]}"
        url = head + sep + rest
    before, hash_, fragment = url.partition("#")
    path, question, query = before.partition("?")
    if question:
        before = path + question + _redact_params(query)
    if hash_:
        fragment = _redact_params(fragment)
    return before + hash_ + fragment


def _redact_assignment(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" and len(value) > 1 and value[-1] == value[0] else ""
    return f"{match['name']}{match['sep']}{quote}{MARKER}{quote}"


def redact_text(text: str) -> str:
    """``text`` with credentials removed from every URL in it and the values of
    secret-looking ``NAME=VALUE`` / ``NAME: VALUE`` assignments replaced."""
    for _ in range(_MAX_PASSES):
        done = _ASSIGNMENT.sub(_redact_assignment, _URL.sub(lambda m: redact_url(m[0]), text))
        if done == text:
            break
        text = done
    return text


def _redact_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    name = mapping.get("name")
    value_is_secret = isinstance(name, str) and is_secret_name(name)
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        secret = isinstance(key, str) and is_secret_name(key)
        if value_is_secret and key == "value":
            secret = True
        shown_key = redact_text(key) if isinstance(key, str) else key
        out[shown_key] = MARKER if secret and value is not None else redact(value)
    return out


def redact(value: _T) -> _T:
    """``value`` with every credential replaced by :data:`MARKER` (see the module docs).

    Mappings come back as dicts, lists as lists, tuples as tuples; bytes are redacted as
    UTF-8 text (undecodable bytes are kept as they were).
    """
    result: Any
    if isinstance(value, str):
        result = redact_text(value)
    elif isinstance(value, bytes):
        text = value.decode("utf-8", errors="surrogateescape")
        done = redact_text(text)
        result = value if done == text else done.encode("utf-8", errors="surrogateescape")
    elif isinstance(value, Mapping):
        result = _redact_mapping(value)
    elif isinstance(value, tuple):
        if len(value) == 2 and isinstance(value[0], str) and is_secret_name(value[0]):
            result = (value[0], MARKER if value[1] is not None else None)
        else:
            result = tuple(redact(item) for item in value)
    elif isinstance(value, list):
        result = [redact(item) for item in value]
    else:
        result = value
    return result  # type: ignore[no-any-return]


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that redacts each record's message and traceback text
    (it never drops a record). A filter on a logger sees only that logger's own records,
    not its children's: add it to each logger whose lines may carry URLs.

    Example::

        logging.getLogger("httpx").addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = redact_text(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


#: loggers whose records can carry URLs or configuration: httpx (every request URL at
#: INFO), the Chaos Toolkit's, chaosrec's own
REDACTED_LOGGERS = ("httpx", "chaostoolkit", "chaosrec")


def install_log_filter() -> RedactingFilter:
    """Add a :class:`RedactingFilter` to :data:`REDACTED_LOGGERS` (idempotent per logger);
    returns it, for :func:`remove_log_filter`."""
    log_filter = RedactingFilter()
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(log_filter)
    return log_filter


def remove_log_filter(log_filter: RedactingFilter) -> None:
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).removeFilter(log_filter)
