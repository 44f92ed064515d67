"""The test server itself: recorded files, statuses, sequences and hangs behave as documented."""

from __future__ import annotations

import asyncio

import aiohttp
from intensity_server import RecordedServer, Route, serve


def test_serves_recorded_files_statuses_and_sequences() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/latest", json_file="electricitymaps_carbon_intensity_latest.json")
        server.sequence("/flaky", [Route(status=500), Route(status=200, body=b'{"ok": 1}')])
        server.route("/hang", hang=True)
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/latest", params={"zone": "DK"}) as r:
                assert r.status == 200 and "carbonIntensity" in await r.json()
            async with session.get(server.url + "/flaky") as r:
                assert r.status == 500
            async with session.get(server.url + "/flaky") as r:
                assert await r.json() == {"ok": 1}
            timeout = aiohttp.ClientTimeout(total=0.2)
            try:
                async with session.get(server.url + "/hang", timeout=timeout):
                    raise AssertionError("a hanging route answered")
            except asyncio.TimeoutError:
                pass
        assert server.requests[0].query == {"zone": "DK"}
        assert server.count("/flaky") == 2

    serve(check)
