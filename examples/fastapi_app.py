"""inngest_do inside a FastAPI service: the worker lives in the app's lifespan.

    pip install fastapi uvicorn
    python examples/fastapi_app.py              # or: uvicorn examples.fastapi_app:app
    curl -X POST localhost:8000/orders -H 'content-type: application/json' \\
         -d '{"order_id": 1, "amount": 30}'
    curl localhost:8000/runs

Run it as ONE process (no ``uvicorn --workers N``): the store file belongs to one worker at a
time, and a second process would be refused with "... is in use by process N". Other
processes (``inngest-do send``, a cron job) can still send events through the file's inbox.

``lifespan`` is plain ASGI, so the same function works for Starlette
(``Starlette(lifespan=lifespan)``) and anything else that takes an async context manager.
FastAPI is imported only if it is installed; without it this module still defines the client,
its function and ``lifespan``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import typing

import inngest_do as inngest

client = inngest.Inngest(app_id="shop", store="shop.db")


@client.create_function(fn_id="process-order",
                        trigger=inngest.TriggerEvent(event="shop/order.created"),
                        retries=3)
async def process_order(ctx: inngest.Context) -> dict:
    order = ctx.event.data

    async def charge() -> dict:
        await asyncio.sleep(0.05)  # a payment API call; other runs go on meanwhile
        return {"charged": order["amount"]}

    receipt = await ctx.step.run("charge", charge)
    await ctx.step.sleep("cool-off", datetime.timedelta(seconds=2))
    await ctx.step.send_event("notify", inngest.Event(name="shop/order.charged",
                                                      data={"order_id": order["order_id"]}))
    return receipt


@contextlib.asynccontextmanager
async def lifespan(app: typing.Any) -> typing.AsyncIterator[None]:
    """Start the worker with the service; stop it gracefully (in-flight steps finish) when
    the service stops."""
    async with inngest.Worker(client, stop_timeout=20):
        yield


try:
    import fastapi
except ImportError:  # FastAPI is optional for this example
    fastapi = None  # type: ignore[assignment]

app: typing.Any = None
if fastapi is not None:
    app = fastapi.FastAPI(lifespan=lifespan)

    @app.post("/orders")
    async def create_order(order: dict) -> dict:
        # stored before it returns; the worker starts the run at once
        ids = await client.send(inngest.Event(name="shop/order.created", data=order))
        return {"event_ids": ids}

    @app.get("/runs")
    async def list_runs() -> list[dict]:
        return [{"id": r.id, "function": r.fn_id, "status": r.status.value,
                 "output": r.output} for r in client.runs()]

    @app.get("/runs/{run_id}")
    async def get_run(run_id: str) -> dict:
        try:
            run = client.get_run(run_id)
        except KeyError:
            raise fastapi.HTTPException(status_code=404, detail="no such run") from None
        return {"id": run.id, "status": run.status.value, "output": run.output,
                "steps": run.steps}


if __name__ == "__main__":
    if fastapi is None:
        raise SystemExit("this example needs FastAPI: pip install fastapi uvicorn")
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
