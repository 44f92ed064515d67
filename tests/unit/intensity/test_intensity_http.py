"""get_json against a real local server: timeouts, retries, Retry-After, errors without secrets."""

from __future__ import annotations

import email.utils
import socket
import time
import warnings
from typing import Any

import aiohttp
import pytest
from intensity_server import RecordedServer, Route, serve

from carbonwrap.intensity.http import (
    HttpError,
    Timeouts,
    get_json,
    parse_retry_after,
    where,
)
from carbonwrap.intensity.location import resolve_location
from carbonwrap.intensity.points import ProviderError
from carbonwrap.intensity.select import choose

FAST = Timeouts(connect_s=0.3, total_s=0.3)
TOKEN = "tok-3f9a-SECRET-HEADER"
PASSWORD = "pw-77c1-SECRET-BASIC"
QUERY_SECRET = "q-5e20-SECRET-QUERY"
SECRETS = (TOKEN, PASSWORD, QUERY_SECRET)
with warnings.catch_warnings():  # aiohttp 3.14 deprecates BasicAuth; get_json still takes one
    warnings.simplefilter("ignore", DeprecationWarning)
    BASIC_AUTH = aiohttp.BasicAuth("someone", PASSWORD)


class Sleeps:
    """An injectable sleep that records how long it was asked to wait, and does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def host(server: RecordedServer) -> str:
    """What reasons call the test server: host:port, no scheme."""
    return server.url.removeprefix("http://")


async def fetch(server: RecordedServer, path: str, **kw: Any) -> Any:
    kw.setdefault("timeouts", FAST)
    async with aiohttp.ClientSession() as session:
        return await get_json(session, server.url + path, **kw)


async def failure(url: str, **kw: Any) -> ProviderError:
    """The ProviderError of a GET carrying a token header, basic auth and a secret in the query."""
    kw.setdefault("timeouts", FAST)
    kw.setdefault("sleep", Sleeps())
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ProviderError) as caught:
            await get_json(
                session,
                url,
                params={"token": QUERY_SECRET, "zone": "DK-DK1"},
                headers={"auth-token": TOKEN},
                auth=BASIC_AUTH,
                **kw,
            )
    return caught.value


def assert_no_secret(exc: BaseException) -> None:
    chain: BaseException | None = exc
    while chain is not None:  # the chained exceptions end up in tracebacks: check them too
        for text in (str(chain), repr(chain), getattr(chain, "reason", "")):
            for secret in SECRETS:
                assert secret not in text, f"secret leaked into {text!r}"
        chain = chain.__cause__ or chain.__context__
    assert "\n" not in str(exc)


# --- success ------------------------------------------------------------------------------


def test_returns_the_decoded_body_and_sends_params_and_headers() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/x", json_body={"carbonIntensity": 216})
        params = {"filter": '{"PriceArea":["DK1"]}', "sort": "Minutes5UTC desc"}
        headers = {"auth-token": TOKEN}
        doc = await fetch(server, "/v3/x", params=params, headers=headers, auth=BASIC_AUTH)
        assert doc == {"carbonIntensity": 216}
        (request,) = server.requests
        assert request.path == "/v3/x"
        assert request.query == params
        assert request.headers["auth-token"] == TOKEN
        assert request.headers["Authorization"] == BASIC_AUTH.encode()
        assert request.headers["Accept"] == "application/json"

    serve(check)


# --- network faults -----------------------------------------------------------------------


def test_connection_refused_is_retried_with_backoff_then_reported() -> None:
    port = free_port()

    async def check(server: RecordedServer) -> None:
        sleeps = Sleeps()
        exc = await failure(f"http://127.0.0.1:{port}/v3/latest", retries=2, sleep=sleeps)
        assert not isinstance(exc, HttpError)
        assert exc.reason.startswith(f"127.0.0.1:{port}/v3/latest: cannot connect")
        assert exc.reason.endswith("(gave up after 3 attempts)")
        assert sleeps.waits == [0.5, 1.0]
        assert_no_secret(exc)

    serve(check)


def test_no_answer_fails_after_the_total_timeout() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/hang", hang=True)
        began = time.monotonic()
        exc = await failure(server.url + "/hang", retries=0)
        assert time.monotonic() - began < 1.0
        assert exc.reason == f"{host(server)}/hang: no answer within 0.3 s"
        assert_no_secret(exc)

    serve(check)


def test_a_trickled_body_fails_after_the_total_timeout() -> None:
    async def check(server: RecordedServer) -> None:
        # Headers at once, then a byte every 50 ms: no read ever waits long, the whole does.
        server.route("/slow", body=b'{"carbonIntensity": 216, "pad": "......"}', trickle_s=0.05)
        began = time.monotonic()
        exc = await failure(server.url + "/slow", retries=0)
        assert time.monotonic() - began < 1.0
        assert "no answer within 0.3 s" in exc.reason

    serve(check)


def test_timeouts_are_retried_and_each_attempt_is_bounded() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/hang", hang=True)
        sleeps = Sleeps()
        timeouts = Timeouts(connect_s=0.1, total_s=0.1)
        began = time.monotonic()
        exc = await failure(server.url + "/hang", retries=2, sleep=sleeps, timeouts=timeouts)
        assert time.monotonic() - began < 0.9
        assert server.count("/hang") == 3
        assert sleeps.waits == [0.5, 1.0]
        assert exc.reason.endswith("no answer within 0.1 s (gave up after 3 attempts)")

    serve(check)


# --- server errors and rate limits --------------------------------------------------------


def test_500_then_success_retries_with_recorded_backoff() -> None:
    async def check(server: RecordedServer) -> None:
        ok = Route(body=b'{"ok": 1}')
        server.sequence("/flaky", [Route(status=500), Route(status=502), ok])
        sleeps = Sleeps()
        assert await fetch(server, "/flaky", sleep=sleeps, backoff_s=0.25) == {"ok": 1}
        assert server.count("/flaky") == 3
        assert sleeps.waits == [0.25, 0.5]

    serve(check)


def test_500_forever_gives_up_after_the_retries() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/down", status=500)
        sleeps = Sleeps()
        exc = await failure(server.url + "/down", retries=2, sleep=sleeps)
        assert isinstance(exc, HttpError) and exc.status == 500
        assert exc.reason == (
            f"{host(server)}/down: server error (HTTP 500) (gave up after 3 attempts)"
        )
        assert server.count("/down") == 3
        assert sleeps.waits == [0.5, 1.0]
        assert_no_secret(exc)

    serve(check)


def test_429_with_a_short_retry_after_waits_that_long_and_retries() -> None:
    async def check(server: RecordedServer) -> None:
        limited = Route(status=429, headers={"Retry-After": "7"})
        server.sequence("/rl", [limited, Route(body=b"[1, 2]")])
        sleeps = Sleeps()
        assert await fetch(server, "/rl", sleep=sleeps) == [1, 2]
        assert sleeps.waits == [7.0]  # the server's wait, not the backoff
        assert server.count("/rl") == 2

    serve(check)


def test_429_with_a_long_retry_after_raises_at_once_with_the_wait() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/rl", status=429, headers={"Retry-After": "120"})
        sleeps = Sleeps()
        exc = await failure(server.url + "/rl", sleep=sleeps, max_retry_after_s=30)
        assert isinstance(exc, HttpError) and exc.status == 429
        assert exc.retry_after_s == 120.0
        assert exc.reason == f"{host(server)}/rl: rate limited (HTTP 429), retry after 120 s"
        assert server.count("/rl") == 1 and sleeps.waits == []
        assert_no_secret(exc)

    serve(check)


def test_429_with_an_http_date_retry_after() -> None:
    async def check(server: RecordedServer) -> None:
        later = email.utils.formatdate(time.time() + 3600, usegmt=True)
        server.route("/rl", status=429, headers={"Retry-After": later})
        exc = await failure(server.url + "/rl")
        assert exc.retry_after_s is not None and 3590 <= exc.retry_after_s <= 3601

    serve(check)


def test_429_that_never_ends_keeps_the_retry_after_for_the_poller() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/rl", status=429, headers={"Retry-After": "3"})
        sleeps = Sleeps()
        exc = await failure(server.url + "/rl", retries=1, sleep=sleeps)
        assert isinstance(exc, HttpError) and exc.status == 429 and exc.retry_after_s == 3.0
        assert sleeps.waits == [3.0] and server.count("/rl") == 2

    serve(check)


def test_429_without_retry_after_backs_off() -> None:
    async def check(server: RecordedServer) -> None:
        server.sequence("/rl", [Route(status=429), Route(body=b"{}")])
        sleeps = Sleeps()
        assert await fetch(server, "/rl", sleep=sleeps) == {}
        assert sleeps.waits == [0.5]

    serve(check)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past: no wait
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now_s = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now_s) == expected


# --- client errors ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_says_check_the_token_and_is_not_retried(status: int) -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/latest", status=status, body=b'{"error": "bad token"}')
        exc = await failure(server.url + "/v3/latest")
        assert isinstance(exc, HttpError) and exc.status == status
        assert exc.reason == (
            f"{host(server)}/v3/latest: unauthorized (HTTP {status}): check the token"
        )
        assert server.count("/v3/latest") == 1
        assert_no_secret(exc)

    serve(check)


def test_other_4xx_are_not_retried() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/bad", status=400, body=b'{"error": "zone XX unknown"}')
        exc = await failure(server.url + "/bad")
        assert isinstance(exc, HttpError) and exc.status == 400
        assert exc.reason == f"{host(server)}/bad: HTTP 400 Bad Request"
        exc = await failure(server.url + "/nothing-here")  # the test server's 404
        assert isinstance(exc, HttpError) and exc.status == 404
        assert server.count("/bad") == 1 and server.count("/nothing-here") == 1

    serve(check)


def test_redirects_are_not_followed() -> None:
    async def check(server: RecordedServer) -> None:
        # Following would resend the auth-token header to wherever Location points.
        server.route("/moved", status=302, headers={"Location": server.url + "/elsewhere"})
        exc = await failure(server.url + "/moved")
        assert isinstance(exc, HttpError) and exc.status == 302
        assert server.count("/elsewhere") == 0

    serve(check)


@pytest.mark.parametrize(
    "body", [b'{"carbonIntensity": 2', b"<html>Service Unavailable</html>", b"", b"\xff\xfe{"]
)
def test_malformed_json_is_one_line_and_not_retried(body: bytes) -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/latest", body=body)
        exc = await failure(server.url + "/v3/latest")
        assert not isinstance(exc, HttpError)
        assert exc.reason == f"malformed JSON from {host(server)}/v3/latest"
        assert server.count("/v3/latest") == 1
        assert_no_secret(exc)

    serve(check)


def test_secrets_in_the_query_reach_the_server_but_never_a_reason() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/down", status=503)
        exc = await failure(server.url + "/down", retries=0)
        assert server.requests[0].query["token"] == QUERY_SECRET
        assert exc.reason == f"{host(server)}/down: service unavailable (HTTP 503)"
        assert_no_secret(exc)

    serve(check)


# --- URLs ---------------------------------------------------------------------------------


def test_where_names_host_and_path_only() -> None:
    assert where("https://api.electricitymaps.com/v3/carbon-intensity/latest?zone=DE") == (
        "api.electricitymaps.com/v3/carbon-intensity/latest"
    )
    assert where(f"http://someone:{PASSWORD}@127.0.0.1:8080/a?token={QUERY_SECRET}") == (
        "127.0.0.1:8080/a"
    )


def _base(source: str, region: str, environ: dict[str, str]) -> str:
    """The base URL of the provider a run would get (select.choose) for `region`."""
    where = resolve_location(region, None, None, {}, "Etc/UTC")
    make = choose(source, where, environ).make
    assert make is not None
    provider: Any = make()
    return str(provider.base)


def test_base_url_from_the_environment() -> None:
    default = "https://api.energidataservice.dk"
    assert _base("energidataservice", "DK", {}) == default
    env = {"CARBONWRAP_ENERGIDATASERVICE_URL": "http://127.0.0.1:9/mirror/"}
    assert _base("energidataservice", "DK", env) == "http://127.0.0.1:9/mirror"
    env = {"CARBONWRAP_ELECTRICITYMAPS_URL": "", "CARBONWRAP_ELECTRICITYMAPS_TOKEN": "t"}
    assert _base("electricitymaps", "DE", env) == "https://api.electricitymaps.com/v3"
    assert _base("ukgrid", "GB", {"CARBONWRAP_UKGRID_URL": "http://x/"}) == "http://x"
