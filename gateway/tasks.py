"""Background tasks that survive errors, but never their own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


def reraise_if_cancelling() -> None:
    """Call from an ``except`` that keeps a loop alive.

    A library may turn a cancellation into an error of its own (redis-py can report a command
    cancelled mid-flight as a connection error); a loop that swallows that error would run on
    after ``cancel()`` and hang whoever awaits it at shutdown.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_all(tasks: Iterable[asyncio.Task[object]], within: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them, at most ``within`` seconds: shutdown never hangs."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=within)
