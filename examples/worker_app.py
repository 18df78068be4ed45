"""An app for the ``inngest-do`` command: run it, send it events, watch its runs.

    inngest-do run examples/worker_app.py
    inngest-do send app/hello '{"name": "Ada"}'     # in another terminal
    inngest-do runs
    inngest-do show <RUN_ID>

``greet`` runs two steps around a 2-second durable sleep: kill the worker during the sleep
(even with ``kill -9``), start it again, and the run finishes without redoing its first step.
``count`` is a sync handler.
"""

import asyncio
import datetime

import inngest_do as inngest

client = inngest.Inngest(app_id="app")


@client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="app/hello"))
async def greet(ctx: inngest.Context) -> dict:
    name = ctx.event.data.get("name", "world")

    async def compose() -> str:
        await asyncio.sleep(0.1)  # real I/O would go here; other runs go on meanwhile
        return f"Hello, {name}!"

    greeting = await ctx.step.run("compose", compose)
    await ctx.step.sleep("pause", datetime.timedelta(seconds=2))
    sent = await ctx.step.send_event("announce", inngest.Event(name="app/greeted",
                                                               data={"name": name}))
    return {"greeting": greeting, "announced": sent}


@client.create_function(fn_id="count", trigger=inngest.TriggerEvent(event="app/greeted"))
def count(ctx: inngest.ContextSync) -> int:
    return ctx.step.run("length", lambda: len(ctx.event.data["name"]))
