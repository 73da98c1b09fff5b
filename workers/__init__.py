"""focalscope workers: everything that runs a model (load, tokenize, score, train).

`python -m workers` (or `focalscope worker`) claims jobs from the database that the API uses.
"""
