"""The app tests/test_crash.py runs under ``inngest-do run`` and kills with SIGKILL.

Every step body appends ``begin``/``end`` lines to the file ``$CRASH_LOG`` (O_APPEND, one
write per line) carrying a fresh token, and returns that token as its result; the test then
compares the log with the memos in the store: each recorded token has its ``end`` line, and
no body of that step began after it.
"""

import asyncio
import datetime
import os
import random
import uuid

import inngest_do as inngest

LOG = os.environ["CRASH_LOG"]

client = inngest.Inngest(app_id="crash")


def note(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@client.create_function(fn_id="job", trigger=inngest.TriggerEvent(event="crash/job"))
async def job(ctx: inngest.Context) -> dict:
    n = ctx.event.data["n"]
    tokens = []
    for i in range(3):
        async def body(step: str = f"s{i}") -> str:
            token = uuid.uuid4().hex
            note(f"begin {ctx.run_id} {step} {token}")
            await asyncio.sleep(random.uniform(0.0, 0.03))
            note(f"end {ctx.run_id} {step} {token}")
            return token

        tokens.append(await ctx.step.run(f"s{i}", body))
        if i == 1 and n % 4 == 0:
            await ctx.step.sleep("nap", datetime.timedelta(milliseconds=700))
    return {"n": n, "tokens": tokens}
