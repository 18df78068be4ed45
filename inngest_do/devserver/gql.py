"""``/v0/gql``: the part of Inngest's GraphQL API that the SDK's tooling queries.

Built with graphql-core from SDL: a run's status, output, trigger payloads and step spans,
a span's output by id, the runs an event started, and lists of runs and events.
"""

from __future__ import annotations

import json
import typing

import graphql

if typing.TYPE_CHECKING:
    from .rest import Views

__all__ = ["GraphQL"]

SDL = """
scalar Bytes
scalar Time

enum FunctionRunStatus { QUEUED RUNNING COMPLETED FAILED CANCELLED SKIPPED }

type StepError { message: String! name: String stack: String }

type RunTraceSpan {
  name: String!
  spanID: String!
  status: String!
  outputID: String
  stepID: String
  stepOp: String
  childrenSpans: [RunTraceSpan!]!
}

type RunTraceSpanOutput { data: Bytes input: Bytes error: StepError }

type RunTraceTrigger { eventName: String IDs: [ID!]! payloads: [Bytes!]! timestamp: Time }

type FunctionRunV2 {
  id: ID!
  functionID: String!
  status: FunctionRunStatus!
  output: Bytes
  queuedAt: Time!
  startedAt: Time
  endedAt: Time
  trace: RunTraceSpan
}

type FunctionRun {
  id: ID!
  functionID: String!
  status: FunctionRunStatus
  output: Bytes
  eventID: ID
}

type Event {
  id: ID!
  name: String
  raw: String
  createdAt: Time
  functionRuns: [FunctionRun!]!
}

input EventQuery { workspaceId: ID eventId: ID! }

type Query {
  run(runID: String!): FunctionRunV2
  runTrigger(runID: String!): RunTraceTrigger!
  runTraceSpanOutputByID(outputID: String!): RunTraceSpanOutput!
  event(query: EventQuery!): Event
  functionRun(query: FunctionRunQuery!): FunctionRun
  runs(functionID: String, status: FunctionRunStatus, first: Int = 100): [FunctionRun!]!
  events(name: String, first: Int = 100): [Event!]!
}

input FunctionRunQuery { workspaceId: ID functionRunId: ID! }
"""


class GraphQL:
    """Executes queries against :class:`~inngest_do.devserver.rest.Views`."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self.schema = graphql.build_schema(SDL)
        query = typing.cast(graphql.GraphQLObjectType, self.schema.query_type)
        for name, resolver in (
                ("run", self._run), ("runTrigger", self._run_trigger),
                ("runTraceSpanOutputByID", self._span_output), ("event", self._event),
                ("functionRun", self._function_run), ("runs", self._runs),
                ("events", self._events)):
            query.fields[name].resolve = resolver

    def execute(self, body: object) -> dict:
        """Run a ``{"query", "variables", "operationName"}`` request; the GraphQL response
        (errors included, as GraphQL reports them)."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return {"data": None, "errors": [{"message": "body: expected a JSON object with "
                                              "a 'query' string"}]}
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return {"data": None, "errors": [{"message": "variables: expected an object"}]}
        result = graphql.graphql_sync(self.schema, body["query"], variable_values=variables,
                                      operation_name=body.get("operationName"))
        out: dict[str, typing.Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out

    # resolvers ------------------------------------------------------------------------------
    def _run(self, _root: object, _info: object, runID: str) -> dict | None:
        run = self.views.run(runID)
        if run is None:
            return None
        state = self.views.run_state(runID)
        spans = [{"name": s["name"], "spanID": s["output_id"], "outputID": s["output_id"],
                  "stepID": s["id"], "stepOp": s["op"],
                  "status": "COMPLETED" if s["ok"] else "FAILED", "childrenSpans": []}
                 for s in run["steps"]]
        return {
            "id": run["run_id"], "functionID": run["function_id"], "status": run["status"],
            "output": None if state is None else self.views.output_json(state),
            "queuedAt": run["created_at"], "startedAt": run["started_at"],
            "endedAt": run["ended_at"],
            "trace": {"name": run["function_id"], "spanID": run["run_id"],
                      "status": run["status"], "outputID": run["run_id"], "stepID": None,
                      "stepOp": None, "childrenSpans": spans},
        }

    def _run_trigger(self, _root: object, _info: object, runID: str) -> dict:
        events = self.views.batch(runID)
        if events is None:
            raise ValueError(f"no run with id {runID!r}")
        return {"eventName": events[0].get("name") if events else None,
                "IDs": [e.get("id") for e in events],
                "payloads": [json.dumps(e) for e in events],
                "timestamp": None}

    def _span_output(self, _root: object, _info: object, outputID: str) -> dict:
        shaped = self.views.step_output(outputID)
        if shaped is None:
            # the run itself (its trace's output id)
            state = self.views.run_state(outputID)
            if state is None:
                raise ValueError(f"no output with id {outputID!r}")
            return {"data": self.views.output_json(state), "input": None, "error": None}
        if "error" in shaped:
            return {"data": None, "input": None, "error": shaped["error"]}
        return {"data": json.dumps(shaped.get("data")), "input": None, "error": None}

    def _event(self, _root: object, _info: object, query: dict) -> dict | None:
        ev = self.views.event(str(query["eventId"]))
        if ev is None:
            return None
        runs = [self._brief_run(r) for r in self.views.event_run_ids(ev["internal_id"])]
        return {"id": ev["internal_id"], "name": ev["name"], "raw": json.dumps(ev["payload"]),
                "createdAt": ev["received_at"], "functionRuns": [r for r in runs if r]}

    def _brief_run(self, run_id: str) -> dict | None:
        run = self.views.run(run_id)
        state = self.views.run_state(run_id)
        if run is None or state is None:
            return None
        return {"id": run["run_id"], "functionID": run["function_id"],
                "status": run["status"], "output": self.views.output_json(state),
                "eventID": (run["event_ids"] or [None])[0]}

    def _function_run(self, _root: object, _info: object, query: dict) -> dict | None:
        return self._brief_run(str(query["functionRunId"]))

    def _runs(self, _root: object, _info: object, functionID: str | None = None,
              status: str | None = None, first: int = 100) -> list[dict]:
        runs = self.views.runs(fn_id=functionID, status=status, limit=max(first, 0))
        return [r for r in (self._brief_run(d["run_id"]) for d in runs) if r]

    def _events(self, _root: object, _info: object, name: str | None = None,
                first: int = 100) -> list[dict]:
        out = []
        for ev in self.views.events(name=name, limit=max(first, 0)):
            found = self._event(None, None, {"eventId": ev["internal_id"]})
            if found:
                out.append(found)
        return out
