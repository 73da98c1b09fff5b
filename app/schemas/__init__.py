"""Pydantic shapes of the HTTP API (in and out), one module per domain; kept apart from the ORM."""
