"""The kernel's slice driver: Drive(coro, park) runs a coroutine until it returns, raises or
parks, passing any other awaitable up to the awaiting task; both twins alike."""

from __future__ import annotations

import asyncio

import pytest


class _Park:
    def __await__(self):
        yield self


PARK = _Park()


def _drive(core, coro):
    return asyncio.run(_await(core.Drive(coro, PARK)))


async def _await(drive):
    return await drive


def test_return_raise_and_park(core):
    async def done():
        return 5

    async def boom():
        raise KeyError("k")

    steps = []

    async def parks():
        steps.append(1)
        await PARK
        steps.append(2)  # never: the driver stops at the park

    assert _drive(core, done()) == (core.DONE, 5)
    outcome, err = _drive(core, boom())
    assert outcome == core.RAISED and isinstance(err, KeyError)
    coro = parks()
    assert _drive(core, coro) == (core.PARKED, None) and steps == [1]
    coro.close()
    assert (core.DONE, core.RAISED, core.PARKED) == ("done", "raised", "parked")


def test_real_io_goes_up_to_the_task_and_its_result_comes_back(core):
    async def io():
        await asyncio.sleep(0)
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, "io")
        return await fut

    assert _drive(core, io()) == (core.DONE, "io")


def test_a_parked_coroutine_resumes_where_it_stopped(core):
    seen = []

    async def twice():
        seen.append("a")
        await PARK
        seen.append("b")
        return "end"

    coro = twice()
    assert _drive(core, coro) == (core.PARKED, None)
    assert _drive(core, coro) == (core.DONE, "end") and seen == ["a", "b"]


def test_cancelling_the_task_throws_into_the_coroutine(core):
    seen = []

    async def waits():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main():
        task = asyncio.ensure_future(_await(core.Drive(waits(), PARK)))
        await asyncio.sleep(0)
        task.cancel()
        return await task

    # the coroutine's CancelledError is what the drive reports (the engine classifies it)
    outcome, err = asyncio.run(main())
    assert outcome == core.RAISED and isinstance(err, asyncio.CancelledError)
    assert seen == ["cancelled"]


def test_close_sends_generator_exit_down(core):
    seen = []

    class _Foreign:
        def __await__(self):
            yield "foreign"

    async def body():
        try:
            await _Foreign()
        finally:
            seen.append("closed")

    drive = core.Drive(body(), PARK)
    it = drive.__await__()
    assert it.send(None) == "foreign"  # passed up
    it.close()
    assert seen == ["closed"]
    with pytest.raises(StopIteration):
        next(it)
