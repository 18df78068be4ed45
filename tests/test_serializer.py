"""``serializer=`` on the client and ``output_type=`` on functions, ``step.run`` and (through
the invoked function) ``step.invoke``, as the SDK honours them: outputs are recorded through the
serializer and read back into ``output_type`` -- the same value live and on replay."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import typing

import pydantic
import pytest
from helpers import ev, only_run

import inngest_do as inngest
from inngest_do.testing import Simulation


class Pet(pydantic.BaseModel):
    name: str
    born: datetime.date


REX = Pet(name="Rex", born=datetime.date(2020, 5, 1))
REX_JSON = {"name": "Rex", "born": "2020-05-01"}


def typed_client(execution: str | None = None, serializer: object = None) -> inngest.Inngest:
    return inngest.Inngest(app_id="ser", execution=execution,
                           serializer=serializer or inngest.PydanticSerializer())


# (sync handler, execution mode): sync handlers and the "requests" mode replay the handler
# after every step, so each step's value is read back from the record at least once.
MODES = [(False, None), (True, None), (False, "requests")]


def _error(run: inngest.Run) -> tuple[str, str]:
    assert run.error is not None
    return run.error.name, run.error.message


@pytest.mark.parametrize(("sync", "execution"), MODES)
def test_step_outputs_come_back_as_their_output_type(sync: bool, execution: str | None) -> None:
    client = typed_client(execution)
    seen: list[tuple[str, object]] = []

    def steps_then_sleep(get: typing.Callable[..., typing.Any]) -> None:
        seen.append(("object", get("object", lambda: REX, output_type=Pet)))
        seen.append(("none", get("none", lambda: None, output_type=Pet | None)))
        seen.append(("list", get("list", lambda: [REX, REX], output_type=list[Pet])))
        seen.append(("plain", get("plain", lambda: {"n": 1})))

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync) -> None:
            steps_then_sleep(ctx.step.run)
            ctx.step.sleep("nap", 1000)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context) -> None:
            results = []
            for sid, body, kw in (("object", lambda: REX, {"output_type": Pet}),
                                  ("none", lambda: None, {"output_type": Pet | None}),
                                  ("list", lambda: [REX, REX], {"output_type": list[Pet]}),
                                  ("plain", lambda: {"n": 1}, {})):
                results.append((sid, await ctx.step.run(sid, body, **kw)))
            seen.extend(results)
            await ctx.step.sleep("nap", 1000)

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    assert only_run(sim).status == "Completed"
    assert seen, "the handler reached its end"
    for name, value in seen:
        if name == "object":
            assert isinstance(value, Pet) and value == REX
        elif name == "none":
            assert value is None
        elif name == "list":
            assert value == [REX, REX] and all(isinstance(p, Pet) for p in value)  # type: ignore[union-attr]
        else:
            assert value == {"n": 1}


@pytest.mark.parametrize(("sync", "execution"), MODES)
def test_function_output_is_recorded_through_the_serializer(sync: bool,
                                                            execution: str | None) -> None:
    client = typed_client(execution)
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        def f(ctx: inngest.ContextSync) -> list[Pet]:
            return [ctx.step.run("pet", lambda: REX, output_type=Pet)]
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        async def f(ctx: inngest.Context) -> list[Pet]:
            return [await ctx.step.run("pet", lambda: REX, output_type=Pet)]

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert (run.status, run.output) == ("Completed", [REX_JSON])


@pytest.mark.parametrize(("sync", "execution"), MODES)
def test_invoke_reads_the_output_back_into_the_invoked_functions_type(
        sync: bool, execution: str | None) -> None:
    client = typed_client(execution)
    got: list[object] = []
    if sync:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                output_type=list[Pet])
        def child(ctx: inngest.ContextSync) -> list[Pet]:
            return [REX]

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        def parent(ctx: inngest.ContextSync) -> list[Pet]:
            out = ctx.step.invoke("call", function=child)
            got.append(out)
            return out
    else:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                output_type=list[Pet])
        async def child(ctx: inngest.Context) -> list[Pet]:
            return [REX]

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        async def parent(ctx: inngest.Context) -> list[Pet]:
            out = await ctx.step.invoke("call", function=child)
            got.append(out)
            return out

    sim = Simulation(client, functions=[child, parent])
    sim.send(ev())
    sim.run_until_idle()
    assert got[-1] == [REX] and isinstance(got[-1][0], Pet)  # type: ignore[index]
    assert only_run(sim, parent).output == [REX_JSON]
    assert only_run(sim, child).output == [REX_JSON]


@pytest.mark.parametrize("sync", [False, True])
def test_invoke_of_a_function_without_output_type_fails_as_in_the_sdk(sync: bool) -> None:
    client = typed_client()
    if sync:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                retries=0)
        def child(ctx: inngest.ContextSync) -> Pet:
            return REX

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                retries=0)
        def parent(ctx: inngest.ContextSync) -> object:
            return ctx.step.invoke("call", function=child)
    else:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                retries=0)
        async def child(ctx: inngest.Context) -> Pet:
            return REX

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                retries=0)
        async def parent(ctx: inngest.Context) -> object:
            return await ctx.step.invoke("call", function=child)

    sim = Simulation(client, functions=[child, parent])
    sim.send(ev())
    sim.run_until_idle()
    expected = ("OutputUnserializableError", "returned unserializable data")
    assert _error(only_run(sim, child)) == expected
    assert only_run(sim, parent).status == "Failed"
    assert _error(only_run(sim, parent)) == expected


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize("with_serializer", [False, True])
def test_a_step_returning_a_model_without_serializer_or_type_fails_the_run(
        sync: bool, with_serializer: bool) -> None:
    # Without a serializer, output_type changes nothing; with one but no output_type, the
    # step's output is recorded as it is. Either way a model is no JSON: the SDK's error.
    client = typed_client() if with_serializer else inngest.Inngest(app_id="plain")
    kwargs: dict[str, object] = {} if with_serializer else {"output_type": Pet}
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        def f(ctx: inngest.ContextSync) -> None:
            ctx.step.run("a", lambda: REX, **kwargs)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        async def f(ctx: inngest.Context) -> None:
            await ctx.step.run("a", lambda: REX, **kwargs)

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Failed"
    assert _error(run) == ("OutputUnserializableError", '"a" returned unserializable data')


@pytest.mark.parametrize("sync", [False, True])
def test_a_function_returning_a_model_without_serializer_fails_the_run(sync: bool) -> None:
    client = inngest.Inngest(app_id="plain")
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet], retries=0)
        def f(ctx: inngest.ContextSync) -> list[Pet]:
            return [REX]
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet], retries=0)
        async def f(ctx: inngest.Context) -> list[Pet]:
            return [REX]

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    assert _error(only_run(sim)) == ("OutputUnserializableError", "returned unserializable data")


@pytest.mark.parametrize("with_serializer", [False, True])
def test_on_failure_output_is_serialized_without_a_type(with_serializer: bool) -> None:
    client = typed_client() if with_serializer else inngest.Inngest(app_id="plain")

    def on_failure(ctx: inngest.ContextSync) -> list[Pet]:
        return [REX]

    @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0,
                            on_failure=on_failure)
    def f(ctx: inngest.ContextSync) -> None:
        raise ValueError("oh no")

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    assert f.on_failure_fn is not None
    handler_run = only_run(sim, f.on_failure_fn)
    if with_serializer:
        assert (handler_run.status, handler_run.output) == ("Completed", [REX_JSON])
    else:
        assert _error(handler_run) == ("OutputUnserializableError",
                                       "returned unserializable data")


@dataclasses.dataclass
class Animal:
    name: str

    @classmethod
    def from_dict(cls, data: dict[str, typing.Any]) -> Animal:
        return cls(**data)


class DataclassSerializer(inngest.Serializer):
    """A serializer of our own: dataclasses as dicts, read back with ``typ.from_dict``."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def serialize(self, obj: object, typ: object) -> object:
        self.calls.append("serialize")
        return dataclasses.asdict(obj)  # type: ignore[call-overload]

    def deserialize(self, obj: object, typ: object) -> object:
        self.calls.append("deserialize")
        return typ.from_dict(obj)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("sync", "execution"), MODES)
