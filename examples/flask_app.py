"""A Flask app written for the Inngest Python SDK, running on inngest_do: only the imports
differ (``import inngest`` -> ``import inngest_do as inngest``, and the same for
``inngest.flask``). No Inngest server: ``serve`` runs the functions inside this app, on a
background worker thread that starts with the app's first request.

    pip install 'inngest-do[flask]'
    python examples/flask_app.py                 # or: flask --app examples/flask_app run
    curl -X POST localhost:8000/api/inngest -d '{"name": "app/user.signed_up",
         "data": {"email": "ada@example.com"}}'
    curl localhost:8000/api/inngest              # introspection: the functions served
"""

from __future__ import annotations

import datetime

import flask

import inngest_do as inngest  # was: import inngest
import inngest_do.flask  # was: import inngest.flask

app = flask.Flask(__name__)
inngest_client = inngest.Inngest(app_id="flask_example", logger=app.logger)


@inngest_client.create_function(fn_id="welcome",
                                trigger=inngest.TriggerEvent(event="app/user.signed_up"))
def welcome(ctx: inngest.ContextSync) -> str:
    email = ctx.event.data["email"]
    ctx.step.run("send-welcome", lambda: f"welcome mail to {email}")
    ctx.step.sleep("a-moment-later", datetime.timedelta(milliseconds=50))
    return ctx.step.run("send-tips", lambda: f"tips mail to {email}")


@app.post("/signup")
def signup() -> dict:
    body = flask.request.get_json()
    ids = inngest_client.send_sync(inngest.Event(name="app/user.signed_up", data=body))
    return {"event_ids": ids}


inngest.flask.serve(app, inngest_client, [welcome])


if __name__ == "__main__":
    app.run(port=8000)
