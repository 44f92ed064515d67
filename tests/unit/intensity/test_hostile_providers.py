"""Hostile answers against the shared mechanism every provider goes through: `http.get_json`
(bodies capped before and after decompression, JSON nested too deep, aiohttp's own errors),
`ProviderError` (the one place a provider's text becomes a reason: cut, one line, no credential
sent), the poller's loop (any exception is a failed poll, never the thread's end) and the
one-shot commands (`intensity`, the carbon-aware start, `doctor`). The servers are real aiohttp
servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from conftest import REPO, cw_env
from fake_provider import NOW, STATIC_POINT, Clock, FakeProvider, make, point
from intensity_server import REFLECT, RecordedServer, Route, gzip_bomb, probe_while_serving, serve

from carbonwrap.intensity.http import MAX_BODY_BYTES, Timeouts, get_json, new_session
from carbonwrap.intensity.oneshot import run_bounded
from carbonwrap.intensity.points import (
    MAX_REASON_CHARS,
    STATIC,
    IntensityPoint,
    ProviderError,
    keep_secret,
)
from carbonwrap.intensity.poller import IntensityPoller
from carbonwrap.intensity.providers.electricitymaps import ElectricityMaps
from carbonwrap.intensity.providers.energidataservice import EnergiDataService
from carbonwrap.intensity.providers.ukgrid import UkGrid
from carbonwrap.intensity.providers.watttime import WattTime

FAST = Timeouts(connect_s=0.5, total_s=0.5)
TOKEN = "unit-hostile-token-5b7e19"
USER, PASSWORD = "hostile-user-31c", "hostile-pa55word-9c"
BEARER = "bearer-from-login-77d2e0a1"
QUERY_SECRET = "query-secret-e41f0c"
# A warning is "<provider>: <reason>; <what carbonwrap does>": the reason is at most 200.
MAX_WARNING_CHARS = MAX_REASON_CHARS + 100
HUGE = b"9" * 400  # an integer no float holds: float() raises OverflowError
DEEP = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError
HOUR = "2024-03-06T19:00:00.000Z"


def one_line_reason(reason: str, limit: int = MAX_REASON_CHARS) -> None:
    assert len(reason) <= limit, reason
    assert reason.isprintable(), reason  # no newline, no escape sequence


async def fetch(url: str, session_kind: str = "ours", **kw: Any) -> Any:
    kw.setdefault("timeouts", FAST)
    kw.setdefault("retries", 0)
    session = new_session() if session_kind == "ours" else aiohttp.ClientSession()
    async with session:
        return await get_json(session, url, **kw)


# --- get_json: whatever the body, one ProviderError ---------------------------------------

BODIES: dict[str, dict[str, Any]] = {
    "nested-100000-deep": {"body": DEEP},
    "5000-digit-integer": {"body": b"9" * 5000},  # int() refuses more than 4,300 digits
    "invalid-utf-8": {"body": b'{"a": "\xff\xfe\xc0\xaf"}'},
    "body-that-never-ends": {"body": b"[", "endless": True},
    "gzip-bomb": {"body": b"gzip", "headers": {"Content-Encoding": "gzip"}},
    "deflate-bomb": {"body": b"deflate", "headers": {"Content-Encoding": "deflate"}},
    "not-gzip": {"body": b"\x1f\x8bnot gzip at all", "headers": {"Content-Encoding": "gzip"}},
    "cut-gzip": {"body": b"cut", "headers": {"Content-Encoding": "gzip"}},
    "unknown-coding": {"body": b"{}", "headers": {"Content-Encoding": "x-squash"}},
    "brotli-unasked": {"body": b"not brotli", "headers": {"Content-Encoding": "br"}},
    "slow-drip": {"body": b'{"a": 1}', "trickle_s": 0.2, "endless": True},
}
_BOMB = gzip_bomb(1 << 30)


def _body(case: str) -> dict[str, Any]:
    route = dict(BODIES[case])
    if case == "gzip-bomb":
        route["body"] = _BOMB
    elif case == "deflate-bomb":
        route["body"] = zlib.compress(bytes(256 << 20), 9)  # 256 MiB of zeros, zlib-wrapped
    elif case == "cut-gzip":
        route["body"] = _BOMB[: len(_BOMB) // 2000]  # 0.5 MiB of zeros, then nothing
    return route


# aiohttp's own sessions (the unit tests' providers use them) decode what they get themselves:
# an unknown coding passes through undecoded, and a gzip stream cut short is what it was.
AIOHTTP_DECODES = ("unknown-coding", "cut-gzip")


@pytest.mark.parametrize(
    ("case", "session_kind"),
    [(case, "ours") for case in BODIES]
    + [(case, "aiohttp's") for case in BODIES if case not in AIOHTTP_DECODES],
)
def test_every_hostile_body_is_one_provider_error(case: str, session_kind: str) -> None:

    async def check(server: RecordedServer) -> None:
        server.route("/x", **_body(case))
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(ProviderError) as caught:
                await fetch(server.url + "/x", session_kind)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        one_line_reason(caught.value.reason)
        assert caught.value.reason.startswith(("127.0.0.1:", "malformed JSON from 127.0.0.1:"))
        assert time.monotonic() - started < 5
        # Never the whole bomb (1 GiB): at most the cap and what one read brings.
        assert peak < 3 * MAX_BODY_BYTES, peak

    serve(check)


def test_our_sessions_ask_for_codings_we_decode_and_decode_them() -> None:
    async def check(server: RecordedServer) -> None:
        doc = {"data": list(range(1000))}
        server.route("/gz", body=gzip_bomb(1 << 20), headers={"Content-Encoding": "gzip"})
        server.sequence("/json", [Route(body=zlib.compress(json.dumps(doc).encode()),
                                        headers={"Content-Encoding": "deflate"}),
                                  Route(body=json.dumps(doc).encode())])  # fmt: skip
        assert await fetch(server.url + "/json") == doc
        assert await fetch(server.url + "/json") == doc
        with pytest.raises(ProviderError, match="malformed JSON"):  # 1 MiB of zeros: not JSON
            await fetch(server.url + "/gz")
        assert server.requests[0].headers["Accept-Encoding"] == "gzip, deflate"

    serve(check)


# --- reasons: one line, cut, never a credential -------------------------------------------


def test_a_reason_is_one_line_and_cut() -> None:
    reason = ProviderError("x: " + "line\nbreak\x1b[2J" * 100).reason
    one_line_reason(reason)
    assert reason.startswith("x: line\\nbreak\\x1b[2J")


def test_a_kept_secret_is_redacted_whole_in_pieces_and_encoded() -> None:
    secret = "kept/secret+0a9b'8c7d6e5f"
    keep_secret(secret)
    encoded = quote(secret, safe="")
    for text in (f"echo {secret}!", f"{secret[:12]}...", f"…{secret[-9:]}", repr(secret),
                 f"q={encoded}&x=1", "x" * 190 + secret):  # fmt: skip
        reason = ProviderError(text).reason
        assert secret not in reason and secret[:8] not in reason and secret[-8:] not in reason
        assert encoded not in reason and "<redacted>" in reason
    assert ProviderError(f"a {secret} b").reason == "a <redacted> b"
    assert ProviderError(f"a {encoded} b").reason == "a <redacted> b"
    keep_secret("abc")  # too short to be told from ordinary words: kept nowhere
    assert ProviderError("abc").reason == "abc"


def _reflecting(server: RecordedServer, path: str, template: bytes) -> None:
    server.route(path, body=template, reflect=True)


def test_a_mirror_echoing_the_request_never_puts_a_credential_in_a_reason() -> None:
    """Electricity Maps' auth-token, WattTime's Bearer token, and for get_json itself Basic
    credentials, a secret query value and a URL's password, each echoed back in the answer."""
    echo = b"<<header:auth-token>> <<header:authorization>> " + REFLECT
    reasons: list[str] = []

    async def check(server: RecordedServer) -> None:
        _reflecting(
            server,
            "/v3/carbon-intensity/latest",
            b'{"zone": "' + echo + b'", "carbonIntensity": 1, "datetime": "x"}',
        )
        server.route("/login", json_body={"token": BEARER})
        _reflecting(server, "/v3/forecast", b'{"error": "' + echo + b'", "msg": "x"}')
        _reflecting(server, "/echo", b'{"echo": "' + echo + b'"}')
        em = ElectricityMaps(TOKEN, zone="DE", base=server.url + "/v3", timeouts=FAST)
        wt = WattTime(USER, PASSWORD, region="CAISO_NORTH", base=server.url, timeouts=FAST)
        async with new_session() as session:
            for call in (em.latest, wt.latest):
                with pytest.raises(ProviderError) as caught:
                    await call(session)
                reasons.append(caught.value.reason)
            basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            for url, headers in (
                (server.url + "/echo", {"Authorization": f"Basic {basic}"}),
                (server.url.replace("//", f"//{USER}:{PASSWORD}@") + "/echo", {}),
            ):
                doc = await get_json(session, url, params={"api_key": QUERY_SECRET},
                                     headers=headers, timeouts=FAST)  # fmt: skip
                assert PASSWORD in doc["echo"] or basic in doc["echo"]  # it was echoed
                reasons.append(ProviderError(f"unexpected echo {doc['echo']}").reason)
        sent = [r.headers.get("auth-token", "") + r.headers.get("Authorization", "")
                for r in server.requests]  # fmt: skip
        assert any(TOKEN in s for s in sent) and any(BEARER in s for s in sent)

    serve(check)
    assert "<redacted>" in reasons[0] and "zone" in reasons[0]
    assert reasons[1].startswith("watttime: the API answered <<header:auth-token>> <redacted> ")
    for reason in reasons:
        one_line_reason(reason)
        for secret in (TOKEN, USER, PASSWORD, BEARER, QUERY_SECRET, f"{USER}:{PASSWORD}"):
            assert secret not in reason, reason
        assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in reason


