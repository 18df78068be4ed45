"""loop_entry.run: run_until_complete's behaviour at a fraction of its cost."""

from __future__ import annotations

import asyncio

import pytest
import sniffio

from inngest_do import loop_entry


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_the_coroutine_runs_as_a_real_task_on_a_running_loop(loop):
    async def probe():
        task = asyncio.current_task()
        running = asyncio.get_running_loop()
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)  # a real timer on the loop's selector
        return task is not None, running is loop, sniffio.current_async_library()

    assert loop_entry.run(loop, probe()) == (True, True, "asyncio")
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_errors_come_out_and_the_loop_stays_usable(loop):
    async def boom():
        await asyncio.sleep(0)
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        loop_entry.run(loop, boom())

    async def fine():
        return 3

    assert loop_entry.run(loop, fine()) == 3


def test_other_tasks_created_inside_run_while_the_loop_turns(loop):
    async def main():
        child = asyncio.get_running_loop().create_task(asyncio.sleep(0, result="child"))
        return await child

    assert loop_entry.run(loop, main()) == "child"


def test_an_async_generator_is_finalized_by_the_loop(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        gen = agen()
        await gen.__anext__()
        await gen.aclose()
        return closed

    assert loop_entry.run(loop, main()) == [True]


def test_nested_use_inside_a_running_loop_is_refused_like_run_until_complete(loop):
    async def inner():
        return 1

    async def outer():
        coro = inner()
        try:
            loop_entry.run(loop, coro)
        except RuntimeError as err:
            coro.close()
            return str(err)
        return "ran"

    assert "running" in loop_entry.run(loop, outer()).lower()


def test_work_left_on_the_loop_still_gets_its_turns(loop):
    # The first step of a task alone on the loop skips the selector poll; anything already
    # waiting (a callback, a timer) makes run take the loop's ordinary turns instead, and
    # what the task leaves behind runs on later turns.
    seen: list[str] = []
    loop.call_soon(seen.append, "callback")
    loop.call_later(0, seen.append, "timer")

    async def main():
        await asyncio.sleep(0.001)
        return list(seen)

    assert loop_entry.run(loop, main()) == ["callback", "timer"]

    async def leaves_a_callback():
        asyncio.get_running_loop().call_soon(seen.append, "left")
        return "done"

    assert loop_entry.run(loop, leaves_a_callback()) == "done"

    async def later():
        await asyncio.sleep(0)
        return seen[-1]

    assert loop_entry.run(loop, later()) == "left"


def test_a_custom_task_factory_is_used(loop):
    made: list[str] = []

    def factory(lp, coro, **kwargs):
        made.append("task")
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)

    async def main():
        return 5

    assert loop_entry.run(loop, main()) == 5
    assert made == ["task"]
