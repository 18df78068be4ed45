"""The README's quick start: one function, a sleep and a wait, on a virtual clock."""

import datetime

import inngest_do as inngest
from inngest_do.testing import Simulation

client = inngest.Inngest(app_id="shop")


@client.create_function(
    fn_id="process-order",
    trigger=inngest.TriggerEvent(event="order/created"),
    retries=5,
)
async def process_order(ctx: inngest.Context) -> dict:
    user = await ctx.step.run("fetch-user", lambda: {"id": ctx.event.data["user_id"]})
    await ctx.step.sleep("wait-a-bit", datetime.timedelta(hours=1))
    approval = await ctx.step.wait_for_event(
        "approval",
        event="order/approved",
        timeout=datetime.timedelta(days=1),
        if_exp="event.data.order_id == async.data.order_id",
    )
    return {"user": user, "approved": approval is not None}


def main() -> None:
    sim = Simulation(client, seed=1)
    sim.send(inngest.Event(name="order/created", data={"user_id": 7, "order_id": 3}))
    sim.advance(datetime.timedelta(hours=1))
    sim.send(inngest.Event(name="order/approved", data={"order_id": 3}))
    run = sim.runs()[0]
    print(run.status, run.output)
    for entry in sim.trace:
        print(entry.at.isoformat(), entry.kind, entry.step or "", entry.detail or "")


if __name__ == "__main__":
    main()