def test_a_custom_serializer_is_used(sync: bool, execution: str | None) -> None:
    ser = DataclassSerializer()
    client = typed_client(execution, serializer=ser)
    got: list[object] = []
    if sync:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                output_type=Animal)
        def child(ctx: inngest.ContextSync) -> Animal:
            return Animal("Baxter")

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                output_type=Animal)
        def parent(ctx: inngest.ContextSync) -> Animal:
            a = ctx.step.run("make", lambda: Animal("Tom"), output_type=Animal)
            b = ctx.step.invoke("call", function=child)
            got.append((a, b))
            return b
    else:
        @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="never"),
                                output_type=Animal)
        async def child(ctx: inngest.Context) -> Animal:
            return Animal("Baxter")

        @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="go"),
                                output_type=Animal)
        async def parent(ctx: inngest.Context) -> Animal:
            a = await ctx.step.run("make", lambda: Animal("Tom"), output_type=Animal)
            b = await ctx.step.invoke("call", function=child)
            got.append((a, b))
            return b

    sim = Simulation(client, functions=[child, parent])
    sim.send(ev())
    sim.run_until_idle()
    assert got[-1] == (Animal("Tom"), Animal("Baxter"))
    assert only_run(sim, parent).output == {"name": "Baxter"}
    assert ser.calls.count("serialize") == 3  # the step, the child's output, the parent's


