"""Hostile intensity providers against the real carbonwrap: a local server on 127.0.0.1 answers
Electricity Maps' paths with numbers no float holds, JSON nested 100,000 deep, wrong shapes,
invalid UTF-8, the request's own headers (the token among them), a body that never ends, a gzip
bomb and a slow drip. Whatever it answers, the run ends with the command's exit status, an end
record and the --json file, one warning per failure reason, no traceback, and the token nowhere;
`intensity`, `run --start-within` and `doctor` fall back the same way."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, records
from intensity_server import REFLECT, RecordedServer, gzip_bomb, serve

SECRET = "hostile-t0ken-8f3a91c2d4e5"
MAX_WARNING_CHARS = 300  # a provider's text in a reason is cut to 200; carbonwrap adds a little


def _hour() -> str:
    return time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime())


def _latest(value: bytes = b"300", datetime: bytes | None = None) -> bytes:
    when = datetime if datetime is not None else _hour().encode()
    return b'{"zone": "DE", "carbonIntensity": ' + value + b', "datetime": "' + when + b'"}'


# What every Electricity Maps path answers, by case: route() keywords.
HOSTILE: dict[str, dict[str, Any]] = {
    "400-digit-integer": {"body": _latest(b"9" * 400)},
    "nested-100000-deep": {"body": b"[" * 100_000 + b"]" * 100_000},
    "wrong-shape": {"body": b'{"zone": ["DE"], "carbonIntensity": {"g": 1}, "datetime": 5}'},
    "invalid-utf-8": {"body": _latest(b'"\xff\xfe\xc0\xaf"')},
    # The token first (a reason is cut to 200 characters), then the whole request.
    "reflects-the-request": {
        "body": _latest(datetime=b"<<header:auth-token>> " + REFLECT),
        "reflect": True,
    },
    "body-that-never-ends": {"body": b'{"history": [', "endless": True},
    "gzip-bomb": {"body": b"gzip", "headers": {"Content-Encoding": "gzip"}},
    "slow-drip": {"body": _latest(), "trickle_s": 0.2, "endless": True},
}
PATHS = ("/carbon-intensity/latest", "/carbon-intensity/history", "/carbon-intensity/forecast")


def _serve_hostile(server: RecordedServer, case: str) -> None:
    route = dict(HOSTILE[case])
    if case == "gzip-bomb":
        route["body"] = gzip_bomb(1 << 30)  # 1 GiB of zeros, 1 MB on the wire
    for path in PATHS:
        server.route(path, **route)


def _env(server_url: str) -> dict[str, str]:
    return cw_env(
        CARBONWRAP_ELECTRICITYMAPS_TOKEN=SECRET, CARBONWRAP_ELECTRICITYMAPS_URL=server_url
    )


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text[-3000:]
        assert SECRET not in text


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_run_ends_properly_whatever_the_provider_answers(workdir: Path, case: str) -> None:
    async def check(server: RecordedServer) -> None:
        _serve_hostile(server, case)
        proc = await asyncio.create_subprocess_exec(
            *cw_argv("run", "--region", "DE", "--json", "report.json", "--",
                     sys.executable, "-c", "import sys, time; time.sleep(1.5); sys.exit(3)"),
            cwd=workdir, env=_env(server.url), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        stderr = err.decode(errors="replace")
        assert proc.returncode == 3, stderr[-3000:]
        assert server.count(PATHS[0]) >= 1  # the provider was asked: the answer was hostile
        [log] = logs_in(workdir)
        lines = records(log)
        end = [r for r in lines if r["type"] == "end"]
        assert len(end) == 1 and end[0]["exit_code"] == 3
        report_text = (workdir / "report.json").read_text()
        report = json.loads(report_text)
        assert report["intensity"]["source"].startswith("static table"), report["intensity"]
        _assert_clean(stderr, log.read_text(), report_text)
        warnings = [r["message"] for r in lines if r["type"] == "warning"]
        assert len(warnings) == len(set(warnings)), warnings  # one per failure reason
        assert all("\n" not in w and len(w) <= MAX_WARNING_CHARS for w in warnings), warnings
        assert not any("polling stopped" in w for w in warnings), warnings
        if case != "slow-drip":  # a drip outlasts the run: nothing failed before it ended
            assert any(w.startswith("electricitymaps: ") for w in warnings), warnings

    serve(check, timeout_s=90)


@pytest.mark.parametrize("case", ["400-digit-integer", "nested-100000-deep", "reflects-the-request",
                                  "gzip-bomb"])  # fmt: skip
def test_the_intensity_command_shows_the_static_value_with_a_reason(case: str) -> None:
    async def check(server: RecordedServer) -> None:
        _serve_hostile(server, case)
        proc = await asyncio.create_subprocess_exec(
            *cw_argv("intensity", "--region", "DE", "--forecast", "--json"),
            env=_env(server.url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        _assert_clean(out.decode(errors="replace"), err.decode(errors="replace"))
        assert proc.returncode == 0 and err == b""
        doc = json.loads(out)
        assert doc["now"]["kind"] == "static"
        reason = doc["fallback_reason"]
        assert reason.startswith("electricitymaps: ") and len(reason) <= MAX_WARNING_CHARS

    serve(check, timeout_s=60)


@pytest.mark.parametrize("case", ["400-digit-integer", "nested-100000-deep", "reflects-the-request",
                                  "body-that-never-ends"])  # fmt: skip
def test_a_scheduled_start_starts_now_with_one_line(workdir: Path, case: str) -> None:
    async def check(server: RecordedServer) -> None:
        _serve_hostile(server, case)
        marker = workdir / "started"
        proc = await asyncio.create_subprocess_exec(
            *cw_argv("run", "--region", "DE", "--start-within", "8h", "--expected-duration", "1h",
                     "--json", "report.json", "--", sys.executable, "-c",
                     "import sys; open(sys.argv[1], 'w').write('x'); sys.exit(4)", str(marker)),
            cwd=workdir, env=_env(server.url), stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        stderr = err.decode(errors="replace")
        assert proc.returncode == 4, stderr[-3000:]
        assert marker.exists()  # the command started
        [log] = logs_in(workdir)
        _assert_clean(stderr, log.read_text(), (workdir / "report.json").read_text())
        first = stderr.splitlines()[0]
        assert first.startswith("carbonwrap: no intensity forecast for region DE (electricitymaps")
        assert first.endswith("; starting now") and len(first) <= 400
        schedule = records(log)[0]["schedule"]
        assert schedule["reason"].startswith("electricitymaps: ")
        assert any(r["type"] == "end" and r["exit_code"] == 4 for r in records(log))

    serve(check, timeout_s=60)


@pytest.mark.parametrize("case", ["400-digit-integer", "nested-100000-deep", "reflects-the-request",
                                  "gzip-bomb"])  # fmt: skip
def test_doctor_says_the_provider_failed_in_one_line(case: str) -> None:
    async def check(server: RecordedServer) -> None:
        _serve_hostile(server, case)
        proc = await asyncio.create_subprocess_exec(
            *cw_argv("doctor", "--region", "DE", "--json"),
            env=_env(server.url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        _assert_clean(out.decode(errors="replace"), err.decode(errors="replace"))
        reach = {c["name"]: c for c in json.loads(out)["checks"]}["intensity api"]
        assert reach["status"] == "warn", reach
        assert reach["detail"].startswith(
            ("127.0.0.1:", "malformed JSON from 127.0.0.1:", "electricitymaps")
        )
        assert len(reach["detail"]) <= MAX_WARNING_CHARS and "\n" not in reach["detail"]

    serve(check, timeout_s=60)
