"""A FastAPI app written for the Inngest Python SDK, running on inngest_do: only the imports
differ (``import inngest`` -> ``import inngest_do as inngest``, and the same for
``inngest.fast_api``). No Inngest server: ``serve`` runs the functions inside this app.

    pip install 'inngest-do[fastapi]' uvicorn
    uvicorn examples.fastapi_app:app             # or: python examples/fastapi_app.py
    curl -X POST localhost:8000/orders -H 'content-type: application/json' \\
         -d '{"order_id": 1, "amount": 30}'
    curl -X POST localhost:8000/api/inngest -d '{"name": "shop/order.created",
         "data": {"order_id": 2, "amount": 5}}'  # the Inngest event API's body
    curl localhost:8000/api/inngest              # introspection: the functions served

``serve`` mounts ``/api/inngest`` and the Inngest event API (``POST /e/{event_key}``), and
runs a worker in the app's lifespan. State is in memory here; ``store="shop.db"`` on the
client keeps it in a SQLite file across restarts (then run ONE process: no ``--workers N``).
"""

from __future__ import annotations

import asyncio
import logging

import fastapi

import inngest_do as inngest  # was: import inngest
import inngest_do.fast_api  # was: import inngest.fast_api

inngest_client = inngest.Inngest(app_id="shop", logger=logging.getLogger("uvicorn"))


@inngest_client.create_function(fn_id="process-order",
                                trigger=inngest.TriggerEvent(event="shop/order.created"),
                                retries=3)
async def process_order(ctx: inngest.Context) -> dict:
    order = ctx.event.data

    async def charge() -> dict:
        await asyncio.sleep(0.05)  # a payment API call; other runs go on meanwhile
        return {"charged": order["amount"]}

    receipt = await ctx.step.run("charge", charge)
    await ctx.step.send_event("notify", inngest.Event(name="shop/order.charged",
                                                      data={"order_id": order["order_id"]}))
    ctx.logger.info("order %s charged", order["order_id"])
    return receipt


app = fastapi.FastAPI()


@app.post("/orders")
async def create_order(order: dict) -> dict:
    ids = await inngest_client.send(inngest.Event(name="shop/order.created", data=order))
    return {"event_ids": ids}


inngest.fast_api.serve(app, inngest_client, [process_order])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
