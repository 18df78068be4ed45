"""Runs the Inngest Python SDK's own function cases against inngest_do (see docs/sdk_cases.md)."""
