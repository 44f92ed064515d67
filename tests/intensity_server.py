"""A real aiohttp server on 127.0.0.1 that serves recorded API responses and fault modes.

    async def check(server: RecordedServer) -> None:
        server.route("/latest", json_file="electricitymaps_carbon_intensity_latest.json")
        server.route("/boom", status=500)
        ... call the provider with base URL server.url ...
    serve(check)   # runs the server and the coroutine in one event loop, then stops the server

Fault modes per route: a status (500, 401, 429 with Retry-After), a raw body (malformed JSON), a
delay before answering (slow), `hang=True` (accepts and never answers), a slow body trickled
in chunks, `endless=True` (the body never ends: spaces follow it for ever, trickled or as fast as
the client reads), `reflect=True` (REFLECT in the body becomes the request line and headers, and
`<<header:NAME>>` that header's value, as a JSON string's content: a mirror echoing what it was
sent). Headers are sent as given, so
`headers={"Content-Encoding": "gzip"}` with a compressed body serves a gzip bomb. Every request
is recorded (method, path, query, headers) so tests can check what was asked and that no secret
leaked into a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFLECT = b"<<request>>"  # in a `reflect=True` body: replaced by the request, JSON-escaped


def gzip_bomb(size: int = 1 << 30) -> bytes:
    """A valid gzip file of `size` zero bytes (a multiple of 1 MiB), about a thousandth of it
    compressed: each MiB is compressed once and repeated (a full flush resets the compressor)."""
    mib = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(mib, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + block * (size >> 20) + deflate.flush() + trailer


@dataclass
class Route:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait before answering
    hang: bool = False  # never answer
    trickle_s: float = 0.0  # send the body one byte per trickle_s (a slow body)
    responses: list[Route] | None = None  # answer these in turn, then repeat the last
    endless: bool = False  # after the body, spaces for ever (trickled if trickle_s)
    reflect: bool = False  # REFLECT: the request line and headers; <<header:name>>: its value


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class RecordedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._served: dict[str, int] = {}
        self.url = ""

    def route(
        self,
        path: str,
        *,
        json_file: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
        hang: bool = False,
        trickle_s: float = 0.0,
        endless: bool = False,
        reflect: bool = False,
    ) -> Route:
        """Serve `path` (query strings ignored; a trailing * matches every path below) with a
        recorded file or body."""
        if json_file is not None:
            payload = (FIXTURES / json_file).read_bytes()
        elif json_body is not None:
            payload = json.dumps(json_body).encode()
        else:
            payload = body if body is not None else b"{}"
        route = Route(
            status, payload, dict(headers or {}), delay_s, hang, trickle_s,
            endless=endless, reflect=reflect,
        )  # fmt: skip
        self.routes[path] = route
        return route

    def sequence(self, path: str, routes: list[Route]) -> None:
        """Answer `path` with each route in turn, then keep answering with the last."""
        self.routes[path] = Route(responses=routes)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Request(request.method, request.path, dict(request.query), dict(request.headers))
        )
        route = self.routes.get(request.path)
        if route is None:  # "/intensity/*" serves every path below /intensity/
            prefixes = [
                p for p in self.routes if p.endswith("*") and request.path.startswith(p[:-1])
            ]
            route = self.routes[max(prefixes, key=len)] if prefixes else None
        if route is None:
            return web.Response(status=404, text='{"error": "no such route in the test server"}')
        if route.responses is not None:
            n = self._served.get(request.path, 0)
            self._served[request.path] = n + 1
            route = route.responses[min(n, len(route.responses) - 1)]
        if route.hang:
            await asyncio.sleep(3600)
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        body = route.body
        if route.reflect:
            lines = [f"{request.method} {request.path_qs}"]
            lines += [f"{name}: {value}" for name, value in request.headers.items()]
            body = body.replace(REFLECT, json.dumps("\r\n".join(lines))[1:-1].encode())
            for name, value in request.headers.items():
                echo = json.dumps(value)[1:-1].encode()
                body = body.replace(b"<<header:" + name.lower().encode() + b">>", echo)
        if route.trickle_s or route.endless:
            response = web.StreamResponse(status=route.status, headers=route.headers)
            response.content_type = "application/json"
            await response.prepare(request)
            step = 1 if route.trickle_s else 64 * 1024
            with contextlib.suppress(ConnectionError):  # the client gave up: the test goes on
                for i in range(0, len(body), step):
                    await response.write(body[i : i + step])
                    await asyncio.sleep(route.trickle_s)
                while route.endless:
                    await response.write(b" " * step)
                    await asyncio.sleep(route.trickle_s)
                await response.write_eof()
            return response
        return web.Response(
            status=route.status,
            body=body,
            headers=route.headers,
            content_type="application/json",
        )


def serve(check: Callable[[RecordedServer], Awaitable[None]], timeout_s: float = 30) -> None:
    """Start a RecordedServer on 127.0.0.1 (a free port), run `check(server)`, stop the server."""

    async def main() -> None:
        server = RecordedServer()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", server._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.url = f"http://127.0.0.1:{port}"
        try:
            await asyncio.wait_for(check(server), timeout_s)
        finally:
            await runner.cleanup()

    asyncio.run(main())


def probe_while_serving(
    setup: Callable[[RecordedServer], None], probe: Callable[[str], Any]
) -> tuple[Any, list[Any]]:
    """`probe(server_url)` on a thread while a real local server answers as `setup` says;
    returns what the probe returned and the requests the server saw."""
    result: list[Any] = []

    async def check(server: RecordedServer) -> None:
        setup(server)
        result.append(await asyncio.to_thread(probe, server.url))
        result.append(server.requests)

    serve(check)
    return result[0], result[1]
