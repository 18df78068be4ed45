"""Errors of ``experimental.mocked``."""


class UnstubbedStepError(Exception):
    """A step that needs the outside world (a wait, an invoke, a model call) had no stub."""

    def __init__(self, step_id: str) -> None:
        """Args:
        step_id: The step's id, as written in the function.
        """
        super().__init__(f"step {step_id} is not stubbed")
        self.step_id = step_id