@pytest.mark.parametrize("sync", [False, True])
def test_a_failing_serializer_is_a_failed_attempt_of_the_step(sync: bool) -> None:
    class Flaky(inngest.PydanticSerializer):
        fails = 1

        def serialize(self, obj: object, typ: object) -> object:
            if self.fails:
                self.fails -= 1
                raise RuntimeError("serializer down")
            return super().serialize(obj, typ)

    client = typed_client(serializer=Flaky())
    bodies: list[int] = []

    def body() -> Pet:
        bodies.append(1)
        return REX

    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        def f(ctx: inngest.ContextSync) -> str:
            return ctx.step.run("a", body, output_type=Pet).name
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=2)
        async def f(ctx: inngest.Context) -> str:
            return (await ctx.step.run("a", body, output_type=Pet)).name

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert (run.status, run.output, len(bodies)) == ("Completed", "Rex", 2)


@pytest.mark.parametrize(("sync", "execution"), MODES)
def test_a_value_not_of_output_type_raises_in_the_handler_live_and_on_replay(
        sync: bool, execution: str | None) -> None:
    # The serializer's deserialize error reaches the handler where step.run is called (the
    # step itself is recorded): the handler may catch it, the same each time it is read.
    client = typed_client(execution)
    caught: list[str] = []
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
        def f(ctx: inngest.ContextSync) -> str:
            try:
                ctx.step.run("a", lambda: "not a pet", output_type=Pet)
            except pydantic.ValidationError:
                caught.append("a")
            ctx.step.sleep("nap", 1000)
            return "ok"
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"), retries=0)
        async def f(ctx: inngest.Context) -> str:
            try:
                await ctx.step.run("a", lambda: "not a pet", output_type=Pet)
            except pydantic.ValidationError:
                caught.append("a")
            await ctx.step.sleep("nap", 1000)
            return "ok"

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert (run.status, run.output) == ("Completed", "ok")
    assert caught and set(caught) == {"a"}