# --- the poller: any exception is one failed poll, never the thread's end -----------------


class Raising(FakeProvider):
    """A provider whose every call raises `exc` (what a parser meets in a hostile answer)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    async def latest(self, session: Any) -> IntensityPoint:
        if self.answers:
            return await super().latest(session)
        raise self.exc

    async def history(self, session: Any, start_s: float, end_s: float) -> list[IntensityPoint]:
        raise self.exc

    async def forecast(self, session: Any) -> list[IntensityPoint]:
        raise self.exc


EXCEPTIONS = [
    OverflowError("int too large to convert to float"),
    RecursionError("maximum recursion depth exceeded"),
    TypeError("'NoneType' object is not subscriptable"),
    KeyError("carbonIntensity"),
    AttributeError("'list' object has no attribute 'get'"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    aiohttp.ClientPayloadError("Response payload is not completed"),
    ValueError("x" * 5000 + "\n\x1b[2J"),
]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_any_exception_from_a_provider_is_one_warning_and_a_fallback(exc: Exception) -> None:
    provider, clock = Raising(exc), Clock()
    provider.answers = [point(120.0)]
    poller, records, said = make(provider, clock)

    async def go() -> None:
        poller._provider = provider
        await poller._poll_latest(None)  # 120, valid until NOW + 240 (+ one resolution)
        for moment in (NOW + 100, NOW + 200, NOW + 600, NOW + 900):
            clock.now = moment
            assert await poller._poll_latest(None) > 0  # failed: back off, no exception
        await poller._fetch_history(None)
        await poller._fetch_history(None)
        await poller._fetch_forecast(None)
        await poller._fetch_forecast(None)

    asyncio.run(go())
    assert [r["kind"] for r in records] == ["latest", STATIC]
    reason = f"unreadable answer ({type(exc).__name__}: "
    assert records[-1]["reason"].startswith(f"fake: {reason}")
    assert [w.split(": ")[0] for w in said] == ["fake", "fake history", "fake forecast"]
    assert all(reason in w and len(w) <= MAX_WARNING_CHARS and w.isprintable() for w in said)


def _payloads(kind: str) -> dict[str, Any]:
    """Per provider: routes answering its latest with a number no float holds."""
    if kind == "electricitymaps":
        body = b'{"zone": "DE", "carbonIntensity": ' + HUGE + b', "datetime": "' + HOUR.encode()
        return {"/v3/carbon-intensity/*": body + b'"}'}
    if kind == "ukgrid":
        slot = b'{"from": "2024-03-06T19:00Z", "to": "2024-03-06T19:30Z", "intensity": '
        return {"/intensity": b'{"data": [' + slot + b'{"forecast": 1, "actual": ' + HUGE
                + b"}}]}", "/intensity/*": b'{"data": []}'}  # fmt: skip
    if kind == "energidataservice":
        record = b'{"Minutes5UTC": "2024-03-06T19:00:00", "PriceArea": "DK1", "CO2Emission": '
        return {"/dataset/*": b'{"records": [' + record + HUGE + b"}]}"}
    meta = b'"meta": {"units": "lbs_co2_per_mwh", "data_point_period_seconds": 300}'
    data = b'"data": [{"point_time": "2024-03-06T19:00:00Z", "value": ' + HUGE + b"}]"
    return {"/login": json.dumps({"token": BEARER}).encode(),
            "/v3/*": b"{" + data + b", " + meta + b"}"}  # fmt: skip


def _provider(kind: str, url: str) -> Any:
    if kind == "electricitymaps":
        return ElectricityMaps(TOKEN, zone="DE", base=url + "/v3", timeouts=FAST, retries=0)
    if kind == "ukgrid":
        return UkGrid(base=url, timeouts=FAST, retries=0)
    if kind == "energidataservice":
        return EnergiDataService("DK1", base=url, timeouts=FAST, retries=0)
    return WattTime(USER, PASSWORD, region="X", base=url, timeouts=FAST, retries=0)


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("kind", ["electricitymaps", "ukgrid", "energidataservice", "watttime"])
def test_the_polling_thread_lives_through_a_number_no_float_holds(kind: str) -> None:
    """Each provider's latest answers a 400-digit intensity: the poller warns once, keeps the
    static value, and its loop still runs (a wanted forecast is fetched); stop is quiet."""
    said: list[str] = []
    emitted: list[dict[str, Any]] = []

    async def check(server: RecordedServer) -> None:
        for path, body in _payloads(kind).items():
            server.route(path, body=body)
        poller = IntensityPoller(
            lambda: _provider(kind, server.url), kind, STATIC_POINT, "X", emitted.append,
            said.append, time.time() - 60, time.monotonic(),
        )  # fmt: skip

        def probe() -> None:
            poller.start()
            assert _wait(lambda: bool(said)), "no warning: the latest was never asked"
            asked = len(server.requests)
            poller.want_forecast()  # the loop wakes and asks: it is alive
            assert _wait(lambda: len(server.requests) > asked), "the polling loop is dead"
            assert poller._thread.is_alive()
            started = time.monotonic()
            poller.stop(budget_s=0.3)
            assert time.monotonic() - started < 0.5

        await asyncio.to_thread(probe)

    serve(check)
    assert emitted == []  # the static value stayed in force
    assert said and said[0].startswith(f"{kind}: ") and said[0].endswith("static value in force")
    assert len(said) == len(set(said)) and not any("polling stopped" in w for w in said)
    for warning in said:
        assert len(warning) <= MAX_WARNING_CHARS and warning.isprintable(), warning
        assert BEARER not in warning and TOKEN not in warning


def test_a_polling_loop_ended_by_a_fault_of_ours_stops_quietly() -> None:
    """Not a provider's answer: the log's callback failing ends the loop. The static value is
    recorded with the reason, and stop() neither raises nor leaves a coroutine never awaited."""
    provider, clock = FakeProvider(), Clock()
    provider.answers = [point(120.0)] * 3
    poller, records, said = make(provider, clock)
    failures = [OSError("no space left on device")]

    def emit(record: dict[str, Any]) -> None:
        if failures:
            raise failures.pop()
        records.append(record)

    poller._emit = emit
    poller.start()
    assert _wait(lambda: not poller._thread.is_alive()), "the loop did not end"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.monotonic()
        poller.stop(budget_s=0.3)
        assert time.monotonic() - started < 0.4
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    why = "intensity polling stopped (OSError: no space left on device)"
    assert [(r["kind"], r["reason"]) for r in records] == [(STATIC, why)]
    assert said == [f"{why}; static value from here on"]


# --- the commands that ask once ------------------------------------------------------------


def test_run_bounded_turns_any_exception_into_a_provider_error() -> None:
    async def raising(exc: BaseException) -> None:
        raise exc

    with pytest.raises(ProviderError, match=r"unreadable answer \(OverflowError: int too"):
        run_bounded(raising(OverflowError("int too large to convert to float")), 1)
    with pytest.raises(ProviderError, match=r"^as it was$"):
        run_bounded(raising(ProviderError("as it was")), 1)
    with pytest.raises(asyncio.TimeoutError):
        run_bounded(asyncio.sleep(5), 0.05)

    class Signalled(BaseException):  # as run.schedule.Interrupted: never a provider's failure
        pass

    with pytest.raises(Signalled):
        run_bounded(raising(Signalled()), 1)


HOSTILE_LATEST = {
    "400-digit-integer": b'{"zone": "DE", "carbonIntensity": %s, "datetime": "%s", "forecast": '
    b'[{"carbonIntensity": %s, "datetime": "%s"}]}' % (HUGE, HOUR.encode(), HUGE, HOUR.encode()),
    "nested-100000-deep": DEEP,
    "reflects-the-token": b'{"zone": "<<header:auth-token>> ' + REFLECT + b'"}',
}


def _em_env(url: str) -> dict[str, str]:
    return cw_env(CARBONWRAP_ELECTRICITYMAPS_TOKEN=TOKEN, CARBONWRAP_ELECTRICITYMAPS_URL=url)


def _serve_em(body: bytes) -> Callable[[RecordedServer], None]:
    def setup(server: RecordedServer) -> None:
        server.route("/carbon-intensity/*", body=body, reflect=True)

    return setup


@pytest.mark.parametrize("case", list(HOSTILE_LATEST))
def test_the_intensity_command_falls_back_with_one_reason(case: str) -> None:
    from carbonwrap.commands.intensity import show

    def probe(url: str) -> tuple[int, str]:
        out = io.StringIO()
        code = show("DE", None, None, "auto", True, True, _em_env(url), out)
        return code, out.getvalue()

    (code, out), _ = probe_while_serving(_serve_em(HOSTILE_LATEST[case]), probe)
    assert code == 0 and TOKEN not in out
    doc = json.loads(out)
    assert doc["now"]["kind"] == STATIC
    reason = doc["fallback_reason"]
    assert reason.startswith("electricitymaps: ") and reason.endswith("; showing the static table")
    one_line_reason(reason, MAX_WARNING_CHARS)


@pytest.mark.parametrize("case", list(HOSTILE_LATEST))
def test_the_forecast_fetch_for_a_scheduled_start_is_a_provider_error(case: str) -> None:
    from carbonwrap.run.schedule import fetch_forecast

    def probe(url: str) -> ProviderError:
        with pytest.raises(ProviderError) as caught:
            fetch_forecast(lambda: ElectricityMaps(TOKEN, zone="DE", base=url), budget_s=5)
        return caught.value

    failure, _ = probe_while_serving(_serve_em(HOSTILE_LATEST[case]), probe)
    one_line_reason(failure.reason)
    assert TOKEN not in failure.reason


@pytest.mark.parametrize("case", list(HOSTILE_LATEST))
def test_doctors_grid_check_is_one_warning_line(case: str) -> None:
    from carbonwrap.doctor.checks import WARN
    from carbonwrap.doctor.grid import check_grid

    def probe(url: str) -> Any:
        return check_grid("DE", None, None, "auto", _em_env(url))[-1]

    reach, _ = probe_while_serving(_serve_em(HOSTILE_LATEST[case]), probe)
    assert reach.name == "intensity api" and reach.status == WARN
    one_line_reason(reach.detail, MAX_WARNING_CHARS)
    assert TOKEN not in reach.detail


def test_a_poller_that_cannot_make_its_loop_warns_and_leaves_the_static_value(
    tmp_path: Path,
) -> None:
    """No descriptor left for the event loop's self-pipe (ulimit -n reached): one warning, the
    static value stays, no thread traceback on stderr, stop() returns at once."""
    code = textwrap.dedent(
        """
        import os, resource, sys, time
        from fake_provider import Clock, FakeProvider, make
        poller, records, said = make(FakeProvider(), Clock())
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        used = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (used, hard))  # nothing left to open
        poller.start()
        poller._thread.join(5)
        started = time.monotonic()
        poller.stop(budget_s=0.3)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert time.monotonic() - started < 0.4
        print(said)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "intensity polling not started (OSError" in result.stdout, result.stdout
