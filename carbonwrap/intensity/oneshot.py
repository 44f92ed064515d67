"""Run one provider request to completion or to a hard time limit, for commands that ask once
(`intensity`, `doctor`, the carbon-aware start) rather than poll."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from carbonwrap.intensity.points import provider_failure

T = TypeVar("T")


def run_bounded(coroutine: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """`coroutine`'s result; asyncio.TimeoutError after `timeout_s`, whatever the network does;
    any other exception as a ProviderError (`points.provider_failure`), whatever the answer did
    to a parser: a command that asks once shows a reason, never a traceback.

    A loop of our own, closed without waiting for its executor: asyncio.run would then wait for
    a thread stuck in getaddrinfo (a DNS server that never answers) long after the timeout. The
    stuck thread is abandoned; carbonwrap leaves with os._exit, which does not join it.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout_s))
    except asyncio.TimeoutError:
        raise
    except Exception as exc:
        raise provider_failure(exc) from None
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
