"""Background loops stop when cancelled, even when a library reports the cancel as an error."""

from __future__ import annotations

import asyncio

import pytest

from gateway.tasks import cancel_all, reraise_if_cancelling


async def command_that_hides_its_cancel() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise ConnectionError("connection closed by cancel") from None


async def resilient_loop() -> None:
    while True:
        try:
            await command_that_hides_its_cancel()
        except ConnectionError:
            reraise_if_cancelling()
        await asyncio.sleep(0.01)


async def test_a_loop_that_survives_errors_still_stops_on_cancel() -> None:
    task = asyncio.create_task(resilient_loop())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)


async def test_an_error_outside_a_cancel_keeps_the_loop_alive() -> None:
    async def fails_once() -> int:
        try:
            raise ConnectionError("redis went away")
        except ConnectionError:
            reraise_if_cancelling()  # not being cancelled: nothing happens
        return 1

    assert await fails_once() == 1


async def test_cancel_all_gives_up_on_a_task_that_ignores_cancellation() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await cancel_all([task], within=0.2)
    assert loop.time() - started < 1.0
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=1.0)
    assert task.done()
