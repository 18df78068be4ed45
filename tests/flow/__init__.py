"""Flow-control tests: reference models written from SPEC.md section 3, and the engine
checked against them (examples, validation, Hypothesis streams, model-free properties)."""
