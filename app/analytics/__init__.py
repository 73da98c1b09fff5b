"""Numpy-only analytics over stored per-token arrays. The formulas here are part of the API contract
(docs/formulas.md)."""
