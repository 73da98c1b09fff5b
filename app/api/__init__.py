"""The HTTP layer. Every API route lives under API_PREFIX."""

API_PREFIX = "/api/v1"
