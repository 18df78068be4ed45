"""A tool-using AI agent as one durable function: model call, tool step, model call, then a
human's approval, with its progress streamed to subscribers.

Every model call is ``ctx.step.ai.infer``: the engine makes the HTTP request and records the
answer, so a crash, a retry or a replay never pays for the same call twice. The "model" here
is a small fake OpenAI-compatible server on loopback that this program starts itself, so it
runs offline: ``python examples/ai_agent.py``.
"""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import typing

import inngest_do as inngest
from inngest_do.experimental import ai, realtime
from inngest_do.testing import Simulation

# -- the fake model ---------------------------------------------------------------------------


class FakeModel:
    """An OpenAI-style chat endpoint with a script: asked a question, it calls the
    ``get_weather`` tool; given the tool's result, it answers. ``fail_next`` queues error
    answers (status, headers) to serve first, e.g. a 429 with ``Retry-After``."""

    def __init__(self) -> None:
        self.calls = 0  # answered requests, errors included
        self.fail_next: list[tuple[int, dict[str, str]]] = []
        model = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                model.calls += 1
                status, headers = (model.fail_next.pop(0) if model.fail_next
                                   else (200, {}))
                reply = model.answer(body) if status == 200 else {"error": "rate limited"}
                data = json.dumps(reply).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: typing.Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @staticmethod
    def answer(body: dict) -> dict:
        last = body["messages"][-1]
        if last["role"] == "user":
            city = last["content"].rsplit(" ", 1)[-1].strip("?")
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
            }]}
        else:
            weather = json.loads(last["content"])
            message = {"role": "assistant",
                       "content": f"It is {weather['forecast']} in {weather['city']}: "
                                  "I suggest booking the 9:00 train."}
        return {"id": "chatcmpl-fake", "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# -- the agent --------------------------------------------------------------------------------
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Today's forecast for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}}]


def get_weather(args: dict) -> dict:
    """The tool: deterministic here; a real one would call a weather API."""
    return {"city": args["city"], "forecast": "sunny, 21 C"}


def book_train(plan: str) -> dict:
    return {"booking": "TRAIN-0900", "plan": plan}


def create_agent(client: inngest.Inngest, adapter: ai.BaseAdapter) -> inngest.Function:
    @client.create_function(fn_id="trip-agent", trigger=inngest.TriggerEvent(event="agent/ask"),
                            retries=3)
    async def trip_agent(ctx: inngest.Context) -> dict:
        channel = f"conversation:{ctx.event.data['conversation_id']}"
        messages: list[dict] = [{"role": "user", "content": ctx.event.data["question"]}]
        for _turn in range(5):  # the agent loop: model, tools, model ...
            reply = await ctx.step.ai.infer(
                "model", adapter=adapter, body={"messages": messages, "tools": TOOLS})
            message = reply["choices"][0]["message"]
            messages.append(message)
            if not message.get("tool_calls"):
                break
            for call in message["tool_calls"]:
                args = json.loads(call["function"]["arguments"])
                await realtime.publish(client, channel, "progress", {"tool": "get_weather",
                                                                     "args": args})
                result = await ctx.step.run("get-weather", get_weather, args)
                messages.append({"role": "tool", "tool_call_id": call["id"],
                                 "content": json.dumps(result)})
        plan = message["content"]
        await realtime.publish(client, channel, "progress", {"awaiting_approval": plan})
        approval = await ctx.step.wait_for_event(
            "approval", event="agent/approved", timeout=datetime.timedelta(hours=1),
            if_exp="async.data.conversation_id == event.data.conversation_id")
        if approval is None:
            await realtime.publish(client, channel, "progress", {"timed_out": True})
            return {"plan": plan, "approved": False}
        booking = await ctx.step.run("book", book_train, plan)
        await realtime.publish(client, channel, "progress", {"booked": booking["booking"]})
        return {"plan": plan, "approved": True, **booking}

    return trip_agent


def main() -> None:
    model = FakeModel()
    try:
        client = inngest.Inngest(app_id="travel")
        adapter = ai.openai.Adapter(auth_key="sk-example-not-a-real-key", model="gpt-4o-mini",
                                    base_url=model.base_url)
        create_agent(client, adapter)
        sim = Simulation(client, seed=1)
        progress = client.subscribe("conversation:42", ["progress"])

        sim.send(inngest.Event(name="agent/ask", data={
            "conversation_id": 42, "question": "Should I travel to Lyon?"}))
        for msg in progress.drain():
            print("progress:", msg.data)
        sim.advance(datetime.timedelta(minutes=5))  # the human takes five minutes
        sim.send(inngest.Event(name="agent/approved", data={"conversation_id": 42}))
        for msg in progress.drain():
            print("progress:", msg.data)
        run = sim.runs()[0]
        print(run.status, run.output)

        # Nobody answers the second conversation: after an hour the agent gives up.
        sim.send(inngest.Event(name="agent/ask", data={
            "conversation_id": 43, "question": "Should I travel to Nantes?"}))
        sim.advance(datetime.timedelta(hours=1))
        print(sim.runs()[1].status, sim.runs()[1].output)
        print("model calls:", model.calls)
    finally:
        model.close()


if __name__ == "__main__":
    main()
