"""The one place that talks HTTP: hard timeouts, retries, backoff, Retry-After, one-line errors.

Whatever a server sends, `get_json` returns decoded JSON (`get_text` UTF-8 text, for providers
that publish CSV files) or raises `ProviderError`: bodies are capped before and after
decompression (a gzip bomb), JSON nested too deep is malformed JSON, an error of aiohttp's own is
named by its type, and the credentials it sends are kept secret (`points.keep_secret`), so a
server echoing them back cannot put them into a reason.
"""

import asyncio
import base64
import datetime as dt
import email.utils
import json
import math
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from carbonwrap.intensity.points import ProviderError, keep_secret

# A provider answer is a few hundred kB at most (a month of 5-minute records); more is a wrong URL.
# The cap holds for the body as sent and again once decompressed.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Content codings we decode ourselves (zlib wbits), within MAX_BODY_BYTES: aiohttp before 3.13.3
# inflated each network chunk whole, so 64 kB of a gzip bomb became 64 MB at once.
_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_MAX_GZIP_MEMBERS = 16
# Header and query names whose values are credentials: kept secret from every reason.
_CREDENTIAL_NAME = re.compile(r"auth|token|key|secret|passw|signature|credential|cookie", re.I)
# aiohttp >= 3.10 tells a connect timeout apart; with 3.9 it is reported as "no answer".
_CONNECT_TIMEOUT: Any = getattr(aiohttp, "ConnectionTimeoutError", ())


class Timeouts(NamedTuple):
    """Hard limits for one request attempt, body included. Units: s."""

    connect_s: float = 3.0
    total_s: float = 10.0


