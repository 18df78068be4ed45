"""Flow control on a virtual clock: a rate limit, a debounce and a concurrency limit.

Run it: ``python examples/flow_control.py``. A day of virtual time passes in milliseconds.
"""

import datetime

import inngest_do as inngest
from inngest_do.testing import Simulation, busy

client = inngest.Inngest(app_id="flow-demo")


@client.create_function(
    fn_id="send-digest",
    trigger=inngest.TriggerEvent(event="user/activity"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1),
                                 key="event.data.user_id"),
)
async def send_digest(ctx: inngest.Context) -> str:
    return f"digest for {ctx.event.data['user_id']}"


@client.create_function(
    fn_id="reindex",
    trigger=inngest.TriggerEvent(event="doc/edited"),
    debounce=inngest.Debounce(period=datetime.timedelta(minutes=5), key="event.data.doc"),
)
async def reindex(ctx: inngest.Context) -> int:
    return ctx.event.data["version"]  # only the last edit of a burst is indexed


@client.create_function(
    fn_id="transcode",
    trigger=inngest.TriggerEvent(event="video/uploaded"),
    concurrency=[inngest.Concurrency(limit=2)],
)
async def transcode(ctx: inngest.Context) -> str:
    def work() -> str:
        busy(datetime.timedelta(minutes=10))  # this step takes 10 virtual minutes
        return f"{ctx.event.data['video']}.mp4"

    return await ctx.step.run("transcode", work)


def main() -> None:
    sim = Simulation(client, seed=7)
    sim.send([inngest.Event(name="user/activity", data={"user_id": u}) for u in (1, 1, 2, 1)])
    sim.send([inngest.Event(name="doc/edited", data={"doc": "a", "version": v}) for v in (1, 2)])
    sim.advance(datetime.timedelta(minutes=2))
    sim.send(inngest.Event(name="doc/edited", data={"doc": "a", "version": 3}))
    sim.send([inngest.Event(name="video/uploaded", data={"video": f"v{i}"}) for i in range(5)])
    sim.run_until_idle()

    for run in sim.runs():
        waited = (run.started_at - run.created_at) if run.started_at else None
        print(f"{run.fn_id:24} {run.status:10} started after {waited}  -> {run.output}")
    print()
    for record in sim.events("user/activity"):
        print(record.data, [o.outcome for o in record.outcomes])


if __name__ == "__main__":
    main()