@pytest.mark.parametrize("sync", [False, True])
def test_send_event_with_a_serializer(sync: bool) -> None:
    client = typed_client()
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        def f(ctx: inngest.ContextSync) -> list[str]:
            return ctx.step.send_event("send", inngest.Event(name="other", data={"x": 1}))
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"))
        async def f(ctx: inngest.Context) -> list[str]:
            return await ctx.step.send_event("send", inngest.Event(name="other", data={"x": 1}))

    sim = Simulation(client, functions=[f])
    sim.send(ev())
    sim.run_until_idle()
    run = only_run(sim)
    assert run.status == "Completed" and len(run.output) == 1


def test_bad_serializer_argument_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"serializer: .*PydanticSerializer\(\)"):
        inngest.Inngest(app_id="x", serializer=inngest.PydanticSerializer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="serializer: expected an object with serialize"):
        inngest.Inngest(app_id="x", serializer="pydantic")  # type: ignore[arg-type]
    assert isinstance(inngest.PydanticSerializer(), inngest.Serializer)
    assert inngest.Inngest(app_id="x").serializer is None


def test_sdk_import_paths() -> None:
    from inngest_do import PydanticSerializer, Serializer

    assert PydanticSerializer().serialize(REX, Pet) == REX_JSON
    assert PydanticSerializer().deserialize(REX_JSON, Pet) == REX
    assert Serializer is inngest.Serializer


@pytest.mark.parametrize("sync", [False, True])
def test_worker_honours_serializer_and_output_type(sync: bool) -> None:
    client = typed_client()
    got: list[object] = []
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=Pet)
        def f(ctx: inngest.ContextSync) -> Pet:
            pet = ctx.step.run("a", lambda: REX, output_type=Pet)
            got.append(pet)
            return pet
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=Pet)
        async def f(ctx: inngest.Context) -> Pet:
            pet = await ctx.step.run("a", lambda: REX, output_type=Pet)
            got.append(pet)
            return pet

    async def main() -> inngest.Run:
        async with inngest.Worker(client, functions=[f]):
            await client.send(inngest.Event(name="go"))
            for _ in range(3000):  # bounded: at most ~30 s
                runs = client.runs()
                if runs and runs[0].status.is_final:
                    return runs[0]
                await asyncio.sleep(0.01)
        raise AssertionError("the run did not finish")

    run = asyncio.run(asyncio.wait_for(main(), 60))
    assert (run.status, run.output) == ("Completed", REX_JSON)
    assert got and all(isinstance(p, Pet) and p == REX for p in got)


@pytest.mark.parametrize("sync", [False, True])
def test_mocked_trigger_reads_stubs_into_output_type_and_returns_the_recorded_output(
        sync: bool) -> None:
    from inngest_do.experimental import mocked

    client = mocked.Inngest(app_id="m", serializer=inngest.PydanticSerializer())
    got: list[object] = []
    if sync:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        def f(ctx: inngest.ContextSync) -> list[Pet]:
            got.append(ctx.step.run("stubbed", lambda: REX, output_type=Pet))
            got.append(ctx.step.run("real", lambda: REX, output_type=Pet))
            return typing.cast(list[Pet], got)
    else:
        @client.create_function(fn_id="f", trigger=inngest.TriggerEvent(event="go"),
                                output_type=list[Pet])
        async def f(ctx: inngest.Context) -> list[Pet]:
            got.append(await ctx.step.run("stubbed", lambda: REX, output_type=Pet))
            got.append(await ctx.step.run("real", lambda: REX, output_type=Pet))
            return typing.cast(list[Pet], got)

    stub = {"name": "Stub", "born": "2021-01-02"}
    res = mocked.trigger(f, inngest.Event(name="go"), client, step_stubs={"stubbed": stub})
    assert res.status is mocked.Status.COMPLETED
    assert got[-2:] == [Pet(name="Stub", born=datetime.date(2021, 1, 2)), REX]
    assert res.output == [stub, REX_JSON]  # as the SDK's mocked: the serialized output