class HttpError(ProviderError):
    """The provider answered with an HTTP error status; `status` tells 401/403/429/5xx apart."""

    def __init__(self, reason: str, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(reason, retry_after_s)
        self.status = status


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix (network, timeout, 5xx, 429)."""

    def __init__(
        self, reason: str, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 HTTP-dates are GMT; parsedate_to_datetime gives a naive datetime for "-0000".
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = when.timestamp() - now_s
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def new_session(headers: Mapping[str, str] | None = None) -> aiohttp.ClientSession:
    """The session every command asks providers through: `get_json` decompresses its answers
    itself, within MAX_BODY_BYTES, whatever aiohttp's version does."""
    return aiohttp.ClientSession(headers=dict(headers or {}), auto_decompress=False)


def where(url: str | URL) -> str:
    """host[:port]/path of `url`: what error reasons name. Never the query, user or password."""
    u = URL(url) if isinstance(url, str) else url
    port = "" if u.is_default_port() or u.port is None else f":{u.port}"
    return f"{u.host}{port}{u.path}"


def _with_query(url: str, params: Mapping[str, str] | None) -> URL:
    if not params:
        return URL(url)
    # %20, not "+", for spaces: "sort=Minutes5UTC%20desc" is what the Danish API documents.
    query = urlencode(list(params.items()), quote_via=quote, safe="")
    return URL(f"{url}{'&' if '?' in url else '?'}{query}", encoded=True)


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - an immutable NamedTuple
    retries: int = 2,
    backoff_s: float = 0.5,
    max_retry_after_s: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    """GET `url` and decode its JSON body, or raise `ProviderError` (`HttpError` for a status).

    Connection errors, timeouts and 5xx are retried `retries` times, waiting backoff_s, 2×, 4× ….
    429 (and 503) with a Retry-After of at most `max_retry_after_s` waits that long and retries;
    a longer one raises at once with `retry_after_s` set, so the poller backs off instead.
    Other 4xx are not retried. Reasons name host and path only: never query, headers or auth.
    """
    target = _with_query(url, params)
    body = await _get_body(
        session, target, "application/json", headers, auth,
        timeouts, retries, backoff_s, max_retry_after_s, sleep,
    )  # fmt: skip
    try:
        return json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError, an empty body included
        raise ProviderError(f"malformed JSON from {where(target)}") from None
    except RecursionError:  # nested deeper than the interpreter's recursion limit
        raise ProviderError(f"malformed JSON from {where(target)} (nested too deep)") from None


async def get_text(
    session: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    accept: str = "text/csv, text/plain",
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - an immutable NamedTuple
    retries: int = 2,
    backoff_s: float = 0.5,
    max_retry_after_s: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """GET `url` and return its body as UTF-8 text (a byte-order mark dropped): for providers
    that publish files (CSV) rather than JSON. Errors, retries and limits as `get_json`."""
    target = _with_query(url, params)
    body = await _get_body(
        session, target, accept, headers, None,
        timeouts, retries, backoff_s, max_retry_after_s, sleep,
    )  # fmt: skip
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProviderError(f"{where(target)}: answer is not UTF-8 text") from None


async def _get_body(
    session: aiohttp.ClientSession,
    target: URL,
    accept: str,
    headers: Mapping[str, str] | None,
    auth: aiohttp.BasicAuth | None,
    timeouts: Timeouts,
    retries: int,
    backoff_s: float,
    max_retry_after_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> bytes:
    """The body of a GET of `target`, within the limits and retries `get_json` describes."""
    place = where(target)
    _keep_credentials(headers, auth, target)
    attempts = max(0, retries) + 1
    last = _Retryable(f"{place}: not tried")
    for attempt in range(attempts):
        try:
            # wait_for bounds the whole attempt (DNS, connect, headers, body) even where the
            # aiohttp timeouts would not, e.g. a body trickled one byte per second.
            return await asyncio.wait_for(
                _attempt(
                    session, target, place, accept, headers, auth, timeouts, max_retry_after_s
                ),
                timeouts.total_s,
            )
        except _Retryable as failure:
            last = failure
        except _CONNECT_TIMEOUT:
            last = _Retryable(f"{place}: no connection within {timeouts.connect_s:g} s")
        except asyncio.TimeoutError:
            last = _Retryable(f"{place}: no answer within {timeouts.total_s:g} s")
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or type(exc.os_error).__name__
            last = _Retryable(f"{place}: cannot connect ({why})")
        except aiohttp.ClientError as exc:
            # str(exc) of aiohttp errors can carry the full URL with its query: name the type only.
            last = _Retryable(f"{place}: connection failed ({type(exc).__name__})")
        except ProviderError:
            raise
        except Exception as exc:  # aiohttp's own, outside ClientError: the type only, as above
            raise ProviderError(f"{place}: failed ({type(exc).__name__})") from None
        if attempt + 1 < attempts:
            wait_s = last.retry_after_s
            await sleep(wait_s if wait_s is not None else backoff_s * 2**attempt)
    suffix = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
    if last.status is not None:
        raise HttpError(last.reason + suffix, last.status, last.retry_after_s)
    raise ProviderError(last.reason + suffix, last.retry_after_s)


async def _attempt(
    session: aiohttp.ClientSession,
    target: URL,
    place: str,
    accept: str,
    headers: Mapping[str, str] | None,
    auth: aiohttp.BasicAuth | None,
    timeouts: Timeouts,
    max_retry_after_s: float,
) -> bytes:
    timeout = aiohttp.ClientTimeout(
        total=timeouts.total_s, sock_connect=timeouts.connect_s, sock_read=timeouts.total_s
    )
    # Only the codings _decoded knows (aiohttp would offer br and zstd where they are installed).
    sent = {"Accept": accept, "Accept-Encoding": "gzip, deflate", **(headers or {})}
    if auth is not None:  # as a header: aiohttp 3.14 deprecates the `auth=` argument
        sent["Authorization"] = auth.encode()
    # No redirects: aiohttp would resend custom auth headers (auth-token) to whatever host a
    # 3xx names. A mirror that redirects is configured with its final URL instead.
    async with session.get(
        target, headers=sent, timeout=timeout, allow_redirects=False
    ) as response:
        status = response.status
        if status in (429, 503):
            wait_s = parse_retry_after(response.headers.get("Retry-After"), time.time())
            what = "rate limited" if status == 429 else "service unavailable"
            if wait_s is not None and wait_s > max_retry_after_s:
                raise HttpError(
                    f"{place}: {what} (HTTP {status}), retry after {wait_s:g} s", status, wait_s
                )
            raise _Retryable(f"{place}: {what} (HTTP {status})", status, wait_s)
        if status >= 500:
            raise _Retryable(f"{place}: server error (HTTP {status})", status)
        if status in (401, 403):
            raise HttpError(f"{place}: unauthorized (HTTP {status}): check the token", status)
        if status >= 300:
            # The phrase comes from our table, not the server: a hostile proxy could echo secrets.
            raise HttpError(f"{place}: HTTP {status} {_phrase(status)}", status)
        body = await _read_capped(response, place)
        if not getattr(session, "auto_decompress", True):
            body = _decoded(body, response.headers.get("Content-Encoding", ""), place)
    return body


def _keep_credentials(
    headers: Mapping[str, str] | None, auth: aiohttp.BasicAuth | None, target: URL
) -> None:
    """What this request sends that is secret, for `keep_secret`: credential headers (a
    scheme's credentials, Basic's user and password decoded too), the URL's user and password,
    query values with credential names."""
    values: list[str] = []
    sent = dict(headers or {})
    if auth is not None:
        sent["Authorization"] = auth.encode()
    for name, value in sent.items():
        if not _CREDENTIAL_NAME.search(name):
            continue
        values.append(value)
        scheme, _, credentials = value.strip().partition(" ")
        if credentials:
            values.append(credentials.strip())
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(credentials.strip(), validate=True).decode()
                except ValueError:  # binascii.Error, UnicodeDecodeError: not Basic after all
                    continue
                values += [decoded, *decoded.split(":", 1)]
    values += [v for v in (target.user, target.password) if v]
    values += [v for k, v in target.query.items() if _CREDENTIAL_NAME.search(k)]
    if values:
        keep_secret(*values)


def _decoded(body: bytes, coding: str, place: str) -> bytes:
    """`body` decompressed as its Content-Encoding says, never to more than MAX_BODY_BYTES."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return body
    wbits = _CODINGS.get(coding)
    if wbits is None:
        raise ProviderError(f"{place}: answer in an unknown content coding {coding!r}")
    if (
        coding == "deflate"
        and len(body) >= 2
        and (body[0] & 0x0F != 8 or (body[0] << 8 | body[1]) % 31)
    ):
        wbits = -zlib.MAX_WBITS  # raw deflate without the zlib header, as some servers send
    parts: list[bytes] = []
    size = 0
    rest = body
    try:
        for _ in range(_MAX_GZIP_MEMBERS):  # gzip allows members one after another
            inflate = zlib.decompressobj(wbits)
            part = inflate.decompress(rest, MAX_BODY_BYTES + 1 - size)
            size += len(part)
            if size > MAX_BODY_BYTES:
                raise ProviderError(
                    f"{place}: answer larger than {MAX_BODY_BYTES} bytes once decompressed"
                )
            if not inflate.eof:
                raise ProviderError(f"{place}: {coding} answer cut short")
            parts.append(part)
            rest = inflate.unused_data
            if not rest or coding == "deflate":
                return b"".join(parts)
    except zlib.error:
        raise ProviderError(f"{place}: malformed {coding} answer") from None
    raise ProviderError(f"{place}: more than {_MAX_GZIP_MEMBERS} gzip members in the answer")


async def _read_capped(response: aiohttp.ClientResponse, place: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderError(f"{place}: answer larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
