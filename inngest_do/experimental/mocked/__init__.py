"""Unit-test a function without a server, as ``inngest.experimental.mocked`` does.

``trigger(fn, event, client, step_stubs=...)`` runs one run of ``fn`` to its end on a
:class:`~inngest_do.testing.Simulation` (a virtual clock, so sleeps and retry backoffs
take no real time) and returns its ``status``, ``output`` and ``error``. ``step.run`` bodies
and sleeps run for real; ``wait_for_event``, ``invoke`` and ``step.ai.infer`` must be
answered by ``step_stubs`` (keyed by the step id as written; :data:`Timeout` makes a wait
time out), otherwise :class:`~.errors.UnstubbedStepError` is raised. Events sent from the
run (``step.send_event``, ``client.send``) go nowhere and get the id ``"0" * 26``, as with
the SDK's mock client.
"""

from .client import Inngest
from .consts import Status, Timeout
from .errors import UnstubbedStepError
from .trigger import trigger

__all__ = [
    "Inngest",
    "Status",
    "Timeout",
    "UnstubbedStepError",
    "trigger",
]
